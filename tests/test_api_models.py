"""The registry's REST API: public reads, staff writes validated like the admin, statuses never invented."""

import json
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.utils import timezone

from monitoring.models import AIModel, ModelStatus, Provider, RegionStatus
from monitoring.status import Status
from monitoring.transitions import record_status

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def snapshot_read_each_request(renew_snapshot, monkeypatch):
    """Anonymous reads come from the snapshot: let it look at the database on every request here."""
    from publishing import snapshot_store

    monkeypatch.setattr(snapshot_store, "POLL_INTERVAL", 0)


@pytest.fixture
def registry(provider):
    other = Provider.objects.create(name="Anthropic", slug="anthropic")
    AIModel.objects.create(provider=provider, name="GPT-4o", slug="gpt-4o", endpoint="http://127.0.0.1:8900/v1")
    AIModel.objects.create(provider=provider, name="Embed", slug="embed", kind="embedding", endpoint="http://x.test/v1")
    AIModel.objects.create(provider=other, name="Claude", slug="claude", endpoint="http://x.test/v1")
    AIModel.objects.create(provider=other, name="Internal", slug="internal", public=False, endpoint="http://x.test/v1")


def test_the_list_count_equals_the_number_of_public_models(registry, anon_api):
    body = anon_api.get("/api/v1/models/").json()
    assert body["count"] == AIModel.objects.filter(public=True).count() == 3
    assert {m["public_slug"] for m in body["results"]} == {"openai/gpt-4o", "openai/embed", "anthropic/claude"}


def test_staff_see_private_models_too(registry, staff_api):
    assert staff_api.get("/api/v1/models/").json()["count"] == 4


def test_every_listed_model_carries_its_status_and_new_ones_are_unknown(registry, anon_api):
    for item in anon_api.get("/api/v1/models/").json()["results"]:
        assert item["status"]["status"] == "unknown"


def test_the_list_filters_by_provider_kind_and_status(registry, anon_api):
    claude = AIModel.objects.get(slug="claude")
    record_status(claude.pk, Status.MAJOR_OUTAGE, checked=True, reason="HTTP 503")
    assert anon_api.get("/api/v1/models/?provider=anthropic").json()["count"] == 1
    assert anon_api.get("/api/v1/models/?kind=embedding").json()["count"] == 1
    only = anon_api.get("/api/v1/models/?status=major_outage").json()
    assert [m["public_slug"] for m in only["results"]] == ["anthropic/claude"]


def test_the_list_is_paginated(provider, anon_api):
    AIModel.objects.bulk_create([AIModel(provider=provider, name=f"m{i}", slug=f"m{i}") for i in range(130)])
    first = anon_api.get("/api/v1/models/").json()
    assert first["count"] == 130 and len(first["results"]) == 100 and first["next"]
    assert len(anon_api.get(first["next"]).json()["results"]) == 30


def test_a_model_is_reached_by_provider_and_slug_or_by_id(registry, anon_api):
    model = AIModel.objects.get(slug="gpt-4o")
    by_slug = anon_api.get("/api/v1/models/openai/gpt-4o/")
    assert by_slug.status_code == 200
    assert by_slug.json()["id"] == model.pk
    assert anon_api.get(f"/api/v1/models/{model.pk}/").json()["public_slug"] == "openai/gpt-4o"


def test_private_and_missing_models_are_404_for_anonymous_readers(registry, anon_api):
    assert anon_api.get("/api/v1/models/anthropic/internal/").status_code == 404
    assert anon_api.get("/api/v1/models/openai/nope/").status_code == 404


def test_secrets_and_probe_wiring_are_hidden_from_anonymous_readers(registry, anon_api, staff_api):
    public = anon_api.get("/api/v1/models/openai/gpt-4o/").json()
    assert "endpoint" not in public and "credential" not in public and "probe_config" not in public
    assert staff_api.get("/api/v1/models/openai/gpt-4o/").json()["endpoint"] == "http://127.0.0.1:8900/v1"


def test_a_stale_operational_status_is_served_as_unknown(model, anon_api, staff_api, renew_snapshot):
    long_ago = timezone.now() - timezone.timedelta(seconds=model.interval_seconds * 4)
    record_status(model.pk, Status.OPERATIONAL, checked=True, at=long_ago)
    assert ModelStatus.objects.get(model=model).status == Status.OPERATIONAL
    assert anon_api.get("/api/v1/models/openai/gpt-4o/").json()["status"]["status"] == "unknown"

    record_status(model.pk, Status.OPERATIONAL, checked=True)
    assert staff_api.get("/api/v1/models/openai/gpt-4o/").json()["status"]["status"] == "operational"
    # Fresh evidence without a transition moves the snapshot when it is next rebuilt (the sweep
    # would have written operational -> unknown -> operational, which moves it at once).
    renew_snapshot()
    assert anon_api.get("/api/v1/models/openai/gpt-4o/").json()["status"]["status"] == "operational"


def test_staff_create_a_model_through_the_api_and_it_gets_an_unknown_status(provider, staff_api):
    response = staff_api.post(
        "/api/v1/models/",
        {"provider": "openai", "name": "o3", "slug": "o3", "endpoint": "https://api.openai.com/v1"},
        format="json",
    )
    assert response.status_code == 201, response.json()
    assert response.json()["status"]["status"] == "unknown"
    assert ModelStatus.objects.get(model__slug="o3").status == Status.UNKNOWN


