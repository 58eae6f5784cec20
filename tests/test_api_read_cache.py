"""Staff API reads kept in memory: served again without the database, dropped on PostgreSQL's notices and on time.

These tests commit their writes (transaction=True), as the product does: PostgreSQL sends its notices at
commit. Writes "from another process" go through a connection of their own, so that only PostgreSQL's
notice, and not this process's own bookkeeping, can tell the API about them.
"""

from __future__ import annotations

import time
from datetime import timedelta

import psycopg
import pytest
from django.db import connection
from django.utils import timezone

from monitoring.api import authentication, listing_cache
from monitoring.api.registry_changes import changes
from monitoring.models import AIModel, ModelStatus, Provider
from monitoring.status import stale_after
from tests.conftest import token_client, user_with_role

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def kept_reads(settings):
    settings.API_READ_CACHE = True
    listing_cache._pages.clear()
    authentication._known.clear()
    deadline = time.monotonic() + 10
    while not changes.listening():
        assert time.monotonic() < deadline, "never listening for PostgreSQL's notices"
        time.sleep(0.05)
    yield
    settings.API_READ_CACHE = False
    changes.stop()  # its connection would keep the test database from being dropped
    listing_cache._pages.clear()
    authentication._known.clear()


@pytest.fixture
def registry():
    now = timezone.now()
    ids = {}
    for slug in ("alpha", "beta"):
        provider = Provider.objects.create(name=slug.title(), slug=slug)
        for i in range(3):
            model = AIModel.objects.create(
                provider=provider, name=f"{slug} {i}", slug=f"{slug}-{i}", interval_seconds=60
            )
            ModelStatus.objects.filter(model=model).update(status="operational", last_checked_at=now)
            ids[f"{slug}-{i}"] = model.pk
    return ids


@pytest.fixture
def staff_api():
    return token_client(user_with_role("kept", "viewer"))


def other_process(sql: str, *params) -> None:
    """A write committed on a connection Django does not know, as a collector in another process makes it."""
    settings = connection.settings_dict
    with psycopg.connect(
        dbname=settings["NAME"], user=settings["USER"], host=settings["HOST"], port=settings["PORT"], autocommit=True
    ) as conn:
        conn.execute(sql, params)


def wait_until(condition, what: str) -> None:
    deadline = time.monotonic() + 5
    while not condition():
        assert time.monotonic() < deadline, what
        time.sleep(0.01)


def notice_for(model_id: int, before: int):
    """Waits for the notice naming this model, sent after `before` (changes.count)."""
    wait_until(lambda: changes.model_changed_at.get(model_id, 0) > before, f"no notice for model {model_id}")


def notice_for_everything(before: int):
    wait_until(lambda: changes.everything_changed_at > before, "no notice for everything")


@pytest.fixture
def settled(registry, staff_api):
    """Every notice of the fixtures' commits taken in: a marker sent after them has arrived (PostgreSQL
    delivers notices in commit order), so that a late one cannot drop what a test keeps."""
    before = changes.count
    other_process("SELECT pg_notify('aistatus_registry', '0')")
    notice_for(0, before)


def read(api, path="/api/v1/models/"):
    response = api.get(path)
    assert response.status_code == 200, response.content
    return response.json()


def status_of(page: dict, slug: str) -> dict:
    return next(item["status"] for item in page["results"] if item["slug"] == slug)


def test_a_staff_page_is_served_again_without_reading_the_database(
    registry, staff_api, settled, django_assert_num_queries
):
    first = staff_api.get("/api/v1/models/")
    with django_assert_num_queries(0):
        again = staff_api.get("/api/v1/models/")
    assert again.status_code == 200
    assert again.content == first.content
    assert again["Content-Type"] == first["Content-Type"] == "application/json"


