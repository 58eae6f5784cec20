"""The operator workflow through the REST API: manual statuses, incidents, maintenance, providers, history, uptime."""

import json
import os
import re
from datetime import timedelta
from pathlib import Path

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from collectors.sweep import sweep
from monitoring.models import (
    AIModel,
    Incident,
    IncidentUpdate,
    Maintenance,
    ModelStatus,
    Provider,
    RegionStatus,
    StatusChange,
)
from monitoring.status import Status
from monitoring.transitions import record_status
from tests.conftest import user_with_role

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def snapshot_read_each_request(renew_snapshot, monkeypatch):
    from publishing import snapshot_store

    monkeypatch.setattr(snapshot_store, "POLL_INTERVAL", 0)


@pytest.fixture
def viewer_api(django_user_model):
    from rest_framework.authtoken.models import Token

    bob = django_user_model.objects.create_user("bob", password="pw-bob-12345")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=bob).key}")
    return client


def iso(moment) -> str:
    return moment.isoformat().replace("+00:00", "Z")


# Manual status


def test_an_operator_sets_a_status_and_it_is_a_manual_change_in_the_event_log(model, staff_api):
    response = staff_api.post(
        "/api/v1/models/openai/gpt-4o/status/", {"status": "major_outage", "reason": "Upstream 503s"}, format="json"
    )
    assert response.status_code == 200, response.json()
    assert response.json()["status"] == "major_outage" and response.json()["manual"] is True
    change = StatusChange.objects.get(pk=response.json()["change"])
    assert (change.to_status, change.manual, change.source, change.reason) == (
        "major_outage",
        True,
        StatusChange.Source.OPERATOR,
        "Upstream 503s",
    )


def test_auto_hands_the_model_back_to_the_collectors(model, staff_api):
    staff_api.post(f"/api/v1/models/{model.pk}/status/", {"status": "partial_outage"}, format="json")
    response = staff_api.post(f"/api/v1/models/{model.pk}/status/", {"status": "auto"}, format="json")
    assert response.status_code == 200
    row = ModelStatus.objects.get(model=model)
    assert (row.status, row.manual) == (Status.UNKNOWN, False)


def test_an_unknown_status_is_refused_listing_the_allowed_values(model, staff_api):
    response = staff_api.post("/api/v1/models/openai/gpt-4o/status/", {"status": "broken"}, format="json")
    assert response.status_code == 400
    message = response.json()["status"][0]
    assert all(value in message for value in [*Status.values, "auto"])
    assert not StatusChange.objects.exists()


def test_only_operators_set_statuses(model, anon_api, viewer_api):
    assert anon_api.post("/api/v1/models/openai/gpt-4o/status/", {"status": "major_outage"}).status_code in (401, 403)
    assert viewer_api.post("/api/v1/models/openai/gpt-4o/status/", {"status": "major_outage"}).status_code == 403
    assert anon_api.get("/api/v1/models/openai/gpt-4o/status/").json()["status"] == "unknown"


# History and uptime


def test_history_is_newest_first_and_paged_by_cursor(model, anon_api):
    for status in (Status.OPERATIONAL, Status.MAJOR_OUTAGE, Status.OPERATIONAL):
        record_status(model.pk, status, checked=True)
    first = anon_api.get("/api/v1/models/openai/gpt-4o/history/?page_size=2").json()
    assert [c["to"] for c in first["results"]] == ["operational", "major_outage"]
    assert "cursor=" in first["next"]
    rest = anon_api.get(first["next"]).json()
    assert [c["to"] for c in rest["results"]] == ["operational"] and rest["next"] is None
    assert first["results"][0]["seq"] > first["results"][1]["seq"] > rest["results"][0]["seq"]


def test_a_private_model_s_history_is_hidden_from_anonymous_readers(model, anon_api, staff_api):
    AIModel.objects.filter(pk=model.pk).update(public=False)
    assert anon_api.get("/api/v1/models/openai/gpt-4o/history/").status_code == 404
    assert staff_api.get("/api/v1/models/openai/gpt-4o/history/").status_code == 200


def test_uptime_gives_one_entry_a_day_and_refuses_a_bad_range(model, anon_api):
    record_status(model.pk, Status.OPERATIONAL, checked=True, at=timezone.now() - timedelta(hours=2))
    body = anon_api.get("/api/v1/models/openai/gpt-4o/uptime/?days=90").json()
    assert body["days"] == 90 and len(body["daily"]) == 90
    assert body["uptime"] == 100.0 and body["daily"][-1]["uptime"] == 100.0
    for bad in ("0", "401", "ninety"):
        response = anon_api.get(f"/api/v1/models/openai/gpt-4o/uptime/?days={bad}")
        assert response.status_code == 400 and "days" in response.json()


