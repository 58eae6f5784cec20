"""Which transitions become notifications: filters, events, minimum duration, maintenance, reminders, flapping."""

from datetime import timedelta

import pytest
from django.utils import timezone

from alerts import planner
from alerts.models import Channel, EventCursor, Notification
from monitoring.models import AIModel, Maintenance, ModelKind, Provider
from monitoring.status import Status
from monitoring.transitions import record_status

pytestmark = pytest.mark.django_db

DOWN, PARTIAL, OK, DEGRADED = (
    Status.MAJOR_OUTAGE,
    Status.PARTIAL_OUTAGE,
    Status.OPERATIONAL,
    Status.DEGRADED_PERFORMANCE,
)


@pytest.fixture(autouse=True)
def alerts_running(db, settings):
    settings.ALERT_FLAP_CHANGES = 5
    settings.ALERT_FLAP_MINUTES = 10
    EventCursor.objects.get_or_create(name="alerts", defaults={"last_id": 0})


@pytest.fixture
def t0():
    return timezone.now().replace(microsecond=0) - timedelta(hours=3)


def channel(**fields) -> Channel:
    defaults = {"name": "ops", "kind": Channel.Kind.EMAIL, "url": "mailto:ops@example.com"}
    return Channel.objects.create(**{**defaults, **fields})


def told(ch: Channel) -> list[tuple]:
    """What a channel was handed, in order: (kind, from, to) or (kind, status)."""
    out = []
    for n in Notification.objects.filter(channel=ch).order_by("id"):
        p = n.payload
        out.append((n.kind, p.get("from_status"), p.get("to_status") or p.get("status")))
    return out


def flip(model, *steps) -> None:
    """Record (status, at) transitions in order."""
    for status, at in steps:
        record_status(model.pk, status, reason=f"to {status}", at=at)


def test_an_outage_and_its_recovery_are_announced_at_once_by_default(model, t0):
    ch = channel()
    flip(model, (DOWN, t0), (OK, t0 + timedelta(minutes=3)))
    planner.plan(t0 + timedelta(minutes=4))
    assert told(ch) == [("alert", "unknown", DOWN), ("recovery", DOWN, OK)]
    recovery = Notification.objects.get(channel=ch, kind="recovery").payload
    assert recovery["duration_seconds"] == 180 and recovery["down_since"] == t0.isoformat()


def test_degraded_performance_is_announced_only_to_channels_that_ask(model, t0):
    default, picky = channel(), channel(name="picky", events=["outage", "degraded", "recovery"])
    flip(model, (OK, t0), (DEGRADED, t0 + timedelta(minutes=1)), (OK, t0 + timedelta(minutes=2)))
    planner.plan(t0 + timedelta(minutes=3))
    assert told(default) == []
    assert told(picky) == [("alert", OK, DEGRADED), ("recovery", DEGRADED, OK)]


def test_a_worse_outage_is_announced_but_a_pause_in_evidence_is_not(model, t0):
    ch = channel()
    flip(
        model,
        (PARTIAL, t0),
        (DOWN, t0 + timedelta(minutes=1)),  # worse: said
        (Status.UNKNOWN, t0 + timedelta(minutes=2)),  # no evidence: nothing to say
        (DOWN, t0 + timedelta(minutes=3)),  # what they already know
        (OK, t0 + timedelta(minutes=20)),
    )
    planner.plan(t0 + timedelta(minutes=21))
    assert told(ch) == [("alert", "unknown", PARTIAL), ("alert", PARTIAL, DOWN), ("recovery", DOWN, OK)]
    assert Notification.objects.get(channel=ch, kind="recovery").payload["duration_seconds"] == 20 * 60


def test_an_outage_that_eases_to_degraded_ends_the_outage_alert(model, t0):
    ch = channel()
    flip(model, (DOWN, t0), (DEGRADED, t0 + timedelta(minutes=5)), (OK, t0 + timedelta(minutes=9)))
    planner.plan(t0 + timedelta(minutes=10))
    assert told(ch) == [("alert", "unknown", DOWN), ("recovery", DOWN, DEGRADED)]


