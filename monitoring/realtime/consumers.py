"""WebSocket /ws/status/: the event stream over Django Channels, resumable with `last_seq`."""

from __future__ import annotations

import asyncio
import contextlib
import json
from urllib.parse import parse_qs

from channels.generic.websocket import AsyncWebsocketConsumer
from django.conf import settings

from monitoring.realtime.events import encode
from monitoring.realtime.hub import hub
from monitoring.realtime.session import EventSession, parse_last_seq

TOO_SLOW = 4008  # close code: the client fell too far behind; reconnect and resume
FULL = 1013  # try again later: this process holds its maximum of connections


class StatusConsumer(AsyncWebsocketConsumer):
    session: EventSession | None = None
    pump: asyncio.Task | None = None

    async def connect(self) -> None:
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
            await self._send_error("last_seq must be a whole number; starting from now")
            last_seq = None
        self.session = EventSession(on_drop=self._dropped)
        for event in await self.session.opening(last_seq):
            await self.send(text_data=encode(event))
        self.pump = asyncio.create_task(self._pump())

    async def _pump(self) -> None:
        session = self.session
        while True:
            event = await session.next_event()
            if session.dropped:
                return
            await self.send(text_data=encode(event))

    def _dropped(self) -> None:
        asyncio.get_running_loop().create_task(self.close(code=TOO_SLOW))

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        """Clients may send {"type": "resume", "last_seq": N} or {"type": "ping"}; anything else is an error frame."""
        try:
            message = json.loads(text_data if text_data is not None else bytes_data.decode())
            kind = message.get("type") if isinstance(message, dict) else None
        except (ValueError, UnicodeDecodeError, AttributeError):
            await self._send_error("messages must be JSON objects")
            return
        if kind == "ping":
            await self.send(text_data=encode({"type": "pong", "seq": hub.last_seq}))
        elif kind == "resume" and self.session is not None:
            try:
                last_seq = parse_last_seq(str(message.get("last_seq", "")))
            except ValueError:
                await self._send_error("last_seq must be a whole number")
                return
            if last_seq is None:
                await self._send_error("resume needs last_seq")
                return
            for event in await self.session.resume(last_seq):
                await self.send(text_data=encode(event))
        else:
            await self._send_error(f"unknown message type {kind!r}; expected 'resume' or 'ping'")

    async def _send_error(self, message: str) -> None:
        await self.send(text_data=encode({"type": "error", "message": message}))

    async def disconnect(self, code: int) -> None:
        if self.pump is not None:
            self.pump.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self.pump
        if self.session is not None:
            self.session.close()