def test_anonymous_writes_are_refused(provider, anon_api):
    response = anon_api.post("/api/v1/models/", {"provider": "openai", "name": "x", "slug": "x"}, format="json")
    assert response.status_code in (401, 403)
    assert not AIModel.objects.filter(slug="x").exists()


def test_non_staff_tokens_cannot_write(provider, django_user_model):
    from rest_framework.authtoken.models import Token
    from rest_framework.test import APIClient

    bob = django_user_model.objects.create_user("bob", password="pw-bob-12345")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=bob).key}")
    response = client.post("/api/v1/models/", {"provider": "openai", "name": "x", "slug": "x"}, format="json")
    assert response.status_code == 403


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"endpoint": "not a url"}, "endpoint"),
        ({"interval_seconds": 5}, "interval_seconds"),
        ({"interval_seconds": 30, "timeout_seconds": 60}, "timeout_seconds"),
        ({"probe_kind": "tcp", "endpoint": "no-port-here"}, "endpoint"),
    ],
)
def test_a_bad_probe_config_is_refused_naming_the_field(provider, staff_api, payload, field):
    body = {"provider": "openai", "name": "x", "slug": "x", "endpoint": "https://api.example.com/v1", **payload}
    response = staff_api.post("/api/v1/models/", body, format="json")
    assert response.status_code == 400
    assert field in response.json()
    assert not AIModel.objects.filter(slug="x").exists()


def test_staff_update_and_disable_a_model(model, staff_api):
    response = staff_api.patch("/api/v1/models/openai/gpt-4o/", {"interval_seconds": 120}, format="json")
    assert response.status_code == 200 and response.json()["interval_seconds"] == 120
    bad = staff_api.patch("/api/v1/models/openai/gpt-4o/", {"timeout_seconds": 500}, format="json")
    assert bad.status_code == 400 and "timeout_seconds" in bad.json()

    assert staff_api.post("/api/v1/models/openai/gpt-4o/disable/").json()["enabled"] is False
    model.refresh_from_db()
    assert model.enabled is False
    assert staff_api.post(f"/api/v1/models/{model.pk}/enable/").json()["enabled"] is True


def test_the_openapi_schema_describes_the_models_endpoint(client):
    response = client.get("/api/schema/", HTTP_ACCEPT="application/json")
    assert response.status_code == 200
    schema = response.json()
    assert "/api/v1/models/" in schema["paths"]
    assert "/api/v1/models/{provider}/{model}/" in schema["paths"]


def test_drf_create_token_gives_a_working_token(provider, staff, capsys):
    from rest_framework.test import APIClient

    call_command("drf_create_token", "alice")
    key = capsys.readouterr().out.split()[2]
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    response = client.post(
        "/api/v1/models/",
        {"provider": "openai", "name": "t", "slug": "t", "endpoint": "https://a.test/v1"},
        format="json",
    )
    assert response.status_code == 201


@pytest.mark.django_db(transaction=True)
def test_the_served_api_answers_every_request_of_a_burst_on_a_bounded_number_of_database_connections(
    registry, asgi_server
):
    from collections import Counter
    from concurrent.futures import ThreadPoolExecutor
    from urllib.error import HTTPError
    from urllib.request import urlopen

    from django.db import connection

    url = asgi_server() + "/api/v1/models/"

    def get(_: int) -> int:
        try:
            with urlopen(url, timeout=60) as response:
                return response.status
        except HTTPError as error:
            return error.code

    def server_connections() -> int:
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
            return cursor.fetchone()[0]

    with ThreadPoolExecutor(48) as pool:
        statuses = Counter(pool.map(get, range(400)))
    assert statuses == {200: 400}
    assert server_connections() <= 12


def test_the_listing_writes_the_same_documents_as_the_serializer(registry, staff_api, anon_api):
    from django.test import RequestFactory
    from rest_framework.renderers import JSONRenderer

    from monitoring.api.serializers import AIModelSerializer

    claude = AIModel.objects.get(slug="claude")
    record_status(claude.pk, Status.DEGRADED_PERFORMANCE, checked=True, latency_ms=812.25)
    # Regions: one current, one stale (shown unknown), named so that only a sort puts them in order.
    now = timezone.now()
    RegionStatus.objects.create(model=claude, region="us", status=Status.OPERATIONAL, last_checked_at=now)
    stale = now - timedelta(seconds=10 * claude.interval_seconds)
    RegionStatus.objects.create(model=claude, region="eu", status=Status.MAJOR_OUTAGE, last_checked_at=stale)
    models = list(AIModel.objects.select_related("provider", "status_row", "credential"))
    for user_is_staff in (True, False):
        request = RequestFactory().get("/")
        permissions = {"is_authenticated": True, "is_active": True, "has_perm": lambda self, perm, g=user_is_staff: g}
        request.user = type("U", (), permissions)()
        full = AIModelSerializer(models, many=True, context={"request": request}).data
        rows = AIModel.objects.filter(pk__in=[m.pk for m in models]).values(*AIModelSerializer.LISTING_VALUES)
        by_id = {row["id"]: row for row in rows}
        listed = AIModelSerializer.listing([by_id[m.pk] for m in models], staff=user_is_staff)
        assert json.loads(JSONRenderer().render(listed)) == json.loads(JSONRenderer().render(full))
        shown = next(item for item in listed if item["id"] == claude.pk)["regions"]
        assert [(r["region"], r["status"]) for r in shown] == [("eu", "unknown"), ("us", "operational")]
    staff_list = staff_api.get("/api/v1/models/").json()["results"]
    assert {m["public_slug"] for m in staff_list} >= {"anthropic/internal"} and "endpoint" in staff_list[0]