def test_a_channel_without_recoveries_is_not_told_but_alerts_again_next_time(model, t0):
    ch = channel(events=["outage"])
    flip(model, (DOWN, t0), (OK, t0 + timedelta(minutes=1)), (DOWN, t0 + timedelta(minutes=30)))
    planner.plan(t0 + timedelta(minutes=31))
    assert told(ch) == [("alert", "unknown", DOWN), ("alert", OK, DOWN)]


def test_rules_cover_listed_providers_models_and_kinds(model, provider, t0):
    other = Provider.objects.create(name="Anthropic", slug="anthropic")
    claude = AIModel.objects.create(provider=other, name="Claude", slug="claude", endpoint="http://127.0.0.1:1/v1")
    embed = AIModel.objects.create(
        provider=provider, name="Embed", slug="embed", kind=ModelKind.EMBEDDING, endpoint="http://127.0.0.1:1/v1"
    )
    everything = channel(name="all")
    by_provider = channel(name="openai")
    by_provider.providers.add(provider)
    by_kind = channel(name="embeddings", model_kinds=[ModelKind.EMBEDDING])
    listed = channel(name="claude only")
    listed.ai_models.add(claude)
    openai_chat_and_claude = channel(name="mixed", model_kinds=[ModelKind.CHAT])
    openai_chat_and_claude.providers.add(provider)
    openai_chat_and_claude.ai_models.add(claude)

    for m in (model, claude, embed):
        flip(m, (DOWN, t0))
    planner.plan(t0 + timedelta(minutes=1))

    def covered(ch):
        return sorted(n.model.slug for n in Notification.objects.filter(channel=ch))

    assert covered(everything) == ["claude", "embed", "gpt-4o"]
    assert covered(by_provider) == ["embed", "gpt-4o"]
    assert covered(by_kind) == ["embed"]
    assert covered(listed) == ["claude"]
    assert covered(openai_chat_and_claude) == ["claude", "gpt-4o"]


def test_a_minimum_duration_drops_a_short_outage_and_announces_one_that_lasts(model, t0):
    ch = channel(min_duration_seconds=300)
    flip(model, (DOWN, t0), (OK, t0 + timedelta(minutes=2)))
    planner.plan(t0 + timedelta(minutes=10))
    assert told(ch) == []  # two minutes: never announced, so no recovery either

    flip(model, (DOWN, t0 + timedelta(minutes=20)))
    planner.plan(t0 + timedelta(minutes=24))
    assert told(ch) == []  # four minutes so far
    planner.plan(t0 + timedelta(minutes=25))
    assert told(ch) == [("alert", OK, DOWN)]
    assert Notification.objects.get(channel=ch).payload["at"] == (t0 + timedelta(minutes=20)).isoformat()

    flip(model, (OK, t0 + timedelta(minutes=40)))
    planner.plan(t0 + timedelta(minutes=41))
    assert told(ch) == [("alert", OK, DOWN), ("recovery", DOWN, OK)]


def test_an_outage_that_outlasts_the_minimum_is_announced_even_when_the_planner_sees_it_late(model, t0):
    ch = channel(min_duration_seconds=300)
    flip(model, (DOWN, t0), (OK, t0 + timedelta(minutes=8)))
    planner.plan(t0 + timedelta(minutes=9))  # both changes in one run
    assert told(ch) == [("alert", "unknown", DOWN), ("recovery", DOWN, OK)]


def test_alerts_are_held_during_maintenance_for_channels_that_ask(model, t0):
    quiet, loud = channel(name="quiet"), channel(name="loud", silence_during_maintenance=False)
    Maintenance.objects.create(title="Upgrade", model=model, starts_at=t0, ends_at=t0 + timedelta(hours=1))
    flip(model, (DOWN, t0 + timedelta(minutes=5)))
    planner.plan(t0 + timedelta(minutes=6))
    assert told(quiet) == [] and told(loud) == [("alert", "unknown", DOWN)]

    # After the window, a model still down is announced.
    flip(model, (Status.UNDER_MAINTENANCE, t0 + timedelta(minutes=10)), (DOWN, t0 + timedelta(hours=1, minutes=1)))
    planner.plan(t0 + timedelta(hours=1, minutes=2))
    assert told(quiet) == [("alert", Status.UNDER_MAINTENANCE, DOWN)]