# Incidents


def open_incident(api, headers=None, **overrides):
    body = {
        "name": "Elevated errors",
        "status": "investigating",
        "impact": "major",
        "models": ["openai/gpt-4o"],
        "body": "Looking into it.",
        **overrides,
    }
    return api.post("/api/v1/incidents/", body, format="json", **(headers or {}))


def test_an_incident_goes_through_its_lifecycle_and_shows_in_the_statuspage_json(model, staff_api, anon_api):
    created = open_incident(staff_api)
    assert created.status_code == 201, created.json()
    incident_id = created.json()["id"]
    assert created.json()["models"] == ["openai/gpt-4o"] and created.json()["impact"] == "major"
    for state, text in [("identified", "A bad deploy."), ("monitoring", "Rolled back."), ("resolved", "All good.")]:
        response = staff_api.post(
            f"/api/v1/incidents/{incident_id}/updates/", {"status": state, "body": text}, format="json"
        )
        assert response.status_code == 201, response.json()
        assert response.json()["status"] == state
    incident = Incident.objects.get(pk=incident_id)
    assert incident.state == "resolved" and incident.resolved_at is not None

    published = anon_api.get("/api/v2/incidents.json").json()["incidents"]
    shown = next(i for i in published if i["name"] == "Elevated errors")
    # Statuspage lists updates newest first.
    assert [u["status"] for u in shown["incident_updates"]] == ["resolved", "monitoring", "identified", "investigating"]
    assert shown["status"] == "resolved"


def test_a_resolved_incident_cannot_be_updated(model, staff_api):
    incident_id = open_incident(staff_api, status="resolved").json()["id"]
    update = staff_api.post(f"/api/v1/incidents/{incident_id}/updates/", {"status": "monitoring", "body": "x"})
    assert update.status_code == 409
    assert staff_api.patch(f"/api/v1/incidents/{incident_id}/", {"impact": "minor"}, format="json").status_code == 409
    assert IncidentUpdate.objects.filter(incident_id=incident_id).count() == 1


def test_impact_and_affected_models_are_editable_and_errors_name_the_field(model, staff_api):
    Provider.objects.create(name="Anthropic", slug="anthropic")
    claude = AIModel.objects.create(provider=Provider.objects.get(slug="anthropic"), name="Claude", slug="claude")
    incident_id = open_incident(staff_api).json()["id"]
    response = staff_api.patch(
        f"/api/v1/incidents/{incident_id}/", {"impact": "critical", "models": ["anthropic/claude"]}, format="json"
    )
    assert response.status_code == 200
    assert response.json()["impact"] == "critical" and response.json()["models"] == ["anthropic/claude"]
    assert list(Incident.objects.get(pk=incident_id).models_affected.all()) == [claude]

    assert "models" in open_incident(staff_api, models=["openai/nope"]).json()
    assert "impact" in open_incident(staff_api, impact="huge").json()
    assert "name" in open_incident(staff_api, name="").json()
    bad_update = staff_api.post(f"/api/v1/incidents/{incident_id}/updates/", {"status": "done", "body": ""})
    assert bad_update.status_code == 400 and {"status", "body"} <= set(bad_update.json())


def test_an_automatic_incident_is_edited_like_a_manual_one_and_shown_as_written(model, staff_api):
    incident = Incident.objects.create(
        title="OpenAI is unavailable",
        title_translations={"en": "OpenAI is unavailable", "ko": "OpenAI 사용 불가", "ja": "OpenAI 利用不可"},
        automatic=True,
    )
    incident.add_update("investigating", "Automatic text.")
    response = staff_api.patch(f"/api/v1/incidents/{incident.pk}/", {"name": "GPT-4o errors"}, format="json")
    assert response.status_code == 200 and response.json()["automatic"] is True
    incident.refresh_from_db()
    assert incident.titles() == {"ko": "GPT-4o errors", "en": "GPT-4o errors", "ja": "GPT-4o errors"}


def test_a_retried_post_with_the_same_idempotency_key_creates_one_incident(model, staff_api):
    first = open_incident(staff_api, headers={"HTTP_IDEMPOTENCY_KEY": "deploy-42"})
    second = open_incident(staff_api, headers={"HTTP_IDEMPOTENCY_KEY": "deploy-42"})
    assert first.status_code == second.status_code == 201
    assert first.json() == second.json() and second["Idempotent-Replayed"] == "true"
    assert Incident.objects.count() == 1
    other = open_incident(staff_api, name="Something else", headers={"HTTP_IDEMPOTENCY_KEY": "deploy-42"})
    assert other.status_code == 422 and "Idempotency-Key" in other.json()
    assert open_incident(staff_api, headers={"HTTP_IDEMPOTENCY_KEY": "deploy-43"}).json()["id"] != first.json()["id"]


