"""Keeps each process's snapshot fresh: checks the event log at most twice a second, builds once across processes.

Freshness: a process looks at the latest StatusChange sequence at most every POLL_INTERVAL seconds
(or at once when live events announce a newer one) and swaps in a new snapshot when it changed
or when the current one's `valid_until` passed. Coalescing: a burst of changes inside one interval
costs one build, and across processes the shared cache (Redis) plus a short build lock means one
process builds and the others pick the result up. Without Redis, or with Redis down, each process
builds from the database on its own: the page keeps working.
"""

from __future__ import annotations

import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor

from django.core.cache import cache
from django.db import DatabaseError
from django.utils import timezone

from publishing.read_scope import paused_since, public_read
from publishing.snapshot import Snapshot, aged_snapshot, build_snapshot, content_mark

log = logging.getLogger(__name__)

POLL_INTERVAL = 0.5
CACHE_KEY = "snapshot:current"
LOCK_KEY = "snapshot:building"
LOCK_SECONDS = 10
WAIT_FOR_OTHER_BUILDER = 2.0
# A reader waits this long for a refresh under way; past it the database is not answering (frozen, a
# half-open connection) and the reader gets the snapshot held, aged (see aged()), instead of hanging.
REFRESH_WAIT_SECONDS = 2.0


# After a failed cache call the shared cache is left alone this long: a Redis that does not answer
# costs one timeout per pause, not one per call (readers wait on the refresh that makes them).
CACHE_PAUSE_SECONDS = 5.0
_cache_paused_until = 0.0


def _cache_call(method: str, *args, **kwargs):
    global _cache_paused_until
    if time.monotonic() < _cache_paused_until:
        return None
    try:
        return getattr(cache, method)(*args, **kwargs)
    except Exception as exc:  # Redis away: the database stays the source of truth
        log.debug("snapshot cache %s failed: %s", method, exc)
        _cache_paused_until = time.monotonic() + CACHE_PAUSE_SECONDS
        return None


