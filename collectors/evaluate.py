"""After results land: derive each affected model's status from its fresh results and record transitions."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from django.db.models import F, Window
from django.db.models.functions import RowNumber
from django.utils import timezone

from collectors.models import CheckResult
from monitoring.annotations import degrading_reasons
from monitoring.api.registry_changes import note_committed
from monitoring.derivation import Evidence, Thresholds, derive, history_length, region_statuses
from monitoring.models import AIModel, Maintenance, ModelStatus, RegionStatus, StatusChange
from monitoring.status import stale_after
from monitoring.transitions import StatusUpdate, record_statuses, update_status_rows


@dataclass(slots=True)
class _Subject:
    """What derivation needs of one model and its status row, read as plain values.

    Evaluation runs for every flushed batch of results, so it reads columns rather than model
    instances: building an AIModel and a ModelStatus per result cost more than deriving the status.
    """

    model_id: int
    interval_seconds: int
    thresholds: Thresholds
    status_id: int
    status: str
    manual: bool
    since: datetime
    last_checked_at: datetime | None
    message: str
    anomaly_degrades: bool


_SUBJECT_COLUMNS = (
    "pk",
    "interval_seconds",
    "latency_threshold_ms",
    "ttft_threshold_ms",
    "failures_to_confirm",
    "successes_to_recover",
    "status_row__id",
    "status_row__status",
    "status_row__manual",
    "status_row__since",
    "status_row__last_checked_at",
    "status_row__message",
    "anomaly_degrades",
)


def _subjects(model_ids: set[int]) -> list[_Subject]:
    rows = AIModel.objects.filter(pk__in=model_ids, status_row__isnull=False).order_by("pk")
    return [
        _Subject(pk, interval, Thresholds(latency, ttft, failures, successes), *status)
        for pk, interval, latency, ttft, failures, successes, *status in rows.values_list(*_SUBJECT_COLUMNS)
    ]


# (time, outcome, latency_ms, ttft_ms, error, http_status): one recent result, as derivation reads it.
Recent = tuple[datetime, str, float | None, float | None, str, int | None]


def _recent_results(subjects: list[_Subject], now: datetime) -> dict[int, dict[str, list[Recent]]]:
    """Each model's latest results per region, newest first, within its staleness window."""
    depth = max(history_length(s.thresholds) for s in subjects)
    oldest = now - max(stale_after(s.interval_seconds) for s in subjects)
    rows = (
        CheckResult.objects.filter(model_id__in=[s.model_id for s in subjects], time__gte=oldest)
        .annotate(rank=Window(RowNumber(), partition_by=[F("model_id"), F("region")], order_by=F("time").desc()))
        .filter(rank__lte=depth)
        .order_by("model_id", "region", "-time")
        .values_list("model_id", "region", "time", "outcome", "latency_ms", "ttft_ms", "error", "http_status")
    )
    grouped: dict[int, dict[str, list[Recent]]] = defaultdict(lambda: defaultdict(list))
    for model_id, region, *result in rows:
        grouped[model_id][region].append(tuple(result))
    return grouped


def _save_evidence(rows: list[tuple[int, datetime, float | None, str]]) -> None:
    """Write (status row id, last_checked_at, last_latency_ms, message) of rows whose status stays."""
    update_status_rows(
        [ModelStatus(pk=pk, last_checked_at=at, last_latency_ms=latency, message=message)
         for pk, at, latency, message in rows],
        ["last_checked_at", "last_latency_ms", "message"],
    )  # fmt: skip


def _derived(
    subject: _Subject,
    by_region: dict[str, list[Recent]],
    in_maintenance: bool,
    now: datetime,
    region_rows: list[RegionStatus],
    unusual: str | None = None,
) -> tuple[str, str, datetime | None, float | None]:
    """(status, reason, time and latency of the latest result) of one model; no result gives None, None.

    Each region with fresh results also gets its own row in region_rows. A region without fresh results
    is absent: it contributes no evidence, neither good nor bad.
    """
    stale = now - stale_after(subject.interval_seconds)
    regions = {region: [Evidence(*r[1:]) for r in rows if r[0] >= stale] for region, rows in by_region.items()}
    latest = max((rows[0] for rows in by_region.values()), key=lambda r: r[0], default=None)
    status, reason = derive(regions, subject.thresholds, in_maintenance=in_maintenance, unusual=unusual)
    for region, (region_status, message) in region_statuses(regions, subject.thresholds).items():
        newest = by_region[region][0]
        region_rows.append(
            RegionStatus(
                model_id=subject.model_id,
                region=region,
                status=region_status,
                last_checked_at=newest[0],
                last_latency_ms=newest[2],
                message=message[:500],
            )
        )
    return status, reason, latest[0] if latest else None, latest[2] if latest else None


def _save_region_statuses(rows: list[RegionStatus]) -> None:
    """Upsert each (model, region) row in one statement."""
    if rows:
        RegionStatus.objects.bulk_create(
            rows,
            update_conflicts=True,
            unique_fields=["model", "region"],
            update_fields=["status", "last_checked_at", "last_latency_ms", "message"],
            batch_size=2000,
        )
        note_committed([row.model_id for row in rows])


def evaluate(model_ids: Iterable[int], now: datetime | None = None) -> list[StatusChange]:
    """Derive and record the status of these models. Returns the transitions written."""
    now = now or timezone.now()
    subjects = _subjects(set(model_ids))
    if not subjects:
        return []
    recent = _recent_results(subjects, now)
    maintenance = Maintenance.active_model_ids(now, [s.model_id for s in subjects])
    # Open anomalies count only for models whose operator opted in (AIModel.anomaly_degrades).
    unusual = degrading_reasons(s.model_id for s in subjects if s.anomaly_degrades)
    updates: list[StatusUpdate] = []
    refreshed: list[tuple[int, datetime, float | None, str]] = []
    region_rows: list[RegionStatus] = []
    for subject in subjects:
        paused = subject.model_id in maintenance
        status, reason, at, latency = _derived(
            subject, recent.get(subject.model_id, {}), paused, now, region_rows, unusual.get(subject.model_id)
        )
        if subject.manual or status == subject.status:
            # No transition: only the evidence timestamps move (written below in one statement).
            if at is not None and (subject.last_checked_at is None or at > subject.last_checked_at):
                message = subject.message if subject.manual else reason
                refreshed.append((subject.status_id, at, latency, message))
            continue
        updates.append(
            StatusUpdate(
                subject.model_id,
                status,
                reason=reason,
                source=StatusChange.Source.MAINTENANCE if paused else StatusChange.Source.COLLECTOR,
                at=at if at is not None and at > subject.since else now,
                checked=at is not None,
                latency_ms=latency,
            )
        )
    changes = record_statuses(updates)  # one transaction for all: a provider outage moves many at once
    if refreshed:
        _save_evidence(refreshed)
    _save_region_statuses(region_rows)
    return changes
