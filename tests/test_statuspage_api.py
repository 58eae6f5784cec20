"""The Statuspage-compatible API: Statuspage's shape and enums, and a model without evidence never operational."""

from datetime import timedelta

import pytest
from django.utils import timezone

from demo.registry import seed_demo
from monitoring.models import AIModel, Incident, IncidentUpdate, Maintenance
from monitoring.status import Status
from monitoring.transitions import record_status
from publishing.snapshot_store import current_snapshot

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("renew_snapshot")]

COMPONENT_STATUSES = {"operational", "degraded_performance", "partial_outage", "major_outage", "under_maintenance"}
INDICATORS = {"none", "minor", "major", "critical", "maintenance"}
INCIDENT_STATUSES = {"investigating", "identified", "monitoring", "resolved", "postmortem"}
MAINTENANCE_STATUSES = {"scheduled", "in_progress", "verifying", "completed"}
PAGE_KEYS = {"id", "name", "url", "time_zone", "updated_at"}
COMPONENT_KEYS = {
    "id",
    "name",
    "status",
    "created_at",
    "updated_at",
    "position",
    "description",
    "showcase",
    "start_date",
    "group_id",
    "page_id",
    "group",
    "only_show_if_degraded",
}
INCIDENT_KEYS = {
    "id",
    "name",
    "status",
    "created_at",
    "updated_at",
    "monitoring_at",
    "resolved_at",
    "impact",
    "shortlink",
    "started_at",
    "page_id",
    "incident_updates",
    "components",
}
UPDATE_KEYS = {"id", "status", "body", "incident_id", "created_at", "updated_at", "display_at", "affected_components"}


@pytest.fixture
def demo(db):
    seed_demo()
    return {m.public_slug: m for m in AIModel.objects.select_related("provider")}


def test_summary_has_statuspage_s_shape_and_enums(demo, client):
    body = client.get("/api/v2/summary.json").json()
    assert set(body) == {"page", "components", "incidents", "scheduled_maintenances", "status"}
    assert PAGE_KEYS <= set(body["page"]) and body["page"]["time_zone"] == "Etc/UTC"
    assert set(body["status"]) >= {"indicator", "description"} and body["status"]["indicator"] in INDICATORS
    for component in body["components"]:
        assert COMPONENT_KEYS <= set(component), component
        assert component["status"] in COMPONENT_STATUSES
        assert isinstance(component["id"], str) and isinstance(component["position"], int)


def test_every_public_model_is_a_component_inside_its_provider_s_group(demo, client):
    components = client.get("/api/v2/components.json").json()["components"]
    groups = [c for c in components if c["group"]]
    models = [c for c in components if not c["group"]]
    assert len(models) == AIModel.objects.filter(public=True).count() == 12
    assert [g["name"] for g in groups] == ["OpenAI", "Anthropic", "Google", "Mistral AI"]
    for group in groups:
        members = [c for c in models if c["group_id"] == group["id"]]
        assert group["components"] == [c["id"] for c in members] and group["group_id"] is None


def test_a_model_without_evidence_is_never_reported_operational(demo, client):
    body = client.get("/api/v2/summary.json").json()
    for component in body["components"]:
        assert component["status"] != "operational"
        assert component["unknown"] is True
        assert component["status"] == "degraded_performance"
    unknown = next(c for c in body["components"] if c["name"] == "GPT-4o")
    assert unknown["description"].startswith("Status unknown: no recent evidence.")
    assert body["status"]["indicator"] == "minor"
    assert body["status"]["description"] == "Status unknown for 12 of 12 models"
    assert body["status"]["unknown_count"] == 12


def test_all_systems_operational_only_when_every_model_is_known_up(demo, client, renew_snapshot):
    for model in demo.values():
        record_status(model.pk, Status.OPERATIONAL, checked=True)
    renew_snapshot()
    status = client.get("/api/v2/status.json").json()["status"]
    assert status == {
        "indicator": "none",
        "description": "All Systems Operational",
        "unknown_count": 0,
        "model_count": 12,
    }
    components = client.get("/api/v2/components.json").json()["components"]
    assert {c["status"] for c in components} == {"operational"} and not any(c["unknown"] for c in components)


def test_outages_map_to_statuspage_s_indicator_and_still_count_the_unknown(demo, client, renew_snapshot):
    record_status(demo["openai/gpt-4o"].pk, Status.MAJOR_OUTAGE, checked=True, reason="HTTP 503")
    record_status(demo["google/gemini-2-5-pro"].pk, Status.OPERATIONAL, checked=True)
    record_status(demo["google/gemini-2-5-flash"].pk, Status.OPERATIONAL, checked=True)
    renew_snapshot()
    body = client.get("/api/v2/summary.json").json()
    assert body["status"]["indicator"] == "major"
    assert body["status"]["description"] == "Partial System Outage; status unknown for 9 of 12 models"
    gpt = next(c for c in body["components"] if c["name"] == "GPT-4o")
    assert gpt["status"] == "major_outage" and gpt["unknown"] is False
    openai = next(c for c in body["components"] if c["name"] == "OpenAI")
    assert openai["status"] == "major_outage"


