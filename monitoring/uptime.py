"""Daily uptime from the status history, weighted as Statuspage does (major 100 %, partial 30 %, degraded 0 %)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from datetime import UTC, date, datetime, timedelta

from django.db.models import OuterRef, Subquery

from monitoring.models import AIModel, StatusChange
from monitoring.status import Status

# Share of a period that counts as downtime, per status.
DOWNTIME_WEIGHT = {Status.MAJOR_OUTAGE: 1.0, Status.PARTIAL_OUTAGE: 0.3}
# Time without evidence or under maintenance is neither up nor down: it is left out of the ratio.
NOT_COUNTED = {Status.UNKNOWN, Status.UNDER_MAINTENANCE}


def midnight(moment: datetime) -> datetime:
    return moment.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)


def status_seconds_per_day(
    model_ids: Iterable[int],
    start: datetime,
    now: datetime,
    opening: dict[int, str] | None = None,
    created: dict[int, datetime] | None = None,
) -> tuple[dict[int, dict[date, dict[str, float]]], dict[int, str]]:
    """Seconds each model spent in each status, per UTC day, from `start` (a midnight) until `now`,
    and each model's status at `now`. `opening` (the statuses at `start`) and `created` spare queries
    when the caller knows them."""
    ids = list(model_ids)
    if opening is None or created is None:
        # The latest transition before the window is the highest id: ids are the order of transitions.
        before = StatusChange.objects.filter(model=OuterRef("pk"), at__lt=start).order_by("-id")
        rows = list(
            AIModel.objects.filter(pk__in=ids)
            .annotate(opening=Subquery(before.values("to_status")[:1]))
            .values_list("pk", "opening", "created_at")
        )
        opening = {pk: status for pk, status, _ in rows} if opening is None else opening
        created = {pk: created_at for pk, _, created_at in rows} if created is None else created
    changes = (
        StatusChange.objects.filter(model_id__in=ids, at__gte=start, at__lte=now)
        .order_by("model_id", "at", "id")
        .values_list("model_id", "at", "to_status")
    )
    timeline: dict[int, list[tuple[datetime, str]]] = defaultdict(list)
    for model_id, at, to_status in changes:
        timeline[model_id].append((at, to_status))

    result: dict[int, dict[date, dict[str, float]]] = {}
    closing: dict[int, str] = {}
    for model_id in ids:
        per_day: dict[date, dict[str, float]] = defaultdict(lambda: defaultdict(float))
        cursor = max(start, created.get(model_id) or start)
        status = opening.get(model_id) or Status.UNKNOWN
        for at, to_status in timeline.get(model_id, []):
            _spread(per_day, status, max(cursor, start), max(at, cursor))
            cursor, status = max(at, cursor), to_status
        _spread(per_day, status, max(cursor, start), max(now, cursor))
        result[model_id] = per_day
        closing[model_id] = status
    return result, closing


def _spread(per_day: dict, status: str, begin: datetime, end: datetime) -> None:
    while begin < end:
        day_end = midnight(begin) + timedelta(days=1)
        stop = min(end, day_end)
        per_day[begin.astimezone(UTC).date()][status] += (stop - begin).total_seconds()
        begin = stop


def downtime(seconds: dict[str, float]) -> float:
    return sum(seconds.get(status, 0.0) * weight for status, weight in DOWNTIME_WEIGHT.items())


def percent(down: float, counted: float) -> float | None:
    """Uptime in percent; None when the period holds no evidence at all."""
    if counted <= 0:
        return None
    return round(100.0 * max(0.0, 1 - down / counted), 3)


def uptime_percent(seconds: dict[str, float]) -> float | None:
    return percent(downtime(seconds), sum(s for status, s in seconds.items() if status not in NOT_COUNTED))


def daily_uptime(
    model_ids: Iterable[int],
    start: datetime,
    now: datetime,
    opening: dict[int, str] | None = None,
    created: dict[int, datetime] | None = None,
) -> dict[int, list[dict]]:
    """Per model, one entry per day from `start` (a midnight) to `now`, oldest first: the date, the
    uptime (None without evidence) and the seconds in each status."""
    return daily_uptime_and_closing(model_ids, start, now, opening, created)[0]


def daily_uptime_and_closing(
    model_ids: Iterable[int],
    start: datetime,
    now: datetime,
    opening: dict[int, str] | None = None,
    created: dict[int, datetime] | None = None,
) -> tuple[dict[int, list[dict]], dict[int, str]]:
    """daily_uptime, and each model's status at `now` (where the next window starts)."""
    start = midnight(start)
    seconds, closing = status_seconds_per_day(model_ids, start, now, opening, created)
    first = start.date()
    days = max(0, (midnight(now).date() - first).days + (1 if now > midnight(now) else 0))
    out: dict[int, list[dict]] = {}
    for model_id, per_day in seconds.items():
        entries = []
        for offset in range(days):
            day = first + timedelta(days=offset)
            s = per_day.get(day, {})
            entries.append(
                {
                    "date": day.isoformat(),
                    "uptime": uptime_percent(s),
                    "major_outage_s": round(s.get(Status.MAJOR_OUTAGE, 0.0)),
                    "partial_outage_s": round(s.get(Status.PARTIAL_OUTAGE, 0.0)),
                    "degraded_s": round(s.get(Status.DEGRADED_PERFORMANCE, 0.0)),
                    "maintenance_s": round(s.get(Status.UNDER_MAINTENANCE, 0.0)),
                    "unknown_s": round(s.get(Status.UNKNOWN, 0.0)),
                    # Unrounded, so that sums over days stay exact.
                    "counted_s": round(sum(v for k, v in s.items() if k not in NOT_COUNTED), 3),
                    "down_s": round(downtime(s), 3),
                }
            )
        out[model_id] = entries
    return out, closing