def test_an_idempotency_key_is_forgotten_after_a_day(model, staff_api):
    from monitoring.models import IdempotentRequest

    first = open_incident(staff_api, headers={"HTTP_IDEMPOTENCY_KEY": "nightly"}).json()["id"]
    IdempotentRequest.objects.update(created_at=timezone.now() - timedelta(hours=25))
    again = open_incident(staff_api, headers={"HTTP_IDEMPOTENCY_KEY": "nightly"})
    assert again.status_code == 201 and again.json()["id"] != first
    assert IdempotentRequest.objects.count() == 1


def test_incidents_are_for_operators_only(model, anon_api, viewer_api):
    assert anon_api.get("/api/v1/incidents/").status_code in (401, 403)
    assert open_incident(viewer_api).status_code == 403


# Maintenance


def window(api, starts, ends, **extra):
    body = {"name": "Upgrade", "models": ["openai/gpt-4o"], "starts_at": iso(starts), "ends_at": iso(ends), **extra}
    return api.post("/api/v1/maintenances/", body, format="json")


def test_an_active_window_puts_the_model_under_maintenance_and_cancelling_ends_it(model, staff_api):
    now = timezone.now()
    record_status(model.pk, Status.OPERATIONAL, checked=True)
    created = window(staff_api, now - timedelta(minutes=5), now + timedelta(hours=1))
    assert created.status_code == 201, created.json()
    assert created.json()["active"] is True and created.json()["models"] == ["openai/gpt-4o"]
    sweep()
    assert ModelStatus.objects.get(model=model).status == Status.UNDER_MAINTENANCE

    assert staff_api.delete(f"/api/v1/maintenances/{created.json()['id']}/").status_code == 204
    assert not Maintenance.objects.exists()
    sweep()
    assert ModelStatus.objects.get(model=model).status != Status.UNDER_MAINTENANCE


def test_a_window_that_ends_before_it_starts_is_refused(model, staff_api):
    now = timezone.now()
    response = window(staff_api, now + timedelta(hours=2), now + timedelta(hours=1))
    assert response.status_code == 400 and "ends_at" in response.json()
    assert "models" in window(staff_api, now, now + timedelta(hours=1), models=[]).json()
    assert "models" in window(staff_api, now, now + timedelta(hours=1), models=["x/y"]).json()


def test_overlapping_windows_are_allowed_and_each_is_shown(model, staff_api, anon_api):
    now = timezone.now()
    first = window(staff_api, now + timedelta(hours=1), now + timedelta(hours=3), name="First")
    second = window(staff_api, now + timedelta(hours=2), now + timedelta(hours=4), name="Second")
    assert first.status_code == second.status_code == 201
    shown = anon_api.get("/api/v2/scheduled-maintenances.json").json()["scheduled_maintenances"]
    assert {"First", "Second"} <= {m["name"] for m in shown}


def test_a_recurring_window_is_scheduled_changed_and_validated(model, staff_api):
    now = timezone.now()
    body = {"recurrence": "0 3 * * sun", "duration_minutes": 30, "time_zone": "Asia/Seoul"}
    created = window(staff_api, now, now + timedelta(days=60), **body)
    assert created.status_code == 201, created.json()
    assert created.json()["next_window"] is not None
    changed = staff_api.patch(f"/api/v1/maintenances/{created.json()['id']}/", {"duration_minutes": 45}, format="json")
    assert changed.status_code == 200 and changed.json()["duration_minutes"] == 45
    assert "recurrence" in window(staff_api, now, now + timedelta(days=1), recurrence="every sunday").json()
    assert "duration_minutes" in window(staff_api, now, now + timedelta(days=1), recurrence="0 3 * * *").json()
    assert "time_zone" in window(staff_api, now, now + timedelta(days=1), time_zone="Mars/Olympus").json()


# Providers


