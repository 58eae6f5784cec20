"""Objectives per model: error budgets counted from the results, multiwindow burn-rate alerts, their notices."""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from django.utils import timezone

from anomalies.models import BurnAlert, Sli, SloStatus
from anomalies.slo import run_slos
from collectors.models import CheckResult
from monitoring.models import AIModel
from monitoring.outcomes import Outcome

pytestmark = pytest.mark.django_db

STEP = timedelta(seconds=10)


def write(model: AIModel, start: datetime, outcomes: list[str], ttft_ms: float = 200.0) -> datetime:
    """One result every 10 s from `start`; answered ones with this time to first token. Returns the end."""
    CheckResult.objects.bulk_create(
        CheckResult(
            model=model,
            time=start + i * STEP,
            outcome=outcome,
            latency_ms=ttft_ms * 3 if outcome == Outcome.OK else None,
            ttft_ms=ttft_ms if outcome == Outcome.OK else None,
        )
        for i, outcome in enumerate(outcomes)
    )
    return start + len(outcomes) * STEP


def run_until_counted(now: datetime) -> int:
    """Run until the stored history before the first run is counted back; returns the runs it took."""
    runs = 1
    while run_slos(now).backfilling:
        runs += 1
        assert runs < 200
    return runs


@pytest.fixture
def other(provider):
    return AIModel.objects.create(provider=provider, name="GPT-4o mini", slug="gpt-4o-mini", endpoint="http://x/v1")


def test_the_error_budget_counts_faults_against_answers_and_leaves_probe_faults_and_our_429s_out(model):
    AIModel.objects.filter(pk=model.pk).update(slo_availability_percent=Decimal("99"), slo_ttft_ms=1000)
    now = timezone.now()
    # Ten days ago (folded into hours) and in the last hour (minutes): 1,000 counted results, 5 of them faults.
    write(model, now - timedelta(days=10), [Outcome.OK] * 497 + [Outcome.PROVIDER_FAULT] * 3)
    write(model, now - timedelta(minutes=50), [Outcome.OK] * 298 + [Outcome.TIMEOUT, Outcome.BROKEN_STREAM])
    # Neither good nor bad: they say nothing about the provider.
    write(model, now - timedelta(days=3), [Outcome.PROBE_FAULT] * 40 + [Outcome.RATE_LIMITED] * 40)
    # Latency: 40 of the answered probes slower than the 1,000 ms objective.
    write(model, now - timedelta(days=2), [Outcome.OK] * 40, ttft_ms=1500.0)
    run_until_counted(now)
    status = SloStatus.objects.get(model=model)
    assert (status.answered, status.failed) == (795 + 40, 5)
    # 5 bad of 840 events against 1 % of them allowed.
    assert status.availability_budget_left == pytest.approx(1 - 5 / (0.01 * 840))
    # 40 slow of 835 answered against 5 % allowed.
    assert (status.fast, status.slow) == (795, 40)
    assert status.latency_budget_left == pytest.approx(1 - 40 / (0.05 * 835))
    assert status.availability_target == pytest.approx(0.99) and status.latency_objective_ms == 1000
    assert status.evidence_since <= now - timedelta(days=10)


def test_results_older_than_the_window_and_a_model_without_counted_results_leave_the_budget_unknown(model, other):
    now = timezone.now()
    write(model, now - timedelta(days=40), [Outcome.PROVIDER_FAULT] * 10)
    write(other, now - timedelta(hours=1), [Outcome.PROBE_FAULT] * 10)
    run_slos(now)
    for subject in (model, other):
        status = SloStatus.objects.get(model=subject)
        assert status.availability_budget_left is None and status.latency_budget_left is None
        assert status.answered == status.failed == 0 and status.evidence_since is None
    assert not BurnAlert.objects.exists()


def test_counting_again_after_new_results_adds_them_once(model):
    now = timezone.now()
    write(model, now - timedelta(hours=9), [Outcome.OK] * 100)
    run_slos(now - timedelta(minutes=5))
    write(model, now - timedelta(minutes=3), [Outcome.PROVIDER_FAULT] * 6)
    run_slos(now)
    run_slos(now + timedelta(seconds=30))
    status = SloStatus.objects.get(model=model)
    assert (status.answered, status.failed) == (100, 6)


