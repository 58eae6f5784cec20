"""The detection run: feeds new check results, in time order, to each series' detector and keeps the anomaly records.

A series is one metric of one model in one region: time to first token, total latency and output
tokens/s of answered probes, and the error ratio over the series' last ANOMALY_ERROR_WINDOW results
(provider faults, timeouts and broken streams against answers; probe faults and 429s on our own key say
nothing about the provider and are left out). One run at a time holds the cursor row's lock; the
results read, the detectors' states, the anomalies and their events are written in one transaction,
so a process that dies mid-run loses nothing and a restart carries on where the last commit stood.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from anomalies.detector import SeriesDetector
from anomalies.models import Anomaly, AnomalyEvent, DetectionCursor, Direction, Metric, SeriesState
from anomalies.signals import anomalies_changed
from collectors.models import CheckResult
from monitoring.outcomes import Outcome

log = logging.getLogger(__name__)

# Answered probes give these metrics, from these result columns.
POINT_METRICS = {Metric.TTFT: "ttft_ms", Metric.LATENCY: "latency_ms", Metric.TOKENS_PER_S: "tokens_per_s"}
FAULTS = {Outcome.PROVIDER_FAULT, Outcome.TIMEOUT, Outcome.BROKEN_STREAM}
COUNTED = FAULTS | {Outcome.OK}
# Values no probe produces (a latency over a day, a million tokens a second) are garbage, not anomalies.
MAX_VALUES = {
    Metric.TTFT: 86_400_000.0,
    Metric.LATENCY: 86_400_000.0,
    Metric.TOKENS_PER_S: 1e6,
    Metric.ERROR_RATIO: 1.0,
}

SeriesKey = tuple[int, str, str]  # (model id, metric, region)


def new_detector(metric: str) -> SeriesDetector:
    """A fresh detector for one metric. An error ratio lives in [0, 1] and is 0 for a healthy model: its
    shapes are measured against half that range, or its first failed probe would be infinitely new (the
    simulated weeks of bench/anomaly_week.py run it so)."""
    return SeriesDetector(min_range=0.5 if metric == Metric.ERROR_RATIO else 0.0)


@dataclass
class RunSummary:
    results: int = 0
    points: int = 0
    rejected: int = 0
    errors: int = 0
    opened: list[int] = field(default_factory=list)
    closed: list[int] = field(default_factory=list)
    skipped: bool = False  # another run held the cursor


@dataclass
class _Series:
    row: SeriesState
    detector: SeriesDetector
    failed: bool = False
    touched: bool = False


def plausible(metric: str, value: float) -> bool:
    """Whether a value can be a measurement at all (not whether it is normal)."""
    return math.isfinite(value) and 0.0 <= value <= MAX_VALUES[metric]


class Detection:
    """One run's work: the series touched, their open anomalies and the events written."""

    def __init__(self, now: datetime, summary: RunSummary) -> None:
        self.now = now
        self.summary = summary
        self.threshold = settings.ANOMALY_THRESHOLD
        self.quiet = timedelta(seconds=settings.ANOMALY_QUIET_SECONDS)
        self.series: dict[SeriesKey, _Series] = {}
        self.open: dict[SeriesKey, Anomaly] = {}
        self.changed: dict[int, Anomaly] = {}
        self.events: list[AnomalyEvent] = []

    # -- state ----------------------------------------------------------------------------------

    def load(self, model_ids: set[int]) -> None:
        for row in SeriesState.objects.filter(model_id__in=model_ids):
            self.series[(row.model_id, row.metric, row.region)] = self._restore(row)
        for anomaly in Anomaly.objects.filter(model_id__in=model_ids, ended_at__isnull=True):
            self.open[(anomaly.model_id, anomaly.metric, anomaly.region)] = anomaly

    def _restore(self, row: SeriesState) -> _Series:
        if not row.state:
            return _Series(row, new_detector(row.metric))
        try:
            return _Series(row, SeriesDetector.from_state(row.state))
        except Exception:
            # A state this detector cannot read (damaged, or from an incompatible version): counted,
            # and the series learns again rather than stopping every other series.
            log.exception("anomaly detector state of %s unreadable; learning afresh", row)
            row.errors += 1
            self.summary.errors += 1
            return _Series(row, new_detector(row.metric), touched=True)

    def _get(self, key: SeriesKey) -> _Series:
        series = self.series.get(key)
        if series is None:
            model_id, metric, region = key
            row = SeriesState(model_id=model_id, metric=metric, region=region)
            series = self.series[key] = _Series(row, new_detector(metric))
        return series

    def save(self) -> None:
        new, existing = [], []
        for series in self.series.values():
            if not series.touched:
                continue
            row = series.row
            if not series.failed:
                row.state = series.detector.to_state()
                row.learning = series.detector.learning
                if not row.learning:
                    row.expected_low, row.expected_high = series.detector.expected()
            row.updated_at = self.now
            (existing if row.pk else new).append(row)
        fields = ["state", "last_time", "window", "learning", "expected_low", "expected_high"]
        SeriesState.objects.bulk_update(existing, [*fields, "rejected", "errors", "updated_at"], batch_size=500)
        SeriesState.objects.bulk_create(new, batch_size=500)
        for anomaly in self.changed.values():
            anomaly.updated_at = self.now
        Anomaly.objects.bulk_update(
            [a for a in self.changed.values() if a.pk],
            ["ended_at", "last_unusual_at", "peak_score", "updated_at"],
            batch_size=500,
        )
        for event in self.events:
            event.anomaly_id = event.anomaly.pk
        AnomalyEvent.objects.bulk_create(self.events)

    # -- feeding --------------------------------------------------------------------------------

    def feed_result(self, model_id: int, region: str, time: datetime, outcome: str, values: dict[str, float | None]):
        self.summary.results += 1
        if outcome == Outcome.OK:
            for metric in POINT_METRICS:
                value = values[metric]
                if value is not None:
                    self.feed((model_id, metric, region), time, float(value))
        if outcome in COUNTED:
            key = (model_id, Metric.ERROR_RATIO, region)
            series = self._get(key)
            row = series.row
            if row.last_time is not None and time <= row.last_time:
                return
            size = settings.ANOMALY_ERROR_WINDOW
            row.window = [*row.window, 1 if outcome in FAULTS else 0][-size:]
            series.touched = True
            if len(row.window) == size:
                self.feed(key, time, sum(row.window) / size)
            else:
                row.last_time = time

    def feed(self, key: SeriesKey, time: datetime, value: float) -> None:
        series = self._get(key)
        row = series.row
        if series.failed or (row.last_time is not None and time <= row.last_time):
            return  # fed before (the late margin reads some results twice)
        row.last_time = time
        series.touched = True
        self.summary.points += 1
        if not plausible(key[1], value):
            row.rejected += 1
            self.summary.rejected += 1
            return
        detector = series.detector
        before = detector.rejected
        try:
            score = detector.score(time, value)
            if score is None:
                row.rejected += max(1, detector.rejected - before)
                self.summary.rejected += 1
                return
            self.judge(key, series, time, value, score)
        except Exception:
            # One series' failure never stops the others: counted, its state left as last saved.
            log.exception("anomaly detector failed on %s at %s", row, time)
            row.errors += 1
            self.summary.errors += 1
            series.failed = True

    # -- records --------------------------------------------------------------------------------

    def judge(self, key: SeriesKey, series: _Series, time: datetime, value: float, score: float) -> None:
        detector = series.detector
        low, high = detector.expected()
        alarming = score >= self.threshold and not detector.learning
        anomaly = self.open.get(key)
        if anomaly is None:
            if alarming:
                self._open(key, time, value, score, low, high, detector.direction)
            return
        if alarming or not (low <= value <= high):
            anomaly.last_unusual_at = time
            anomaly.peak_score = max(anomaly.peak_score, score)
            self.changed[id(anomaly)] = anomaly
        elif time - anomaly.last_unusual_at >= self.quiet:
            self._close(key, anomaly)

    def _open(self, key: SeriesKey, time: datetime, value, score, low, high, direction: int) -> None:
        model_id, metric, region = key
        if direction == 0:
            direction = 1 if value >= (low + high) / 2 else -1
        anomaly = Anomaly.objects.create(
            model_id=model_id,
            metric=metric,
            region=region,
            started_at=time,
            last_unusual_at=time,
            peak_score=score,
            expected_low=max(low, 0.0),
            expected_high=high,
            observed=value,
            direction=Direction.ABOVE if direction > 0 else Direction.BELOW,
            updated_at=self.now,
        )
        self.open[key] = anomaly
        self.events.append(AnomalyEvent(anomaly=anomaly, kind=AnomalyEvent.Kind.OPENED, at=self.now))
        self.summary.opened.append(anomaly.pk)

    def _close(self, key: SeriesKey, anomaly: Anomaly) -> None:
        # The anomaly lasted until its last unusual point; the quiet time after it is what confirmed the end.
        anomaly.ended_at = anomaly.last_unusual_at
        self.changed[id(anomaly)] = anomaly
        del self.open[key]
        self.events.append(AnomalyEvent(anomaly=anomaly, kind=AnomalyEvent.Kind.CLOSED, at=self.now))
        self.summary.closed.append(anomaly.pk)

    def close_quiet(self) -> None:
        """Close open anomalies of series that fell quiet, new points or not (a model stopped, or probes paused)."""
        stale = Anomaly.objects.filter(ended_at__isnull=True, last_unusual_at__lte=self.now - self.quiet)
        for anomaly in stale.exclude(pk__in=self.summary.closed):
            key = (anomaly.model_id, anomaly.metric, anomaly.region)
            current = self.open.setdefault(key, anomaly)
            if current.ended_at is None and self.now - current.last_unusual_at >= self.quiet:
                self._close(key, current)


