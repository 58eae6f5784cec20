"""Anomalies in the product: the detection run keeps records, state and counts; the API, page and /metrics show them."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from django.utils import timezone

from anomalies.detection import run_detection
from anomalies.detector import SeriesDetector
from anomalies.models import Anomaly, AnomalyEvent, Direction, Metric, SeriesState
from collectors.evaluate import evaluate
from collectors.models import CheckResult
from collectors.rollups import update_rollups
from monitoring.models import AIModel
from monitoring.outcomes import Outcome
from monitoring.status import Status
from tests.test_metrics import scrape

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("renew_snapshot")]

STEP = timedelta(seconds=10)


@pytest.fixture(autouse=True)
def quiet_period(settings):
    settings.ANOMALY_QUIET_SECONDS = 120
    settings.ANOMALY_HISTORY_HOURS = 24


def write_results(model: AIModel, start: datetime, latencies: list[float], region: str = "default") -> datetime:
    """Answered probes every 10 s from `start` (TTFT a third of the latency); returns the time of the last."""
    CheckResult.objects.bulk_create(
        CheckResult(
            model=model,
            region=region,
            time=start + i * STEP,
            outcome=Outcome.OK,
            http_status=200,
            latency_ms=value,
            ttft_ms=value / 3 if value == value and value > 0 else value,
            tokens_per_s=80.0,
        )
        for i, value in enumerate(latencies)
    )
    return start + (len(latencies) - 1) * STEP


def steady_then_shift(model: AIModel, start: datetime, before: int = 200, after: int = 1) -> datetime:
    """A steady 300 ms, then a level shift to 2,500 ms."""
    return write_results(model, start, [300.0] * before + [2500.0] * after)


@pytest.fixture
def other(provider):
    return AIModel.objects.create(provider=provider, name="GPT-4o mini", slug="gpt-4o-mini", endpoint="http://x/v1")


def test_a_level_shift_opens_an_anomaly_with_its_expected_range_and_direction(model):
    start = timezone.now() - timedelta(hours=2)
    shifted_at = steady_then_shift(model, start)
    summary = run_detection(now=shifted_at + timedelta(seconds=1))
    anomaly = Anomaly.objects.get(model=model, metric=Metric.LATENCY)
    assert anomaly.id in summary.opened
    assert anomaly.region == "default"
    assert anomaly.started_at == shifted_at
    assert anomaly.ended_at is None
    assert anomaly.direction == Direction.ABOVE
    assert anomaly.observed == 2500.0
    assert anomaly.expected_high < 2500.0 and anomaly.expected_low <= 300.0 <= anomaly.expected_high
    assert anomaly.peak_score >= 0.5
    assert AnomalyEvent.objects.filter(anomaly=anomaly, kind="opened").count() == 1


def test_an_anomaly_closes_after_the_quiet_period_and_a_second_run_does_not_reopen_it(model):
    start = timezone.now() - timedelta(hours=2)
    shifted_at = steady_then_shift(model, start)
    run_detection(now=shifted_at + timedelta(seconds=1))
    # The new level holds: it becomes the normal, and the quiet period (120 s here) ends the anomaly.
    last = write_results(model, shifted_at + STEP, [2500.0] * 30)
    summary = run_detection(now=last + timedelta(seconds=1))
    anomaly = Anomaly.objects.get(model=model, metric=Metric.LATENCY)
    assert anomaly.id in summary.closed
    assert anomaly.ended_at is not None and anomaly.ended_at >= anomaly.started_at
    assert list(AnomalyEvent.objects.filter(anomaly=anomaly).values_list("kind", flat=True)) == ["opened", "closed"]
    again = run_detection(now=last + timedelta(seconds=5))
    assert again.opened == [] and again.closed == []
    assert Anomaly.objects.filter(model=model, metric=Metric.LATENCY).count() == 1


def test_an_open_anomaly_of_a_series_that_stopped_closes_by_the_clock(model):
    shifted_at = steady_then_shift(model, timezone.now() - timedelta(hours=2))
    run_detection(now=shifted_at + timedelta(seconds=1))
    assert Anomaly.objects.filter(model=model, ended_at__isnull=True).exists()
    run_detection(now=shifted_at + timedelta(seconds=121))
    assert not Anomaly.objects.filter(model=model, ended_at__isnull=True).exists()


def test_the_learned_state_is_stored_and_carries_on_across_runs_as_one_detector_would(model):
    start = timezone.now() - timedelta(hours=1)
    values = [250.0 + (i % 7) * 11 for i in range(180)]
    first = write_results(model, start, values[:90])
    run_detection(now=first + timedelta(seconds=1))
    row = SeriesState.objects.get(model=model, metric=Metric.LATENCY, region="default")
    assert row.learning and row.last_time == first
    # A new run reads nothing from memory: everything comes back from the table, as after a restart.
    last = write_results(model, first + STEP, values[90:])
    run_detection(now=last + timedelta(seconds=1))
    alone = SeriesDetector()
    for i, value in enumerate(values):
        alone.score(start + i * STEP, value)
    row.refresh_from_db()
    assert row.state == alone.to_state()
    assert row.learning is False
    assert row.expected_low is not None and row.expected_low < row.expected_high


def test_late_results_inside_the_margin_are_fed_once_and_a_rerun_feeds_nothing_twice(model):
    start = timezone.now() - timedelta(minutes=30)
    last = write_results(model, start, [300.0] * 50)
    run_detection(now=last + timedelta(seconds=1))
    again = run_detection(now=last + timedelta(seconds=2))
    assert again.results > 0 and again.points == 0  # read again (the late margin), fed never
    row = SeriesState.objects.get(model=model, metric=Metric.LATENCY, region="default")
    assert row.state["n"] == 50


def test_nan_negative_and_absurd_values_are_counted_and_never_reach_the_state(model):
    start = timezone.now() - timedelta(minutes=30)
    good = [300.0 + i for i in range(40)]
    values = [*good[:10], float("nan"), *good[10:20], -5.0, *good[20:30], 1e12, *good[30:]]
    last = write_results(model, start, values)
    summary = run_detection(now=last + timedelta(seconds=1))
    row = SeriesState.objects.get(model=model, metric=Metric.LATENCY, region="default")
    assert row.rejected == 3
    assert summary.rejected >= 3
    fed = [(start + i * STEP, v) for i, v in enumerate(values) if v == v and 0 <= v < 1e9]
    alone = SeriesDetector()
    for t, v in fed:
        alone.score(t, v)
    assert row.state == alone.to_state()


def test_one_series_failing_never_stops_the_others(model, other, client):
    start = timezone.now() - timedelta(minutes=30)
    first = write_results(model, start, [300.0] * 20)
    write_results(other, start, [300.0] * 20)
    run_detection(now=first + timedelta(seconds=1))
    # A state this detector cannot read (damaged, or left by an incompatible version).
    SeriesState.objects.filter(model=model, metric=Metric.LATENCY).update(state={"version": 999, "boxes": "?"})
    last = write_results(model, first + STEP, [300.0] * 20)
    write_results(other, first + STEP, [300.0] * 20)
    summary = run_detection(now=last + timedelta(seconds=1))
    assert summary.errors == 1
    broken = SeriesState.objects.get(model=model, metric=Metric.LATENCY)
    assert broken.errors == 1 and broken.state["n"] == 20  # counted, and learning again from here
    assert SeriesState.objects.get(model=other, metric=Metric.LATENCY).state["n"] == 40
    assert SeriesState.objects.get(model=model, metric=Metric.TTFT).state["n"] == 40
    problems = scrape(client)["aistatus_anomaly_input_problems_total"]
    assert problems['{kind="errors"}'] == 1


def test_the_error_ratio_counts_provider_faults_and_leaves_out_probe_faults(model, settings):
    settings.ANOMALY_ERROR_WINDOW = 4
    start = timezone.now() - timedelta(minutes=10)
    outcomes = [
        Outcome.OK,
        Outcome.PROVIDER_FAULT,
        Outcome.PROBE_FAULT,
        Outcome.RATE_LIMITED,
        Outcome.TIMEOUT,
        Outcome.OK,
    ]
    CheckResult.objects.bulk_create(
        CheckResult(model=model, time=start + i * STEP, outcome=o, latency_ms=100.0 if o == Outcome.OK else None)
        for i, o in enumerate(outcomes)
    )
    run_detection(now=start + len(outcomes) * STEP)
    row = SeriesState.objects.get(model=model, metric=Metric.ERROR_RATIO)
    assert row.window == [0, 1, 1, 0]
    assert row.state["n"] == 1  # fed once the window was full: 2 faults in 4


def test_the_api_lists_a_public_models_anomalies_and_hides_a_private_ones(model, anon_api, staff_api):
    shifted_at = steady_then_shift(model, timezone.now() - timedelta(hours=2))
    run_detection(now=shifted_at + timedelta(seconds=1))
    response = anon_api.get("/api/v1/models/openai/gpt-4o/anomalies/")
    assert response.status_code == 200
    latency = [a for a in response.json()["results"] if a["metric"] == "latency"]
    assert len(latency) == 1
    assert latency[0]["open"] is True and latency[0]["ended_at"] is None
    assert latency[0]["observed"] == 2500.0 and latency[0]["direction"] == "above"
    assert anon_api.get(f"/api/v1/models/{model.pk}/anomalies/").status_code == 200
    AIModel.objects.filter(pk=model.pk).update(public=False)
    assert anon_api.get("/api/v1/models/openai/gpt-4o/anomalies/").status_code == 404
    assert staff_api.get("/api/v1/models/openai/gpt-4o/anomalies/").status_code == 200
    schema = anon_api.get("/api/schema/", HTTP_ACCEPT="application/json").json()
    assert "/api/v1/models/{provider}/{model}/anomalies/" in schema["paths"]


def test_metrics_carry_a_gauge_of_open_anomalies(model, client, renew_snapshot):
    assert scrape(client)["aistatus_anomalies_open"]['{metric="latency"}'] == 0
    shifted_at = steady_then_shift(model, timezone.now() - timedelta(hours=2))
    run_detection(now=shifted_at + timedelta(seconds=1))
    renew_snapshot()
    gauge = scrape(client)["aistatus_anomalies_open"]
    assert gauge['{metric="latency"}'] == 1
    assert sum(gauge.values()) == Anomaly.objects.filter(ended_at__isnull=True).count()


@pytest.mark.parametrize(("language", "word"), [("en", "unusual"), ("ko", "평소와 다름"), ("ja", "いつもと違う")])
def test_the_page_marks_a_model_with_an_open_anomaly_as_unusual_in_every_language(
    model, other, client, renew_snapshot, language, word
):
    shifted_at = steady_then_shift(model, timezone.now() - timedelta(hours=2))
    run_detection(now=shifted_at + timedelta(seconds=1))
    page = client.get(f"/{language}/").content.decode()
    row = page.split(f'data-model="{model.public_slug}"', 1)[1].split("</li>", 1)[0]
    healthy = page.split(f'data-model="{other.public_slug}"', 1)[1].split("</li>", 1)[0]
    assert '<span class="unusual" title=' in row and word in row and "#i-unusual" in row
    assert '<span class="unusual" hidden' in healthy
    update_rollups()  # the charts draw the rollups
    renew_snapshot()
    detail = client.get(f"/{language}/models/openai/gpt-4o/").content.decode()
    assert 'class="anomaly-period"' in detail and 'data-anomaly="' in detail


def test_an_anomaly_changes_the_status_only_for_models_that_opted_in(model, other):
    now = timezone.now()
    # Fresh evidence for both (the history ends now), each with its level shift.
    for subject in (model, other):
        shifted_at = steady_then_shift(subject, now - 201 * STEP)
    run_detection(now=shifted_at + timedelta(seconds=1))
    assert Anomaly.objects.filter(ended_at__isnull=True, model=model).exists()
    assert Anomaly.objects.filter(ended_at__isnull=True, model=other).exists()
    AIModel.objects.filter(pk=model.pk).update(anomaly_degrades=True)
    evaluate([model.pk, other.pk], now=shifted_at + timedelta(seconds=1))
    model.status_row.refresh_from_db()
    other.status_row.refresh_from_db()
    assert other.status_row.status == Status.OPERATIONAL
    assert model.status_row.status == Status.DEGRADED_PERFORMANCE
    assert model.status_row.message.startswith("unusual: latency above")


def test_an_opted_in_model_without_fresh_evidence_stays_unknown_despite_an_open_anomaly(model):
    shifted_at = steady_then_shift(model, timezone.now() - timedelta(hours=2))
    run_detection(now=shifted_at + timedelta(seconds=1))
    AIModel.objects.filter(pk=model.pk).update(anomaly_degrades=True)
    evaluate([model.pk])
    model.status_row.refresh_from_db()
    assert model.status_row.status == Status.UNKNOWN


# -- alert channels ------------------------------------------------------------------------------------


def record_anomaly(model: AIModel, at: datetime, closed_after: timedelta | None = None) -> Anomaly:
    """An anomaly and its events, as the detection run writes them."""
    anomaly = Anomaly.objects.create(
        model=model,
        metric=Metric.LATENCY,
        started_at=at,
        last_unusual_at=at,
        ended_at=at + closed_after if closed_after else None,
        peak_score=0.9,
        expected_low=200.0,
        expected_high=420.0,
        observed=2500.0,
        direction=Direction.ABOVE,
    )
    AnomalyEvent.objects.create(anomaly=anomaly, kind="opened", at=at)
    if closed_after:
        AnomalyEvent.objects.create(anomaly=anomaly, kind="closed", at=at + closed_after)
    return anomaly


@pytest.fixture
def anomaly_channels(db, settings):
    from alerts.models import Channel, EventCursor

    settings.ALERT_FLAP_CHANGES = 5
    settings.ALERT_FLAP_MINUTES = 10
    EventCursor.objects.create(name="anomalies", last_id=0)
    opted = Channel.objects.create(name="ops", kind="email", url="mailto:ops@example.com", events=["anomaly"])
    default = Channel.objects.create(name="pager", kind="email", url="mailto:pager@example.com")
    return opted, default


def test_channels_that_opted_in_hear_of_an_anomaly_opening_and_closing_and_others_do_not(model, anomaly_channels):
    from alerts.anomaly_alerts import plan_anomalies
    from alerts.messages import render
    from alerts.models import Notification

    opted, default = anomaly_channels
    record_anomaly(model, timezone.now() - timedelta(minutes=20), closed_after=timedelta(minutes=3))
    assert plan_anomalies() == 2
    assert plan_anomalies() == 0  # the cursor moved: nothing twice
    notices = list(Notification.objects.filter(channel=opted).order_by("id"))
    assert [(n.kind, n.payload["state"]) for n in notices] == [("anomaly", "opened"), ("anomaly", "closed")]
    assert not Notification.objects.filter(channel=default).exists()
    opened = {language: render("anomaly", notices[0].payload, language) for language in ("en", "ko", "ja")}
    assert opened["en"].title == "OpenAI GPT-4o: unusual latency"
    assert "지연 시간" in opened["ko"].title and "レイテンシ" in opened["ja"].title
    assert "does not change its status" in opened["en"].summary
    assert render("anomaly", notices[1].payload, "en").title == "OpenAI GPT-4o: back to its usual range"


def test_anomalies_opening_over_and_over_give_one_flapping_notice_like_status_flips(model, anomaly_channels):
    from alerts.anomaly_alerts import plan_anomalies
    from alerts.models import Notification

    opted, _ = anomaly_channels
    start = timezone.now() - timedelta(minutes=9)
    for i in range(7):
        record_anomaly(model, start + i * timedelta(minutes=1), closed_after=timedelta(seconds=30))
    plan_anomalies()
    kinds = list(Notification.objects.filter(channel=opted).order_by("id").values_list("kind", "payload__state"))
    # Four anomalies told in full (opened and closed), the fifth opening as one flapping notice, the rest held.
    assert kinds == [("anomaly", "opened"), ("anomaly", "closed")] * 4 + [("flapping", "opened")]


# -- forecast: when the latency trend crosses the threshold ---------------------------------------------


def test_a_rising_trend_projects_when_it_crosses_the_threshold_and_a_flat_or_falling_one_does_not():
    from anomalies.forecast import minutes_to_cross

    rising = [(-m, 1000.0 + 50.0 * (29 - m)) for m in range(30)]  # 2,450 ms now, 50 ms a minute
    assert minutes_to_cross(rising, 4000.0) == pytest.approx(31.0)
    assert minutes_to_cross(rising, 9000.0) is None  # beyond the hour
    assert minutes_to_cross([(-m, 1000.0) for m in range(30)], 4000.0) is None
    assert minutes_to_cross([(-m, 1000.0 + 50.0 * m) for m in range(30)], 4000.0) is None
    assert minutes_to_cross(rising[:5], 4000.0) is None  # too few minutes to say
    assert minutes_to_cross([(-m, 5000.0 + m) for m in range(30)], 4000.0) is None  # already over


def test_the_model_page_warns_when_rising_latency_will_cross_its_threshold(model, client):
    from collectors.models import CheckRollup, Period

    minute = timezone.now().replace(second=0, microsecond=0)
    AIModel.objects.filter(pk=model.pk).update(latency_threshold_ms=4000)
    CheckRollup.objects.bulk_create(
        CheckRollup(
            model=model,
            period=Period.MINUTE,
            bucket=minute - timedelta(minutes=m),
            total=6,
            ok=6,
            latency_p50_ms=1000.0 + 100.0 * (29 - m),  # 3,900 ms now, 100 ms a minute
            latency_p95_ms=5000.0,
        )
        for m in range(30)
    )
    page = client.get("/en/models/openai/gpt-4o/").content.decode()
    assert "expected to cross its threshold (4000 ms) in about 1 minute." in page
    ko = client.get("/ko/models/openai/gpt-4o/").content.decode()
    assert "약 1분 후 임계값(4000 ms)을 넘을 것으로" in ko
