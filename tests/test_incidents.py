"""Incidents: opened by an outage, one per provider at a time, monitored on recovery, resolved once it holds."""

from datetime import timedelta

import pytest
from django.core.management import call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import dateformat, timezone
from standardwebhooks.webhooks import Webhook

from alerts import delivery, planner
from alerts.incidents import update_incidents
from alerts.models import Channel, EventCursor, Notification
from monitoring.models import AIModel, Incident, IncidentUpdate, Provider
from monitoring.status import Status
from monitoring.transitions import StatusUpdate, record_status, record_statuses
from tests.receiver import Receiver

pytestmark = [pytest.mark.django_db, pytest.mark.filterwarnings("ignore::DeprecationWarning:apprise.*")]

DOWN, PARTIAL, OK = Status.MAJOR_OUTAGE, Status.PARTIAL_OUTAGE, Status.OPERATIONAL


@pytest.fixture(autouse=True)
def incidents_running(db, settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    settings.INCIDENT_RESOLVE_AFTER_SECONDS = 300
    settings.WEBHOOK_ALLOWED_HOSTS = ["127.0.0.1"]
    settings.LANGUAGE_CODE = "en"
    for name in ("alerts", "incidents"):
        EventCursor.objects.get_or_create(name=name, defaults={"last_id": 0})


@pytest.fixture
def t0():
    return timezone.now().replace(microsecond=0) - timedelta(hours=2)


@pytest.fixture
def mini(provider):
    return AIModel.objects.create(
        provider=provider, name="GPT-4o mini", slug="gpt-4o-mini", endpoint="http://x.test/v1"
    )


def states(incident: Incident) -> list[str]:
    return list(incident.updates.order_by("at", "id").values_list("state", flat=True))


def test_an_incident_opens_by_itself_and_resolves_once_recovery_holds(model, t0):
    call_command("set_status", model.public_slug, "major_outage", reason="HTTP 503", stdout=open("/dev/null", "w"))
    update_incidents()

    incident = Incident.objects.get()
    assert incident.automatic and incident.state == Incident.State.INVESTIGATING
    assert (incident.title, incident.impact, incident.provider) == (
        "OpenAI GPT-4o is unavailable",
        "critical",
        model.provider,
    )
    assert list(incident.models_affected.all()) == [model]
    assert "HTTP 503" in incident.updates.get().body

    recovered = timezone.now()
    call_command("set_status", model.public_slug, "operational", reason="fine", stdout=open("/dev/null", "w"))
    update_incidents(recovered + timedelta(seconds=1))
    incident.refresh_from_db()
    assert incident.state == Incident.State.MONITORING and incident.resolved_at is None

    update_incidents(recovered + timedelta(seconds=200))  # not held long enough yet
    assert Incident.objects.get().state == Incident.State.MONITORING
    update_incidents(recovered + timedelta(seconds=301))
    incident.refresh_from_db()
    assert incident.state == Incident.State.RESOLVED and incident.resolved_at is not None
    assert states(incident) == ["investigating", "monitoring", "resolved"]
    assert "operational for 5 min" in incident.updates.get(state="resolved").body


def test_an_automatic_incident_is_written_in_every_page_language_until_an_operator_edits_it(model, t0):
    record_status(model.pk, DOWN, reason="HTTP 503", at=t0)
    update_incidents(t0 + timedelta(seconds=5))
    incident = Incident.objects.get()
    update = incident.updates.get()
    assert incident.title == incident.title_in("en") == "OpenAI GPT-4o is unavailable"
    assert (incident.title_in("ko"), incident.title_in("ja")) == (
        "OpenAI GPT-4o 사용 불가",
        "OpenAI GPT-4o が利用できません",
    )
    assert "원인을 조사하고 있습니다" in update.body_in("ko") and "HTTP 503" in update.body_in("ko")
    assert "調査しています" in update.body_in("ja")

    incident.title = "Errors in one region"
    update.body = "Failover in progress."
    assert incident.title_in("ko") == "Errors in one region" and update.body_in("ja") == "Failover in progress."


def test_simultaneous_failures_of_one_provider_share_one_incident(model, mini, t0):
    claude = AIModel.objects.create(
        provider=Provider.objects.create(name="Anthropic", slug="anthropic"), name="Claude", slug="claude",
        endpoint="http://x.test/v1",
    )  # fmt: skip
    record_status(model.pk, PARTIAL, reason="one region", at=t0)
    record_status(mini.pk, DOWN, reason="all regions", at=t0 + timedelta(seconds=20))
    record_status(claude.pk, DOWN, reason="overloaded", at=t0 + timedelta(seconds=30))
    update_incidents(t0 + timedelta(minutes=1))

    openai = Incident.objects.get(provider__slug="openai")
    assert sorted(m.slug for m in openai.models_affected.all()) == ["gpt-4o", "gpt-4o-mini"]
    assert openai.impact == Incident.Impact.CRITICAL  # the worse of partial and major
    assert openai.title == "OpenAI: 2 models unavailable"
    assert "also affected" in openai.updates.order_by("at").last().body
    assert Incident.objects.get(provider__slug="anthropic").models_affected.get() == claude

    # Resolved only when every affected model has recovered and held.
    record_status(model.pk, OK, at=t0 + timedelta(minutes=5))
    update_incidents(t0 + timedelta(minutes=30))
    assert Incident.objects.get(pk=openai.pk).state == Incident.State.INVESTIGATING
    record_status(mini.pk, OK, at=t0 + timedelta(minutes=31))
    update_incidents(t0 + timedelta(minutes=32))
    assert Incident.objects.get(pk=openai.pk).state == Incident.State.MONITORING
    update_incidents(t0 + timedelta(minutes=37))
    assert Incident.objects.get(pk=openai.pk).state == Incident.State.RESOLVED


def test_a_relapse_while_monitoring_reopens_the_investigation(model, t0):
    record_status(model.pk, DOWN, at=t0)
    record_status(model.pk, OK, at=t0 + timedelta(minutes=5))
    record_status(model.pk, DOWN, at=t0 + timedelta(minutes=6))
    update_incidents(t0 + timedelta(minutes=7))

    incident = Incident.objects.get()
    assert states(incident) == ["investigating", "monitoring", "investigating"]
    assert incident.state == Incident.State.INVESTIGATING
    assert "is flapping: down 2 times in 6 min" in incident.updates.order_by("at", "id").last().body


def test_after_an_incident_is_resolved_a_new_outage_opens_a_new_one(model, t0):
    record_status(model.pk, DOWN, at=t0)
    record_status(model.pk, OK, at=t0 + timedelta(minutes=1))
    update_incidents(t0 + timedelta(minutes=10))
    record_status(model.pk, DOWN, at=t0 + timedelta(minutes=20))
    update_incidents(t0 + timedelta(minutes=21))
    assert list(Incident.objects.order_by("started_at").values_list("state", flat=True)) == [
        "resolved",
        "investigating",
    ]


def test_incidents_opened_by_hand_are_left_to_the_operator(model, t0):
    manual = Incident.objects.create(title="Billing API errors", provider=model.provider, started_at=t0)
    manual.models_affected.add(model)
    manual.add_update(Incident.State.IDENTIFIED, "A bad deploy.", at=t0)
    record_status(model.pk, DOWN, at=t0 + timedelta(minutes=1))
    record_status(model.pk, OK, at=t0 + timedelta(minutes=2))
    update_incidents(t0 + timedelta(hours=1))
    assert Incident.objects.get(pk=manual.pk).state == Incident.State.IDENTIFIED


def test_updates_posted_in_the_admin_move_the_incident_through_its_lifecycle(admin_client, model):
    response = admin_client.post(
        "/admin/monitoring/incident/add/",
        {
            "title": "Elevated errors",
            "impact": "major",
            "provider": model.provider.pk,
            "models_affected": [model.pk],
            "started_at_0": "2026-01-05",
            "started_at_1": "10:00:00",
            "updates-TOTAL_FORMS": "1",
            "updates-INITIAL_FORMS": "0",
            "updates-MIN_NUM_FORMS": "0",
            "updates-MAX_NUM_FORMS": "1000",
            "updates-0-state": "identified",
            "updates-0-body": "A faulty release; rolling back.",
            "updates-0-at_0": "2026-01-05",
            "updates-0-at_1": "10:05:00",
        },
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    incident = Incident.objects.get()
    assert (incident.state, incident.automatic) == ("identified", False)

    incident.add_update(Incident.State.RESOLVED, "Rolled back.")
    incident.refresh_from_db()
    assert incident.state == "resolved" and incident.resolved_at is not None
    incident.add_update(Incident.State.MONITORING, "Errors again; watching.")
    incident.refresh_from_db()
    assert incident.state == "monitoring" and incident.resolved_at is None
    assert admin_client.get("/admin/monitoring/incident/").status_code == 200
    assert admin_client.get(f"/admin/monitoring/incident/{incident.pk}/change/").status_code == 200


def test_an_incident_created_in_the_admin_without_an_update_starts_investigating(admin_client, model):
    admin_client.post(
        "/admin/monitoring/incident/add/",
        {
            "title": "Slow answers",
            "impact": "minor",
            "started_at_0": "2026-01-05",
            "started_at_1": "10:00:00",
            "updates-TOTAL_FORMS": "0",
            "updates-INITIAL_FORMS": "0",
            "updates-MIN_NUM_FORMS": "0",
            "updates-MAX_NUM_FORMS": "1000",
        },
    )
    incident = Incident.objects.get()
    assert incident.state == "investigating" and incident.updates.get().body == "Slow answers"


def test_incident_updates_go_to_subscribed_webhooks_once_each(model, t0):
    with Receiver() as receiver:
        subscribed = Channel.objects.create(
            name="incidents", kind="webhook", url=receiver.url(), events=["incidents"], language="ja"
        )
        Channel.objects.create(name="alerts only", kind="email", url="mailto:ops@example.com")
        record_status(model.pk, DOWN, reason="HTTP 503", at=t0)
        update_incidents(t0 + timedelta(seconds=5))
        planner.plan(t0 + timedelta(seconds=6))
        planner.plan(t0 + timedelta(seconds=7))
        delivery.deliver_due(t0 + timedelta(seconds=7))

    assert Notification.objects.filter(kind="incident").count() == 1
    [request] = receiver.requests
    event = Webhook(subscribed.secret).verify(request.body, request.headers)
    assert event["type"] == "incident.updated"
    incident = event["data"]["incident"]
    assert incident["state"] == "investigating" and incident["models"] == ["openai/gpt-4o"]
    assert incident["update"]["body"].startswith("OpenAI GPT-4o has been in major outage")
    assert incident["update"]["bodies"]["ja"].startswith("OpenAI GPT-4o は")
    # The channel's language, the incident's own words included.
    assert event["data"]["message"]["title"] == "調査中: OpenAI GPT-4o が利用できません"
    assert "調査しています" in event["data"]["message"]["summary"]
    assert IncidentUpdate.objects.get().notified_at is not None


def test_the_whole_story_an_outage_alerts_opens_an_incident_recovers_and_resolves(model):
    with Receiver() as receiver:
        hook = Channel.objects.create(name="ops", kind="webhook", url=receiver.url(), events=["outage", "recovery"])
        call_command("set_status", model.public_slug, "major_outage", reason="HTTP 529", stdout=open("/dev/null", "w"))
        now = timezone.now()
        for seconds in (1, 2):
            planner.plan(now + timedelta(seconds=seconds))
            update_incidents(now + timedelta(seconds=seconds))
            delivery.deliver_due(now + timedelta(seconds=seconds))
        call_command("set_status", model.public_slug, "operational", reason="fine", stdout=open("/dev/null", "w"))
        later = timezone.now()
        for seconds in (1, 400):
            planner.plan(later + timedelta(seconds=seconds))
            update_incidents(later + timedelta(seconds=seconds))
            delivery.deliver_due(later + timedelta(seconds=seconds))

    kinds = [Webhook(hook.secret).verify(r.body, r.headers)["type"] for r in receiver.requests]
    assert kinds == ["model.alert", "model.recovery"]
    assert Incident.objects.get().state == Incident.State.RESOLVED


def test_a_flapping_model_keeps_one_short_story_its_flips_folded_into_one_update(model, t0):
    # The demo's flapping model: 60 s down, 60 s up, for ten minutes.
    for minute in range(0, 10, 2):
        record_status(model.pk, DOWN, reason="failing: HTTP 503: overloaded.", at=t0 + timedelta(minutes=minute))
        record_status(model.pk, OK, at=t0 + timedelta(minutes=minute + 1))
        update_incidents(t0 + timedelta(minutes=minute + 1, seconds=30))
    record_status(model.pk, DOWN, reason="failing: HTTP 503: overloaded.", at=t0 + timedelta(minutes=10))
    update_incidents(t0 + timedelta(minutes=10, seconds=5))

    incident = Incident.objects.get()
    assert states(incident) == ["investigating", "monitoring", "investigating"]
    latest = incident.updates.order_by("at", "id").last()
    assert latest.body == (
        "OpenAI GPT-4o is flapping: down 6 times in 10 min, now in major outage since "
        f"{dateformat.format(latest.at, 'N j, Y, P')} UTC. Latest check: HTTP 503: overloaded. We are investigating."
    )
    assert "6번" in latest.body_in("ko") and "6 回" in latest.body_in("ja")

    # Up again: the same update says so, and the incident is monitored.
    record_status(model.pk, OK, at=t0 + timedelta(minutes=11))
    update_incidents(t0 + timedelta(minutes=11, seconds=5))
    incident.refresh_from_db()
    assert incident.updates.count() == 3 and incident.state == Incident.State.MONITORING
    assert "down 6 times in 11 min, operational again since" in incident.updates.order_by("at", "id").last().body


def test_a_flip_just_after_resolution_reopens_the_incident_instead_of_opening_another(model, t0, settings):
    settings.INCIDENT_RESOLVE_AFTER_SECONDS = 60
    record_status(model.pk, DOWN, at=t0)
    record_status(model.pk, OK, at=t0 + timedelta(minutes=1))
    update_incidents(t0 + timedelta(minutes=2, seconds=30))
    assert Incident.objects.get().state == Incident.State.RESOLVED
    record_status(model.pk, DOWN, at=t0 + timedelta(minutes=3))
    update_incidents(t0 + timedelta(minutes=3, seconds=5))
    incident = Incident.objects.get()
    assert incident.state == Incident.State.INVESTIGATING and incident.resolved_at is None
    assert "is flapping: down 2 times" in incident.updates.order_by("at", "id").last().body


@pytest.mark.parametrize("change", [{"public": False}, {"enabled": False}, {"public": False, "enabled": False}])
def test_hiding_or_disabling_the_only_affected_model_resolves_its_automatic_incident(model, t0, change):
    record_status(model.pk, DOWN, at=t0)
    update_incidents(t0 + timedelta(seconds=5))
    for field, value in change.items():
        setattr(model, field, value)
    model.save()
    update_incidents(t0 + timedelta(seconds=10))
    incident = Incident.objects.get()
    assert incident.state == Incident.State.RESOLVED
    assert incident.updates.order_by("at", "id").last().body == (
        "Resolved: the affected models are no longer monitored here."
    )


def test_an_incident_with_another_watched_model_stays_open_when_one_is_hidden(model, mini, t0):
    record_status(model.pk, DOWN, at=t0)
    record_status(mini.pk, DOWN, at=t0)
    update_incidents(t0 + timedelta(seconds=5))
    AIModel.objects.filter(pk=model.pk).update(public=False)  # a bulk update sends no signal
    update_incidents(t0 + timedelta(seconds=10))
    assert Incident.objects.get().state == Incident.State.INVESTIGATING


def test_incident_texts_are_sentences_with_the_status_in_lower_case_and_no_english_verdict(model, t0):
    record_status(model.pk, DOWN, reason="failing: HTTP 503: simulated outage.", at=t0)
    update_incidents(t0 + timedelta(seconds=5))
    update = Incident.objects.get().updates.get()
    assert update.body.startswith("OpenAI GPT-4o has been in major outage since ")
    assert update.body.endswith(" UTC. Latest check: HTTP 503: simulated outage. We are investigating.")
    for language in ("ko", "ja"):
        assert "failing" not in update.body_in(language) and ".)." not in update.body_in(language)


def provider_models(name: str, count: int) -> list[AIModel]:
    provider = Provider.objects.create(name=name, slug=name.lower())
    return [
        AIModel.objects.create(provider=provider, name=f"M{i:02}", slug=f"m{i:02}", endpoint="http://x.test/v1")
        for i in range(1, count + 1)
    ]


def test_a_whole_provider_going_down_in_one_run_is_told_in_one_opening_and_one_folded_update(t0):
    models = provider_models("Acme", 13)
    record_statuses(
        [StatusUpdate(m.pk, DOWN, reason="HTTP 503", at=t0 + timedelta(seconds=i)) for i, m in enumerate(models)]
    )
    update_incidents(t0 + timedelta(seconds=20))

    incident = Incident.objects.get()
    assert incident.models_affected.count() == 13 and incident.title == "Acme: 13 models unavailable"
    opening, joined = incident.updates.order_by("at", "id")
    assert opening.body.startswith("Acme M01 has been in major outage since ")
    since = dateformat.format(t0 + timedelta(seconds=1), "N j, Y, P")
    named = ", ".join(f"Acme M{i:02}" for i in range(2, 12))
    assert joined.body == f"12 more models are also affected since {since} UTC: {named} and 2 more."
    assert joined.at == t0 + timedelta(seconds=1) and joined.state == Incident.State.INVESTIGATING
    assert "모델 12개가 추가로 영향을 받고 있습니다" in joined.body_in("ko") and "Acme M11 외 2개." in joined.body_in(
        "ko"
    )
    assert "さらに 12 個のモデルが影響を受けています" in joined.body_in("ja")
    assert "Acme M11 ほか 2 個。" in joined.body_in("ja")


def test_models_joining_in_separate_runs_are_told_in_separate_updates(t0):
    first, second, third, fourth = provider_models("Acme", 4)
    record_status(first.pk, DOWN, at=t0)
    update_incidents(t0 + timedelta(seconds=1))
    record_status(second.pk, DOWN, at=t0 + timedelta(seconds=2))
    record_status(third.pk, PARTIAL, at=t0 + timedelta(seconds=3))
    update_incidents(t0 + timedelta(seconds=4))
    folded = Incident.objects.get().updates.order_by("at", "id").last()
    assert folded.body.startswith("2 more models are also affected since ") and folded.body.endswith(
        ": Acme M02, Acme M03."
    )

    # The next run writes its own update: the one above may have been handed out already.
    record_status(fourth.pk, DOWN, reason="failing: HTTP 500: boom.", at=t0 + timedelta(seconds=5))
    update_incidents(t0 + timedelta(seconds=6))
    incident = Incident.objects.get()
    assert incident.updates.count() == 3 and incident.title == "Acme: 4 models unavailable"
    assert IncidentUpdate.objects.get(pk=folded.pk).body == folded.body
    assert incident.updates.order_by("at", "id").last().body == (
        f"Acme M04 is also affected: in major outage since {dateformat.format(t0 + timedelta(seconds=5), 'N j, Y, P')}"
        " UTC. Latest check: HTTP 500: boom."
    )


def recovery_queries(name: str, count: int, t0) -> int:
    """The queries of the run that sees every model of an incident of `count` models recover."""
    models = provider_models(name, count)
    record_statuses([StatusUpdate(m.pk, DOWN, at=t0) for m in models])
    update_incidents(t0 + timedelta(seconds=5))
    record_statuses([StatusUpdate(m.pk, OK, at=t0 + timedelta(minutes=1, seconds=i)) for i, m in enumerate(models)])
    with CaptureQueriesContext(connection) as queries:
        update_incidents(t0 + timedelta(minutes=2))
    incident = Incident.objects.get(provider__name=name)
    assert incident.state == Incident.State.MONITORING
    last = incident.updates.order_by("at", "id").last()
    assert last.at == t0 + timedelta(minutes=1, seconds=count - 1) and "operational again" in last.body
    incident.delete()  # the next measure starts from the same state: no incident being monitored
    return len(queries)


def test_the_queries_to_see_a_whole_provider_recover_do_not_grow_with_its_models(t0):
    assert recovery_queries("Small", 5, t0) == recovery_queries("Large", 50, t0)


def test_a_run_judges_each_recovery_in_its_own_time(model, mini, t0):
    record_status(model.pk, DOWN, at=t0)
    record_status(mini.pk, DOWN, at=t0 + timedelta(seconds=1))
    update_incidents(t0 + timedelta(seconds=5))
    # One late run: both recover, then the first goes down again.
    record_status(model.pk, OK, at=t0 + timedelta(minutes=1))
    record_status(mini.pk, OK, at=t0 + timedelta(minutes=2))
    record_status(model.pk, DOWN, at=t0 + timedelta(minutes=3))
    update_incidents(t0 + timedelta(minutes=4))

    incident = Incident.objects.get()
    assert states(incident) == ["investigating", "investigating", "monitoring", "investigating"]
    monitoring = incident.updates.get(state="monitoring")
    assert monitoring.at == t0 + timedelta(minutes=2)
    assert "is flapping: down 2 times in 3 min" in incident.updates.order_by("at", "id").last().body
