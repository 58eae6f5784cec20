"""One HTTP exchange over ASGI: reading the JSON body, answering, streaming events, pausing and deliberate cuts."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

Send = Callable[[dict[str, Any]], Awaitable[None]]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Headers = list[tuple[bytes, bytes]]

_JSON = b"application/json"
_EVENT_STREAM_HEADERS: Headers = [
    (b"content-type", b"text/event-stream; charset=utf-8"),
    (b"cache-control", b"no-cache"),
]


class BadRequest(Exception):
    """The request itself is invalid (HTTP 400); the message says which field."""


class Waiters:
    """The exchanges currently pausing, so a stopping server can release them instead of waiting out a hang."""

    def __init__(self) -> None:
        self.closing = False
        self._exchanges: set[Exchange] = set()
        self._loop: asyncio.AbstractEventLoop | None = None

    def add(self, exchange: Exchange) -> None:
        if self._loop is None:
            self._loop = asyncio.get_running_loop()
        self._exchanges.add(exchange)

    def discard(self, exchange: Exchange) -> None:
        self._exchanges.discard(exchange)

    def release(self) -> None:
        """End every pause now and refuse new ones. Safe to call from any thread."""
        self.closing = True
        loop = self._loop
        if loop is None or loop.is_closed():
            return
        try:
            loop.call_soon_threadsafe(self._release_now)
        except RuntimeError:  # the loop stopped between the check and the call
            pass

    def _release_now(self) -> None:
        for exchange in list(self._exchanges):
            exchange.stop()


class Exchange:
    """A request in flight. Pauses end early when the client goes away, so abandoned requests stop working."""

    __slots__ = ("_send", "_receive", "_waiters", "_stop", "_watcher", "started", "client_gone")

    def __init__(self, send: Send, receive: Receive, waiters: Waiters) -> None:
        self._send = send
        self._receive = receive
        self._waiters = waiters
        self._stop: asyncio.Event | None = None
        self._watcher: asyncio.Task[None] | None = None
        self.started = False
        self.client_gone = False

    async def read_json(self) -> dict[str, Any]:
        message = await self._receive()
        body = message.get("body", b"")
        if message.get("more_body"):
            parts = [body]
            while message.get("more_body"):
                message = await self._receive()
                parts.append(message.get("body", b""))
            body = b"".join(parts)
        if message["type"] == "http.disconnect":
            self.client_gone = True
            raise BadRequest("the client disconnected before sending the body")
        try:
            data = json.loads(body)
        except ValueError:
            raise BadRequest("the request body must be JSON") from None
        if not isinstance(data, dict):
            raise BadRequest("the request body must be a JSON object")
        return data

    async def pause(self, seconds: float) -> bool:
        """Wait `seconds`; False if the client disconnected or the server is stopping first."""
        if seconds <= 0:
            return True
        if self._waiters.closing or self.client_gone:
            return False
        if self._stop is None:
            self._stop = asyncio.Event()
            self._watcher = asyncio.get_running_loop().create_task(self._watch_disconnect())
            self._waiters.add(self)
        elif self._stop.is_set():
            return False
        try:
            async with asyncio.timeout(seconds):
                await self._stop.wait()
        except TimeoutError:
            return True
        return False

    async def _watch_disconnect(self) -> None:
        # The body is already read, so the next message the server hands over is the disconnect.
        while (await self._receive())["type"] != "http.disconnect":
            pass
        self.client_gone = True
        self.stop()

    def stop(self) -> None:
        if self._stop is not None:
            self._stop.set()

    def close(self) -> None:
        if self._watcher is not None:
            self._watcher.cancel()
            self._waiters.discard(self)

    async def json(self, status: int, body: bytes, headers: Iterable[tuple[bytes, bytes]] = ()) -> None:
        self.started = True
        await self._send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [(b"content-type", _JSON), (b"content-length", str(len(body)).encode()), *headers],
            }
        )
        await self._send({"type": "http.response.body", "body": body})

    async def truncated_json(self, status: int, body: bytes) -> None:
        """Announce the full length, send half the body and stop: the client sees the connection cut."""
        self.started = True
        await self._send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [(b"content-type", _JSON), (b"content-length", str(len(body)).encode())],
            }
        )
        await self._send({"type": "http.response.body", "body": body[: len(body) // 2], "more_body": True})

    async def start_events(self, first: bytes = b"") -> None:
        self.started = True
        await self._send({"type": "http.response.start", "status": 200, "headers": _EVENT_STREAM_HEADERS})
        if first:
            await self._send({"type": "http.response.body", "body": first, "more_body": True})

    async def events(self, data: bytes) -> None:
        await self._send({"type": "http.response.body", "body": data, "more_body": True})

    async def end_events(self, data: bytes = b"") -> None:
        await self._send({"type": "http.response.body", "body": data, "more_body": False})

    async def whole_event_stream(self, data: bytes) -> None:
        """An unpaced stream in one write: the same bytes on the wire, far less work per request."""
        self.started = True
        await self._send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [*_EVENT_STREAM_HEADERS, (b"content-length", str(len(data)).encode())],
            }
        )
        await self._send({"type": "http.response.body", "body": data})

    async def token_stream(
        self,
        ttft_s: float,
        interval_s: float,
        opening: str,
        piece: Callable[[int], str],
        count: int,
        closing: str,
        broken: bool,
    ) -> None:
        """A streamed answer: `opening`, then `count` pieces paced `interval_s` apart after the first
        token's wait, then `closing`. A broken stream delivers about half its pieces and then drops."""
        sent = max(1, count // 2) if broken else count
        if not await self.pause(ttft_s):
            return
        if not interval_s:
            if broken:
                await self.start_events((opening + "".join(piece(i) for i in range(sent))).encode())
            else:
                await self.whole_event_stream((opening + "".join(piece(i) for i in range(count)) + closing).encode())
            return
        await self.start_events((opening + piece(0)).encode())
        loop = asyncio.get_running_loop()
        began = loop.time()
        for i in range(1, sent):
            delay = began + i * interval_s - loop.time()
            if delay > 0 and not await self.pause(delay):
                return
            await self.events(piece(i).encode())
        if not broken:
            await self.end_events(closing.encode())