class SnapshotStore:
    def __init__(self) -> None:
        self._snapshot: Snapshot | None = None
        self._checked_at = 0.0
        self._known_sequence = 0
        self._known_anomaly_event = 0
        self._lock = threading.Lock()
        self._refresh_began = 0.0  # monotonic: when the refresh holding _lock began
        self._swap = threading.Lock()  # replacing the held snapshot from outside a refresh
        self.builds = 0

    def peek(self) -> Snapshot | None:
        return self._snapshot

    @property
    def known_sequence(self) -> int:
        """The newest event sequence this process has seen: no public read may show less."""
        snapshot = self._snapshot
        return max(self._known_sequence, snapshot.sequence if snapshot else 0)

    def needs_check(self) -> bool:
        snapshot = self._snapshot
        return (
            snapshot is None
            or time.monotonic() - self._checked_at >= POLL_INTERVAL
            or self._known_sequence > snapshot.sequence
            or self._known_anomaly_event > _anomaly_event(snapshot)
            or timezone.now() >= snapshot.valid_until
            or snapshot.data["page"].get("updates_paused_since") != paused_since()
        )

    def note_sequence(self, sequence: int) -> None:
        """Live events tell the store a newer change exists; the next read refreshes at once."""
        if sequence > self._known_sequence:
            self._known_sequence = sequence

    def note_anomaly_event(self, event_id: int) -> None:
        """An anomaly opened or closed (the page's "unusual" mark): the next read takes it in, so that a page
        opened after a live client saw the mark shows it too."""
        if event_id > self._known_anomaly_event:
            self._known_anomaly_event = event_id

    def get(self) -> Snapshot:
        """The current snapshot, refreshed first when it may be behind. Safe from any thread."""
        if not self.needs_check():
            return self._snapshot
        if not self._lock.acquire(timeout=self._wait_left() if self._snapshot is not None else -1):
            return self.aged()  # the refresh under way is stuck on the database
        try:
            if self.needs_check():
                self._refresh_began = time.monotonic()
                self._refresh()
        finally:
            self._lock.release()
        return self._snapshot

    def _wait_left(self) -> float:
        """How long a reader may wait on the refresh under way: until REFRESH_WAIT_SECONDS after it began,
        one deadline for every reader. A request that already waited on it once (the edge, before the
        page's view asks again) or came late to a refresh stuck on the database does not wait it all again."""
        if not self._lock.locked():
            return REFRESH_WAIT_SECONDS
        return max(0.001, self._refresh_began + REFRESH_WAIT_SECONDS - time.monotonic())

    def aged(self) -> Snapshot | None:
        """The snapshot held, without waiting on the database: once it is due, statuses whose evidence went
        stale since its build are shown unknown (aged_snapshot). For readers that cannot wait on a refresh
        stuck on a database that does not answer; cheap while nothing went stale."""
        current = self._snapshot
        if current is None:
            return None
        aged = aged_snapshot(current)
        if aged is not current:
            with self._swap:
                if self._snapshot is current:  # a refresh that finished meanwhile wins
                    self._snapshot = aged
        return self._snapshot

    def _set(self, snapshot: Snapshot) -> None:
        with self._swap:
            self._snapshot = snapshot

    def _refresh(self) -> None:
        current = self._snapshot
        known = self.known_sequence
        try:
            # From a replica when one is usable, but never one behind what this process has seen.
            anomaly_event = self._known_anomaly_event
            mark = public_read(content_mark, accept=lambda m: m[0] >= known and (m[-1] or 0) >= anomaly_event)
        except DatabaseError:
            if current is None:
                raise
            # What is shown must still follow the evidence's age: a due snapshot has statuses gone stale.
            self.aged()
            log.warning("database unavailable; serving snapshot %s", self._snapshot.version)
            self._checked_at = time.monotonic()
            return
        self._checked_at = time.monotonic()
        sequence = mark[0]
        self._known_sequence = max(self._known_sequence, sequence)
        now = timezone.now()
        if _holds(current, mark, now):
            return
        shared = _cache_call("get", CACHE_KEY)
        if _holds(shared, mark, now):
            self._set(shared)
            return
        if _cache_call("add", LOCK_KEY, 1, LOCK_SECONDS) is False:
            # Another process is building: use its result if it comes soon, else build here.
            deadline = time.monotonic() + WAIT_FOR_OTHER_BUILDER
            while time.monotonic() < deadline:
                time.sleep(0.02)
                shared = _cache_call("get", CACHE_KEY)
                if _holds(shared, mark, now):
                    self._set(shared)
                    return
        try:
            # A replica's snapshot older than the newest sequence seen is discarded and built elsewhere.
            required, required_anomaly = self.known_sequence, self._known_anomaly_event
            snapshot = public_read(
                build_snapshot,
                accept=lambda built: built.sequence >= required and _anomaly_event(built) >= required_anomaly,
            )
            self.builds += 1
            self._set(snapshot)
            _cache_call("set", CACHE_KEY, snapshot, 3600)
        finally:
            _cache_call("delete", LOCK_KEY)


def _anomaly_event(snapshot: Snapshot) -> int:
    """The newest anomaly event the snapshot was built with (the last part of its content mark)."""
    mark = tuple(getattr(snapshot, "mark", ()))
    return (mark[-1] or 0) if mark else 0


def _holds(snapshot, mark: tuple, now) -> bool:
    """The snapshot is as fresh as `mark` (see content_mark) and still valid."""
    return (
        isinstance(snapshot, Snapshot)
        and snapshot.sequence >= mark[0]
        and tuple(getattr(snapshot, "mark", ()))[1:] == tuple(mark[1:])
        and now < snapshot.valid_until
        # The banner "updates paused" comes and goes with the primary.
        and snapshot.data["page"].get("updates_paused_since") == paused_since()
    )


store = SnapshotStore()
# One thread does the snapshot's database work for the whole process, off the event loop (the edge, the hub).
snapshot_thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="snapshot")


def current_snapshot() -> Snapshot:
    return store.get()


def note_changes(sender, changes, **kwargs) -> None:
    """A batch of status changes committed in this process: the next read takes in the newest."""
    if changes:
        store.note_sequence(changes[-1].pk)