def test_providers_are_created_changed_and_deleted_but_never_with_models(model, staff_api, anon_api):
    created = staff_api.post("/api/v1/providers/", {"name": "Mistral", "slug": "mistral"}, format="json")
    assert created.status_code == 201
    assert staff_api.patch("/api/v1/providers/mistral/", {"name": "Mistral AI"}, format="json").status_code == 200
    assert "slug" in staff_api.post("/api/v1/providers/", {"name": "Again", "slug": "mistral"}, format="json").json()
    refused = staff_api.delete("/api/v1/providers/openai/")
    assert refused.status_code == 409
    assert refused.json()["models"] == ["openai/gpt-4o"] and "delete or move" in refused.json()["detail"]
    assert Provider.objects.filter(slug="openai").exists()
    assert staff_api.delete("/api/v1/providers/mistral/").status_code == 204
    assert anon_api.delete("/api/v1/providers/openai/").status_code in (401, 403)
    assert [p["slug"] for p in anon_api.get("/api/v1/providers/").json()["results"]] == ["openai"]


# Anonymous reads from the snapshot


def test_anonymous_model_reads_are_the_registry_api_s_documents_rendered_from_the_snapshot(provider, anon_api):
    from django.test import RequestFactory

    from monitoring.api.views import model_detail, model_list

    other = Provider.objects.create(name="Anthropic", slug="anthropic")
    gpt = AIModel.objects.create(provider=provider, name="GPT-4o", slug="gpt-4o", description="Flagship")
    AIModel.objects.create(provider=other, name="Claude", slug="claude", kind="embedding")
    AIModel.objects.create(provider=other, name="Hidden", slug="hidden", public=False)
    record_status(gpt.pk, Status.DEGRADED_PERFORMANCE, checked=True, latency_ms=1234.5, reason="slow")
    now = timezone.now()
    RegionStatus.objects.create(model=gpt, region="us", status=Status.DEGRADED_PERFORMANCE, last_checked_at=now)
    RegionStatus.objects.create(
        model=gpt, region="eu", status=Status.OPERATIONAL, last_checked_at=now - timedelta(days=1)
    )
    factory = RequestFactory()
    for query in ("", "?provider=anthropic", "?kind=embedding", "?status=degraded_performance", "?page=1"):
        served = anon_api.get(f"/api/v1/models/{query}")
        assert served["X-Snapshot-Version"], query
        from_database = model_list(factory.get(f"/api/v1/models/{query}"))
        assert served.json() == json.loads(from_database.render().content), query
    detail = anon_api.get("/api/v1/models/openai/gpt-4o/")
    assert detail["X-Snapshot-Version"]
    from_database = model_detail(factory.get("/"), provider="openai", model="gpt-4o").render()
    assert detail.json() == json.loads(from_database.content)
    assert [(r["region"], r["status"]) for r in detail.json()["regions"]] == [
        ("eu", "unknown"),
        ("us", Status.DEGRADED_PERFORMANCE),
    ]
    assert anon_api.get("/api/v1/models/anthropic/hidden/").status_code == 404
    assert anon_api.get("/api/v1/models/?kind=nonsense").status_code == 400
    assert anon_api.get("/api/v1/models/?page=9").status_code == 404


def test_the_snapshot_served_list_honours_its_etag(model, anon_api):
    first = anon_api.get("/api/v1/models/")
    assert anon_api.get("/api/v1/models/", HTTP_IF_NONE_MATCH=first["ETag"]).status_code == 304
    assert anon_api.get("/api/v1/models/?kind=chat")["ETag"] != first["ETag"]


# Through the real server (uvicorn, the edges, committed data)


@pytest.fixture
def served(transactional_db, tmp_path, django_user_model):
    from rest_framework.authtoken.models import Token

    from demo.registry import seed_demo
    from tests.servers import serve

    seed_demo()
    AIModel.objects.filter(slug="gpt-4o-mini").update(public=False)
    staff = user_with_role("ops", "admin")
    token = Token.objects.create(user=staff).key
    with serve(tmp_path / "uvicorn.log") as base:
        yield base, token


