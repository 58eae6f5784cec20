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


# With a source of more targets, ask it for as many as there is room for this often: models coming due
# wait about this long at most, and each ask is one query however many probes finished meanwhile.
REFILL_EVERY_S = 0.1


async def probe_all(
    targets: Sequence[ProbeTarget],
    *,
    concurrency: int = 500,
    flush_every: float = 0.5,
    store: ResultStore | None = None,
    on_result: Callable[[Observation], None] | None = None,
    keep_observations: bool = False,
    more: Callable[[int], Sequence[ProbeTarget]] | None = None,
) -> RunSummary:
    """Probe every target (at most `concurrency` at a time), flushing results every `flush_every` seconds.

    Each probe has its own timeout, so a hanging model delays nobody: the others' results are
    written at the next flush. Database work runs on one dedicated thread, off the event loop.

    `more`, when given, is called on another thread with a number of free places and returns up to
    that many further targets (or none); probing goes on while it returns some or probes are still running.
    Topping up as places free up, rather than batch after batch, sets up the session, the loop and
    the connections once, and no batch waits for its slowest probe before the next one starts.
    """
    store = store or ResultStore()
    summary = RunSummary()
    pending: list[Observation] = []
    semaphore = asyncio.Semaphore(concurrency)
    db_thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="collector-db")
    # Claims have their own thread (and connection) so that they never queue behind a flush.
    source_thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="collector-claim") if more else None
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

    stopping = asyncio.Event()

    async def flusher() -> None:
        # Stopped by an event rather than cancelled, so a flush under way is never cut off from the summary.
        while not stopping.is_set():
            try:
                await asyncio.wait_for(stopping.wait(), flush_every)
            except TimeoutError:
                pass
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

    def launch(batch: Sequence[ProbeTarget], session, running: set[asyncio.Task]) -> None:
        for target in batch:
            task = asyncio.create_task(one(target, session))
            running.add(task)
            task.add_done_callback(running.discard)

    async def refill(session, running: set[asyncio.Task]) -> None:
        # Top up from `more` every REFILL_EVERY_S until it has nothing and no probe runs. Up to twice
        # `concurrency` are kept (the extra wait for the semaphore), so that probing goes on at full
        # width while a claim is under way.
        while True:
            room = 2 * concurrency - len(running)
            if room > 0:
                try:
                    launch(await loop.run_in_executor(source_thread, more, room), session, running)
                except Exception as exc:
                    # Stop claiming, but let the running probes finish and their results land (or spool).
                    if isinstance(exc, DatabaseError):
                        log.warning("claiming more targets failed (%s); finishing the probes under way", exc)
                    else:
                        log.exception("claiming more targets failed; finishing the probes under way")
                    await asyncio.gather(*running, return_exceptions=True)
                    return
            if not running:
                return
            await asyncio.sleep(REFILL_EVERY_S)

    flushing = asyncio.create_task(flusher())
    try:
        async with make_session(limit=concurrency) as session:
            if more is None:
                await asyncio.gather(*(one(t, session) for t in targets))
            else:
                running: set[asyncio.Task] = set()
                launch(targets, session, running)
                try:
                    await refill(session, running)
                finally:
                    for task in running:
                        task.cancel()
    finally:
        stopping.set()
        await asyncio.gather(flushing, return_exceptions=True)
        await flush()
        await loop.run_in_executor(db_thread, connections.close_all)
        db_thread.shutdown(wait=True)
        if source_thread is not None:
            await loop.run_in_executor(source_thread, connections.close_all)
            source_thread.shutdown(wait=True)
    return summary
