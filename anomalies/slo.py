"""Service level objectives: the error budget left over the window and multiwindow burn-rate alerts.

Each model has two objectives (monitoring.AIModel): availability (`slo_availability_percent` of the
counted probes answered) and latency (95 % of answered probes under `latency_objective_ms`, time to
first token). Events are counted by anomalies.slo_counts. Over the window (SLO_WINDOW_DAYS):

    allowed bad events = (1 - target) x events;  budget left = 1 - bad / allowed

1 is an untouched budget, 0 a spent one, below 0 an overspent one; without any counted event it is
unknown (null), never full. The burn rate of a window is its bad fraction over (1 - target): 1 spends
the budget exactly over the window. The Google SRE workbook's multiwindow rules open a burn alert:
fast when the last hour and the last 5 minutes both burn at SLO_FAST_BURN (14.4: 2 % of a 30-day budget
in an hour) or more, slow when the last 6 hours and 30 minutes both burn at SLO_SLOW_BURN (6: 5 % in
6 hours) or more. A window without a counted event burns nothing. An alert is one episode: it ends
when its long window falls under the rate, and the short window dipping and rising again meanwhile
opens nothing new. Fast and slow are separate rules, as in the workbook (a page and a ticket). A rule
also takes at least max(SLO_MIN_BAD_EVENTS, the model's failures_to_confirm) bad events in its long
window: at a probe a minute a single failure would otherwise open a fast burn.
"""

from __future__ import annotations

import secrets
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Max, Min, Q, Sum
from django.utils import timezone

from anomalies import latency_forecasts, slo_counts
from anomalies.models import BurnAlert, Sli, SloCount, SloCursor, SloStatus
from monitoring.models import AIModel

LATENCY_TARGET = 0.95  # the objective is on the 95th percentile
WINDOWS = {"5m": timedelta(minutes=5), "30m": timedelta(minutes=30), "1h": timedelta(hours=1), "6h": timedelta(hours=6)}
# (speed, long window, short window, setting holding the rate)
RULES = [
    (BurnAlert.Speed.FAST, "1h", "5m", "SLO_FAST_BURN"),
    (BurnAlert.Speed.SLOW, "6h", "30m", "SLO_SLOW_BURN"),
]
MIN_MINUTES_KEPT_HOURS = 7
# Hours of stored history counted per run after the first (a database with history before any run).
BACKFILL_HOURS = 6
BAD = {Sli.AVAILABILITY: "failed", Sli.LATENCY: "slow"}
GOOD = {Sli.AVAILABILITY: "answered", Sli.LATENCY: "fast"}


def budget_left(bad: int, events: int, target: float) -> float | None:
    """1 - bad / ((1 - target) x events); None without events."""
    if not events:
        return None
    return 1.0 - bad / ((1.0 - target) * events)


def burn_rate(bad: int, events: int, target: float) -> float | None:
    """How many times faster than sustainable the budget burns: (bad / events) / (1 - target)."""
    if not events:
        return None
    return (bad / events) / (1.0 - target)


@dataclass
class SloRun:
    counted: int = 0
    folded: int = 0
    opened: list[int] = field(default_factory=list)
    closed: list[int] = field(default_factory=list)
    skipped: bool = False
    backfilling: bool = False  # older hours of the window still to count
    forecasts: int | None = None  # latency forecasts made (None: not this run)


def _late_margin() -> timedelta:
    """How far before the last run results are counted again. A result is stamped with its probe's start
    and written when the probe ends, up to the longest timeout later, so the margin covers the longest
    enabled timeout, a run's interval and a minute of writing. Spooled results and agent batches
    arriving later still are not counted (see the README)."""
    longest = AIModel.objects.filter(enabled=True).aggregate(longest=Max("timeout_seconds"))["longest"] or 0
    reach = timedelta(seconds=longest + settings.SLO_RUN_SECONDS + 60)
    return max(timedelta(seconds=settings.SLO_LATE_SECONDS), reach)


def _hours_changed(cursor: SloCursor) -> None:
    # A new random mark rather than a count: a cursor row made afresh (a database reset) never repeats a
    # mark some process still holds totals for.
    cursor.hours_version = secrets.randbits(62)