def _cursor() -> DetectionCursor | None:
    """The cursor row, locked for this run; None when another run holds it."""
    DetectionCursor.objects.get_or_create(pk=1)
    return DetectionCursor.objects.select_for_update(skip_locked=True).filter(pk=1).first()


def _lower_bound(cursor: DetectionCursor, now: datetime) -> datetime:
    if cursor.read_until is None:
        # No run yet on this database: learn from the stored history first.
        return now - timedelta(hours=settings.ANOMALY_HISTORY_HOURS)
    if cursor.behind:
        return cursor.read_until
    return cursor.read_until - timedelta(seconds=settings.ANOMALY_LATE_SECONDS)


def run_detection(now: datetime | None = None) -> RunSummary:
    """Read results since the cursor (the primary), feed the detectors, open and close anomalies."""
    now = now or timezone.now()
    summary = RunSummary()
    with transaction.atomic():
        cursor = _cursor()
        if cursor is None:
            summary.skipped = True
            return summary
        limit = settings.ANOMALY_BATCH
        columns = ["model_id", "region", "time", "outcome", *POINT_METRICS.values()]
        rows = list(
            CheckResult.objects.filter(time__gte=_lower_bound(cursor, now), time__lte=now)
            .order_by("time", "id")
            .values_list(*columns)[:limit]
        )
        detection = Detection(now, summary)
        detection.load({row[0] for row in rows})
        for model_id, region, time, outcome, *values in rows:
            detection.feed_result(model_id, region, time, outcome, dict(zip(POINT_METRICS, values, strict=True)))
        detection.close_quiet()
        detection.save()
        cursor.behind = len(rows) >= limit
        cursor.read_until = rows[-1][2] if cursor.behind else now
        cursor.updated_at = now
        cursor.save()
        events = list(detection.events)
        if events:
            models = {e.anomaly.model_id for e in events}
            transaction.on_commit(lambda: _announce(events, models))
    return summary


def _announce(events: list[AnomalyEvent], model_ids: set[int]) -> None:
    anomalies_changed.send(sender=AnomalyEvent, events=events)
    # Opted-in models are degraded while an anomaly is open: derive their status again now.
    from collectors.evaluate import evaluate
    from monitoring.models import AIModel

    opted_in = list(AIModel.objects.filter(pk__in=model_ids, anomaly_degrades=True).values_list("pk", flat=True))
    if opted_in:
        evaluate(opted_in)
