"""Remote agents on the site's side: tokens, assignment, exactly-once result batches, clocks and regions."""

import io
import time
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.test import override_settings
from django.utils import timezone
from rest_framework.test import APIClient

from collectors.evaluate import evaluate
from collectors.models import Agent, CheckResult, CredentialShare
from monitoring.models import AIModel, Credential, ModelStatus, RegionStatus
from monitoring.status import Status

# Committed data: the results endpoint stores batches on worker threads, with connections of their own.
pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def evaluate_in_the_request(settings):
    # Derive in the request, so a test reads the status right after its batch. The deferred (coalesced)
    # path is proven against the real server by tests/test_agent_processes.py.
    settings.AGENT_EVALUATION_DELAY_S = 0


def create_agent(name: str, region: str) -> str:
    out = io.StringIO()
    call_command("create_agent", name, "--region", region, stdout=out)
    return out.getvalue().strip().splitlines()[-1]


def agent_client(token: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    return client


def batch(*results, agent_time=None, sent=None, **health):
    items = []
    for seq, model_id, outcome, *rest in results:
        at = rest[0] if rest else time.time()
        items.append({"seq": seq, "model": model_id, "time": at, "outcome": outcome, "latency_ms": 120.0})
    health = {"version": "1.0.0", "results_per_s": 3.5, "spool_depth": 0, "sent": sent or len(items), **health}
    return {"agent_time": agent_time or time.time(), "health": health, "results": items}


def push(client, body):
    return client.post("/api/v1/agents/results/", body, format="json")


@pytest.fixture
def eu(model):
    return agent_client(create_agent("eu-1", "eu"))


def test_create_agent_prints_a_token_on_its_last_line_that_the_site_accepts(model):
    token = create_agent("us-1", "us")
    assert token.startswith("agt_")
    response = agent_client(token).get("/api/v1/agents/assignment/")
    assert response.status_code == 200
    assert response.json()["region"] == "us"


def test_the_assignment_carries_what_to_probe_and_answers_304_when_unchanged(model, provider, eu):
    AIModel.objects.create(provider=provider, name="Off", slug="off", endpoint="http://x/v1", enabled=False)
    first = eu.get("/api/v1/agents/assignment/")
    models = first.json()["models"]
    assert [m["name"] for m in models] == ["openai/gpt-4o"]
    entry = models[0]
    assert entry["probe_kind"] == "openai_chat" and entry["interval_seconds"] == model.interval_seconds
    assert entry["thresholds"]["failures_to_confirm"] == 2 and entry["credential"] is None
    assert first["X-Agent-Last-Seq"] == "0"
    again = eu.get("/api/v1/agents/assignment/", HTTP_IF_NONE_MATCH=first["ETag"])
    assert again.status_code == 304
    model.interval_seconds = 20
    model.save()
    changed = eu.get("/api/v1/agents/assignment/", HTTP_IF_NONE_MATCH=first["ETag"])
    assert changed.status_code == 200 and changed.json()["models"][0]["interval_seconds"] == 20


def test_credentials_are_sent_only_when_shared_with_the_region_and_only_over_https(model):
    model.credential = Credential.objects.create(name="openai", api_key="sk-secret-1234", api_key_env="OPENAI_KEY")
    model.save()
    eu_token, us_token = create_agent("eu-1", "eu"), create_agent("us-1", "us")

    def credential(token, secure):
        response = agent_client(token).get("/api/v1/agents/assignment/", secure=secure)
        return response.json()["models"][0]["credential"]

    assert credential(eu_token, secure=True) == {"env": "OPENAI_KEY"}  # not shared: the agent's env holds it
    CredentialShare.objects.create(credential=model.credential, regions="eu, ap")
    assert credential(eu_token, secure=True) == {"env": "OPENAI_KEY", "api_key": "sk-secret-1234"}
    assert credential(eu_token, secure=False) == {"env": "OPENAI_KEY"}
    assert credential(us_token, secure=True) == {"env": "OPENAI_KEY"}


def test_a_batch_is_stored_under_the_agents_region_and_derives_the_status(model, eu):
    response = push(eu, batch((1, model.pk, "provider_fault"), (2, model.pk, "provider_fault")))
    assert response.status_code == 200, response.content
    assert response.json()["stored"] == 2
    assert set(CheckResult.objects.values_list("region", flat=True)) == {"eu"}
    assert ModelStatus.objects.get(model=model).status == Status.MAJOR_OUTAGE
    assert RegionStatus.objects.get(model=model, region="eu").status == Status.MAJOR_OUTAGE


def test_a_batch_sent_twice_or_overlapping_is_stored_once(model, eu):
    first = batch((1, model.pk, "ok"), (2, model.pk, "ok"), sent=2)
    assert push(eu, first).json()["stored"] == 2
    assert push(eu, first).json()["duplicates"] == 2
    overlapping = batch((2, model.pk, "ok"), (3, model.pk, "ok"), (4, model.pk, "ok"), sent=4)
    receipt = push(eu, overlapping).json()
    assert (receipt["stored"], receipt["duplicates"], receipt["last_seq"]) == (2, 1, 4)
    agent = Agent.objects.get()
    assert CheckResult.objects.count() == agent.stored == agent.sent == 4


def test_the_agents_list_shows_health_and_counts_to_staff_only(model, eu, staff_api, anon_api):
    push(eu, batch((1, model.pk, "ok"), spool_depth=7, last_error="site unavailable: refused"))
    assert anon_api.get("/api/v1/agents/").status_code in (401, 403)
    [row] = staff_api.get("/api/v1/agents/").json()
    assert (row["name"], row["region"], row["sent"], row["stored"]) == ("eu-1", "eu", 1, 1)
    assert row["last_seen"] is not None and row["version"] == "1.0.0" and row["spool_depth"] == 7
    assert row["results_per_s"] == 3.5 and row["last_error"] == "site unavailable: refused"


def test_a_wrong_or_revoked_token_gets_401(model, eu):
    assert push(agent_client("agt_wrong"), batch((1, model.pk, "ok"))).status_code == 401
    Agent.objects.update(active=False)
    assert push(eu, batch((1, model.pk, "ok"))).status_code == 401
    assert eu.get("/api/v1/agents/assignment/").status_code == 401
    assert CheckResult.objects.count() == 0


def test_a_malformed_batch_gets_400_naming_the_bad_items(model, eu):
    body = batch((1, model.pk, "ok"), (2, model.pk, "exploded"), (3, model.pk, "ok"))
    body["results"][2]["latency_ms"] = -5
    body["results"][0]["seq"] = "one"
    response = push(eu, body)
    assert response.status_code == 400
    errors = response.json()["errors"]
    assert set(errors) == {"results[0].seq", "results[1].outcome", "results[2].latency_ms"}
    assert push(eu, {"results": [], "agent_time": 1}).json()["errors"]["results"] == "must be a non-empty list"
    not_json = eu.post("/api/v1/agents/results/", "{oops", content_type="application/json")
    assert not_json.status_code == 400 and "not JSON" in not_json.json()["errors"]["batch"]
    assert push(agent_client("agt_wrong"), {"results": "nope"}).status_code == 401
    assert CheckResult.objects.count() == 0


def test_results_for_unknown_or_disabled_models_are_counted_and_dropped(model, provider, eu):
    off = AIModel.objects.create(provider=provider, name="Off", slug="off", endpoint="http://x/v1", enabled=False)
    receipt = push(eu, batch((1, model.pk, "ok"), (2, off.pk, "ok"), (3, 999_999, "ok"))).json()
    assert (receipt["stored"], receipt["dropped"]) == (1, 2)
    assert Agent.objects.get().dropped == 2 and CheckResult.objects.count() == 1


def test_results_from_too_far_in_the_future_are_rejected(model, eu):
    receipt = push(eu, batch((1, model.pk, "ok"), (2, model.pk, "ok", time.time() + 3600))).json()
    assert (receipt["stored"], receipt["rejected"]) == (1, 1)
    assert Agent.objects.get().rejected == 1


def test_a_skewed_agent_is_flagged_and_its_results_placed_by_receive_time(model, eu):
    skew = 900.0  # the agent's clock runs 15 minutes ahead
    now = time.time()
    receipt = push(eu, batch((1, model.pk, "ok", now + skew - 2), agent_time=now + skew)).json()
    assert receipt["clock_skewed"] is True and receipt["stored"] == 1
    agent = Agent.objects.get()
    assert agent.clock_skewed and abs(agent.clock_skew_s - skew) < 5
    stored_at = CheckResult.objects.get().time
    assert abs((stored_at - timezone.now()).total_seconds()) < 10
    # Back in step: the flag clears.
    push(eu, batch((2, model.pk, "ok")))
    assert not Agent.objects.get().clock_skewed


def results(model, region, outcomes, newest_at):
    rows = [
        CheckResult(model=model, region=region, outcome=o, latency_ms=100, time=newest_at - timedelta(seconds=10 * i))
        for i, o in enumerate(reversed(outcomes))
    ]
    CheckResult.objects.bulk_create(rows)


def test_a_minority_of_regions_failing_is_a_partial_outage_naming_them(model):
    now = timezone.now()
    results(model, "us", ["ok", "ok"], now)
    results(model, "ap", ["ok", "ok"], now)
    results(model, "eu", ["provider_fault", "provider_fault"], now)
    evaluate([model.pk], now)
    row = ModelStatus.objects.get(model=model)
    assert row.status == Status.PARTIAL_OUTAGE and "in eu of 3 regions" in row.message
    by_region = {r.region: r.status for r in RegionStatus.objects.filter(model=model)}
    assert by_region == {"us": "operational", "ap": "operational", "eu": "major_outage"}


def test_a_silent_region_contributes_nothing_and_every_region_silent_is_unknown(model):
    now = timezone.now()
    stale = now - timedelta(seconds=4 * model.interval_seconds)
    results(model, "eu", ["provider_fault", "provider_fault"], stale)  # eu fell silent while failing
    results(model, "us", ["ok", "ok"], now)
    results(model, "ap", ["ok", "ok"], now)
    evaluate([model.pk], now)
    assert ModelStatus.objects.get(model=model).status == Status.OPERATIONAL
    api = APIClient().get(f"/api/v1/models/{model.pk}/").json()
    assert {r["region"]: r["status"] for r in api["regions"]} == {"us": "operational", "ap": "operational"}
    later = now + timedelta(seconds=4 * model.interval_seconds)
    evaluate([model.pk], later)
    assert ModelStatus.objects.get(model=model).status == Status.UNKNOWN


@override_settings(STALE_AFTER_INTERVALS=3)
def test_the_api_shows_each_regions_status_last_check_and_latency(model):
    now = timezone.now()
    results(model, "us", ["ok"], now)
    results(model, "eu", ["ok"], now - timedelta(seconds=4 * model.interval_seconds))
    evaluate([model.pk], now - timedelta(seconds=4 * model.interval_seconds))
    evaluate([model.pk], now)
    regions = {r["region"]: r for r in APIClient().get(f"/api/v1/models/{model.pk}/").json()["regions"]}
    assert regions["us"]["status"] == "operational" and regions["us"]["last_latency_ms"] == 100
    assert regions["eu"]["status"] == "unknown"  # its last word is stale


def test_the_admin_lists_agents_with_health_flags_a_skewed_clock_and_revokes(model, eu, client, django_user_model):
    now = time.time()
    push(eu, batch((1, model.pk, "ok", now + 898), agent_time=now + 900, spool_depth=3))
    client.force_login(django_user_model.objects.create_superuser("root", "root@example.com", "pw-root-123"))
    page = client.get("/admin/collectors/agent/").content.decode()
    assert "eu-1" in page and "⚠" in page and ("+899." in page or "+900." in page)
    agent = Agent.objects.get()
    client.post("/admin/collectors/agent/", {"action": "revoke", "_selected_action": [agent.pk]})
    assert not Agent.objects.get().active
    assert push(eu, batch((2, model.pk, "ok"))).status_code == 401


def test_the_statuspage_json_stays_per_model_while_the_page_shows_regions(model, renew_snapshot):
    now = timezone.now()
    results(model, "us", ["ok", "ok"], now)
    results(model, "eu", ["provider_fault", "provider_fault"], now)
    evaluate([model.pk], now)
    renew_snapshot()
    client = APIClient()
    components = client.get("/api/v2/components.json").json()["components"]
    [component] = [c for c in components if c["name"] == model.name]
    assert component["status"] == "partial_outage"  # one of two regions down
    assert "regions" not in component and "eu" not in str(component.get("description"))
    page = client.get("/en/models/openai/gpt-4o/").content.decode()
    assert 'data-region="eu" data-status="major_outage"' in page
    assert 'data-region="us" data-status="operational"' in page
