"""One event subscription per server process, fanned out in memory to every connected client.

Per-client channel-layer groups drop messages over capacity and slow down with many members, so
each process follows the event log once: a Redis subscription for sub-second delivery, and the
database's StatusChange log as the source of truth (polled every few seconds, and read to fill any
gap). Events are delivered in sequence order. Each client has a bounded queue: a client that does
not keep up is dropped (it reconnects and resumes), and never slows the others.

Events ready together (a read of the log, the messages waiting on the subscription) are fanned out
in chunks, one chunk per turn of the event loop: a client taking batches gets a chunk as one frame
(its text encoded once for all of them), so a burst of thousands of changes after a fault costs a
write per chunk and client instead of one per event and client.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from django.conf import settings
from django.db import DatabaseError, connections

from anomalies.events import events_after as anomaly_events_after
from anomalies.events import latest_event_id as latest_anomaly_event
from monitoring.events import WIRE, encode, status_change_event
from monitoring.models import StatusChange
from publishing.realtime.clients import Client, batch_frame
from publishing.realtime.publisher import channel
from publishing.snapshot import latest_sequence
from publishing.snapshot_store import REFRESH_WAIT_SECONDS, snapshot_thread
from publishing.snapshot_store import store as snapshot_store

log = logging.getLogger(__name__)

# How often the hub looks for a snapshot that changed without an event (a cheap look: the store
# queries the database at most twice a second, and only rebuilds when something shown changed).
SNAPSHOT_WATCH_SECONDS = 1.0
# The longest wait between two tries to subscribe again while Redis is away: one cheap connect per try
# and process. Up to 10 s, live push came back 5-6 s after a 30 s Redis outage ended.
RESUBSCRIBE_MAX_SECONDS = 2.0
REPLAY_LIMIT = 1000  # a client further behind than this refetches the snapshot
# How long one read of the log after a sequence serves the other clients resuming from it. After a web
# restart every client resumes from about the same sequence at once: read one by one on the event-log
# thread, 1,200 of them took up to 55 s to open (and the hub's own catch-up waited behind them).
SHARED_READ_SECONDS = 10.0
RECENT = 2000  # events kept in memory for replay without a database query
# Events fanned out in one turn of the event loop, as one frame to a client taking batches. Well under
# QUEUE_SIZE: a client whose socket is full holds two chunks before it is dropped.
CHUNK = 200
# Frame writes per turn for the clients that take one frame per event: with many of them, a chunk
# holds fewer events, so that the page and API reads of this process are never held for long.
WRITES_PER_TURN = 1000
# Subscription messages read without waiting after one arrives, and handled together.
DRAIN_LIMIT = 1000
# After a read of the event log failed (the database away, unreachable or not answering), a gap in the
# subscription's sequence is not waited on for this long: the events Redis carries go out as they
# come, past the gap, rather than every live client hearing nothing until the database is back. What
# fell in the gap reaches clients with the next snapshot (its version moves once the database answers).
LOG_RETRY_SECONDS = 5.0
# The longest a gap waits on the log (for a read under way, then for its own): a read stuck on a database
# that does not answer counts as failed. A healthy log answers a gap's read in milliseconds.
LOG_READ_TIMEOUT_SECONDS = 1.0

_db_thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="event-log")


def _fetch_after(after: int, limit: int) -> list[dict[str, Any]]:
    rows = (
        StatusChange.objects.filter(pk__gt=after, model__public=True)
        .select_related("model__provider")
        .order_by("pk")[:limit]
    )
    return [status_change_event(c, c.model) for c in rows]


def _sequence_exists(seq: int) -> bool:
    return StatusChange.objects.filter(pk=seq).exists()


def _read_backlog(after: int, known: bool) -> list[dict[str, Any]] | None:
    """The public events after `after` (at most REPLAY_LIMIT); None when `after` is unknown or too far behind."""
    if not known and not _sequence_exists(after):
        return None
    events = _fetch_after(after, REPLAY_LIMIT + 1)
    return None if len(events) > REPLAY_LIMIT else events


class Hub:
    def __init__(self) -> None:
        self.clients: set[Client] = set()
        self.closing: set[Client] = set()  # dropped WebSockets whose connection has not ended yet
        self.last_seq = 0
        # Anomaly events follow their own log (AnomalyEvent ids); they carry the status `seq` as it stands.
        self.last_anomaly_seq = 0
        self.recent: deque[dict[str, Any]] = deque(maxlen=RECENT)
        self.redis_connected = False
        self.snapshot_version: str | None = None
        self._started = False
        self._tasks: list[asyncio.Task] = []
        self._catching_up = asyncio.Lock()
        self._starting = asyncio.Lock()
        self._snapshot_refresh: asyncio.Task | None = None
        self._snapshot_get: asyncio.Future | None = None
        self.dropped = 0
        self.delivered = 0
        # Sequences given to clients (hello, events): a client resuming from one of them needs no lookup.
        self._handed_out: set[int] = set()
        # Reads of the log after a sequence, shared by the clients resuming from it: sequence -> (when, read).
        self._shared_reads: dict[int, tuple[float, asyncio.Future]] = {}
        self._log_failed_at = -math.inf  # when a read of the event log last failed (monotonic)

    # -- lifecycle -------------------------------------------------------------------------------

    async def ensure_started(self) -> None:
        if self._started:
            return
        async with self._starting:
            if self._started:
                return
            # Raises while the database is away: this connection fails, the next one tries again.
            self.last_seq = await self._db(latest_sequence)
            self.last_anomaly_seq = await self._db(latest_anomaly_event)
            self._start_following()
            self._started = True

    def _start_following(self) -> None:
        snapshot = snapshot_store.peek()
        self.snapshot_version = snapshot.version if snapshot else None
        self._tasks.append(asyncio.create_task(self._poll_log(), name="event-log poll"))
        self._tasks.append(asyncio.create_task(self._heartbeats(), name="heartbeats"))
        self._tasks.append(asyncio.create_task(self._watch_snapshot(), name="snapshot watch"))
        self._schedule_snapshot_event()
        if settings.REDIS_URL:
            self._tasks.append(asyncio.create_task(self._follow_redis(), name="event subscription"))

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()
        self._started = False

    async def _db(self, fn, *args):
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(_db_thread, fn, *args)
        except DatabaseError:
            await loop.run_in_executor(_db_thread, connections.close_all)
            raise

    # -- clients ---------------------------------------------------------------------------------

    @property
    def connection_count(self) -> int:
        # Dropped clients count until their connection has really ended: closing one whose peer
        # does not read can take until the server's ping timeout.
        return len(self.clients) + len(self.closing)

    def register(self, client: Client) -> Client:
        self.clients.add(client)
        return client

    def unregister(self, client: Client) -> None:
        self.clients.discard(client)
        self.closing.discard(client)

    async def backlog(self, after: int) -> list[dict[str, Any]] | None:
        """Events after `after`, in order; None when the gap is too old or the sequence is unknown."""
        if after == self.last_seq:
            return []
        if after > self.last_seq or after <= 0:
            return None
        if self.recent and self.recent[0]["seq"] <= after and after in self._handed_out:
            return [e for e in self.recent if e["seq"] > after]
        events = await self._shared_read(after)
        if events is None:
            return None
        # The read may be seconds old: what this process emitted since then follows it (the client
        # was registered before asking, so anything later reaches it live).
        newest = events[-1]["seq"] if events else after
        if len(self.recent) == RECENT and self.recent[0]["seq"] > newest + 1:
            return None  # more was emitted since than is held: the client refetches the snapshot
        return [*events, *(e for e in self.recent if e["seq"] > newest)]

    async def _shared_read(self, after: int) -> list[dict[str, Any]] | None:
        """One read of the log after `after` for every client resuming from it within SHARED_READ_SECONDS."""
        now = time.monotonic()
        shared = self._shared_reads.get(after)
        if shared is None or now - shared[0] > SHARED_READ_SECONDS or (shared[1].done() and shared[1].exception()):
            for seq in [s for s, (at, _) in self._shared_reads.items() if now - at > SHARED_READ_SECONDS]:
                del self._shared_reads[seq]
            read = asyncio.ensure_future(self._db(_read_backlog, after, after in self._handed_out))
            # A read whose askers all went away (their clients disconnected) still completes for the next ones.
            read.add_done_callback(lambda f: f.cancelled() or f.exception())
            shared = self._shared_reads[after] = (now, read)
        return await asyncio.shield(shared[1])

    def hello(self) -> dict[str, Any]:
        self._handed_out.add(self.last_seq)
        return {"type": "hello", "seq": self.last_seq, "snapshot_version": self.snapshot_version}

    def _broadcast(self, event: dict[str, Any]) -> None:
        self._fan_out([event])

    def _fan_out(self, events: list[dict[str, Any]]) -> None:
        """Hand events to every client in one step, so each gets them in order, and each event is encoded once."""
        for event in events:
            event[WIRE] = encode(event)
        batch = batch_frame(events) if len(events) > 1 else None
        for client in list(self.clients):
            if client.deliver_all(events, batch):
                self.delivered += len(events)
            else:
                # Too slow: drop it rather than hold everyone back. It reconnects and resumes.
                self.clients.discard(client)
                client.dropped = True
                self.dropped += 1
                if client.on_drop:
                    client.on_drop()

    # -- following the event log -----------------------------------------------------------------

    async def _catch_up(self, timeout: float | None = None) -> bool:
        """Emit what the log holds after `last_seq`; False when the log could not be read (within `timeout`,
        counted for the wait on a catch-up already under way too: a poll stuck on the database)."""
        try:
            await asyncio.wait_for(self._catching_up.acquire(), timeout)
        except TimeoutError:
            self._log_failed_at = time.monotonic()
            return False
        try:
            try:
                # The latest sequence first: read after the events, it could pass a public change
                # committed between the two reads, and that change would never be emitted here.
                latest = await asyncio.wait_for(self._db(latest_sequence), timeout)
                events = await asyncio.wait_for(self._db(_fetch_after, self.last_seq, 5000), timeout)
            except (DatabaseError, TimeoutError) as exc:
                self._log_failed_at = time.monotonic()
                log.warning("event log unavailable: %s", (str(exc).strip() or "no answer").splitlines()[0])
                return False
            await self._emit_in_turns(events)
            # Changes of private models move the sequence too; never look at them again.
            self.last_seq = max(self.last_seq, latest if not events else events[-1]["seq"])
            await self._catch_up_anomalies()
            return True
        finally:
            self._catching_up.release()

    def _log_reachable(self) -> bool:
        return time.monotonic() - self._log_failed_at > LOG_RETRY_SECONDS

    async def _catch_up_anomalies(self) -> None:
        try:
            events, read_until = await self._db(anomaly_events_after, self.last_anomaly_seq, 1000)
        except DatabaseError as exc:
            log.warning("anomaly log unavailable: %s", str(exc).strip().splitlines()[0])
            return
        self._emit_anomalies(events)
        # Events of private models move the log too.
        self.last_anomaly_seq = max(self.last_anomaly_seq, read_until)

    def _emit_anomalies(self, events: list[dict[str, Any]]) -> None:
        emitted = False
        for event in events:
            if event["anomaly_seq"] <= self.last_anomaly_seq:
                continue
            self.last_anomaly_seq = event["anomaly_seq"]
            self._broadcast({**event, "seq": self.last_seq})
            emitted = True
        if emitted:
            snapshot_store.note_anomaly_event(self.last_anomaly_seq)
            self._schedule_snapshot_event()  # the snapshot carries open anomalies

    def _chunk_size(self) -> int:
        """Events per turn: CHUNK, fewer when the clients' cost per event (in frame writes) adds up past
        WRITES_PER_TURN: a frame each for a WebSocket without batches, a fraction for SSE (a queue put,
        then its frame text) and for a WebSocket taking batches (its filter over the chunk)."""
        cost = sum(client.cost_per_event for client in self.clients)
        return max(1, min(CHUNK, int(WRITES_PER_TURN / max(cost, 1.0))))

    async def _emit_in_turns(self, events: list[dict[str, Any]]) -> None:
        """Emit events a chunk per turn of the event loop: their fan-out (every event to every client)
        must not hold the page and API reads of this process until it ends. Each chunk's fan-out
        stays one step, so every client gets the events in order and a client registering in between
        is told where it stands (hello) before the next chunk."""
        start = 0
        while start < len(events):
            size = self._chunk_size()
            self._emit(events[start : start + size])
            start += size
            await asyncio.sleep(0)

    def _emit(self, events: list[dict[str, Any]]) -> None:
        new = []
        for event in events:
            if event["seq"] <= self.last_seq:
                continue
            self.last_seq = event["seq"]
            self.recent.append(event)
            if len(self._handed_out) > 100_000:
                self._handed_out.clear()
            self._handed_out.add(event["seq"])
            new.append(event)
        if new:
            self._fan_out(new)  # at most a chunk: _emit_in_turns hands them over that way
            snapshot_store.note_sequence(self.last_seq)
            self._schedule_snapshot_event()

    def _schedule_snapshot_event(self) -> None:
        if self._snapshot_refresh is None or self._snapshot_refresh.done():
            self._snapshot_refresh = asyncio.create_task(self._announce_snapshot())

    async def _announce_snapshot(self) -> None:
        # Let a burst of changes land in one build, and their fan-out go first: the status changes
        # are what clients wait for; the snapshot event only refreshes figures around them.
        await asyncio.sleep(0.3)
        if self._snapshot_get is None or self._snapshot_get.done():
            self._snapshot_get = asyncio.get_running_loop().run_in_executor(snapshot_thread, snapshot_store.get)
        try:
            snapshot = await asyncio.wait_for(asyncio.shield(self._snapshot_get), REFRESH_WAIT_SECONDS)
        except TimeoutError:
            # The database does not answer: clients still hear of statuses going stale meanwhile.
            snapshot = snapshot_store.aged()
        except Exception as exc:  # the next change or poll tries again
            log.warning("snapshot refresh failed: %s", exc)
            return
        if snapshot is None:
            return
        if snapshot.version != self.snapshot_version:
            self.snapshot_version = snapshot.version
            self._broadcast({"type": "snapshot", "seq": self.last_seq, "version": snapshot.version})

    async def _watch_snapshot(self) -> None:
        # A snapshot also changes without any event: evidence going stale turns shown statuses
        # `unknown` when no sweep runs (every collector stopped) and so no StatusChange is written.
        # Live clients keep what they were told, so they must hear of that snapshot too.
        while True:
            await asyncio.sleep(SNAPSHOT_WATCH_SECONDS)
            self._schedule_snapshot_event()

    async def _heartbeats(self) -> None:
        # One broadcast for everyone, rather than a timer per connection: at 10,000 clients the
        # per-connection timers cost more than the events themselves.
        while True:
            await asyncio.sleep(settings.REALTIME_HEARTBEAT_SECONDS)
            self._broadcast({"type": "heartbeat", "seq": self.last_seq})

    async def _poll_log(self) -> None:
        while True:
            subscribed = self.redis_connected
            await asyncio.sleep(
                settings.REALTIME_POLL_SECONDS if subscribed else settings.REALTIME_FALLBACK_POLL_SECONDS
            )
            await self._catch_up()

    async def on_message(self, event: dict[str, Any]) -> None:
        await self.on_messages([event])

    async def on_messages(self, events: list[dict[str, Any]]) -> None:
        """Events off the subscription, in the order published: the status changes that follow on
        from the last one are emitted together; a gap is read from the log, in order."""
        run: list[dict[str, Any]] = []
        for event in events:
            if not isinstance(event, dict):
                continue
            if event.get("type") == "anomaly":
                await self._emit_in_turns(run)
                run = []
                await self._on_anomaly(event)
                continue
            if event.get("type") != "status_change" or not isinstance(event.get("seq"), int):
                continue  # not ours: one malformed message must not cost the chunk it would travel in
            seq = event["seq"]
            newest = run[-1]["seq"] if run else self.last_seq
            if seq <= newest:
                continue
            if seq == newest + 1:
                run.append(event)
                continue
            await self._emit_in_turns(run)
            run = []
            # Something in between: read it from the log, in order (the log holds this event too).
            if self._log_reachable() and await self._catch_up(timeout=LOG_READ_TIMEOUT_SECONDS):
                continue
            run.append(event)  # the log cannot fill the gap now: go on with what Redis carries
        await self._emit_in_turns(run)

    async def _on_anomaly(self, event: dict[str, Any]) -> None:
        anomaly_seq = event.get("anomaly_seq", 0)
        if anomaly_seq == self.last_anomaly_seq + 1:
            self._emit_anomalies([event])
        elif anomaly_seq > self.last_anomaly_seq:
            async with self._catching_up:
                await self._catch_up_anomalies()  # something in between: read it from the log, in order

    async def _follow_redis(self) -> None:
        import json

        import redis.asyncio as aioredis
        from redis.asyncio.retry import Retry
        from redis.backoff import NoBackoff

        backoff = 0.5
        while True:
            # No retries inside the client (redis-py's default backs off up to seconds per try): this loop
            # alone decides when to try again, at most RESUBSCRIBE_MAX_SECONDS apart.
            client = aioredis.Redis.from_url(
                settings.REDIS_URL, socket_connect_timeout=2, health_check_interval=10, retry=Retry(NoBackoff(), 0)
            )
            try:
                async with client.pubsub() as pubsub:
                    await pubsub.subscribe(channel())
                    if not self.redis_connected:
                        log.info("event subscription on Redis active")
                    self.redis_connected = True
                    backoff = 0.5
                    await self._catch_up()  # whatever happened while not subscribed
                    async for message in pubsub.listen():
                        # A burst (the messages published while Redis was frozen, delivered at once when
                        # it resumes; many models changing together) is already in the client's buffer:
                        # take what is there without waiting and fan it out in chunks, rather than one
                        # event per turn (one frame per event and client held newer events for tens of seconds).
                        messages = [message]
                        while len(messages) < DRAIN_LIMIT:
                            waiting = await pubsub.get_message(timeout=0)
                            if waiting is None:
                                break
                            messages.append(waiting)
                        events = []
                        for waiting in messages:
                            if waiting.get("type") != "message":
                                continue
                            try:
                                event = json.loads(waiting["data"])
                            except ValueError:
                                continue
                            if isinstance(event, dict):
                                events.append(event)
                        await self.on_messages(events)
                        # The fan-out takes turns of the event loop (see _emit_in_turns): the page and
                        # API reads of this process never wait for a whole burst.
                        await asyncio.sleep(0)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # Redis away: the database poll carries events meanwhile
                if self.redis_connected:
                    log.warning("event subscription lost (%s); following the database log", exc)
                self.redis_connected = False
                await asyncio.sleep(backoff + backoff * 0.2 * (time.monotonic() % 1))
                backoff = min(backoff * 2, RESUBSCRIBE_MAX_SECONDS)
            finally:
                with contextlib.suppress(Exception):
                    await client.aclose()


hub = Hub()
