"""Consumers of the event log: each keeps the last StatusChange id it processed, under a row lock."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta

from django.db import transaction
from django.db.models import Max

from alerts.models import EventCursor
from monitoring.models import StatusChange

# A consumer that starts without a cursor (a new install) picks up recent changes only, not the history.
REPLAY_WINDOW = timedelta(minutes=5)


class Cursor:
    def __init__(self, row: EventCursor) -> None:
        self.row = row

    def next_batch(self, limit: int) -> list[StatusChange]:
        """The next changes in sequence; the cursor moves past them when the transaction commits."""
        changes = list(
            StatusChange.objects.filter(id__gt=self.row.last_id)
            .select_related("model__provider")
            .order_by("id")[:limit]
        )
        if changes:
            self.row.last_id = changes[-1].pk
        return changes


@contextmanager
def locked_cursor(name: str, now: datetime) -> Iterator[Cursor | None]:
    """One transaction holding the named cursor; None when another process holds it right now.

    StatusChange writers commit in id order (an advisory lock), so "every id after the last one"
    never skips a row; the work done and the cursor's move commit together, so none is done twice.
    """
    with transaction.atomic():
        if not EventCursor.objects.filter(name=name).exists():
            start = StatusChange.objects.filter(at__lt=now - REPLAY_WINDOW).aggregate(last=Max("id"))["last"] or 0
            EventCursor.objects.get_or_create(name=name, defaults={"last_id": start, "updated_at": now})
        row = EventCursor.objects.select_for_update(skip_locked=True).filter(name=name).first()
        if row is None:
            yield None
            return
        yield Cursor(row)
        row.updated_at = now
        row.save(update_fields=["last_id", "updated_at"])
