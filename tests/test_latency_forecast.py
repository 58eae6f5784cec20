"""The next hour's latency forecast: its interval covers a steady series, it follows a trend, and the API
and the model's page show it."""

from __future__ import annotations

import random
from datetime import timedelta

import pytest
from django.utils import timezone

from anomalies.forecast import forecast_ahead
from anomalies.latency_forecasts import hourly_series, make_forecasts, target_hour
from anomalies.models import LatencyForecast
from anomalies.slo_counts import floor_hour
from collectors.models import CheckRollup, Period


def test_the_interval_of_a_steady_noisy_series_holds_the_next_value_about_as_often_as_it_says():
    held = 0
    trials = 300
    for seed in range(trials):
        rng = random.Random(seed)
        values = [rng.gauss(400.0, 30.0) for _ in range(24 * 8 + 2)]
        *history, _, actual = values
        forecast = forecast_ahead(history, steps=2)
        assert forecast is not None and forecast.method == "seasonal"
        assert forecast.low < forecast.value < forecast.high
        held += forecast.low <= actual <= forecast.high
    # An 80 % interval measured on past errors: near 80 % of next values fall in it, not all, not few.
    assert 0.7 <= held / trials <= 0.9


def test_the_forecast_follows_a_rising_trend_with_or_without_a_day_of_history():
    for hours in (12, 24 * 8):
        rng = random.Random(hours)
        history = [300.0 + 10.0 * i + rng.gauss(0.0, 3.0) for i in range(hours)]
        forecast = forecast_ahead(history, steps=2)
        expected = 300.0 + 10.0 * (hours + 1)  # two hours after the last
        assert forecast.value == pytest.approx(expected, abs=12.0)
        assert forecast.low <= expected <= forecast.high
        assert forecast.low > history[-1]  # the whole range is above where the series stands now


def test_a_daily_pattern_is_forecast_from_the_same_hours_of_the_past_days():
    pattern = [300.0 + (200.0 if 9 <= h % 24 <= 17 else 0.0) for h in range(24 * 7)]
    # The last hour is 07:00 and the target 09:00, the start of the busy hours.
    history = pattern[: 24 * 6 + 8]
    forecast = forecast_ahead(history, steps=2)
    assert forecast.value == pytest.approx(500.0)
    assert forecast.method == "seasonal"


def test_too_little_history_or_a_missing_last_hour_makes_no_forecast():
    assert forecast_ahead([300.0] * 5) is None
    assert forecast_ahead([300.0] * 30 + [None]) is None
    assert forecast_ahead([]) is None


# -- stored, served and shown ------------------------------------------------------------------------


def seed_hours(model, now, p50: float, p95: float, hours: int = 72) -> None:
    last = floor_hour(now) - timedelta(hours=1)
    rng = random.Random(7)
    CheckRollup.objects.bulk_create(
        CheckRollup(
            model=model,
            period=Period.HOUR,
            bucket=last - timedelta(hours=i),
            total=60,
            ok=60,
            latency_p50_ms=p50 + rng.gauss(0, 10),
            latency_p95_ms=p95 + rng.gauss(0, 30),
        )
        for i in range(hours)
    )


@pytest.mark.django_db
def test_the_hourly_series_is_read_oldest_first_with_gaps_as_none(model):
    now = timezone.now()
    seed_hours(model, now, 300.0, 900.0, hours=10)
    CheckRollup.objects.filter(model=model, bucket=floor_hour(now) - timedelta(hours=3)).delete()
    series = hourly_series([model.pk], now)[model.pk]
    assert series["p50"][-1] is not None and series["p50"][-3] is None
    assert sum(v is not None for v in series["p95"]) == 9


@pytest.mark.django_db
@pytest.mark.usefixtures("renew_snapshot")
@pytest.mark.parametrize(
    ("language", "words", "note"),
    [("en", "From", "hold 80 % of"), ("ko", "부터", "과거 오차 80 %를"), ("ja", "から", "過去の誤差の 80 % を")],
)
def test_the_api_and_the_page_give_the_forecast_for_the_coming_hour(model, anon_api, client, language, words, note):
    now = timezone.now()
    seed_hours(model, now, 300.0, 900.0)
    assert make_forecasts(now) == 1
    stored = LatencyForecast.objects.get(model=model)
    assert stored.hour == target_hour(now)
    assert stored.p50_low_ms < 300.0 < stored.p50_high_ms and stored.p95_low_ms < 900.0 < stored.p95_high_ms
    body = anon_api.get("/api/v1/models/openai/gpt-4o/forecast/").json()
    assert body["p50_ms"]["low"] == stored.p50_low_ms and body["p95_ms"]["forecast"] == stored.p95_ms
    assert body["interval"] == 0.8 and body["method"] == "seasonal"
    page = client.get(f"/{language}/models/openai/gpt-4o/").content.decode()
    section = page.split('class="latency-forecast"', 1)[1].split("</p>", 1)[0]
    assert f"{target_hour(now):%H:%M}" in section and words in section
    assert note in page


@pytest.mark.django_db
def test_a_model_without_history_has_an_empty_forecast_documented_in_the_schema(model, anon_api):
    assert make_forecasts() == 0
    body = anon_api.get(f"/api/v1/models/{model.pk}/forecast/").json()
    assert body["hour"] is None and body["p50_ms"] is None and body["model"] == "openai/gpt-4o"
    schema = anon_api.get("/api/schema/", HTTP_ACCEPT="application/json").json()
    assert "/api/v1/models/{provider}/{model}/forecast/" in schema["paths"]
    assert "/api/v1/models/{provider}/{model}/slo/" in schema["paths"]


@pytest.mark.django_db
def test_the_slo_run_forecasts_once_an_hour_and_only_once_the_last_hours_rollups_are_final(model):
    import importlib

    from anomalies import latency_forecasts
    from anomalies.slo import run_slos

    hour = floor_hour(timezone.now())
    seed_hours(model, hour, 300.0, 900.0)  # up to the hour before this one
    # A freshly started process at hh:01: the last hour's rollups may still change, so no forecast yet.
    run_slos(hour + timedelta(minutes=1))
    assert not LatencyForecast.objects.exists()
    run_slos(hour + timedelta(minutes=6))
    assert LatencyForecast.objects.get(model=model).made_at == hour + timedelta(minutes=6)
    # Another process (its module state new) running the next round: the hour is forecast already.
    importlib.reload(latency_forecasts)
    run_slos(hour + timedelta(minutes=7))
    assert LatencyForecast.objects.get(model=model).made_at == hour + timedelta(minutes=6)
    # The next hour, once its last hour is final.
    CheckRollup.objects.create(model=model, period=Period.HOUR, bucket=hour, total=60, ok=60,
                               latency_p50_ms=300.0, latency_p95_ms=900.0)  # fmt: skip
    run_slos(hour + timedelta(minutes=62))
    assert LatencyForecast.objects.get(model=model).hour == target_hour(hour)
    run_slos(hour + timedelta(minutes=66))
    made = LatencyForecast.objects.get(model=model)
    assert made.made_at == hour + timedelta(minutes=66) and made.hour == target_hour(hour + timedelta(hours=1))


@pytest.mark.django_db
def test_the_newest_forecast_time_which_the_snapshot_reads_on_every_poll_is_indexed():
    from django.db import connection

    with connection.cursor() as cursor:
        constraints = connection.introspection.get_constraints(cursor, LatencyForecast._meta.db_table)
    assert any(c["index"] and c["columns"] == ["made_at"] for c in constraints.values())
