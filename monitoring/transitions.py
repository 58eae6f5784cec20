"""The one place a model's status changes: updates ModelStatus, writes a StatusChange on a real transition, and
announces each committed batch (monitoring.signals.statuses_changed)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from django.db import connection, transaction
from django.utils import timezone

from monitoring.api.registry_changes import note_committed
from monitoring.models import ModelStatus, StatusChange
from monitoring.signals import statuses_changed
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


@dataclass(frozen=True)
class StatusUpdate:
    """One model's new status, as record_statuses takes it (see record_status for the fields)."""

    model_id: int
    status: str
    reason: str = ""
    source: str = StatusChange.Source.COLLECTOR
    manual: bool = False
    at: datetime | None = None
    checked: bool = False
    latency_ms: float | None = None
    set_by: str = ""


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
    set_by: str = "",
) -> StatusChange | None:
    """Set a model's status. Returns the StatusChange written, or None when nothing changed.

    `checked` says this call carries fresh evidence (a probe result), which refreshes
    last_checked_at even when the status stays the same. `set_by` names the operator of a manual status
    (kept on the status row for the admin; the public is told only that the team set it).
    """
    update = StatusUpdate(model_id, status, reason, source, manual, at, checked, latency_ms, set_by)
    changes = record_statuses([update])
    return changes[0] if changes else None


def record_statuses(updates: list[StatusUpdate]) -> list[StatusChange]:
    """Set many models' statuses in one transaction; the StatusChanges written, in the given order.

    A provider going down, or every collector falling silent, moves hundreds of models at once: one
    row lock query, one event-log lock, one insert and one update for all of them, instead of a
    transaction each. Applied in order, so two updates of one model behave as two calls would. A
    model deleted meanwhile (its status row gone with it) is skipped.
    """
    for update in updates:
        if update.status not in Status.values:
            raise ValueError(f"unknown status {update.status!r}; expected one of {', '.join(Status.values)}")
    if not updates:
        return []
    now = timezone.now()
    with transaction.atomic():
        # Locked in model order, so that concurrent batches cannot deadlock. The model and provider
        # come along for the live events: no second lookup per transition.
        rows = {
            row.model_id: row
            for row in ModelStatus.objects.select_for_update(of=("self",))
            .select_related("model__provider")
            .filter(model_id__in={u.model_id for u in updates})
            .order_by("model_id")
        }
        changes: list[StatusChange] = []
        touched: dict[int, ModelStatus] = {}
        fields: set[str] = set()
        for update in updates:
            row = rows.get(update.model_id)
            if row is None:
                continue
            at = update.at or now
            if update.checked:
                row.last_checked_at = at
                row.last_latency_ms = update.latency_ms
                fields |= {"last_checked_at", "last_latency_ms"}
                touched[row.model_id] = row
            if row.status == update.status and row.manual == update.manual:
                continue
            if row.status != update.status:
                changes.append(
                    StatusChange(
                        model_id=update.model_id,
                        from_status=row.status,
                        to_status=update.status,
                        at=at,
                        reason=update.reason,
                        manual=update.manual,
                        source=update.source,
                    )
                )
                row.since = at
                fields.add("since")
            row.status = update.status
            row.manual = update.manual
            row.message = update.reason
            row.set_by = update.set_by if update.manual else ""
            fields |= {"status", "manual", "message", "set_by"}
            touched[row.model_id] = row
        if changes:
            _lock_event_log()
            StatusChange.objects.bulk_create(changes)
        if touched:
            update_status_rows(list(touched.values()), sorted(fields))
        for change in changes:
            change.model = rows[change.model_id].model  # receivers need no second lookup
        if changes:
            # Robust: a receiver that fails is logged (by Django) and never stops the others or the caller.
            transaction.on_commit(lambda: statuses_changed.send_robust(sender=StatusChange, changes=changes))
    return changes


def update_status_rows(rows: list[ModelStatus], fields: list[str]) -> None:
    """Write these fields of these status rows in one statement.

    On PostgreSQL, one UPDATE joined to an array per column: bulk_update's CASE per row and field
    costs far more to build in Python than the work it describes (about 80 % of a batch of 500
    transitions), and PostgreSQL evaluates that CASE per row again.
    """
    if connection.vendor != "postgresql":
        ModelStatus.objects.bulk_update(rows, fields, batch_size=500)
        return
    columns = [ModelStatus._meta.get_field(name) for name in fields]
    assignments = ", ".join(f"{field.column} = fresh.{field.column}" for field in columns)
    arrays = ", ".join(["%s::bigint[]", *(f"%s::{field.db_type(connection)}[]" for field in columns)])
    names = ", ".join(["id", *(field.column for field in columns)])
    values = [[row.pk for row in rows], *([getattr(row, field.attname) for row in rows] for field in columns)]
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {ModelStatus._meta.db_table} AS row SET {assignments}"
            f" FROM unnest({arrays}) AS fresh({names}) WHERE row.id = fresh.id RETURNING row.model_id",
            values,
        )
        note_committed([model_id for (model_id,) in cursor.fetchall()])