def test_a_result_stamped_with_its_probes_start_and_arriving_after_a_long_timeout_is_still_counted(model):
    AIModel.objects.filter(pk=model.pk).update(interval_seconds=300, timeout_seconds=240)
    now = timezone.now()
    write(model, now - timedelta(minutes=30), [Outcome.OK] * 10)
    run_slos(now)
    # A probe that started 200 s before that run timed out at 240 s: its result lands after the run.
    CheckResult.objects.create(model=model, time=now - timedelta(seconds=200), outcome=Outcome.TIMEOUT)
    run_slos(now + timedelta(seconds=45))
    run_slos(now + timedelta(seconds=75))
    assert SloStatus.objects.get(model=model).failed == 1


def test_results_inside_the_models_maintenance_windows_one_off_or_recurring_count_for_neither(model, other):
    from monitoring.models import Maintenance

    now = timezone.now().replace(second=0, microsecond=0)
    # A one-off window on the model over the last 20 minutes, and a daily 30-minute one on the provider's
    # models at this time of day two days ago (read in Seoul time), each full of failures.
    Maintenance.objects.create(title="upgrade", model=model, starts_at=now - timedelta(minutes=20), ends_at=now)
    seoul = (now - timedelta(days=2, minutes=10)).astimezone(ZoneInfo("Asia/Seoul"))
    Maintenance.objects.create(
        title="nightly", provider=model.provider, recurrence=f"{seoul.minute} {seoul.hour} * * *",
        duration_minutes=30, time_zone="Asia/Seoul", starts_at=now - timedelta(days=3), ends_at=now - timedelta(days=1),
    )  # fmt: skip
    write(model, now - timedelta(minutes=20), [Outcome.PROVIDER_FAULT] * 100)  # inside
    write(model, now - timedelta(minutes=40), [Outcome.OK] * 100)  # before it
    write(model, now - timedelta(days=2, minutes=5), [Outcome.TIMEOUT] * 60)  # inside the nightly one
    write(other, now - timedelta(days=2, minutes=5), [Outcome.TIMEOUT] * 60)
    write(other, now - timedelta(hours=12), [Outcome.TIMEOUT] * 6)  # outside any window
    run_until_counted(now)
    status = SloStatus.objects.get(model=model)
    assert (status.answered, status.failed) == (100, 0)
    assert SloStatus.objects.get(model=other).failed == 6
    assert not BurnAlert.objects.filter(model=model).exists()


def test_each_window_holds_every_result_of_its_whole_span_before_the_run(model):
    now = timezone.now().replace(second=5, microsecond=0)
    # 4 min 50 s before the run: inside the last 5 minutes, in the minute bucket that starts 5 minutes
    # before the minute in progress.
    CheckResult.objects.create(model=model, time=now - timedelta(minutes=4, seconds=50), outcome=Outcome.PROVIDER_FAULT)
    CheckResult.objects.create(model=model, time=now - timedelta(minutes=59, seconds=50), outcome=Outcome.OK)
    run_slos(now)
    rates = SloStatus.objects.get(model=model).burn_rates["availability"]
    assert rates["5m"] == pytest.approx(1 / 0.001)
    assert rates["1h"] == pytest.approx(0.5 / 0.001)


def test_minutes_fold_into_hours_as_they_age_and_the_budget_counts_them_once(model):
    from anomalies.models import SloCount

    now = timezone.now()
    write(model, now - timedelta(hours=1), [Outcome.OK] * 300 + [Outcome.PROVIDER_FAULT] * 3)
    run_slos(now)
    assert set(SloCount.objects.values_list("minutes", flat=True)) == {1}
    later = now + timedelta(hours=8)
    run_slos(later)
    run_slos(later + timedelta(seconds=30))
    assert set(SloCount.objects.values_list("minutes", flat=True)) == {60}
    status = SloStatus.objects.get(model=model)
    assert (status.answered, status.failed) == (300, 3)
    assert status.burn_rates["availability"]["6h"] is None  # nothing in the last 6 hours: no burn either way


