"""Per-minute, per-hour and per-day rollups of check results, kept incrementally, and retention.

Minutes are computed from raw results (exact percentiles); hours from minutes and days from hours
(counts summed, maxima kept, percentiles averaged weighted by count: an approximation that keeps
each step cheap). A bucket is final once `ROLLUP_GRACE` has passed after its end; results that
arrive later (pushed, or spooled during a database outage) move the cursor back, and the buckets
they fall in are computed again.
"""

from __future__ import annotations

import statistics
from collections import defaultdict
from datetime import UTC, datetime, timedelta

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Min
from django.utils import timezone

from collectors.models import CheckResult, CheckRollup, Period, RollupCursor

OUTCOMES = ["ok", "provider_fault", "probe_fault", "rate_limited", "timeout", "broken_stream"]
FIGURES = ["total", *OUTCOMES, "latency_p50_ms", "latency_p95_ms", "latency_max_ms"]
STEP = {Period.MINUTE: timedelta(minutes=1), Period.HOUR: timedelta(hours=1), Period.DAY: timedelta(days=1)}
SOURCE = {Period.HOUR: Period.MINUTE, Period.DAY: Period.HOUR}
# At most this much raw time per run, so a long backlog is worked off in bounded steps.
MAX_RAW_SPAN = timedelta(hours=2)


def floor(moment: datetime, period: str) -> datetime:
    moment = moment.astimezone(UTC).replace(second=0, microsecond=0)
    if period in (Period.HOUR, Period.DAY):
        moment = moment.replace(minute=0)
    if period == Period.DAY:
        moment = moment.replace(hour=0)
    return moment


def _cursor(period: str, default: datetime) -> RollupCursor:
    cursor, _ = RollupCursor.objects.get_or_create(period=period, defaults={"complete_until": default})
    return cursor


def _minute_rows_sql(start: datetime, end: datetime) -> list[dict]:
    counts = ", ".join(f"COUNT(*) FILTER (WHERE outcome = '{o}')" for o in OUTCOMES)
    ok_latency = "latency_ms) FILTER (WHERE outcome = 'ok' AND latency_ms IS NOT NULL)"
    sql = f"""
        SELECT model_id, date_trunc('minute', time) AS bucket, COUNT(*), {counts},
               percentile_cont(0.5) WITHIN GROUP (ORDER BY {ok_latency},
               percentile_cont(0.95) WITHIN GROUP (ORDER BY {ok_latency},
               MAX({ok_latency}
        FROM {CheckResult._meta.db_table}
        WHERE time >= %s AND time < %s
        GROUP BY model_id, bucket
    """
    with connection.cursor() as cursor:
        cursor.execute(sql, [start, end])
        return [dict(zip(["model_id", "bucket", *FIGURES], row, strict=True)) for row in cursor.fetchall()]


def _percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[round(q * 100) - 1]


def _minute_rows_python(start: datetime, end: datetime) -> list[dict]:
    groups: dict[tuple[int, datetime], dict] = {}
    latencies: dict[tuple[int, datetime], list[float]] = defaultdict(list)
    results = CheckResult.objects.filter(time__gte=start, time__lt=end).values_list(
        "model_id", "time", "outcome", "latency_ms"
    )
    for model_id, time, outcome, latency in results.iterator(chunk_size=5000):
        key = (model_id, floor(time, Period.MINUTE))
        row = groups.setdefault(key, {"model_id": model_id, "bucket": key[1], "total": 0, **dict.fromkeys(OUTCOMES, 0)})
        row["total"] += 1
        row[outcome] += 1
        if outcome == "ok" and latency is not None:
            latencies[key].append(latency)
    for key, row in groups.items():
        values = sorted(latencies[key])
        row["latency_p50_ms"] = _percentile(values, 0.5)
        row["latency_p95_ms"] = _percentile(values, 0.95)
        row["latency_max_ms"] = values[-1] if values else None
    return list(groups.values())


