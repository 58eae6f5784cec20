"""The one status snapshot: built once, versioned, shared by every locale, page and API.

The builder reads the registry, the statuses (as shown: stale evidence is `unknown`), 24 hours of
latency rollups, 90 days of status history, open incidents and maintenance windows, and returns
a JSON-ready document. Its version is the latest StatusChange sequence plus the build time.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta

import orjson
from django.conf import settings
from django.db import connections, router
from django.db.models import Max, Q
from django.utils import timezone

from anomalies.events import anomaly_data
from anomalies.forecast import minutes_to_cross
from anomalies.models import Anomaly, AnomalyEvent, BurnAlert, LatencyForecast, Metric, SeriesState
from collectors.models import Period
from collectors.rollup_reader import rollup_reader
from monitoring.incident_data import incident_data, public_incidents, with_models_and_updates
from monitoring.models import AIModel, Incident, IncidentUpdate, Maintenance, StatusChange, region_view
from monitoring.status import Status, page_indicator, shown_record, stale_after, worst_known
from monitoring.uptime import daily_uptime, daily_uptime_and_closing, midnight, percent
from publishing.read_scope import paused_since

UPTIME_DAYS = 90
# Even without a status change, a snapshot is rebuilt this often so history and latency stay fresh.
MAX_AGE = timedelta(seconds=60)
# Evidence that goes stale within this step is shown stale (unknown) already: when probing stops for
# every model (a broker outage), their statuses turn unknown in one new snapshot a second, rather than
# one each, which kept every process rebuilding and every page re-rendering for the whole wave.
STALE_STEP = timedelta(seconds=1)
RECENT_INCIDENT_DAYS = 14
# A model with fewer hours of latency than this also carries its last hour by minute (the page
# draws that instead of a 24-hour chart that is still mostly empty).
YOUNG_HOURS = 6


@dataclass(frozen=True, slots=True)
class Snapshot:
    version: str
    sequence: int
    built_at: datetime
    # The snapshot must be rebuilt by then: a shown status goes stale, or MAX_AGE passes.
    valid_until: datetime
    data: dict
    body: bytes
    # content_mark() as read before the build: a different mark means the snapshot is behind.
    mark: tuple = ()

    @property
    def etag(self) -> str:
        return f'"{self.version}"'


def latest_sequence() -> int:
    return StatusChange.objects.aggregate(latest=Max("id"))["latest"] or 0


def content_mark() -> tuple:
    """What a snapshot is built from, in one query: the latest sequence, and when the registry, incidents and
    maintenance windows last changed (with their counts, so a deletion counts too).

    Status changes announce themselves by sequence; an operator's incident, window or model edit does
    not, and without this it would reach the page only when the snapshot ages out (MAX_AGE).
    """

    sources = (StatusChange, AIModel, Incident, IncidentUpdate, Maintenance, BurnAlert, LatencyForecast, AnomalyEvent)
    tables = {m: m._meta.db_table for m in sources}
    parts = [
        f"(SELECT MAX(id) FROM {tables[StatusChange]})",
        f"(SELECT MAX(updated_at) FROM {tables[AIModel]})",
        f"(SELECT COUNT(*) FROM {tables[AIModel]})",
        f"(SELECT MAX(updated_at) FROM {tables[Incident]})",
        f"(SELECT COUNT(*) FROM {tables[Incident]})",
        f"(SELECT MAX(id) FROM {tables[IncidentUpdate]})",
        f"(SELECT MAX(updated_at) FROM {tables[Maintenance]})",
        f"(SELECT COUNT(*) FROM {tables[Maintenance]})",
        # A burn alert opening or ending, and the hour's new forecasts, show at once too (the budgets'
        # figures follow with the snapshot's age).
        f"(SELECT MAX(id) FROM {tables[BurnAlert]})",
        f"(SELECT COUNT(*) FROM {tables[BurnAlert]} WHERE ended_at IS NULL)",
        f"(SELECT MAX(made_at) FROM {tables[LatencyForecast]})",
        # An anomaly opening or closing shows on the page (the "unusual" mark) as soon as a status change
        # would. Last: the store reads the newest anomaly event from the end of the mark.
        f"(SELECT MAX(id) FROM {tables[AnomalyEvent]})",
    ]
    # Raw SQL passes no router by itself: ask it, so that a public read goes to a replica like the ORM's.
    with connections[router.db_for_read(StatusChange)].cursor() as cursor:
        cursor.execute("SELECT " + ", ".join(parts))
        row = cursor.fetchone()
    return (row[0] or 0, *row[1:])


def _latency(model_ids: list[int], now: datetime) -> dict[int, dict]:
    """Per model: 24 hours of hourly medians and, while a model has fewer than YOUNG_HOURS of those (its
    first hours), the last hour by minute, so that a new model shows a line rather than a dot."""
    since = (now - timedelta(hours=23)).replace(minute=0, second=0, microsecond=0)
    hours = [since + timedelta(hours=i) for i in range(24)]
    rows = rollup_reader().rows(Period.HOUR, since, ["ok", "latency_p50_ms", "latency_p95_ms"], model_ids)
    per_model: dict[int, dict[datetime, tuple]] = defaultdict(dict)
    for model_id, bucket, ok, p50, p95 in rows:
        per_model[model_id][bucket] = (ok, p50, p95)
    young = [i for i in model_ids if sum(v[1] is not None for v in per_model.get(i, {}).values()) < YOUNG_HOURS]
    per_minute = minute_rollups(young, now) if young else {}
    out = {}
    for model_id in model_ids:
        buckets = per_model.get(model_id, {})
        # Figures from the hours, else (the first hour) from the minutes seen so far.
        figures = buckets or per_minute.get(model_id, {})
        out[model_id] = {
            "p50_ms": _weighted([(ok, p50) for ok, p50, _ in figures.values()]),
            "p95_ms": _weighted([(ok, p95) for ok, _, p95 in figures.values()]),
            "hourly_p50_ms": [
                round(buckets[h][1], 1) if h in buckets and buckets[h][1] is not None else None for h in hours
            ],
        }
        if model_id in per_minute:
            out[model_id]["minutely_p50_ms"] = minute_medians(per_minute[model_id], now)
    return out


def minute_rollups(model_ids: list[int], now: datetime) -> dict[int, dict[datetime, tuple]]:
    """The last hour's minute rollups per model: {bucket: (answered, p50, p95)}."""
    since = (now - timedelta(minutes=59)).replace(second=0, microsecond=0)
    rows = rollup_reader().rows(Period.MINUTE, since, ["ok", "latency_p50_ms", "latency_p95_ms"], model_ids)
    out: dict[int, dict[datetime, tuple]] = defaultdict(dict)
    for model_id, bucket, ok, p50, p95 in rows:
        out[model_id][bucket] = (ok, p50, p95)
    return out


