"""What the hub fans out to: one object per connected client, bounded, in order.

Server-Sent Events pull (the response's iterator awaits the next event), so an SSE client has a
queue. A WebSocket is pushed to: each broadcast event is written to its socket in the hub's own
step, without waking a task per client (see eager.py); only a client whose socket is full gets a
backlog. Either way a client that falls QUEUE_SIZE events behind is dropped, reconnects and
resumes; it never holds the others back.

Several events ready at once (a catch-up, a burst off the subscription) are handed over together.
A WebSocket that asked for batches (`?batch=1`) gets them as one `batch` frame, whose text the hub
encodes once for every such client; any other WebSocket gets them one frame per event, as always.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any

from monitoring.events import encode
from publishing.realtime.eager import run_eagerly

log = logging.getLogger(__name__)

QUEUE_SIZE = 500  # events a client may fall behind before it is dropped (a batch counts its events)


def batch_frame(events: list[dict[str, Any]]) -> str:
    """One frame for several events, in order: its `seq` is the last one's."""
    body = ",".join(encode(event) for event in events)
    return f'{{"type":"batch","seq":{events[-1].get("seq", 0)},"events":[{body}]}}'


class Client:
    def __init__(self, on_drop: Callable[[], None] | None = None) -> None:
        self.on_drop = on_drop
        self.dropped = False
        self.sent_seq = 0  # the highest status change this client has been given

    # What taking one event costs, in frame writes (the hub sizes its chunks by the sum over clients):
    # a WebSocket without batches writes a frame per event; a pull client (SSE) queues it and makes its
    # frame text later, about a tenth of a write (measured).
    cost_per_event = 0.1

    def deliver(self, event: dict[str, Any]) -> bool:
        """Take a broadcast event; False when the client is too far behind to take more."""
        return self.deliver_all([event], None)

    def deliver_all(self, events: list[dict[str, Any]], batch: str | None) -> bool:
        """Take several broadcast events, in order; `batch` is their `batch_frame`, shared by the
        clients that take it as it is (None for a single event). False when the client is too far behind."""
        raise NotImplementedError

    def fresh(self, event: dict[str, Any]) -> bool:
        """False for a status change the client already has (its backlog was sent after registering)."""
        if event["type"] == "status_change":
            if event["seq"] <= self.sent_seq:
                return False
            self.sent_seq = event["seq"]
        return True


class QueueClient(Client):
    """A pull transport's client (SSE)."""

    def __init__(self, on_drop: Callable[[], None] | None = None) -> None:
        super().__init__(on_drop)
        self.queue: asyncio.Queue = asyncio.Queue()  # bounded in deliver_all

    def deliver_all(self, events: list[dict[str, Any]], batch: str | None) -> bool:
        # Dropped once QUEUE_SIZE events behind, however the events came (one by one or in a chunk).
        if self.queue.qsize() >= QUEUE_SIZE:
            return False
        for event in events:
            self.queue.put_nowait(event)
        return True

    async def next(self) -> list[dict[str, Any]]:
        """The live events queued by now, at least one, in order (heartbeats included: the hub sends
        them to everyone at once). All of them at once, so the transport writes a burst in one go."""
        while True:
            events = [await self.queue.get()]
            while not self.queue.empty():
                events.append(self.queue.get_nowait())
            events = [event for event in events if self.fresh(event)]
            if events:
                return events


class PushClient(Client):
    """A push transport's client (WebSocket): `write(text)` sends one frame.

    Writes go out in the order events arrive. Until `start()` (the opening frames are written)
    broadcast events are held; while a write waits for room in the socket the next ones are held;
    more than QUEUE_SIZE events held and the client is dropped. With `batches`, events handed over
    together go out as one `batch` frame.
    """

    def __init__(
        self,
        write: Callable[[str], Awaitable[None]],
        on_drop: Callable[[], None] | None = None,
        batches: bool = False,
    ) -> None:
        super().__init__(on_drop)
        self._write = write
        self.batches = batches
        # With batches, a chunk is one shared frame: per event only the freshness filter runs.
        self.cost_per_event = 0.02 if batches else 1.0
        # (events, their shared batch frame or None, broadcast): one entry per frame to write.
        self._held: deque[tuple[list[dict[str, Any]], str | None, bool]] = deque()
        self._held_events = 0
        self._writing: asyncio.Task | None = None
        self._started = False
        self.closed = False

    def deliver_all(self, events: list[dict[str, Any]], batch: str | None) -> bool:
        if self.closed:
            return True  # nothing more goes out; the transport's disconnect unregisters it
        if self._held_events >= QUEUE_SIZE:  # QUEUE_SIZE events behind, however they came
            return False
        self._hold(events, batch, broadcast=True)
        self._flush()
        return True

    def _hold(self, events: list[dict[str, Any]], batch: str | None, broadcast: bool) -> None:
        if self.batches and len(events) > 1:
            self._held.append((events, batch, broadcast))
        else:
            self._held.extend(([event], None, broadcast) for event in events)
        self._held_events += len(events)

    def send(self, event: dict[str, Any]) -> None:
        """A reply to this client alone (pong, error): unfiltered, in order with the broadcasts.

        Replies count against the same bound: a client that keeps asking while not reading is dropped.
        """
        self.send_all([event])

    def send_all(self, events: list[dict[str, Any]]) -> None:
        """Several replies (resumed events): one `batch` frame with `batches`, else one frame each."""
        if self.closed or not events:
            return
        if self._held_events >= QUEUE_SIZE:
            self.dropped = True
            self.close()
            if self.on_drop:
                self.on_drop()
            return
        self._hold(events, None, broadcast=False)
        self._flush()

    def start(self) -> None:
        self._started = True
        self._flush()

    def close(self) -> None:
        self.closed = True
        self._held.clear()
        self._held_events = 0
        if self._writing is not None:
            self._writing.cancel()

    def _flush(self) -> None:
        if not self._started or self._writing is not None or self.closed:
            return
        while self._held:
            events, batch, broadcast = self._held.popleft()
            self._held_events -= len(events)
            ready = [event for event in events if self.fresh(event)] if broadcast else events
            if not ready:
                continue
            if len(ready) == 1:
                text = encode(ready[0])
            elif batch is not None and len(ready) == len(events):
                text = batch  # the hub's shared text: nothing filtered out for this client
            else:
                text = batch_frame(ready)
            try:
                writing = run_eagerly(self._write(text))
            except (Exception, asyncio.CancelledError) as exc:  # the socket is gone; its disconnect unregisters us
                log.debug("write to a closed client: %r", exc)
                self.close()
                return
            if writing is not None:
                self._writing = writing
                writing.add_done_callback(self._written)
                return

    def _written(self, task: asyncio.Task) -> None:
        self._writing = None
        if task.cancelled() or task.exception() is not None:
            self.close()
            return
        self._flush()
