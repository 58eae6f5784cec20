"""Celery tasks: probing rounds per region, the staleness sweep, rollups and retention."""

from __future__ import annotations

import asyncio
import logging
import threading
import time

from celery import shared_task
from django.conf import settings
from django.db import connections

from collectors.probes.base import ProbeTarget
from collectors.rollups import apply_retention as _apply_retention
from collectors.rollups import update_rollups as _update_rollups
from collectors.runner import RunSummary, probe_all
from collectors.schedule import claim_targets, ensure_slots
from collectors.sweep import sweep
from monitoring.outages import reports_database_outage

log = logging.getLogger(__name__)


# A round keeps claiming models as they come due for this long, then ends so that the task finishes
# (a worker that is told to stop waits for it) and the next one starts afresh.
ROUND_SECONDS = 10.0
# One round per region at a time in a process: probing is bound to one core, and a second event loop
# would only compete with the first for it. The round under way picks up whatever comes due.
_round_locks: dict[str, threading.Lock] = {}


def probe_round(region: str, limit: int | None = None) -> RunSummary:
    """Claim what is due in a region, probe it, store and evaluate the results.

    The round goes on claiming models as they come due (at most `limit`, and no more than
    COLLECTOR_CONCURRENCY, at a time) for up to ROUND_SECONDS. While it runs, another call for the
    same region in this process returns at once: the round under way takes what comes due.
    """
    lock = _round_locks.setdefault(region, threading.Lock())  # setdefault: one lock even when threads race
    if not lock.acquire(blocking=False):
        return RunSummary()
    try:
        # No more claimed at once than can run at once: the rest stays due in the database, where another
        # worker may take it, rather than waiting in this process's memory.
        concurrency = settings.COLLECTOR_CONCURRENCY
        limit = min(limit or settings.COLLECTOR_BATCH_LIMIT, concurrency)
        ensure_slots(region)
        targets = claim_targets(region, limit)
        connections.close_all()  # the event loop's database threads open their own
        if not targets:
            return RunSummary()
        deadline = time.monotonic() + ROUND_SECONDS

        def more(room: int) -> list[ProbeTarget]:
            if time.monotonic() >= deadline:
                return []
            return claim_targets(region, min(room, limit))

        return asyncio.run(probe_all(targets, concurrency=concurrency, more=more))
    finally:
        lock.release()


@shared_task(ignore_result=True)
@reports_database_outage(lambda: 0)
def run_due_probes(region: str = "default") -> int:
    return probe_round(region).probed


@shared_task(ignore_result=True)
@reports_database_outage(lambda: 0)
def sweep_statuses() -> int:
    return len(sweep())


@shared_task(ignore_result=True)
@reports_database_outage(dict)
def update_rollups() -> dict:
    return _update_rollups()


@shared_task(ignore_result=True)
@reports_database_outage(dict)
def apply_retention() -> dict:
    return _apply_retention()