def minute_medians(buckets: dict[datetime, tuple], now: datetime) -> list[float | None]:
    """The median latency of each of the last 60 minutes, oldest first; None for a minute without data."""
    since = (now - timedelta(minutes=59)).replace(second=0, microsecond=0)
    minutes = [since + timedelta(minutes=i) for i in range(60)]
    return [round(buckets[m][1], 1) if m in buckets and buckets[m][1] is not None else None for m in minutes]


def _weighted(pairs: list[tuple[int, float | None]]) -> float | None:
    """Average of hourly figures weighted by their answered requests (an approximation, like the rollups)."""
    pairs = [(n, v) for n, v in pairs if v is not None and n]
    weight = sum(n for n, _ in pairs)
    return round(sum(n * v for n, v in pairs) / weight, 1) if weight else None


# Closed days do not change once their history is written, so they are computed once per process
# (and shared through the cache), already in the page's compact form, and each build adds only
# today. The key holds the last transition before today: a late entry into a past day makes a new
# key. A model new since then is computed on its own.
_closed_days: dict[str, dict[int, dict]] = {}


def _summarise(days: list[dict]) -> dict:
    return {
        "first_day": days[0]["date"] if days else None,
        "days": [_compact_day(day) for day in days],
        "counted_s": sum(d["counted_s"] for d in days),
        "down_s": sum(d["down_s"] for d in days),
    }