def test_the_kept_page_is_the_page_read_from_the_database(registry, staff_api, settings):
    staff_api.get("/api/v1/models/?provider=alpha")
    kept = staff_api.get("/api/v1/models/?provider=alpha")
    settings.API_READ_CACHE = False
    read_again = staff_api.get("/api/v1/models/?provider=alpha")
    assert kept.json() == read_again.json()
    assert "endpoint" in kept.json()["results"][0]  # the staff document


def test_a_status_written_by_another_process_shows_on_the_next_read_after_its_notice(registry, staff_api):
    assert status_of(read(staff_api), "alpha-1")["last_latency_ms"] is None
    before = changes.count
    other_process("UPDATE monitoring_modelstatus SET last_latency_ms = 123.0 WHERE model_id = %s", registry["alpha-1"])
    notice_for(registry["alpha-1"], before)
    assert status_of(read(staff_api), "alpha-1")["last_latency_ms"] == 123.0


def test_a_region_written_by_another_process_drops_the_pages_that_list_its_model(registry, staff_api):
    assert read(staff_api, "/api/v1/models/?provider=beta")["results"][0]["regions"] == []
    before = changes.count
    other_process(
        "INSERT INTO monitoring_regionstatus (model_id, region, status, last_checked_at, last_latency_ms, message) "
        "VALUES (%s, 'eu', 'operational', now(), 80.0, '')",
        registry["beta-0"],
    )
    notice_for(registry["beta-0"], before)
    regions = read(staff_api, "/api/v1/models/?provider=beta")["results"][0]["regions"]
    assert [(region["region"], region["last_latency_ms"]) for region in regions] == [("eu", 80.0)]


def test_a_write_to_a_model_on_another_page_keeps_the_page(registry, staff_api, settled, django_assert_num_queries):
    read(staff_api, "/api/v1/models/?provider=alpha")
    before = changes.count
    other_process("UPDATE monitoring_modelstatus SET last_latency_ms = 5.0 WHERE model_id = %s", registry["beta-2"])
    notice_for(registry["beta-2"], before)
    with django_assert_num_queries(0):
        read(staff_api, "/api/v1/models/?provider=alpha")
    with django_assert_num_queries(3):  # the count, the page, its regions; the token stays known
        read(staff_api, "/api/v1/models/?provider=beta")


def test_a_change_to_a_model_drops_every_kept_page(registry, staff_api):
    assert read(staff_api, "/api/v1/models/?provider=beta")["count"] == 3
    before = changes.count
    # Moving a model to another provider changes other pages than its own: a model's row stands for all.
    other_process(
        "UPDATE monitoring_aimodel SET provider_id = (SELECT id FROM monitoring_provider WHERE slug = 'beta') "
        "WHERE id = %s",
        registry["alpha-0"],
    )
    notice_for_everything(before)
    assert read(staff_api, "/api/v1/models/?provider=beta")["count"] == 4


def test_a_kept_page_turns_a_status_unknown_when_its_evidence_goes_stale_with_no_write(registry, staff_api, settled):
    going_stale = timezone.now() - stale_after(60) + timedelta(seconds=1)
    ModelStatus.objects.filter(model_id=registry["alpha-0"]).update(last_checked_at=going_stale)
    assert status_of(read(staff_api), "alpha-0")["status"] == "operational"
    assert status_of(read(staff_api), "alpha-0")["status"] == "operational"  # kept
    time.sleep(max(0.0, (going_stale + stale_after(60) - timezone.now()).total_seconds()) + 0.1)
    assert status_of(read(staff_api), "alpha-0")["status"] == "unknown"


def test_a_status_set_through_this_process_is_read_back_without_waiting_for_its_notice(registry, staff_api):
    operator = token_client(user_with_role("setter", "operator"))
    read(staff_api)
    noted = changes.local_notes
    response = operator.post(
        "/api/v1/models/alpha/alpha-2/status/", {"status": "major_outage", "reason": "read back"}, format="json"
    )
    assert response.status_code == 200, response.content
    assert changes.local_notes > noted  # counted at its commit, not when PostgreSQL's notice comes
    assert changes.model_changed_at[registry["alpha-2"]] > 0
    assert status_of(read(staff_api), "alpha-2")["status"] == "major_outage"