def test_a_run_that_changes_no_hour_reads_no_hour_counts_and_the_totals_stay_right(
    model, django_capture_on_commit_callbacks
):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from anomalies.models import SloCount

    def run(at):
        with django_capture_on_commit_callbacks(execute=True):  # each run commits, as in the worker
            return run_slos(at)

    now = timezone.now().replace(minute=20)
    write(model, now - timedelta(hours=20), [Outcome.OK] * 100 + [Outcome.PROVIDER_FAULT] * 2)  # hours
    write(model, now - timedelta(hours=6, minutes=50), [Outcome.PROVIDER_FAULT] * 4)  # minutes, folded later
    while run(now).backfilling:
        pass
    run(now + timedelta(seconds=30))
    write(model, now + timedelta(seconds=40), [Outcome.PROVIDER_FAULT] * 3)
    with CaptureQueriesContext(connection) as queries:
        run(now + timedelta(seconds=60))
    hour_reads = [q["sql"] for q in queries if '"minutes" = 60' in q["sql"] and q["sql"].startswith("SELECT")]
    assert hour_reads == []
    status = SloStatus.objects.get(model=model)
    assert (status.answered, status.failed) == (100, 9)
    # An hour later the minutes of 7 hours ago fold into hours: the totals are read again, still right.
    run(now + timedelta(hours=1))
    assert SloCount.objects.filter(minutes=60, failed=4).exists()
    run(now + timedelta(hours=1, seconds=30))
    status = SloStatus.objects.get(model=model)
    assert (status.answered, status.failed) == (100, 9)


def test_a_fast_burn_opens_one_alert_that_ends_when_the_long_window_calms(model):
    now = timezone.now()
    # An hour of answers, then half the probes failing for the last 20 minutes: 1 h and 5 min both burn
    # far over 14.4 times a 99.9 % budget.
    start = write(model, now - timedelta(minutes=80), [Outcome.OK] * 360)
    write(model, start, [Outcome.OK, Outcome.PROVIDER_FAULT] * 60)
    run_slos(now)
    run_slos(now + timedelta(seconds=30))
    fast = BurnAlert.objects.get(model=model, sli=Sli.AVAILABILITY, speed=BurnAlert.Speed.FAST)
    assert fast.ended_at is None and fast.threshold == 14.4
    assert fast.long_burn >= 14.4 and fast.short_burn >= 14.4
    assert (fast.long_window, fast.short_window) == ("1h", "5m")
    # Two hours later without any failure the hour no longer burns: the episode ends, and opens nothing new.
    later = now + timedelta(hours=2)
    write(model, later - timedelta(minutes=70), [Outcome.OK] * 420)
    run_slos(later)
    fast.refresh_from_db()
    assert fast.ended_at == later
    assert BurnAlert.objects.filter(speed=BurnAlert.Speed.FAST).count() == 1


def test_a_short_window_dipping_and_rising_again_within_the_episode_opens_nothing_new(model):
    now = timezone.now()
    write(model, now - timedelta(minutes=30), [Outcome.PROVIDER_FAULT] * 90 + [Outcome.OK] * 90)
    run_slos(now - timedelta(minutes=14))  # both windows burning
    run_slos(now)  # the last 5 minutes are clean: the short window calms, the hour still burns
    write(model, now + STEP, [Outcome.PROVIDER_FAULT] * 30)
    run_slos(now + timedelta(minutes=5))
    assert BurnAlert.objects.filter(speed=BurnAlert.Speed.FAST).count() == 1


def test_a_slow_burn_fires_the_slow_rule_only(model):
    AIModel.objects.filter(pk=model.pk).update(slo_availability_percent=Decimal("99"))
    now = timezone.now()
    # One failure in twelve for six hours: 8.3 times the budget of 99 % (over 6, under 14.4).
    write(model, now - timedelta(hours=6), ([Outcome.OK] * 11 + [Outcome.PROVIDER_FAULT]) * 180)
    run_slos(now)
    alerts = list(BurnAlert.objects.filter(model=model).values_list("sli", "speed"))
    assert alerts == [(Sli.AVAILABILITY, BurnAlert.Speed.SLOW)]
    rates = SloStatus.objects.get(model=model).burn_rates["availability"]
    assert 6 <= rates["6h"] < 14.4 and 6 <= rates["30m"] < 14.4