def _uptime(ids: list[int], now: datetime, created: dict[int, datetime]) -> dict[int, dict]:
    """Per model: {"percent_90d", "first_day", "days"} as the snapshot carries it."""
    from django.core.cache import cache

    today = midnight(now)
    last_before = StatusChange.objects.filter(at__lt=today).aggregate(last=Max("id"))["last"] or 0
    key = f"uptime:closed:v3:{today.date().isoformat()}:{UPTIME_DAYS}:{last_before}"
    closed = _closed_days.get(key)
    if closed is None:
        try:
            closed = cache.get(key) or {}
        except Exception:  # Redis away: compute here
            closed = {}
        _closed_days.clear()
        _closed_days[key] = closed
    missing = [i for i in ids if i not in closed]
    if missing:
        computed, closing = daily_uptime_and_closing(missing, today - timedelta(days=UPTIME_DAYS - 1), today)
        closed.update({i: {**_summarise(days), "closing": closing[i]} for i, days in computed.items()})
        try:
            cache.set(key, closed, 86400 + 3600)
        except Exception:  # Redis away: this process keeps its own copy
            pass
    # Today starts where the closed days ended: no query for the statuses at midnight.
    opening = {i: closed[i]["closing"] for i in ids}
    current = {i: _summarise(days) for i, days in daily_uptime(ids, today, now, opening, created).items()}
    out = {}
    for i in ids:
        past, now_ = closed[i], current[i]
        out[i] = {
            "percent_90d": percent(past["down_s"] + now_["down_s"], past["counted_s"] + now_["counted_s"]),
            "first_day": past["first_day"] or now_["first_day"],
            "days": past["days"] + now_["days"],
        }
    return out


# Hourly latency changes when the rollups move (about once a minute), not with every status change.
_latency_cache: dict[tuple, dict[int, dict]] = {}


def _latency_cached(ids: list[int], now: datetime) -> dict[int, dict]:

    hour = now.replace(minute=0, second=0, microsecond=0)
    minute = now.replace(second=0, microsecond=0)
    reader = rollup_reader()
    marks = (
        reader.mark(Period.HOUR, hour - timedelta(hours=23)),
        reader.mark(Period.MINUTE, minute - timedelta(minutes=59)),
    )
    key = (hour, *marks, tuple(ids))
    cached = _latency_cache.get(key)
    if cached is None:
        cached = _latency(ids, now)
        _latency_cache.clear()
        _latency_cache[key] = cached
    return cached


# Minutes of minute rollups the latency trend is fitted on; recomputed when those rollups move.
TREND_MINUTES = 30
_trend_cache: dict[tuple, dict[int, int]] = {}


def _threshold_crossings(thresholds: dict[int, int], now: datetime) -> dict[int, int]:
    """Per model whose median latency is rising: whole minutes until the trend of the last TREND_MINUTES
    crosses its latency threshold, when that is within the hour."""
    minute = now.replace(second=0, microsecond=0)
    since = minute - timedelta(minutes=TREND_MINUTES - 1)
    reader = rollup_reader()
    key = (minute, reader.mark(Period.MINUTE, since), tuple(sorted(thresholds.items())))
    cached = _trend_cache.get(key)
    if cached is not None:
        return cached
    points: dict[int, list[tuple[float, float]]] = defaultdict(list)
    for model_id, bucket, p50 in reader.rows(Period.MINUTE, since, ["latency_p50_ms"], list(thresholds)):
        if p50 is not None:
            points[model_id].append(((bucket - minute).total_seconds() / 60.0, p50))
    out = {}
    for model_id, series in points.items():
        minutes = minutes_to_cross(series, thresholds[model_id])
        if minutes is not None:
            out[model_id] = max(1, round(minutes))
    _trend_cache.clear()
    _trend_cache[key] = out
    return out


def _incidents(now: datetime) -> list[dict]:
    recent = Q(resolved_at__isnull=True) | Q(resolved_at__gte=now - timedelta(days=RECENT_INCIDENT_DAYS))
    incidents = with_models_and_updates(public_incidents(Incident.objects.filter(recent))).order_by("-started_at")
    return [incident_data(incident) for incident in incidents]


