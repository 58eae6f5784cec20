"""WebSocket /ws/status/: the event stream over Django Channels, resumable with `last_seq`.

With `batch=1` the client also takes `batch` frames (several events in one frame, in order): after a
fault, thousands of changes arrive within seconds, and one frame per event and client held every
newer event back for tens of seconds. Without it, every event is a frame of its own.
"""

from __future__ import annotations

import asyncio
from urllib.parse import parse_qs

from channels.consumer import get_handler_name
from channels.generic.websocket import AsyncWebsocketConsumer
from django.conf import settings

from monitoring import json_limits
from monitoring.client_address import scope_address
from monitoring.events import encode
from publishing.realtime.clients import PushClient, batch_frame
from publishing.realtime.connect_limit import REFUSED_CLOSE_CODE, connect_limit
from publishing.realtime.hub import CHUNK, hub
from publishing.realtime.session import EventSession, parse_last_seq

TOO_SLOW = 4008  # close code: the client fell too far behind; reconnect and resume
FULL = 1013  # try again later: this process holds its maximum of connections


class StatusConsumer(AsyncWebsocketConsumer):
    """Live events are pushed by the hub straight to this connection's socket (PushClient): no task
    per connection wakes for them. The consumer handles the opening, the client's messages and the end."""

    client: PushClient | None = None
    session: EventSession | None = None

    async def dispatch(self, message: dict) -> None:
        # Channels closes stale database connections before each handler: a hop to a thread per
        # connect, message and disconnect, which adds up when thousands of clients reconnect after a
        # restart. This consumer never uses the ORM itself (the hub reads the event log on its own
        # thread), so it dispatches directly.
        handler = getattr(self, get_handler_name(message), None)
        if handler is None:
            raise ValueError(f"No handler for message type {message['type']}")
        await handler(message)

    async def connect(self) -> None:
        retry_after = connect_limit.admit(scope_address(self.scope))
        if retry_after:
            # Refused before any work: accepted only to say why (close code 4429) and when to come back.
            await self.accept()
            await self.close(code=REFUSED_CLOSE_CODE, reason=f"too many connects; retry in {retry_after:.0f} s")
            return
        await hub.ensure_started()
        await self.accept()
        if hub.connection_count >= settings.REALTIME_MAX_CONNECTIONS:
            # Accepted, then closed with "try again later", so the client backs off instead of giving up.
            await self.close(code=FULL)
            return
        query = parse_qs(self.scope.get("query_string", b"").decode())
        try:
            last_seq = parse_last_seq((query.get("last_seq") or [None])[0])
        except ValueError:
            error = {"type": "error", "message": "last_seq must be a whole number; starting from now"}
            await self._write(encode(error))
            last_seq = None
        batches = (query.get("batch") or [""])[0] == "1"
        self.client = PushClient(self._write, on_drop=self._dropped, batches=batches)
        self.session = EventSession(self.client)
        hello, *backlog = await self.session.opening(last_seq)
        await self._write(encode(hello))
        step = CHUNK if batches else 1
        for start in range(0, len(backlog), step):
            chunk = backlog[start : start + step]
            await self._write(batch_frame(chunk) if len(chunk) > 1 else encode(chunk[0]))
        self.client.start()  # then whatever was broadcast meanwhile, and live events from here on

    async def _write(self, text: str) -> None:
        await self.base_send({"type": "websocket.send", "text": text})

    def _dropped(self) -> None:
        self.client.close()
        # Counted against the limit until disconnect(): a peer that does not read can keep the
        # closing handshake open until the server's ping timeout.
        hub.closing.add(self.client)
        asyncio.get_running_loop().create_task(self.close(code=TOO_SLOW))

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        """Clients may send {"type": "resume", "last_seq": N} or {"type": "ping"}; anything else is an error frame."""
        if self.client is None:
            return
        # A hostile message (huge, or thousands of nested brackets) gets an error frame like any
        # other bad message; the connection stays open.
        try:
            message = json_limits.loads(
                text_data if text_data is not None else bytes_data.decode(),
                max_bytes=settings.REALTIME_MAX_MESSAGE_BYTES,
            )
            kind = message.get("type") if isinstance(message, dict) else None
        except json_limits.JSONLimitError as exc:
            self._error(f"{exc} Messages must be small JSON objects.")
            return
        except (ValueError, UnicodeDecodeError, AttributeError):
            self._error("messages must be JSON objects")
            return
        if kind == "ping":
            self.client.send({"type": "pong", "seq": hub.last_seq})
        elif kind == "resume":
            try:
                last_seq = parse_last_seq(str(message.get("last_seq", "")))
            except ValueError:
                self._error("last_seq must be a whole number")
                return
            if last_seq is None:
                self._error("resume needs last_seq")
                return
            backlog = await self.session.resume(last_seq)
            for start in range(0, len(backlog), CHUNK):
                self.client.send_all(backlog[start : start + CHUNK])
        else:
            self._error(f"unknown message type {kind!r}; expected 'resume' or 'ping'")

    def _error(self, message: str) -> None:
        self.client.send({"type": "error", "message": message})

    async def disconnect(self, code: int) -> None:
        if self.client is not None:
            self.client.close()
        if self.session is not None:
            self.session.close()