def test_reminders_repeat_while_a_model_stays_down_and_stop_when_it_recovers(model, t0):
    ch = channel(remind_every_minutes=30)
    flip(model, (DOWN, t0))
    planner.plan(t0 + timedelta(minutes=1))
    planner.plan(t0 + timedelta(minutes=20))
    assert [k for k, *_ in told(ch)] == ["alert"]
    planner.plan(t0 + timedelta(minutes=32))
    planner.plan(t0 + timedelta(minutes=33))  # not twice
    planner.plan(t0 + timedelta(minutes=63))
    assert [k for k, *_ in told(ch)] == ["alert", "reminder", "reminder"]
    reminder = Notification.objects.filter(channel=ch, kind="reminder").order_by("id").first().payload
    assert reminder["status"] == DOWN and reminder["duration_seconds"] == 32 * 60

    flip(model, (OK, t0 + timedelta(minutes=70)))
    planner.plan(t0 + timedelta(minutes=71))
    planner.plan(t0 + timedelta(minutes=200))
    assert [k for k, *_ in told(ch)] == ["alert", "reminder", "reminder", "recovery"]


def test_a_flapping_model_yields_one_flapping_notice_then_one_message_when_it_settles(model, t0):
    ch = channel()
    steps = [(DOWN if i % 2 == 0 else OK, t0 + timedelta(seconds=30 * i)) for i in range(12)]
    flip(model, *steps)
    planner.plan(t0 + timedelta(minutes=7))
    kinds = [k for k, *_ in told(ch)]
    # Four flips pass before the pattern is clear; then one notice instead of the other eight.
    assert kinds == ["alert", "recovery", "alert", "recovery", "flapping"]
    notice = Notification.objects.get(channel=ch, kind="flapping").payload
    assert notice["flap"] == {"changes": 5, "minutes": 10}

    planner.plan(t0 + timedelta(minutes=12))  # still within ten quiet minutes
    assert len(told(ch)) == 5
    planner.plan(t0 + timedelta(minutes=16))  # the last flip (to OK) was at 5.5 min
    assert told(ch)[-1] == ("settled", "major_outage", OK)
    assert len(told(ch)) == 6


def test_pauses_in_evidence_around_an_outage_are_not_flapping(model, t0):
    # Collectors stopped for a while around one outage: the model went down once and came back once.
    ch = channel()
    minute = timedelta(minutes=1)
    unknown = Status.UNKNOWN
    flip(model, (OK, t0), (unknown, t0 + minute), (OK, t0 + 2 * minute))
    flip(model, (DOWN, t0 + 3 * minute), (unknown, t0 + 4 * minute), (OK, t0 + 5 * minute))
    planner.plan(t0 + 6 * minute)
    assert told(ch) == [("alert", OK, DOWN), ("recovery", DOWN, OK)]


def test_a_model_that_settles_down_after_flapping_is_announced_as_down(model, t0):
    ch = channel()
    steps = [(DOWN if i % 2 == 0 else OK, t0 + timedelta(seconds=30 * i)) for i in range(7)]
    flip(model, *steps)  # ends down
    planner.plan(t0 + timedelta(minutes=4))
    planner.plan(t0 + timedelta(minutes=14))
    # The receiver was last told it recovered; it settled down: that is an alert.
    assert told(ch)[-2:] == [("flapping", OK, DOWN), ("alert", OK, DOWN)]
    assert Notification.objects.filter(channel=ch, kind="alert").count() == 3


def test_a_disabled_channel_is_handed_nothing(model, t0):
    ch = channel(enabled=False)
    flip(model, (DOWN, t0))
    planner.plan(t0 + timedelta(minutes=1))
    assert told(ch) == []


def test_a_planner_that_starts_on_an_existing_history_does_not_replay_it(model, t0):
    EventCursor.objects.all().delete()
    ch = channel()
    flip(model, (DOWN, t0), (OK, t0 + timedelta(minutes=1)))  # hours ago
    flip(model, (DOWN, timezone.now()))
    planner.plan()
    assert told(ch) == [("alert", OK, DOWN)]