def call(method: str, url: str, body: dict | None = None, **headers: str) -> tuple[int, dict, bytes]:
    import urllib.error
    import urllib.request

    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(
        url, data=data, method=method, headers={"Content-Type": "application/json", **headers}
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, {k.lower(): v for k, v in response.headers.items()}, response.read()
    except urllib.error.HTTPError as error:
        return error.code, {k.lower(): v for k, v in error.headers.items()}, error.read()


@pytest.mark.django_db(transaction=True)
def test_a_status_set_through_the_api_shows_on_the_page_within_a_second(served):
    import time

    base, token = served
    call("GET", f"{base}/en/")
    started = time.monotonic()
    status, _, body = call(
        "POST",
        f"{base}/api/v1/models/openai/gpt-4o/status/",
        {"status": "major_outage", "reason": "Upstream 503s"},
        Authorization=f"Token {token}",
    )
    assert status == 200, body
    while b'data-model="openai/gpt-4o" data-status="major_outage"' not in call("GET", f"{base}/en/")[2]:
        assert time.monotonic() - started < 5, "the page never moved"
        time.sleep(0.02)
    assert time.monotonic() - started < 1.0


@pytest.mark.django_db(transaction=True)
def test_the_edge_shares_anonymous_model_reads_and_never_a_signed_in_one(served):
    base, token = served
    status, headers, body = call("GET", f"{base}/api/v1/models/")
    assert status == 200 and headers["x-snapshot-version"]
    assert "openai/gpt-4o-mini" not in {m["public_slug"] for m in json.loads(body)["results"]}
    assert call("GET", f"{base}/api/v1/models/", **{"If-None-Match": headers["etag"]})[0] == 304
    status, headers, body = call("GET", f"{base}/api/v1/models/", Authorization=f"Token {token}")
    assert status == 200 and "x-snapshot-version" not in headers
    assert "openai/gpt-4o-mini" in {m["public_slug"] for m in json.loads(body)["results"]}


@pytest.mark.django_db(transaction=True)
def test_concurrent_retries_with_one_idempotency_key_create_one_incident(served):
    from concurrent.futures import ThreadPoolExecutor

    base, token = served
    body = {"name": "Deploy 7", "status": "investigating", "impact": "minor", "models": ["openai/gpt-4o"], "body": "x"}
    headers = {"Authorization": f"Token {token}", "Idempotency-Key": "deploy-7"}
    with ThreadPoolExecutor(4) as pool:
        answers = list(pool.map(lambda _: call("POST", f"{base}/api/v1/incidents/", body, **headers), range(4)))
    assert {status for status, _, _ in answers} == {201}
    assert len({json.loads(content)["id"] for _, _, content in answers}) == 1
    assert Incident.objects.filter(title="Deploy 7").count() == 1


# The schema and its browsable documentation


def test_the_schema_covers_the_read_side_and_the_docs_are_served_from_here(client):
    schema = client.get("/api/schema/", HTTP_ACCEPT="application/json").json()
    for path in [
        "/api/v1/models/{provider}/{model}/status/",
        "/api/v1/incidents/{id}/updates/",
        "/api/v1/maintenances/",
        "/api/v1/providers/{slug}/",
        "/api/v2/summary.json",
        "/api/v1/snapshot/",
        "/api/v1/events/",
        "/badge/{provider}/{model}.svg",
    ]:
        assert path in schema["paths"], path
    docs = client.get("/api/docs/")
    assert docs.status_code == 200
    assets = [src for src in re.findall(r'(?:src|href)="([^"]+)"', docs.content.decode()) if "swagger" in src]
    assert assets and all(src.startswith("/static/") for src in assets), assets
    assert all(client.get(src).status_code == 200 for src in assets)


def readme_block(language: str, after: str) -> str:
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    start = readme.index(f"```{language}\n", readme.index(after)) + len(language) + 4
    return readme[start : readme.index("```", start)]


@pytest.mark.django_db(transaction=True)
def test_the_readme_s_deploy_pipeline_runs_as_written_with_curl_and_with_httpx(served):
    import subprocess

    base, token = served
    script = readme_block("sh", "A deploy pipeline").replace("http://127.0.0.1:8000", base)
    env = {"PATH": os.environ["PATH"], "STATUS_TOKEN": token, "CI_PIPELINE_ID": "77"}
    result = subprocess.run(["bash", "-e", "-c", script], env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    by_curl = Incident.objects.get(title="Deploying the chat gateway")
    assert [u.state for u in by_curl.updates.order_by("at", "id")] == ["identified", "monitoring", "resolved"]
    by_curl.delete()

    program = readme_block("python", "with Python and `httpx`").replace("http://127.0.0.1:8000", base)
    exec(compile(program.replace('token="..."', f'token="{token}"'), "README.md", "exec"), {})
    by_httpx = Incident.objects.get(title="Deploying the chat gateway")
    assert [u.state for u in by_httpx.updates.order_by("at", "id")] == ["investigating", "monitoring", "resolved"]
    assert by_httpx.state == "resolved"


def test_the_schema_is_generated_without_a_warning(tmp_path):
    from django.core.management import call_command

    # --fail-on-warn turns any drf-spectacular warning (enum or operationId collisions, unknown
    # authenticators, unresolvable fields) into an error.
    call_command("spectacular", "--fail-on-warn", "--file", str(tmp_path / "schema.yaml"))
    assert "/api/v1/incidents/{id}/updates/" in (tmp_path / "schema.yaml").read_text()
