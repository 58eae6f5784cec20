"""Security headers: one set from Django and from the edges, a CSP without inline scripts, cookies under HTTPS."""

import re
import subprocess
import sys
import urllib.request

import pytest

from demo.registry import seed_demo
from publishing.security_headers import OPERATOR_POLICY, PUBLIC_POLICY, REDOC_POLICY
from statuspage.charts import uptime_bars
from tests.servers import ROOT

EXPECTED = {
    "x-content-type-options": "nosniff",
    "referrer-policy": "same-origin",
    "x-frame-options": "DENY",
    "cross-origin-opener-policy": "same-origin",
}


def directives(policy: str) -> dict[str, list[str]]:
    parsed = {}
    for part in policy.split(";"):
        name, *values = part.split()
        parsed[name] = values
    return parsed


def assert_secure_headers(headers, policy: str = PUBLIC_POLICY) -> None:
    headers = {name.lower(): value for name, value in headers.items()}
    assert headers["content-security-policy"] == policy
    for name, value in EXPECTED.items():
        assert headers[name] == value, name
    for feature in ("camera", "microphone", "geolocation", "payment", "usb"):
        assert f"{feature}=()" in headers["permissions-policy"]


def fetch(url: str, method: str = "GET"):
    with urllib.request.urlopen(urllib.request.Request(url, method=method), timeout=10) as response:
        return response.status, response.headers, response.read()


def test_the_public_policy_allows_no_inline_script_nor_style_and_no_framing():
    policy = directives(PUBLIC_POLICY)
    assert policy["script-src"] == ["'self'"] and policy["style-src"] == ["'self'"]
    assert policy["frame-ancestors"] == ["'none'"] and policy["object-src"] == ["'none'"]
    assert "'unsafe-inline'" not in directives(OPERATOR_POLICY)["script-src"]


@pytest.mark.django_db(transaction=True)
def test_the_edge_serves_en_with_the_same_headers_as_django(asgi_server):
    seed_demo()
    url = asgi_server()
    first = fetch(url + "/en/")  # rendered by Django, kept by the snapshot edge
    again = fetch(url + "/en/")  # the same version: the edge's bytes
    assert first[0] == again[0] == 200 and first[2] == again[2]
    assert first[1]["X-Snapshot-Version"] == again[1]["X-Snapshot-Version"]
    for _status, headers, _body in (first, again):
        assert_secure_headers(headers)
        assert "'unsafe-inline'" not in directives(headers["Content-Security-Policy"])["script-src"]
    for path in ("/api/v1/snapshot/", "/api/v2/summary.json", "/ja/"):
        for _ in range(2):
            status, headers, _body = fetch(url + path)
            assert status == 200
            assert_secure_headers(headers, policy=PUBLIC_POLICY if not path.startswith("/api/") else OPERATOR_POLICY)


@pytest.mark.django_db(transaction=True)
def test_the_static_edge_gives_static_files_the_same_headers(asgi_server):
    url = asgi_server()
    for path in ("/static/statuspage/live.js", "/static/statuspage/status.css"):
        status, headers, _body = fetch(url + path)
        assert status == 200
        assert_secure_headers(headers)


def test_django_gives_operators_pages_their_own_policy(client, admin_user):
    assert_secure_headers(client.get("/admin/login/").headers, policy=OPERATOR_POLICY)
    assert_secure_headers(client.get("/api/docs/redoc/").headers, policy=REDOC_POLICY)
    docs = client.get("/api/docs/")
    assert_secure_headers(docs.headers, policy=OPERATOR_POLICY)
    assert not re.search(rb"<script>", docs.content)  # Swagger UI starts from a file


INLINE = [
    (re.compile(r"<script(?![^>]*\bsrc=)(?![^>]*type=\"application/json\")[^>]*>", re.I), "an inline script"),
    (re.compile(r"<[^>]+\son[a-z]+\s*=", re.I), "an inline event handler"),
    (re.compile(r"<[^>]+\sstyle\s*=", re.I), "a style attribute"),
    (re.compile(r"<style", re.I), "a style element"),
    (re.compile(r"javascript:", re.I), "a javascript: URL"),
]


@pytest.mark.django_db
def test_public_pages_carry_nothing_the_policy_would_block(client, renew_snapshot):
    seed_demo()
    renew_snapshot()
    pages = [f"/{lang}/" for lang in ("ko", "en", "ja")]
    pages += ["/en/models/openai/gpt-4o/", "/en/incidents/", "/en/subscribe/", "/en/no-such-page/"]
    for page in pages:
        response = client.get(page)
        assert response.status_code in (200, 404), page
        html = response.content.decode()
        for pattern, what in INLINE:
            assert not pattern.search(html), f"{page} has {what}: {pattern.search(html).group(0)}"


def test_a_new_model_s_collecting_note_is_sized_without_a_style_attribute():
    bars = uptime_bars({"days": [None] * 60 + [100.0] * 30, "first_day": "2026-09-01"})
    assert 'data-share="66.67"' in bars and "style=" not in bars


def settings_under(**env: str) -> dict:
    code = (
        "import json, django; django.setup(); from django.conf import settings as s; "
        "print(json.dumps({k: getattr(s, k, None) for k in ('SESSION_COOKIE_SECURE', 'CSRF_COOKIE_SECURE', "
        "'SESSION_COOKIE_HTTPONLY', 'SESSION_COOKIE_SAMESITE', 'CSRF_COOKIE_SAMESITE', 'SECURE_PROXY_SSL_HEADER')}))"
    )
    base = {"DJANGO_SETTINGS_MODULE": "aistatus.settings", "SECRET_KEY": "x", "ENV_FILE": "", "PATH": "/usr/bin:/bin"}
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env={**base, **env}, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    import json

    return json.loads(out.stdout.strip().splitlines()[-1])


def test_cookies_are_secure_when_the_site_is_served_over_https():
    plain = settings_under(SITE_URL="http://127.0.0.1:8000")
    assert plain["SESSION_COOKIE_SECURE"] is False and plain["CSRF_COOKIE_SECURE"] is False
    https = settings_under(SITE_URL="https://status.example.com")
    assert https["SESSION_COOKIE_SECURE"] is True and https["CSRF_COOKIE_SECURE"] is True
    assert settings_under(HTTPS="1")["SESSION_COOKIE_SECURE"] is True
    for values in (plain, https):
        assert values["SESSION_COOKIE_HTTPONLY"] is True
        assert values["SESSION_COOKIE_SAMESITE"] == values["CSRF_COOKIE_SAMESITE"] == "Lax"
    behind_proxy = settings_under(SECURE_PROXY_SSL_HEADER="X-Forwarded-Proto")
    assert behind_proxy["SECURE_PROXY_SSL_HEADER"] == ["HTTP_X_FORWARDED_PROTO", "https"]


def test_the_session_cookie_is_httponly_lax_and_secure_under_https(client, staff, settings):
    settings.SESSION_COOKIE_SECURE = True
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    staff.set_password("pw-alice-123")
    staff.save()
    response = client.post("/admin/login/?next=/admin/", {"username": "alice", "password": "pw-alice-123"}, secure=True)
    assert response.status_code == 302
    cookie = response.cookies[settings.SESSION_COOKIE_NAME]
    assert cookie["httponly"] and cookie["secure"] and cookie["samesite"] == "Lax"
