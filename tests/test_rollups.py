"""Rollups per minute, hour and day are kept incrementally; late results reopen their buckets; retention."""

from datetime import UTC, datetime, timedelta

import pytest
from django.test import override_settings

from collectors.models import CheckResult, CheckRollup, RollupCursor
from collectors.probes.base import ProbeResult
from collectors.rollups import apply_retention, update_rollups
from collectors.storage import Observation, insert_rows

pytestmark = pytest.mark.django_db

T0 = datetime(2026, 11, 20, 10, 0, tzinfo=UTC)


def results(model, start, outcomes_latencies, step=timedelta(seconds=10)):
    CheckResult.objects.bulk_create(
        [
            CheckResult(model=model, time=start + i * step, outcome=o, latency_ms=lat)
            for i, (o, lat) in enumerate(outcomes_latencies)
        ]
    )


def test_minute_rollups_count_outcomes_and_latency_percentiles(model):
    results(model, T0, [("ok", 100), ("ok", 200), ("ok", 300), ("provider_fault", 5), ("timeout", None), ("ok", 400)])
    update_rollups(now=T0 + timedelta(minutes=5))
    minute = CheckRollup.objects.get(period="minute", bucket=T0)
    assert (minute.total, minute.ok, minute.provider_fault, minute.timeout) == (6, 4, 1, 1)
    assert minute.failures == 2
    # Latency figures describe answered requests only.
    assert minute.latency_p50_ms == pytest.approx(250)
    assert minute.latency_p95_ms == pytest.approx(385)
    assert minute.latency_max_ms == 400


def test_hour_and_day_rollups_sum_their_minutes(model):
    results(model, T0, [("ok", 100)] * 6)
    results(model, T0 + timedelta(minutes=30), [("ok", 300)] * 6 + [("rate_limited", None)] * 3)
    update_rollups(now=T0 + timedelta(hours=2))
    hour = CheckRollup.objects.get(period="hour", bucket=T0)
    day = CheckRollup.objects.get(period="day", bucket=T0.replace(hour=0))
    for rollup in (hour, day):
        assert (rollup.total, rollup.ok, rollup.rate_limited) == (15, 12, 3)
        assert rollup.latency_p50_ms == pytest.approx(200)
        assert rollup.latency_max_ms == 300


def test_updates_are_incremental_and_do_not_count_twice(model):
    results(model, T0, [("ok", 100)] * 6)
    update_rollups(now=T0 + timedelta(minutes=5))
    results(model, T0 + timedelta(minutes=10), [("ok", 100)] * 6)
    update_rollups(now=T0 + timedelta(minutes=15))
    update_rollups(now=T0 + timedelta(minutes=15))
    assert CheckRollup.objects.filter(period="minute").count() == 2
    assert CheckRollup.objects.get(period="hour").total == 12


def test_results_inside_the_grace_period_wait_for_the_next_update(model):
    results(model, T0, [("ok", 100)] * 3)
    update_rollups(now=T0 + timedelta(seconds=90))
    assert not CheckRollup.objects.filter(period="minute").exists()
    update_rollups(now=T0 + timedelta(minutes=4))
    assert CheckRollup.objects.get(period="minute").total == 3


def test_late_results_reopen_the_buckets_they_fall_in(model):
    results(model, T0, [("ok", 100)] * 6)
    update_rollups(now=T0 + timedelta(minutes=30))
    assert CheckRollup.objects.get(period="minute", bucket=T0).total == 6
    # A remote collector's results from that minute arrive late.
    insert_rows([Observation(model.pk, "eu", T0 + timedelta(seconds=30), ProbeResult("provider_fault", 503))])
    assert RollupCursor.objects.get(period="minute").complete_until <= T0 + timedelta(seconds=30)
    update_rollups(now=T0 + timedelta(minutes=31))
    minute = CheckRollup.objects.get(period="minute", bucket=T0)
    assert (minute.total, minute.provider_fault) == (7, 1)
    assert CheckRollup.objects.get(period="hour").total == 7


@override_settings(RESULT_RETENTION_DAYS=14, MINUTE_ROLLUP_RETENTION_DAYS=7, DAY_ROLLUP_RETENTION_DAYS=400)
def test_retention_deletes_only_what_is_older_than_its_setting(model):
    now = T0
    results(model, now - timedelta(days=15), [("ok", 1)] * 2)
    results(model, now - timedelta(days=13), [("ok", 1)] * 3)
    CheckRollup.objects.bulk_create(
        [
            CheckRollup(model=model, period="minute", bucket=now - timedelta(days=8)),
            CheckRollup(model=model, period="minute", bucket=now - timedelta(days=6)),
            CheckRollup(model=model, period="day", bucket=now - timedelta(days=401)),
            CheckRollup(model=model, period="day", bucket=now - timedelta(days=399)),
        ]
    )
    deleted = apply_retention(now)
    assert deleted["raw"] == 2 and deleted["minute"] == 1 and deleted["day"] == 1
    assert CheckResult.objects.count() == 3
    assert CheckRollup.objects.count() == 2
