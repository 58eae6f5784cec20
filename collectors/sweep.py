"""The periodic sweep: no fresh evidence means unknown; maintenance windows start and end on time."""

from __future__ import annotations

from datetime import datetime

from django.utils import timezone

from collectors.evaluate import evaluate
from monitoring.models import Maintenance, ModelStatus, StatusChange
from monitoring.status import Status, stale_after
from monitoring.transitions import StatusUpdate, record_statuses


def sweep(now: datetime | None = None) -> list[StatusChange]:
    """Mark stale models unknown and apply maintenance windows. Returns the transitions written."""
    now = now or timezone.now()
    updates: list[StatusUpdate] = []
    maintenance = Maintenance.active_model_ids(now)
    rows = ModelStatus.objects.filter(manual=False).values_list(
        "model_id", "status", "last_checked_at", "model__interval_seconds"
    )
    ended_maintenance: list[int] = []
    for model_id, status, last_checked_at, interval in rows:
        if model_id in maintenance:
            if status != Status.UNDER_MAINTENANCE:
                updates.append(StatusUpdate(
                    model_id, Status.UNDER_MAINTENANCE, reason="scheduled maintenance",
                    source=StatusChange.Source.MAINTENANCE, at=now,
                ))  # fmt: skip
            continue
        if status == Status.UNDER_MAINTENANCE:
            ended_maintenance.append(model_id)
            continue
        if status == Status.UNKNOWN:
            continue
        window = stale_after(interval)
        if last_checked_at is None or now - last_checked_at > window:
            seconds = int(window.total_seconds())
            updates.append(StatusUpdate(
                model_id, Status.UNKNOWN, reason=f"no result in the last {seconds} s",
                source=StatusChange.Source.STALENESS, at=now,
            ))  # fmt: skip
    # One transaction for all: when the collectors fall silent every model goes unknown at once.
    changes = record_statuses(updates)
    if ended_maintenance:
        changes += evaluate(ended_maintenance, now)
    return changes