def test_with_no_models_the_page_is_not_all_operational(db, client):
    status = client.get("/api/v2/status.json").json()["status"]
    assert status["indicator"] != "none" and status["description"] == "No models are monitored"


def test_incidents_use_statuspage_s_fields_and_lifecycle(demo, client):
    gpt = demo["openai/gpt-4o"]
    open_one = Incident.objects.create(title="Elevated 5xx", impact=Incident.Impact.MAJOR, state="identified")
    open_one.models_affected.add(gpt)
    IncidentUpdate.objects.create(incident=open_one, state="investigating", body="Looking.")
    IncidentUpdate.objects.create(incident=open_one, state="identified", body="Upstream fault.")
    done = Incident.objects.create(title="Slow", state="resolved", resolved_at=timezone.now())
    incidents = client.get("/api/v2/incidents.json").json()["incidents"]
    assert {i["name"] for i in incidents} == {"Elevated 5xx", "Slow"}
    for incident in incidents:
        assert INCIDENT_KEYS <= set(incident) and incident["status"] in INCIDENT_STATUSES
        assert incident["impact"] in {"none", "minor", "major", "critical"}
        for update in incident["incident_updates"]:
            assert UPDATE_KEYS <= set(update) and update["status"] in INCIDENT_STATUSES
    elevated = next(i for i in incidents if i["name"] == "Elevated 5xx")
    assert [u["body"] for u in elevated["incident_updates"]] == ["Upstream fault.", "Looking."]
    assert [u["id"] for u in elevated["incident_updates"]] == [f"i{open_one.pk}u2", f"i{open_one.pk}u1"]
    assert [c["name"] for c in elevated["components"]] == ["GPT-4o"]
    assert elevated["shortlink"].endswith(f"/en/incidents/#incident-{open_one.pk}")
    unresolved = client.get("/api/v2/incidents/unresolved.json").json()["incidents"]
    assert [i["id"] for i in unresolved] == [f"i{open_one.pk}"]
    assert f"i{done.pk}" not in {i["id"] for i in client.get("/api/v2/summary.json").json()["incidents"]}


def test_scheduled_maintenances_are_scheduled_or_in_progress(demo, client):
    now = timezone.now()
    gpt = demo["openai/gpt-4o"]
    Maintenance.objects.create(
        title="Now", model=gpt, starts_at=now - timedelta(minutes=5), ends_at=now + timedelta(hours=1)
    )
    Maintenance.objects.create(
        title="Later",
        provider=gpt.provider,
        starts_at=now + timedelta(days=1),
        ends_at=now + timedelta(days=1, hours=1),
    )
    windows = client.get("/api/v2/scheduled-maintenances.json").json()["scheduled_maintenances"]
    assert {w["name"]: w["status"] for w in windows} == {"Now": "in_progress", "Later": "scheduled"}
    for window in windows:
        assert INCIDENT_KEYS <= set(window) and {"scheduled_for", "scheduled_until"} <= set(window)
        assert window["impact"] == "maintenance" and window["status"] in MAINTENANCE_STATUSES
    later = next(w for w in windows if w["name"] == "Later")
    assert len(later["components"]) == 4  # every OpenAI model
    active = client.get("/api/v2/scheduled-maintenances/active.json").json()["scheduled_maintenances"]
    upcoming = client.get("/api/v2/scheduled-maintenances/upcoming.json").json()["scheduled_maintenances"]
    assert [w["name"] for w in active] == ["Now"] and [w["name"] for w in upcoming] == ["Later"]


@pytest.mark.parametrize(
    "path",
    [
        "/api/v2/summary.json",
        "/api/v2/status.json",
        "/api/v2/components.json",
        "/api/v2/incidents.json",
        "/api/v2/incidents/unresolved.json",
        "/api/v2/scheduled-maintenances.json",
    ],
)
def test_each_endpoint_is_versioned_cacheable_and_open_to_other_sites(demo, client, path):
    response = client.get(path)
    version = current_snapshot().version
    assert response.status_code == 200 and response["Content-Type"] == "application/json"
    assert response["X-Snapshot-Version"] == version and response["ETag"].startswith(f'"{version}-')
    assert response["Access-Control-Allow-Origin"] == "*" and not response.cookies
    assert client.get(path, HTTP_IF_NONE_MATCH=response["ETag"]).status_code == 304


def test_endpoints_do_not_share_an_etag(demo, client):
    etags = {client.get(p)["ETag"] for p in ["/api/v2/summary.json", "/api/v2/status.json", "/api/v2/components.json"]}
    assert len(etags) == 3


def test_each_repetition_of_a_recurring_window_is_its_own_maintenance(demo, client):
    now = timezone.now()
    Maintenance.objects.create(
        title="Nightly restart",
        model=demo["openai/gpt-4o"],
        starts_at=now - timedelta(days=1),
        ends_at=now + timedelta(days=60),
        recurrence="0 3 * * *",
        duration_minutes=30,
        time_zone="UTC",
    )
    windows = client.get("/api/v2/scheduled-maintenances.json").json()["scheduled_maintenances"]
    nightly = [w for w in windows if w["name"] == "Nightly restart"]
    assert len(nightly) >= 29
    assert len({w["id"] for w in nightly}) == len(nightly)
    assert {w["status"] for w in nightly} <= MAINTENANCE_STATUSES
