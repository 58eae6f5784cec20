"""The probe schedule: one slot per model and region; workers claim due slots without blocking each other."""

from __future__ import annotations

import random
from datetime import datetime, timedelta

from django.db import transaction
from django.utils import timezone

from collectors.models import ProbeSlot
from monitoring.models import AIModel, ProbeKind

# Each next run lands within ±5% of the interval so that models registered together drift apart.
JITTER = 0.05


def next_due(now: datetime, interval_seconds: int) -> datetime:
    return now + timedelta(seconds=interval_seconds * random.uniform(1 - JITTER, 1 + JITTER))


def ensure_slots(region: str, now: datetime | None = None) -> int:
    """Create the missing slots of a region, spread over each model's first interval. Returns how many."""
    now = now or timezone.now()
    missing = (
        AIModel.objects.filter(enabled=True)
        .exclude(probe_kind=ProbeKind.PUSH)
        .exclude(probe_slots__region=region)
        .values_list("pk", "interval_seconds")
    )
    slots = [
        ProbeSlot(model_id=pk, region=region, next_due_at=now + timedelta(seconds=random.uniform(0, interval)))
        for pk, interval in missing
    ]
    ProbeSlot.objects.bulk_create(slots, ignore_conflicts=True)
    return len(slots)


def claim_due(region: str, limit: int, now: datetime | None = None) -> list[AIModel]:
    """Claim up to `limit` due models of a region and move their slots to the next run.

    Rows locked by another worker are skipped (PostgreSQL), so any number of workers can serve a
    region without probing a model twice. SQLite has a single writer and needs no lock.
    """
    now = now or timezone.now()
    with transaction.atomic():
        slots = list(
            ProbeSlot.objects.select_for_update(skip_locked=True, of=("self",))
            .filter(region=region, next_due_at__lte=now, model__enabled=True)
            .exclude(model__probe_kind=ProbeKind.PUSH)
            .select_related("model__provider", "model__credential")
            .order_by("next_due_at")[:limit]
        )
        for slot in slots:
            slot.next_due_at = next_due(now, slot.model.interval_seconds)
        ProbeSlot.objects.bulk_update(slots, ["next_due_at"], batch_size=1000)
    return [slot.model for slot in slots]


def due_now(model_ids: list[int], region: str) -> None:
    """Make models due at once (after an operator's change, or for `collect_once`)."""
    ProbeSlot.objects.filter(model_id__in=model_ids, region=region).update(next_due_at=timezone.now())
