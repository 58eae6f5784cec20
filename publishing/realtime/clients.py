"""What the hub fans out to: one object per connected client, bounded, in order.

Server-Sent Events pull (the response's iterator awaits the next event), so an SSE client has a
queue. A WebSocket is pushed to: each broadcast event is written to its socket in the hub's own
step, without waking a task per client (see eager.py); only a client whose socket is full gets a
backlog. Either way a client that falls QUEUE_SIZE events behind is dropped, reconnects and
resumes; it never holds the others back.
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

QUEUE_SIZE = 500  # events a client may fall behind before it is dropped


class Client:
    def __init__(self, on_drop: Callable[[], None] | None = None) -> None:
        self.on_drop = on_drop
        self.dropped = False
        self.sent_seq = 0  # the highest status change this client has been given

    def deliver(self, event: dict[str, Any]) -> bool:
        """Take a broadcast event; False when the client is too far behind to take more."""
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
        self.queue: asyncio.Queue = asyncio.Queue(QUEUE_SIZE)

    def deliver(self, event: dict[str, Any]) -> bool:
        try:
            self.queue.put_nowait(event)
        except asyncio.QueueFull:
            return False
        return True

    async def next(self) -> dict[str, Any]:
        """The next live event (heartbeats included: the hub sends them to everyone at once)."""
        while True:
            event = await self.queue.get()
            if self.fresh(event):
                return event


class PushClient(Client):
    """A push transport's client (WebSocket): `write(text)` sends one frame.

    Writes go out in the order events arrive. Until `start()` (the opening frames are written)
    broadcast events are held; while a write waits for room in the socket the next ones are held;
    more than QUEUE_SIZE held and the client is dropped.
    """

    def __init__(self, write: Callable[[str], Awaitable[None]], on_drop: Callable[[], None] | None = None) -> None:
        super().__init__(on_drop)
        self._write = write
        self._held: deque[tuple[dict[str, Any], bool]] = deque()
        self._writing: asyncio.Task | None = None
        self._started = False
        self.closed = False

    def deliver(self, event: dict[str, Any]) -> bool:
        if self.closed:
            return True  # nothing more goes out; the transport's disconnect unregisters it
        if len(self._held) >= QUEUE_SIZE:
            return False
        self._held.append((event, True))
        self._flush()
        return True

    def send(self, event: dict[str, Any]) -> None:
        """A reply to this client alone (pong, error, resumed events): unfiltered, in order with the broadcasts.

        Replies count against the same bound: a client that keeps asking while not reading is dropped.
        """
        if self.closed:
            return
        if len(self._held) >= QUEUE_SIZE:
            self.dropped = True
            self.close()
            if self.on_drop:
                self.on_drop()
            return
        self._held.append((event, False))
        self._flush()

    def start(self) -> None:
        self._started = True
        self._flush()

    def close(self) -> None:
        self.closed = True
        self._held.clear()
        if self._writing is not None:
            self._writing.cancel()

    def _flush(self) -> None:
        if not self._started or self._writing is not None or self.closed:
            return
        while self._held:
            event, broadcast = self._held.popleft()
            if broadcast and not self.fresh(event):
                continue
            try:
                writing = run_eagerly(self._write(encode(event)))
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
