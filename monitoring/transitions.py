"""The one place a model's status changes: updates ModelStatus and writes a StatusChange on a real transition."""

from __future__ import annotations

from datetime import datetime

from django.db import connection, transaction
from django.utils import timezone

from monitoring.models import ModelStatus, StatusChange
from monitoring.realtime.events import publish_after_commit
from monitoring.status import Status

# Event readers ask for "every StatusChange after id N". Ids are handed out at insert time but
# become visible at commit time, so two concurrent writers could commit out of id order and a
# reader could skip one. A transaction-scoped advisory lock serialises writers of StatusChange on
# PostgreSQL, so commit order equals id order. SQLite already has a single writer.
_EVENT_LOCK_KEY = 0x5747_A7E5


def _lock_event_log() -> None:
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [_EVENT_LOCK_KEY])


def record_status(
    model_id: int,
    status: str,
    *,
    reason: str = "",
    source: str = StatusChange.Source.COLLECTOR,
    manual: bool = False,
    at: datetime | None = None,
    checked: bool = False,
    latency_ms: float | None = None,
) -> StatusChange | None:
    """Set a model's status. Returns the StatusChange written, or None when nothing changed.

    `checked` says this call carries fresh evidence (a probe result), which refreshes
    last_checked_at even when the status stays the same.
    """
    if status not in Status.values:
        raise ValueError(f"unknown status {status!r}; expected one of {', '.join(Status.values)}")
    at = at or timezone.now()
    with transaction.atomic():
        # The model and provider come along for the live event: no second lookup per transition.
        row = (
            ModelStatus.objects.select_for_update(of=("self",)).select_related("model__provider").get(model_id=model_id)
        )
        fields: list[str] = []
        if checked:
            row.last_checked_at = at
            row.last_latency_ms = latency_ms
            fields += ["last_checked_at", "last_latency_ms"]
        change = None
        if row.status != status or row.manual != manual:
            if row.status != status:
                _lock_event_log()
                change = StatusChange.objects.create(
                    model_id=model_id,
                    from_status=row.status,
                    to_status=status,
                    at=at,
                    reason=reason,
                    manual=manual,
                    source=source,
                )
                row.since = at
                fields.append("since")
            row.status = status
            row.manual = manual
            row.message = reason
            fields += ["status", "manual", "message"]
        if fields:
            row.save(update_fields=fields)
        if change is not None:
            publish_after_commit(change, row.model)
    return change
