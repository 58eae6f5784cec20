"""The probe schedule: one slot per model and region; workers claim due slots without blocking each other."""

from __future__ import annotations

from datetime import datetime, timedelta

from django.db import connection, transaction
from django.utils import timezone

from collectors.jitter import JITTER, first_delay, next_delay
from collectors.models import ProbeSlot
from collectors.probes.base import ProbeTarget
from collectors.targets import target_of
from monitoring.models import AIModel, ProbeKind


def next_due(now: datetime, interval_seconds: int) -> datetime:
    return now + timedelta(seconds=next_delay(interval_seconds))


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
        ProbeSlot(model_id=pk, region=region, next_due_at=now + timedelta(seconds=first_delay(interval)))
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
        # The collector claims through claim_targets (one statement on PostgreSQL); this path serves
        # SQLite and callers that want the models themselves.
        ProbeSlot.objects.bulk_update(slots, ["next_due_at"], batch_size=1000)
    return [slot.model for slot in slots]


# The fields target_of reads: a claim loads these alone, which is most of what claiming costs.
_TARGET_FIELDS = (
    "probe_kind", "endpoint", "upstream_model", "slug", "timeout_seconds", "probe_config",
    "credential__api_key", "credential__api_key_env",
)  # fmt: skip


def claim_targets(region: str, limit: int, now: datetime | None = None) -> list[ProbeTarget]:
    """claim_due for the collector itself: the claimed models as ProbeTargets, ready to probe.

    On PostgreSQL the claim is one statement (select skip-locked, move to the next run with the same
    jitter, return the ids) and only the fields a probe needs are read, because a collector claims
    as often as its probes finish.
    """
    if connection.vendor != "postgresql":
        return [target_of(m, region) for m in claim_due(region, limit, now)]
    now = now or timezone.now()
    slots, models = ProbeSlot._meta.db_table, AIModel._meta.db_table
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            f"""
            UPDATE {slots} AS slot
            SET next_due_at = %(now)s + make_interval(secs => model.interval_seconds
                                                      * (1 - %(jitter)s + 2 * %(jitter)s * random()))
            FROM (SELECT s.id FROM {slots} AS s JOIN {models} AS m ON m.id = s.model_id
                  WHERE s.region = %(region)s AND s.next_due_at <= %(now)s AND m.enabled AND m.probe_kind <> %(push)s
                  ORDER BY s.next_due_at LIMIT %(limit)s
                  FOR UPDATE OF s SKIP LOCKED) AS due,
                 {models} AS model
            WHERE slot.id = due.id AND model.id = slot.model_id
            RETURNING slot.model_id
            """,
            {"now": now, "jitter": JITTER, "region": region, "push": ProbeKind.PUSH, "limit": limit},
        )
        ids = [row[0] for row in cursor.fetchall()]
    if not ids:
        return []
    chosen = AIModel.objects.filter(pk__in=ids).select_related("credential").only(*_TARGET_FIELDS).order_by()
    return [target_of(m, region) for m in chosen]
