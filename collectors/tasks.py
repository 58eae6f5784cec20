"""Celery tasks: probing rounds per region, the staleness sweep, rollups and retention."""

from __future__ import annotations

import asyncio
import logging
import time

from celery import shared_task
from django.conf import settings
from django.db import DatabaseError, connections

from collectors.rollups import apply_retention as _apply_retention
from collectors.rollups import update_rollups as _update_rollups
from collectors.runner import RunSummary, probe_all
from collectors.schedule import claim_due, ensure_slots
from collectors.sweep import sweep
from collectors.targets import target_of

log = logging.getLogger(__name__)
_last_outage_log = 0.0


def _database_unavailable(task: str, exc: Exception) -> None:
    # One line at most every 30 s: a database outage should read as a message, not a traceback loop.
    global _last_outage_log
    if time.monotonic() - _last_outage_log > 30:
        log.warning("%s: database unavailable (%s); retrying every round", task, str(exc).strip().splitlines()[0])
        _last_outage_log = time.monotonic()
    connections.close_all()


def probe_round(region: str, limit: int | None = None) -> RunSummary:
    """Claim what is due in a region, probe it, store and evaluate the results."""
    ensure_slots(region)
    models = claim_due(region, limit or settings.COLLECTOR_BATCH_LIMIT)
    targets = [target_of(m, region) for m in models]
    connections.close_all()  # the event loop's database thread opens its own
    if not targets:
        return RunSummary()
    return asyncio.run(probe_all(targets, concurrency=settings.COLLECTOR_CONCURRENCY))


@shared_task(ignore_result=True)
def run_due_probes(region: str = "default") -> int:
    try:
        return probe_round(region).probed
    except DatabaseError as exc:
        _database_unavailable("run_due_probes", exc)
        return 0


@shared_task(ignore_result=True)
def sweep_statuses() -> int:
    try:
        return len(sweep())
    except DatabaseError as exc:
        _database_unavailable("sweep_statuses", exc)
        return 0


@shared_task(ignore_result=True)
def update_rollups() -> dict:
    try:
        return _update_rollups()
    except DatabaseError as exc:
        _database_unavailable("update_rollups", exc)
        return {}


@shared_task(ignore_result=True)
def apply_retention() -> dict:
    try:
        return _apply_retention()
    except DatabaseError as exc:
        _database_unavailable("apply_retention", exc)
        return {}
