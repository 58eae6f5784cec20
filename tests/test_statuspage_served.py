"""The pages as a real ASGI server serves them: prerendered bytes at the edge, fresh within a second, Redis optional."""

import time
import urllib.error
import urllib.request

import pytest

from demo.registry import seed_demo
from monitoring.models import AIModel
from monitoring.status import Status
from monitoring.transitions import record_status
from tests.servers import serve


def fetch(url: str, **headers: str) -> tuple[int, dict[str, str], bytes]:
    request = urllib.request.Request(url, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, {k.lower(): v for k, v in response.headers.items()}, response.read()
    except urllib.error.HTTPError as error:
        return error.code, {k.lower(): v for k, v in error.headers.items()}, error.read()


@pytest.fixture
def site(transactional_db, tmp_path):
    seed_demo()
    with serve(tmp_path / "uvicorn.log") as base:
        yield base


@pytest.mark.django_db(transaction=True)
def test_the_edge_serves_the_same_bytes_and_a_304_until_the_version_moves(site):
    status, headers, body = fetch(f"{site}/en/")
    assert status == 200 and headers["x-snapshot-version"]
    again = fetch(f"{site}/en/")
    assert again[2] == body and again[1]["etag"] == headers["etag"]
    assert fetch(f"{site}/en/", **{"If-None-Match": headers["etag"]})[0] == 304
    assert "set-cookie" not in headers


@pytest.mark.django_db(transaction=True)
def test_every_locale_summary_and_snapshot_carry_one_version(site):
    paths = ["/ko/", "/en/", "/ja/", "/api/v2/summary.json", "/api/v1/snapshot/", "/badge/openai/gpt-4o.svg"]
    versions = {path: fetch(f"{site}{path}")[1]["x-snapshot-version"] for path in paths}
    assert len(set(versions.values())) == 1, versions


@pytest.mark.django_db(transaction=True)
def test_a_status_change_reaches_the_served_page_within_a_second(site):
    before = fetch(f"{site}/en/")[1]["x-snapshot-version"]
    model = AIModel.objects.get(slug="gpt-4o")
    started = time.monotonic()
    record_status(model.pk, Status.MAJOR_OUTAGE, reason="HTTP 503", checked=True)
    while True:
        status, headers, body = fetch(f"{site}/en/")
        if headers["x-snapshot-version"] != before:
            break
        assert time.monotonic() - started < 5, "the page never moved"
        time.sleep(0.02)
    elapsed = time.monotonic() - started
    assert b'data-model="openai/gpt-4o" data-status="major_outage"' in body
    assert elapsed < 1.0, f"{elapsed:.2f} s behind"


@pytest.mark.django_db(transaction=True)
def test_unknown_things_are_404s_through_the_edge_too(site):
    assert fetch(f"{site}/en/models/openai/nope/")[0] == 404
    status, _, body = fetch(f"{site}/en/models/openai/nope/", Accept="application/json")
    assert status == 404 and body.startswith(b'{"detail"')
    assert fetch(f"{site}/badge/openai/nope.svg")[0] == 404
    assert fetch(f"{site}/fr/", **{"Accept-Language": "ko"})[0] == 200  # redirected to /ko/


@pytest.mark.django_db(transaction=True)
def test_static_files_are_served_with_validators_ranges_and_safe_headers(site):
    status, headers, body = fetch(f"{site}/static/statuspage/status.css")
    assert status == 200 and headers["content-type"].startswith("text/css") and body.startswith(b"/*")
    assert headers["x-content-type-options"] == "nosniff" and "max-age" in headers["cache-control"]
    assert fetch(f"{site}/static/statuspage/status.css")[2] == body  # the kept bytes, unchanged
    assert fetch(f"{site}/static/statuspage/status.css", **{"If-None-Match": headers["etag"]})[0] == 304
    status, ranged_headers, part = fetch(f"{site}/static/statuspage/status.css", Range="bytes=0-9")
    assert status == 206 and part == body[:10] and ranged_headers["content-range"].endswith(f"/{len(body)}")
    assert fetch(f"{site}/static/admin/css/base.css")[0] == 200
    assert fetch(f"{site}/static/statuspage/nope.css")[0] == 404
    assert fetch(f"{site}/static/statuspage/..%2f..%2fmanage.py")[0] == 404


async def test_static_files_never_reach_django_and_other_paths_always_do():
    from publishing.static_edge import StaticEdge

    reached = []

    async def django(scope, receive, send):
        reached.append(scope["path"])
        await send({"type": "http.response.start", "status": 404, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    edge = StaticEdge(django)
    sent = []

    async def send(message):
        sent.append(message)

    for path in ["/static/statuspage/live.js", "/static/statuspage/live.js", "/static/nope.js", "/en/"]:
        scope = {"type": "http", "method": "GET", "path": path, "headers": []}
        await edge(scope, None, send)
    assert reached == ["/static/nope.js", "/en/"]
    assert [m["status"] for m in sent if m["type"] == "http.response.start"] == [200, 200, 404, 404]


async def test_static_files_carry_the_security_headers_django_would_give_them(settings):
    from publishing.static_edge import StaticEdge

    settings.SECURE_REFERRER_POLICY = ["same-origin", "strict-origin"]
    settings.SECURE_HSTS_SECONDS = 3600
    edge = StaticEdge(None)
    sent = []

    async def send(message):
        sent.append(message)

    for scheme in ("https", "http"):
        path = "/static/statuspage/status.css"
        await edge({"type": "http", "method": "GET", "path": path, "headers": [], "scheme": scheme}, None, send)
    secure, plain = (dict(m["headers"]) for m in sent if m["type"] == "http.response.start")
    assert secure[b"referrer-policy"] == b"same-origin,strict-origin"
    assert secure[b"x-content-type-options"] == b"nosniff"
    assert secure[b"strict-transport-security"] == b"max-age=3600" and b"strict-transport-security" not in plain


@pytest.mark.django_db(transaction=True)
def test_with_redis_down_the_server_still_serves_the_pages(transactional_db, tmp_path):
    seed_demo()
    with serve(tmp_path / "uvicorn.log", REDIS_URL="redis://127.0.0.1:1/0") as base:
        for path in ["/ko/", "/en/", "/ja/", "/api/v2/summary.json"]:
            status, headers, body = fetch(f"{base}{path}")
            assert status == 200 and headers["x-snapshot-version"], path
        assert fetch(f"{base}/en/")[2].count(b'class="model" data-model=') == 12