def test_a_page_filtered_by_status_shows_a_model_that_joins_it(registry, staff_api):
    assert read(staff_api, "/api/v1/models/?status=major_outage")["count"] == 0
    before = changes.count
    other_process("UPDATE monitoring_modelstatus SET status = 'major_outage' WHERE model_id = %s", registry["beta-1"])
    notice_for(registry["beta-1"], before)
    assert read(staff_api, "/api/v1/models/?status=major_outage")["count"] == 1


def test_pages_for_readers_who_do_not_see_everything_are_not_kept(registry, settled, django_assert_max_num_queries):
    api = token_client(user_with_role("nobody", None))
    read(api)
    with django_assert_max_num_queries(10) as queries:
        read(api)
    assert any("monitoring_aimodel" in query["sql"] for query in queries.captured_queries)


def test_a_token_deleted_by_another_process_is_refused_after_its_notice(registry, django_assert_num_queries):
    user = user_with_role("leaving", "viewer")
    api = token_client(user)
    before = changes.count
    other_process("SELECT pg_notify('aistatus_registry', '0')")
    notice_for(0, before)
    read(api)
    with django_assert_num_queries(0):
        read(api)  # the token and the page are known
    before = changes.count
    other_process("DELETE FROM authtoken_token WHERE user_id = %s", user.pk)
    notice_for_everything(before)
    assert api.get("/api/v1/models/").status_code == 401


def test_a_user_losing_their_role_no_longer_sees_private_models(registry, django_assert_num_queries):
    AIModel.objects.filter(pk=registry["alpha-0"]).update(public=False)
    user = user_with_role("demoted", "viewer")
    api = token_client(user)
    assert read(api)["count"] == 6
    before = changes.count
    other_process("DELETE FROM auth_user_groups WHERE user_id = %s", user.pk)
    notice_for_everything(before)
    assert read(api)["count"] == 5


def test_nothing_is_kept_when_turned_off(registry, staff_api, settings, django_assert_max_num_queries):
    settings.API_READ_CACHE = False
    read(staff_api)
    with django_assert_max_num_queries(10) as queries:
        read(staff_api)
    assert len(queries) >= 3  # the token, the count, the page


def test_the_served_api_reads_back_a_status_set_through_it_and_one_written_elsewhere(registry, asgi_server):
    import json
    import urllib.request

    base = asgi_server(API_READ_CACHE="1")
    api = token_client(user_with_role("served", "operator"))
    token = api._credentials["HTTP_AUTHORIZATION"]

    def call(path: str, body: dict | None = None) -> dict:
        request = urllib.request.Request(base + path, data=json.dumps(body).encode() if body else None)
        request.add_header("Authorization", token)
        request.add_header("Content-Type", "application/json")
        with urllib.request.urlopen(request, timeout=10) as response:
            return json.loads(response.read())

    for _ in range(3):  # built, then kept
        assert status_of(call("/api/v1/models/?provider=alpha"), "alpha-1")["status"] == "operational"
    call("/api/v1/models/alpha/alpha-1/status/", {"status": "major_outage", "reason": "read back"})
    assert status_of(call("/api/v1/models/?provider=alpha"), "alpha-1")["status"] == "major_outage"

    other_process("UPDATE monitoring_modelstatus SET last_latency_ms = 321.0 WHERE model_id = %s", registry["alpha-2"])
    deadline = time.monotonic() + 1.0
    while status_of(call("/api/v1/models/?provider=alpha"), "alpha-2")["last_latency_ms"] != 321.0:
        assert time.monotonic() < deadline, "a write made elsewhere was not shown within 1 s"
        time.sleep(0.02)