def test_slow_first_tokens_burn_the_latency_objective(model):
    AIModel.objects.filter(pk=model.pk).update(slo_ttft_ms=500)
    now = timezone.now()
    write(model, now - timedelta(hours=1), [Outcome.OK] * 360, ttft_ms=900.0)
    run_slos(now)
    speeds = set(BurnAlert.objects.filter(model=model, sli=Sli.LATENCY).values_list("speed", flat=True))
    assert speeds == {BurnAlert.Speed.FAST, BurnAlert.Speed.SLOW}
    assert not BurnAlert.objects.filter(sli=Sli.AVAILABILITY).exists()


def test_probes_without_a_first_token_are_judged_on_total_latency_against_the_latency_threshold(model):
    AIModel.objects.filter(pk=model.pk).update(slo_ttft_ms=500, ttft_threshold_ms=1000, latency_threshold_ms=8000)
    now = timezone.now()
    # Not streamed: no first token, a total latency over the TTFT objective but under the latency threshold.
    CheckResult.objects.bulk_create(
        CheckResult(model=model, time=now - timedelta(minutes=10, seconds=i), outcome=Outcome.OK, latency_ms=ms)
        for i, ms in enumerate([3000.0] * 8 + [9000.0] * 2)
    )
    write(model, now - timedelta(minutes=5), [Outcome.OK] * 3, ttft_ms=600.0)  # streamed, over the objective
    run_slos(now)
    status = SloStatus.objects.get(model=model)
    assert (status.fast, status.slow) == (8, 5)


def test_a_healthy_model_fires_nothing(model, other):
    now = timezone.now()
    write(model, now - timedelta(hours=7), [Outcome.OK] * 2520)
    # One failed probe in a quiet hour burns under both rules' short and long windows together.
    write(other, now - timedelta(hours=6), [Outcome.OK] * 1000 + [Outcome.PROVIDER_FAULT] + [Outcome.OK] * 1159)
    run_slos(now)
    run_slos(now + timedelta(seconds=30))
    assert not BurnAlert.objects.exists()
    assert SloStatus.objects.get(model=model).availability_budget_left == 1.0


def write_minutely(model: AIModel, now: datetime, minutes: int, failures: int) -> None:
    """A probe a minute (the default interval) for `minutes` up to `now`, the last ones but one failing."""
    outcomes = [Outcome.OK] * minutes
    for i in range(failures):
        outcomes[-2 - i] = Outcome.PROVIDER_FAULT
    start = now - timedelta(minutes=minutes)
    CheckResult.objects.bulk_create(
        CheckResult(
            model=model,
            time=start + timedelta(minutes=i, seconds=5),
            outcome=outcome,
            latency_ms=600.0 if outcome == Outcome.OK else None,
            ttft_ms=200.0 if outcome == Outcome.OK else None,
        )
        for i, outcome in enumerate(outcomes)
    )


@pytest.mark.parametrize(("failures", "opened"), [(1, set()), (2, {BurnAlert.Speed.FAST, BurnAlert.Speed.SLOW})])
def test_at_a_probe_a_minute_one_failure_opens_no_burn_alert_and_two_do(model, failures, opened):
    # A single failure in the last 5 minutes already burns the hour at 16.7 times a 99.9 % budget, but
    # one failed probe is not an episode.
    now = timezone.now()
    write_minutely(model, now, 120, failures)
    run_slos(now)
    assert SloStatus.objects.get(model=model).burn_rates["availability"]["1h"] >= 14.4
    assert set(BurnAlert.objects.filter(model=model).values_list("speed", flat=True)) == opened


def test_a_model_confirming_outages_after_more_failures_needs_as_many_bad_events_for_a_burn_alert(model):
    AIModel.objects.filter(pk=model.pk).update(failures_to_confirm=4)
    now = timezone.now()
    write_minutely(model, now, 60, 3)
    run_slos(now)
    assert not BurnAlert.objects.exists()
    CheckResult.objects.create(model=model, time=now, outcome=Outcome.PROVIDER_FAULT)
    run_slos(now + timedelta(seconds=30))
    assert BurnAlert.objects.filter(speed=BurnAlert.Speed.FAST).exists()