def _maintenances(now: datetime, public_models: dict[int, str], by_provider: dict[int, list[str]]) -> list[dict]:
    """Windows in progress or starting within 30 days; each repetition of a recurring window apart."""
    out = []
    for occurrence in Maintenance.upcoming(now, days=30):
        window = occurrence.maintenance
        models = [public_models[m.pk] for m in window.target_models() if m.pk in public_models]
        if window.provider_id:
            models += by_provider.get(window.provider_id, [])
        out.append(
            {
                "id": window.pk,
                "title": window.title,
                "description": window.description,
                "starts_at": occurrence.starts_at,
                "ends_at": occurrence.ends_at,
                "status": occurrence.status(now),
                "active": occurrence.status(now) == "in_progress",
                "recurring": bool(window.recurrence),
                "provider": window.provider.slug if window.provider else None,
                "models": sorted(set(models)),
            }
        )
    return out


def _anomalies(ids: list[int], now: datetime) -> dict[int, dict]:
    """Per model: its open anomalies, those of the last 24 hours (the charts mark them), and the expected
    latency and TTFT bands (the charts draw them), from the series learned in the default region first."""
    out: dict[int, dict] = {i: {"open": [], "recent": [], "expected": {}} for i in ids}
    recent = Anomaly.objects.filter(model_id__in=ids).filter(
        Q(ended_at__isnull=True) | Q(ended_at__gte=now - timedelta(hours=24))
    )
    for anomaly in recent.order_by("started_at"):
        data = anomaly_data(anomaly)
        out[anomaly.model_id]["recent"].append(data)
        if anomaly.ended_at is None:
            out[anomaly.model_id]["open"].append(data)
    bands = (
        SeriesState.objects.filter(
            model_id__in=ids, metric__in=[Metric.LATENCY, Metric.TTFT], learning=False, expected_high__isnull=False
        )
        .order_by("model_id", "metric", "region")
        .values_list("model_id", "metric", "region", "expected_low", "expected_high")
    )
    for model_id, metric, region, low, high in bands:
        expected = out[model_id]["expected"]
        if metric not in expected or region == "default":
            expected[metric] = [round(max(low, 0.0), 1), round(high, 1)]
    return out


SNAPSHOT_SLO_FIELDS = ("model_id", "availability_target", "latency_objective_ms", "availability_budget_left")
SNAPSHOT_SLO_FIELDS += ("latency_budget_left", "evidence_since", "burning", "updated_at")
SNAPSHOT_FORECAST_FIELDS = ("model_id", "hour", "p50_ms", "p50_low_ms", "p50_high_ms", "p95_ms", "p95_low_ms")
SNAPSHOT_FORECAST_FIELDS += ("p95_high_ms",)


def _objectives(model: AIModel, now: datetime) -> tuple[dict | None, dict | None]:
    """The model's latency forecast for the coming hour, and its objectives' error budgets left with the
    burn-rate alerts open (as the last SLO run left them); read with the model (select_related)."""
    forecast = objectives = None
    f = getattr(model, "latency_forecast", None)
    if f is not None and f.hour > now - timedelta(hours=1):
        forecast = {
            "hour": f.hour,
            "p50_ms": [round(f.p50_ms, 1), round(f.p50_low_ms, 1), round(f.p50_high_ms, 1)],
            "p95_ms": [round(f.p95_ms, 1), round(f.p95_low_ms, 1), round(f.p95_high_ms, 1)],
        }
    status = getattr(model, "slo_status", None)
    if status is not None:
        # Should the SLO task stop, its last figures and alerts would be served as current for ever: past
        # ten runs (five minutes at the least) they are shown as unknown, with when they were worked out.
        stale = now - status.updated_at > max(timedelta(minutes=5), 10 * timedelta(seconds=settings.SLO_RUN_SECONDS))
        objectives = {
            "availability_percent": round(status.availability_target * 100, 3),
            "latency_objective_ms": status.latency_objective_ms,
            "availability_budget_left": None if stale else status.availability_budget_left,
            "latency_budget_left": None if stale else status.latency_budget_left,
            "evidence_since": None if stale else status.evidence_since,
            "burning": [] if stale else status.burning,
            "updated_at": status.updated_at,
            "stale": stale,
        }
    return forecast, objectives


def _compact_day(day: dict) -> float | list | None:
    """A day as the page draws it: null (no evidence), the uptime alone, or [uptime, major s, partial s, degraded s]."""
    if day["uptime"] is None:
        return None
    figures = [day["major_outage_s"], day["partial_outage_s"], day["degraded_s"]]
    return day["uptime"] if not any(figures) else [day["uptime"], *figures]


