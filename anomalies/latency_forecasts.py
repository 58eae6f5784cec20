"""Each model's latency forecast for the next hour, made from the hourly rollups once an hour.

The forecast is for the clock hour after the current one (at 10:40, for 11:00 to 12:00), made from
the complete hours up to the last one (09:00 to 10:00): two hourly steps ahead. Hours are final a few
minutes after they end (the rollups' grace), so a new hour's forecasts wait for MADE_AFTER. The SLO run
makes them, under its lock, and keeps the hour forecast on its cursor row: once an hour in all.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from django.conf import settings
from django.utils import timezone

from anomalies.forecast import forecast_ahead
from anomalies.models import LatencyForecast
from anomalies.slo_counts import floor_hour
from collectors.models import Period
from collectors.rollup_reader import rollup_reader
from monitoring.models import AIModel

STEPS = 2
MADE_AFTER = timedelta(minutes=5)


def target_hour(now: datetime) -> datetime:
    return floor_hour(now) + timedelta(hours=1)


def due(now: datetime, made_for: datetime | None) -> bool:
    """Whether the coming hour is still to forecast, `made_for` being the hour forecast last (kept on the
    SLO cursor row, so one process forecasts once an hour), and the last hour's rollups final."""
    return made_for != target_hour(now) and now - floor_hour(now) >= MADE_AFTER


def hourly_series(model_ids: list[int], now: datetime) -> dict[int, dict[str, list[float | None]]]:
    """Per model, the p50 and p95 of each complete hour of the history, oldest first (None: no answer)."""
    last = floor_hour(now) - timedelta(hours=1)
    since = last - timedelta(days=settings.FORECAST_HISTORY_DAYS)
    hours = int((last - since) / timedelta(hours=1)) + 1
    series = {i: {"p50": [None] * hours, "p95": [None] * hours} for i in model_ids}
    rows = rollup_reader().rows(Period.HOUR, since, ["ok", "latency_p50_ms", "latency_p95_ms"], model_ids)
    for model_id, bucket, ok, p50, p95 in rows:
        index = int((bucket - since) / timedelta(hours=1))
        if 0 <= index < hours and ok:
            series[model_id]["p50"][index] = p50
            series[model_id]["p95"][index] = p95
    return series


def make_forecasts(now: datetime | None = None) -> int:
    """Forecast the coming hour for every enabled model with enough history; drop the others' old ones."""
    now = now or timezone.now()
    ids = list(AIModel.objects.filter(enabled=True).values_list("pk", flat=True))
    made = []
    for model_id, series in hourly_series(ids, now).items():
        p50, p95 = forecast_ahead(series["p50"], STEPS), forecast_ahead(series["p95"], STEPS)
        if p50 is None or p95 is None:
            continue
        made.append(
            LatencyForecast(
                model_id=model_id,
                hour=target_hour(now),
                p50_ms=p50.value,
                p50_low_ms=p50.low,
                p50_high_ms=p50.high,
                p95_ms=p95.value,
                p95_low_ms=p95.low,
                p95_high_ms=p95.high,
                method=p95.method,
                errors=min(p50.errors, p95.errors),
                made_at=now,
            )
        )
    LatencyForecast.objects.exclude(model_id__in=[f.model_id for f in made]).delete()
    fields = [f.name for f in LatencyForecast._meta.concrete_fields if f.name not in ("id", "model")]
    LatencyForecast.objects.bulk_create(made, update_conflicts=True, unique_fields=["model"], update_fields=fields)
    return len(made)


def current(model_ids: list[int], now: datetime) -> dict[int, LatencyForecast]:
    """The forecasts still ahead (their hour not over), by model."""
    rows = LatencyForecast.objects.filter(model_id__in=model_ids, hour__gt=now - timedelta(hours=1))
    return {row.model_id: row for row in rows}