def test_beat_runs_the_slo_task_which_keeps_budgets_and_alerts(model, settings):
    from aistatus.celery import app
    from anomalies.tasks import evaluate_slos

    app.finalize()
    entry = app.conf.beat_schedule["evaluate SLOs"]
    assert entry["task"] == "anomalies.tasks.evaluate_slos" and entry["schedule"] == settings.SLO_RUN_SECONDS
    write(model, timezone.now() - timedelta(minutes=20), [Outcome.PROVIDER_FAULT] * 100)
    assert evaluate_slos.apply().get() == 2  # fast and slow opened
    assert SloStatus.objects.get(model=model).failed == 100
    assert evaluate_slos.apply().get() == 0  # nothing new: the episodes go on


# -- notices -------------------------------------------------------------------------------------------


@pytest.fixture
def burn_channels(db, settings):
    from alerts.models import Channel, EventCursor

    settings.ALERT_FLAP_CHANGES = 5
    settings.ALERT_FLAP_MINUTES = 10
    EventCursor.objects.create(name="burn_rate", last_id=0)
    opted = Channel.objects.create(name="sre", kind="email", url="mailto:sre@example.com", events=["burn_rate"])
    default = Channel.objects.create(name="pager", kind="email", url="mailto:pager@example.com")
    return opted, default


def test_a_burn_alert_reaches_a_channel_that_opted_in_once_and_not_one_that_did_not(model, burn_channels):
    from alerts.burn_alerts import plan_burn_alerts
    from alerts.messages import render
    from alerts.models import Notification

    opted, default = burn_channels
    now = timezone.now()
    write(model, now - timedelta(minutes=30), [Outcome.PROVIDER_FAULT] * 180)
    run_slos(now)
    run_slos(now + timedelta(seconds=30))
    assert plan_burn_alerts() == 2  # fast and slow, each once
    assert plan_burn_alerts() == 0
    notices = list(Notification.objects.filter(channel=opted).order_by("id"))
    assert sorted(n.payload["burn"]["speed"] for n in notices) == ["fast", "slow"]
    assert {n.kind for n in notices} == {"burn_rate"}
    assert not Notification.objects.filter(channel=default).exists()
    fast = next(n for n in notices if n.payload["burn"]["speed"] == "fast")
    texts = {language: render("burn_rate", fast.payload, language) for language in ("en", "ko", "ja")}
    assert texts["en"].title == "OpenAI GPT-4o: error budget burning (fast burn, availability)"
    assert "availability 99.9 %" in texts["en"].summary
    assert texts["ko"].title != texts["en"].title and texts["ja"].title != texts["en"].title


@pytest.mark.parametrize(
    ("language", "windows"), [("en", ("6 h", "30 min")), ("ko", ("6시간", "30분")), ("ja", ("6時間", "30分"))]
)
def test_a_burn_notice_names_its_windows_in_the_readers_language(model, language, windows):
    from alerts.burn_alerts import burn_data
    from alerts.messages import render
    from alerts.planner import model_data

    alert = BurnAlert.objects.create(
        model=model, sli=Sli.AVAILABILITY, speed="slow", threshold=6, long_window="6h", short_window="30m",
        started_at=timezone.now(), long_burn=8, short_burn=9, peak_burn=8,
    )  # fmt: skip
    message = render("burn_rate", {"model": model_data(model), "burn": burn_data(alert)}, language)
    text = message.summary + " ".join(value for _, value in message.facts)
    assert all(window in message.summary for window in windows)
    assert "6h" not in text and "30m" not in text


def test_burn_alerts_opening_over_and_over_give_one_flapping_notice(model, burn_channels):
    from alerts.burn_alerts import plan_burn_alerts
    from alerts.models import Notification

    opted, _ = burn_channels
    start = timezone.now() - timedelta(minutes=9)
    for i in range(7):
        at = start + i * timedelta(minutes=1)
        BurnAlert.objects.create(
            model=model, sli=Sli.AVAILABILITY, speed="fast", threshold=14.4, long_window="1h", short_window="5m",
            started_at=at, ended_at=at + timedelta(seconds=30), long_burn=20, short_burn=20, peak_burn=20,
        )  # fmt: skip
    plan_burn_alerts()
    kinds = list(Notification.objects.filter(channel=opted).order_by("id").values_list("kind", flat=True))
    assert kinds == ["burn_rate"] * 4 + ["flapping"]


# -- shown ---------------------------------------------------------------------------------------------


