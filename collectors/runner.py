"""Probes many models at once on one event loop; results are stored and evaluated as they arrive."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from django.db import DatabaseError, connections
from django.utils import timezone

from collectors.evaluate import evaluate
from collectors.probes import make_session, run_probe
from collectors.probes.base import ProbeTarget
from collectors.storage import Observation, ResultStore
from monitoring.models import StatusChange

log = logging.getLogger(__name__)


@dataclass
class RunSummary:
    probed: int = 0
    stored: int = 0
    spooled: int = 0
    observations: list[Observation] = field(default_factory=list)
    changes: list[StatusChange] = field(default_factory=list)


def store_and_evaluate(observations: Sequence[Observation], store: ResultStore) -> tuple[bool, list[StatusChange]]:
    """Write a batch, then derive the statuses it touches. A database outage spools the batch instead."""
    if not store.save(observations):
        return False, []
    try:
        return True, evaluate({o.model_id for o in observations})
    except DatabaseError as exc:
        # The results are safe; the next batch or the sweep derives the statuses again.
        log.warning("status derivation deferred: %s", exc)
        return True, []


async def probe_all(
    targets: Sequence[ProbeTarget],
    *,
    concurrency: int = 500,
    flush_every: float = 0.5,
    store: ResultStore | None = None,
    on_result: Callable[[Observation], None] | None = None,
    keep_observations: bool = False,
) -> RunSummary:
    """Probe every target (at most `concurrency` at a time), flushing results every `flush_every` seconds.

    Each probe has its own timeout, so a hanging model delays nobody: the others' results are
    written at the next flush. Database work runs on one dedicated thread, off the event loop.
    """
    store = store or ResultStore()
    summary = RunSummary()
    pending: list[Observation] = []
    semaphore = asyncio.Semaphore(concurrency)
    db_thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="collector-db")
    loop = asyncio.get_running_loop()

    async def flush() -> None:
        if not pending:
            return
        batch = pending[:]
        pending.clear()
        stored, changes = await loop.run_in_executor(db_thread, store_and_evaluate, batch, store)
        summary.stored += len(batch) if stored else 0
        summary.spooled += 0 if stored else len(batch)
        summary.changes.extend(changes)

    async def flusher() -> None:
        while True:
            await asyncio.sleep(flush_every)
            await flush()

    async def one(target: ProbeTarget, session) -> None:
        async with semaphore:
            started = timezone.now()
            result = await run_probe(target, session)
        observation = Observation(target.model_id, target.region, started, result)
        pending.append(observation)
        summary.probed += 1
        if keep_observations:
            summary.observations.append(observation)
        if on_result:
            on_result(observation)

    flushing = asyncio.create_task(flusher())
    try:
        async with make_session(limit=concurrency) as session:
            await asyncio.gather(*(one(t, session) for t in targets))
    finally:
        flushing.cancel()
        await asyncio.gather(flushing, return_exceptions=True)
        await flush()
        await loop.run_in_executor(db_thread, connections.close_all)
        db_thread.shutdown(wait=True)
    return summary