def _count(cursor: SloCursor, now: datetime, run: SloRun) -> None:
    # The 6-hour window is read from minutes: they are kept at least an hour longer than that.
    kept = max(settings.SLO_MINUTES_KEPT_HOURS, MIN_MINUTES_KEPT_HOURS)
    keep_from = slo_counts.floor_hour(now - timedelta(hours=kept))
    start = slo_counts.window_start(now, settings.SLO_WINDOW_DAYS)
    end = slo_counts.floor_minute(now) + timedelta(minutes=1)
    if cursor.counted_until is None:
        # No run yet on this database: count the minutes still kept; the older hours follow, a few a run.
        run.counted += slo_counts.recount(max(start, keep_from), end, 1)
        cursor.hours_counted_from = max(start, keep_from)
        _hours_changed(cursor)
    else:
        since = slo_counts.floor_minute(cursor.counted_until - _late_margin())
        run.counted += slo_counts.recount(max(since, start), end, 1)
        run.folded = slo_counts.fold_minutes(keep_from)
        if run.folded:
            _hours_changed(cursor)
    if cursor.hours_counted_from is not None and cursor.hours_counted_from > start:
        # The stored history before the first run, counted back BACKFILL_HOURS at a time (hours already
        # folded from minutes start at or after the first run's mark, so none is counted twice).
        since = max(start, cursor.hours_counted_from - timedelta(hours=BACKFILL_HOURS))
        run.counted += slo_counts.recount(since, cursor.hours_counted_from, 60)
        cursor.hours_counted_from = since
        _hours_changed(cursor)
    run.backfilling = cursor.hours_counted_from is not None and cursor.hours_counted_from > start
    slo_counts.forget_before(start)


# The whole window's hour totals per model, as this process last read them: {"key": (hours_version,
# window start), "sums": {model id: {figure: total, "first": first hour}}}. Hour rows change only when
# minutes fold or history is counted back (each gives the cursor a new hours_version) and when the window's
# start moves (the key): most runs read minute rows only.
_hour_totals: dict = {}


def _hours(cursor: SloCursor, start: datetime) -> dict[int, dict]:
    key = (cursor.hours_version, start)
    if _hour_totals.get("key") == key:
        return _hour_totals["sums"]
    figures = slo_counts.FIGURES
    rows = (
        SloCount.objects.filter(minutes=60, start__gte=start)
        .values("model_id")
        .annotate(first=Min("start"), **{f: Sum(f) for f in figures})
        .order_by()
    )
    sums = {row["model_id"]: {f: row[f] or 0 for f in (*figures, "first")} for row in rows}
    # Kept once the run commits: a run rolled back may have changed (or bumped) what it read.
    transaction.on_commit(lambda: _hour_totals.update(key=key, sums=sums))
    return sums


def _sums(cursor: SloCursor, now: datetime) -> dict[int, dict]:
    """Per model: each short window's counts and the whole window's, with its first bucket with evidence.
    The short windows and the recent part of the whole one are read from minute rows; the older part
    from the hour totals (read again only when they change)."""
    start = slo_counts.window_start(now, settings.SLO_WINDOW_DAYS)
    sums: dict[int, dict] = defaultdict(dict)
    figures = slo_counts.FIGURES
    aggregates = {f"all_{f}": Sum(f) for f in figures}
    for name, span in WINDOWS.items():
        # From the minute bucket holding `now - span`: the window spans at least its span (up to a
        # minute more with the minute in progress), never less.
        since = slo_counts.floor_minute(now) - span
        aggregates.update({f"{name}_{f}": Sum(f, filter=Q(start__gte=since)) for f in figures})
    minutes = SloCount.objects.filter(minutes=1, start__gte=start).values("model_id")
    for row in minutes.annotate(first=Min("start"), **aggregates).order_by():
        sums[row["model_id"]] = {key: value or 0 for key, value in row.items() if key not in ("model_id", "first")}
        sums[row["model_id"]]["first"] = row["first"]
    for model_id, hours in _hours(cursor, start).items():
        entry = sums[model_id]
        for f in figures:
            entry[f"all_{f}"] = entry.get(f"all_{f}", 0) + hours[f]
        entry["first"] = min(filter(None, [entry.get("first"), hours["first"]]))
    return sums


def _figures(entry: dict, prefix: str, sli: str) -> tuple[int, int]:
    """(bad, events) of one objective in one window (or "all": the whole SLO window)."""
    bad = entry.get(f"{prefix}_{BAD[sli]}", 0)
    return bad, bad + entry.get(f"{prefix}_{GOOD[sli]}", 0)


def _targets(model: AIModel) -> dict[str, float]:
    return {Sli.AVAILABILITY: float(model.slo_availability_percent) / 100.0, Sli.LATENCY: LATENCY_TARGET}