@pytest.mark.usefixtures("renew_snapshot")
@pytest.mark.parametrize(
    ("language", "words", "fast"),
    [("en", "Budget left", "fast burn"), ("ko", "남은 예산", "빠른 소진"), ("ja", "残りのバジェット", "高速消費")],
)
def test_the_api_and_the_page_show_the_budget_left_and_the_open_burn_alerts(
    model, anon_api, client, language, words, fast
):
    AIModel.objects.filter(pk=model.pk).update(slo_availability_percent=Decimal("99"))
    now = timezone.now()
    write(model, now - timedelta(days=2), [Outcome.OK] * 960)
    write(model, now - timedelta(minutes=6), [Outcome.OK] * 30 + [Outcome.PROVIDER_FAULT] * 6)
    run_until_counted(now)
    body = anon_api.get("/api/v1/models/openai/gpt-4o/slo/").json()
    assert body["availability"]["objective_percent"] == 99.0
    assert (body["availability"]["answered"], body["availability"]["failed"]) == (990, 6)
    assert body["availability"]["budget_left"] == pytest.approx(1 - 6 / (0.01 * 996))
    assert body["availability"]["burn_rates"]["5m"] > 14.4 and body["window_days"] == 30
    assert body["latency"]["objective_ms"] == model.ttft_threshold_ms and body["latency"]["percentile"] == 95
    # 6 failures in the last 6 minutes: both rules' windows burn (the 6 hours hold only these 36 results).
    assert [(a["sli"], a["speed"]) for a in body["burn_alerts"]] == [("availability", "fast"), ("availability", "slow")]
    page = client.get(f"/{language}/models/openai/gpt-4o/").content.decode()
    section = page.split('aria-labelledby="slo-heading"', 1)[1].split("</section>", 1)[0]
    assert words in section
    row = section.split('data-sli="availability"', 1)[1].split("</tr>", 1)[0]
    assert "40%" in row  # 1 - 6 / 9.96
    assert fast in row
    assert "—" in section.split('data-sli="latency"', 1)[1].split("</tr>", 1)[0]  # no latency burn


@pytest.mark.usefixtures("renew_snapshot")
def test_a_model_without_counted_probes_shows_its_budget_as_unknown(model, anon_api, client):
    run_slos()
    assert anon_api.get("/api/v1/models/openai/gpt-4o/slo/").json()["availability"]["budget_left"] is None
    page = client.get("/en/models/openai/gpt-4o/").content.decode()
    assert "the budget is unknown" in page


def test_a_burn_alert_is_delivered_once_as_a_signed_webhook_to_the_channel_that_opted_in_only(model, settings):
    from standardwebhooks.webhooks import Webhook

    from alerts import delivery
    from alerts.burn_alerts import plan_burn_alerts
    from alerts.models import Channel, EventCursor
    from tests.receiver import Receiver

    settings.WEBHOOK_ALLOWED_HOSTS = ["127.0.0.1"]
    settings.ALERT_TIMEOUT_SECONDS = 1.0
    EventCursor.objects.create(name="burn_rate", last_id=0)
    with Receiver() as sre, Receiver() as pager:
        opted = Channel.objects.create(name="sre", kind="webhook", url=sre.url(), events=["burn_rate"])
        Channel.objects.create(name="pager", kind="webhook", url=pager.url())  # outage and recovery only
        now = timezone.now()
        write(model, now - timedelta(minutes=20), [Outcome.TIMEOUT] * 120)
        for later in (0, 30, 60):
            run_slos(now + timedelta(seconds=later))
            plan_burn_alerts(now + timedelta(seconds=later))
            delivery.deliver_due(now + timedelta(seconds=later))
        events = [Webhook(opted.secret).verify(r.body, r.headers) for r in sre.requests]
        assert sorted(e["data"]["burn"]["speed"] for e in events) == ["fast", "slow"]
        assert {e["type"] for e in events} == {"model.burn_rate"}
        assert pager.requests == []