def build_snapshot(now: datetime | None = None) -> Snapshot:
    """Build the public document from the database. Every public model appears, with or without evidence."""
    mark = content_mark()  # read first: the snapshot is at least this fresh
    sequence = mark[0]
    now = now or timezone.now()
    models = list(
        AIModel.objects.filter(public=True)
        .select_related("provider", "status_row", "slo_status", "latency_forecast")
        # Only what the page shows: probe settings (JSON among them) stay unread.
        .only(
            *("id", "slug", "name", "kind", "description", "created_at", "interval_seconds", "provider_id"),
            *("probe_kind", "latency_threshold_ms", "ttft_threshold_ms", "display_order", "enabled"),
            *("provider__slug", "provider__name", "provider__url", "provider__created_at"),
            *("status_row__status", "status_row__since", "status_row__last_checked_at"),
            *("status_row__message", "status_row__manual", "status_row__model_id", "status_row__last_latency_ms"),
            *(f"slo_status__{name}" for name in SNAPSHOT_SLO_FIELDS),
            *(f"latency_forecast__{name}" for name in SNAPSHOT_FORECAST_FIELDS),
        )
        .prefetch_related("region_statuses")
        .order_by("provider__display_order", "provider__name", "display_order", "name")
    )
    ids = [m.pk for m in models]
    latency = _latency_cached(ids, now)
    uptime = _uptime(ids, now, {m.pk: m.created_at for m in models})
    anomalies = _anomalies(ids, now)
    crossings = _threshold_crossings({m.pk: m.latency_threshold_ms for m in models}, now)
    valid_until = now + MAX_AGE
    horizon = now + STALE_STEP
    counts = dict.fromkeys(Status.values, 0)
    providers: dict[int, dict] = {}
    by_provider: dict[int, list[str]] = defaultdict(list)
    items = []
    for model in models:
        row = model.status_row
        status, since, reason = model.shown_record(horizon)
        since = min(since, now)
        if status == row.status and not row.manual and row.last_checked_at and status != Status.UNKNOWN:
            valid_until = min(valid_until, row.last_checked_at + stale_after(model.interval_seconds))
        regions = model.shown_regions(horizon)
        for region in regions:
            if region["status"] != Status.UNKNOWN:  # a region going stale changes what the page shows
                valid_until = min(valid_until, region["last_checked_at"] + stale_after(model.interval_seconds))
        counts[status] += 1
        forecast, objectives = _objectives(model, now)
        provider = providers.setdefault(
            model.provider_id,
            {
                "slug": model.provider.slug,
                "name": model.provider.name,
                "url": model.provider.url,
                "created_at": model.provider.created_at,
                "statuses": [],
                "model_count": 0,
                "unknown_count": 0,
            },
        )
        provider["model_count"] += 1
        provider["unknown_count"] += status == Status.UNKNOWN
        provider["statuses"].append(status)
        by_provider[model.provider_id].append(model.public_slug)
        items.append(
            {
                "id": model.pk,
                "slug": model.public_slug,
                "provider": model.provider.slug,
                "model": model.slug,
                "name": model.name,
                "kind": model.kind,
                "description": model.description,
                "created_at": model.created_at,
                "status": status,
                "since": since,
                "last_checked_at": row.last_checked_at,
                "message": reason,
                "manual": row.manual,
                "interval_seconds": model.interval_seconds,
                # The rest of the registry's public fields, so /api/v1/models/ renders from here too.
                "provider_name": model.provider.name,
                "probe_kind": model.probe_kind,
                "latency_threshold_ms": model.latency_threshold_ms,
                "ttft_threshold_ms": model.ttft_threshold_ms,
                "display_order": model.display_order,
                "enabled": model.enabled,
                "last_latency_ms": row.last_latency_ms,
                "latency": latency[model.pk],
                "uptime": uptime[model.pk],
                "regions": regions,
                # Open anomalies: the "unusual" mark beside the status (never the status itself).
                "unusual": anomalies[model.pk]["open"],
                "anomalies": anomalies[model.pk]["recent"],
                "expected": anomalies[model.pk]["expected"],
                # The latency trend of the last half hour reaches the threshold in about this many minutes.
                "threshold_crossing_minutes": crossings.get(model.pk),
                # The next hour's latency, [forecast, low, high] (80 %), and the objectives' budgets left.
                "forecast": forecast,
                "slo": objectives,
            }
        )
    for provider in providers.values():
        provider["status"] = worst_known(provider.pop("statuses"))
    public_models = {m.pk: m.public_slug for m in models}
    data = {
        "version": f"{sequence}.{int(now.timestamp() * 1000)}",
        "sequence": sequence,
        "built_at": now,
        "page": {
            "indicator": page_indicator(counts),
            "counts": counts,
            "model_count": len(models),
            "unknown_count": counts[Status.UNKNOWN],
            "site_name": settings.SITE_NAME,
            # Set while the primary is down: the page says since when no update could be recorded.
            "updates_paused_since": paused_since(),
        },
        # Models arrive in page order, so providers keep the order of their first model.
        "providers": [{**p, "id": pk} for pk, p in providers.items()],
        "models": items,
        "incidents": _incidents(now),
        "maintenances": _maintenances(now, public_models, by_provider),
    }
    # orjson: the document is about 1 MB at 1,000 models, and the standard encoder alone would take
    # half the build. Parsing it back gives every reader the same JSON-native values.
    body = orjson.dumps(data, option=orjson.OPT_UTC_Z)
    return Snapshot(data["version"], sequence, now, valid_until, orjson.loads(body), body, mark)