def _coarser_rows(period: str, start: datetime, end: datetime) -> list[dict]:
    groups: dict[tuple[int, datetime], dict] = {}
    finer = CheckRollup.objects.filter(period=SOURCE[period], bucket__gte=start, bucket__lt=end)
    for r in finer.values("model_id", "bucket", *FIGURES).iterator(chunk_size=5000):
        key = (r["model_id"], floor(r["bucket"], period))
        row = groups.setdefault(
            key, {"model_id": key[0], "bucket": key[1], **dict.fromkeys(["total", *OUTCOMES], 0), "_w": []}
        )
        for name in ["total", *OUTCOMES]:
            row[name] += r[name]
        if r["latency_p50_ms"] is not None:
            row["_w"].append((r["ok"], r["latency_p50_ms"], r["latency_p95_ms"], r["latency_max_ms"]))
    for row in groups.values():
        weighted = row.pop("_w")
        weight = sum(w for w, *_ in weighted) or None
        row["latency_p50_ms"] = sum(w * p50 for w, p50, _, _ in weighted) / weight if weight else None
        row["latency_p95_ms"] = sum(w * p95 for w, _, p95, _ in weighted) / weight if weight else None
        row["latency_max_ms"] = max((m for *_, m in weighted), default=None)
    return list(groups.values())


def _upsert(period: str, rows: list[dict], start: datetime, end: datetime) -> None:
    # Buckets in [start, end) are replaced whole: a bucket with no results left is removed too.
    CheckRollup.objects.filter(period=period, bucket__gte=start, bucket__lt=end).delete()
    CheckRollup.objects.bulk_create([CheckRollup(period=period, **row) for row in rows], batch_size=2000)


def update_rollups(now: datetime | None = None) -> dict[str, int]:
    """Bring every period's rollups up to date. Returns how many buckets each period wrote."""
    now = now or timezone.now()
    written: dict[str, int] = {}
    grace = timedelta(seconds=settings.ROLLUP_GRACE_SECONDS)
    first = CheckResult.objects.aggregate(first=Min("time"))["first"] or now
    limit = floor(now - grace, Period.MINUTE)
    for period in (Period.MINUTE, Period.HOUR, Period.DAY):
        with transaction.atomic():
            cursor = _cursor(period, floor(first, period))
            RollupCursor.objects.select_for_update().filter(pk=cursor.pk).first()  # one updater at a time
            cursor.refresh_from_db()
            start = floor(cursor.complete_until, period)
            if period == Period.MINUTE:
                end = min(limit, start + MAX_RAW_SPAN)
            else:
                # Recompute the current (unfinished) hour or day too, so the page sees today's figures.
                finer_until = RollupCursor.objects.get(period=SOURCE[period]).complete_until
                end = floor(finer_until, period) + STEP[period]
            if end <= start:
                written[period] = 0
                continue
            rows = (
                (_minute_rows_sql if connection.vendor == "postgresql" else _minute_rows_python)(start, end)
                if period == Period.MINUTE
                else _coarser_rows(period, start, end)
            )
            _upsert(period, rows, start, end)
            complete = end if period == Period.MINUTE else floor(finer_until, period)
            RollupCursor.objects.filter(pk=cursor.pk).update(complete_until=complete)
            written[period] = len(rows)
    return written


def apply_retention(now: datetime | None = None) -> dict[str, int]:
    """Delete raw results and rollups older than their retention settings."""
    now = now or timezone.now()
    keep = {
        "raw": settings.RESULT_RETENTION_DAYS,
        Period.MINUTE: settings.MINUTE_ROLLUP_RETENTION_DAYS,
        Period.HOUR: settings.HOUR_ROLLUP_RETENTION_DAYS,
        Period.DAY: settings.DAY_ROLLUP_RETENTION_DAYS,
    }
    deleted = {"raw": CheckResult.objects.filter(time__lt=now - timedelta(days=keep["raw"])).delete()[0]}
    for period in (Period.MINUTE, Period.HOUR, Period.DAY):
        old = CheckRollup.objects.filter(period=period, bucket__lt=now - timedelta(days=keep[period]))
        deleted[period] = old.delete()[0]
    return deleted