# -- one run at a time ---------------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_a_run_arriving_while_the_first_run_counts_skips_at_once_instead_of_waiting(model):
    import threading

    from django.db import connection, connections

    write(model, timezone.now() - timedelta(days=3), [Outcome.OK] * 100)
    # Another session holds the count table: the first run stops inside its transaction, cursor locked.
    holder = connections.create_connection("default")
    holder.set_autocommit(False)
    with holder.cursor() as sql:
        sql.execute("LOCK TABLE anomalies_slocount IN ACCESS EXCLUSIVE MODE")
    runs = {}

    def run(name):
        try:
            runs[name] = run_slos()
        finally:
            connection.close()

    first = threading.Thread(target=run, args=("first",))
    first.start()
    try:
        deadline = timezone.now() + timedelta(seconds=10)
        while timezone.now() < deadline:  # wait until the first run waits on the held table
            with holder.cursor() as sql:
                waiting = (
                    "SELECT count(*) FROM pg_locks WHERE NOT granted AND relation = 'anomalies_slocount'::regclass"
                )
                sql.execute(waiting)
                if sql.fetchone()[0]:
                    break
        second = threading.Thread(target=run, args=("second",))
        second.start()
        second.join(timeout=5)
        skipped_at_once = not second.is_alive() and runs.get("second") is not None and runs["second"].skipped
    finally:
        holder.rollback()
        holder.close()
        first.join(timeout=30)
        if "second" in locals():
            second.join(timeout=30)
    assert skipped_at_once
    assert not runs["first"].skipped


def test_the_first_run_counts_the_kept_minutes_and_the_older_history_follows_a_few_hours_a_run(model):
    from anomalies.models import SloCount

    now = timezone.now()
    write(model, now - timedelta(days=29, hours=20), [Outcome.PROVIDER_FAULT] * 5)
    write(model, now - timedelta(days=1), [Outcome.OK] * 50)
    write(model, now - timedelta(minutes=30), [Outcome.OK] * 20)
    first = run_slos(now)
    assert first.backfilling and first.counted == SloCount.objects.count()
    assert set(SloCount.objects.values_list("minutes", flat=True)) == {1}
    assert SloStatus.objects.get(model=model).answered == 20
    # Then BACKFILL_HOURS a run down to the window's start, each counted once.
    from anomalies.slo import BACKFILL_HOURS

    runs = run_until_counted(now + timedelta(seconds=30))
    assert runs == pytest.approx((30 * 24 - 7) / BACKFILL_HOURS, abs=2)
    status = SloStatus.objects.get(model=model)
    assert (status.answered, status.failed) == (70, 5)
    assert not run_slos(now + timedelta(minutes=1)).backfilling


@pytest.mark.usefixtures("renew_snapshot")
def test_budgets_and_burn_alerts_the_slo_run_no_longer_keeps_are_shown_as_unknown(model, client, settings):
    from publishing.snapshot import build_snapshot

    settings.SLO_RUN_SECONDS = 30  # stale after max(5 minutes, 10 runs)
    now = timezone.now()
    write(model, now - timedelta(minutes=20), [Outcome.PROVIDER_FAULT] * 100 + [Outcome.OK] * 20)
    run_slos(now)
    fresh = build_snapshot(now + timedelta(minutes=4)).data["models"][0]["slo"]
    assert fresh["burning"] and fresh["availability_budget_left"] < 0
    assert fresh["updated_at"] == now.isoformat().replace("+00:00", "Z") and not fresh["stale"]
    # The SLO task stopped: six minutes on, the last run's alerts and budgets are no longer shown as current.
    stale = build_snapshot(now + timedelta(minutes=6)).data["models"][0]["slo"]
    assert stale["stale"] and stale["updated_at"] == fresh["updated_at"]
    assert stale["burning"] == [] and stale["availability_budget_left"] is None
    assert stale["latency_budget_left"] is None and stale["evidence_since"] is None
    settings.SLO_RUN_SECONDS = 60  # ten runs: 10 minutes
    assert not build_snapshot(now + timedelta(minutes=6)).data["models"][0]["slo"]["stale"]


@pytest.mark.usefixtures("renew_snapshot")
def test_the_page_says_when_the_budgets_were_last_worked_out_once_they_are_stale(model, client):
    write(model, timezone.now() - timedelta(minutes=20), [Outcome.PROVIDER_FAULT] * 100)
    run_slos(timezone.now() - timedelta(minutes=30))
    page = client.get("/en/models/openai/gpt-4o/").content.decode()
    section = page.split('aria-labelledby="slo-heading"', 1)[1].split("</section>", 1)[0]
    assert "fast burn" not in section and "last worked out" in section