def _moment(value) -> datetime | None:
    return datetime.fromisoformat(value) if isinstance(value, str) else value


def aged_snapshot(snapshot: Snapshot, now: datetime | None = None) -> Snapshot:
    """The snapshot as it may still be shown at `now` without the database: statuses whose evidence went
    stale since the build turn `unknown` (the rule of every read), everything else as built.

    Used when the snapshot is due (valid_until passed) but no new one can be built: the database is down
    or not answering. Serving the old document as it is would keep showing `operational` for models
    nobody has been able to probe; the page may be behind on everything else, never on that.
    """
    now = now or timezone.now()
    if now < snapshot.valid_until:
        return snapshot
    data = orjson.loads(snapshot.body)  # a copy: the old document stays as readers got it
    valid_until = now + MAX_AGE
    horizon = now + STALE_STEP
    counts = dict.fromkeys(Status.values, 0)
    by_provider: dict[str, list[str]] = defaultdict(list)
    for item in data["models"]:
        checked, interval = _moment(item["last_checked_at"]), item["interval_seconds"]
        status, since, message = shown_record(
            item["status"],
            _moment(item["since"]),
            item["message"],
            last_checked_at=checked,
            interval_seconds=interval,
            manual=item["manual"],
            now=horizon,
        )
        if status != item["status"]:
            item.update(status=status, since=min(since, now), message=message)
        elif status != Status.UNKNOWN and not item["manual"] and checked:
            valid_until = min(valid_until, checked + stale_after(interval))
        for region in item["regions"]:
            if region["status"] == Status.UNKNOWN:
                continue
            region_checked = _moment(region["last_checked_at"])
            region.update(
                region_view(
                    region["region"],
                    region["status"],
                    region_checked,
                    region["last_latency_ms"],
                    region["message"],
                    interval_seconds=interval,
                    now=horizon,
                )
            )
            if region["status"] != Status.UNKNOWN:
                valid_until = min(valid_until, region_checked + stale_after(interval))
        counts[item["status"]] += 1
        by_provider[item["provider"]].append(item["status"])
    for provider in data["providers"]:
        statuses = by_provider.get(provider["slug"], [])
        provider["unknown_count"] = statuses.count(Status.UNKNOWN)
        provider["status"] = worst_known(statuses)
    data["page"].update(indicator=page_indicator(counts), counts=counts, unknown_count=counts[Status.UNKNOWN])
    # A version of its own: the edge's bytes and the live clients' copies of the old one are behind.
    data["version"] = f"{snapshot.sequence}.{int(now.timestamp() * 1000)}"
    body = orjson.dumps(data, option=orjson.OPT_UTC_Z)
    version, sequence = data["version"], snapshot.sequence
    return Snapshot(version, sequence, snapshot.built_at, valid_until, orjson.loads(body), body, snapshot.mark)