def _alerts(model: AIModel, entry: dict, now: datetime, open_alerts: dict, run: SloRun) -> tuple[dict, list]:
    """The burn rates of each objective's windows, and the burn alerts open after opening and ending the
    model's by the rules."""
    rates: dict[str, dict] = {}
    burning: list[dict] = []
    # At a probe a minute one failure burns an hour of a 99.9 % budget at 16.7 times: an episode also takes
    # as many bad events in the long window as the model takes failures to confirm an outage (2 at least).
    min_bad = max(settings.SLO_MIN_BAD_EVENTS, model.failures_to_confirm)
    for sli, target in _targets(model).items():
        rates[sli] = {name: burn_rate(*_figures(entry, name, sli), target) for name in WINDOWS}
        for speed, long, short, setting in RULES:
            threshold = getattr(settings, setting)
            long_rate, short_rate = rates[sli][long], rates[sli][short]
            alert = open_alerts.get((model.pk, sli, speed))
            firing = (
                long_rate is not None
                and short_rate is not None
                and min(long_rate, short_rate) >= threshold
                and _figures(entry, long, sli)[0] >= min_bad
            )
            if alert is None and firing:
                alert = BurnAlert.objects.create(
                    model=model,
                    sli=sli,
                    speed=speed,
                    threshold=threshold,
                    long_window=long,
                    short_window=short,
                    started_at=now,
                    long_burn=long_rate,
                    short_burn=short_rate,
                    peak_burn=long_rate,
                )
                run.opened.append(alert.pk)
            elif alert is not None and (long_rate is None or long_rate < threshold):
                # The episode is over when the long window calms; until then nothing new opens.
                alert.ended_at = now
                alert.save(update_fields=["ended_at"])
                run.closed.append(alert.pk)
                alert = None
            elif alert is not None and long_rate > alert.peak_burn:
                alert.peak_burn = long_rate
                alert.save(update_fields=["peak_burn"])
            if alert is not None:
                burning.append({"sli": sli, "speed": speed, "since": alert.started_at.isoformat()})
    return rates, burning


def _status(model: AIModel, entry: dict, rates: dict, burning: list, now: datetime) -> SloStatus:
    targets = _targets(model)
    availability = _figures(entry, "all", Sli.AVAILABILITY)
    latency = _figures(entry, "all", Sli.LATENCY)
    return SloStatus(
        model=model,
        availability_target=targets[Sli.AVAILABILITY],
        latency_objective_ms=model.latency_objective_ms,
        window_start=slo_counts.window_start(now, settings.SLO_WINDOW_DAYS),
        answered=entry.get("all_answered", 0),
        failed=entry.get("all_failed", 0),
        fast=entry.get("all_fast", 0),
        slow=entry.get("all_slow", 0),
        evidence_since=entry.get("first"),
        availability_budget_left=budget_left(*availability, targets[Sli.AVAILABILITY]),
        latency_budget_left=budget_left(*latency, LATENCY_TARGET),
        burn_rates=rates,
        burning=burning,
        updated_at=now,
    )


def run_slos(now: datetime | None = None) -> SloRun:
    """Count new results, then work out every model's budget and burn rates and keep its burn alerts; once
    an hour, the latency forecasts."""
    now = now or timezone.now()
    run = SloRun()
    # The row exists (committed) before the locking transaction: a run arriving while another holds it
    # then skips at once, where one inserting it would wait on the other's uncommitted insert.
    SloCursor.objects.get_or_create(pk=1)
    with transaction.atomic():
        cursor = SloCursor.objects.select_for_update(skip_locked=True).filter(pk=1).first()
        if cursor is None:
            run.skipped = True
            return run
        _count(cursor, now, run)
        sums = _sums(cursor, now)
        open_alerts = {(a.model_id, a.sli, a.speed): a for a in BurnAlert.objects.filter(ended_at__isnull=True)}
        fields = ["slo_availability_percent", "slo_ttft_ms", "ttft_threshold_ms", "failures_to_confirm"]
        statuses = []
        for model in AIModel.objects.only("id", *fields):
            entry = sums.get(model.pk, {})
            rates, burning = _alerts(model, entry, now, open_alerts, run)
            statuses.append(_status(model, entry, rates, burning, now))
        updated = [f.name for f in SloStatus._meta.concrete_fields if f.name not in ("id", "model")]
        SloStatus.objects.bulk_create(
            statuses, update_conflicts=True, unique_fields=["model"], update_fields=updated, batch_size=1000
        )
        if latency_forecasts.due(now, cursor.forecast_hour):
            run.forecasts = latency_forecasts.make_forecasts(now)
            cursor.forecast_hour = latency_forecasts.target_hour(now)
        cursor.counted_until = now
        cursor.updated_at = now
        cursor.save()
    return run
