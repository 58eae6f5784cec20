"""Serves the hot public reads as prerendered bytes at the ASGI edge; Django renders only when the snapshot changes.

A response is kept when its view marks it with `X-Snapshot-Version` equal to the current snapshot's
version (and it sets no cookie): such a view renders from the snapshot alone, so the same bytes
are right for everyone until the version moves. Entries of older versions are never served: each
request first makes sure the process's snapshot is fresh (see snapshot_store), so a cached page
is never more than about a second behind the latest status change.
"""

from __future__ import annotations

import asyncio
import re
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from monitoring.snapshot_store import store

# One thread does the snapshot's database work for the whole process, off the event loop.
_snapshot_thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="snapshot")
# A snapshot older than this is never served while a refresh runs; younger ones are, meanwhile.
SERVE_WHILE_REFRESHING = 1.0
MAX_ENTRIES = 2000
# Only these paths are looked up here; everything else goes straight to Django.
HOT_PATHS = re.compile(
    r"^/(?:(?:ko|en|ja)/(?:models/[\w.-]+/[\w.-]+/|incidents/)?"
    r"|api/v1/snapshot/|api/v2/[\w/.-]+\.json|badge/[\w/.-]+\.svg|feeds/[\w.-]+)$"
)


@dataclass(slots=True)
class Entry:
    version: str
    status: int
    headers: list[tuple[bytes, bytes]]
    body: bytes
    etag: bytes | None


class SnapshotEdge:
    def __init__(self, app) -> None:
        self.app = app
        self.entries: dict[tuple[str, bytes], Entry] = {}
        self._refreshing: asyncio.Future | None = None
        self._refreshed_at = 0.0
        self._inflight: dict[tuple[str, bytes], asyncio.Future] = {}

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http" or scope["method"] not in ("GET", "HEAD") or not HOT_PATHS.match(scope["path"]):
            return await self.app(scope, receive, send)
        key = (scope["path"], scope.get("query_string", b""))
        version = await self._current_version()
        entry = self.entries.get(key)
        if entry is not None and entry.version == version:
            return await self._send(entry, scope, send)
        waiting = self._inflight.get(key)
        if waiting is not None:
            # The page is being rendered for this version right now: share the result.
            entry = await asyncio.shield(waiting)
            if entry is not None and entry.version == version:
                return await self._send(entry, scope, send)
            return await self.app(scope, receive, send)
        future = asyncio.get_running_loop().create_future()
        self._inflight[key] = future
        entry = None
        try:
            entry = await self._render(scope, receive, send)
            if entry is not None and entry.version == version:
                if len(self.entries) >= MAX_ENTRIES:
                    self.entries.clear()
                self.entries[key] = entry
        finally:
            future.set_result(entry)
            del self._inflight[key]

    async def _current_version(self) -> str | None:
        snapshot = store.peek()
        if snapshot is not None and not store.needs_check():
            return snapshot.version
        loop = asyncio.get_running_loop()
        if self._refreshing is None or self._refreshing.done():
            self._refreshing = loop.run_in_executor(_snapshot_thread, store.get)
        if snapshot is None or time.monotonic() - self._refreshed_at > SERVE_WHILE_REFRESHING:
            await asyncio.shield(self._refreshing)
            self._refreshed_at = time.monotonic()
        current = store.peek()
        return current.version if current else None

    async def _render(self, scope, receive, send) -> Entry | None:
        """Let Django answer, passing the response through, and keep it when it is cacheable."""
        captured: dict = {"body": []}

        async def capture(message) -> None:
            if message["type"] == "http.response.start":
                captured["status"] = message["status"]
                captured["headers"] = list(message.get("headers", []))
            elif message["type"] == "http.response.body":
                captured["body"].append(message.get("body", b""))
            await send(message)

        await self.app(scope, receive, capture)
        headers = dict((k.lower(), v) for k, v in captured.get("headers", []))
        version = headers.get(b"x-snapshot-version")
        if captured.get("status") != 200 or version is None or b"set-cookie" in headers:
            return None
        if b"cookie" in headers.get(b"vary", b"").lower() or scope["method"] != "GET":
            return None
        return Entry(version.decode(), 200, captured["headers"], b"".join(captured["body"]), headers.get(b"etag"))

    async def _send(self, entry: Entry, scope, send) -> None:
        request_headers = dict(scope.get("headers", []))
        if entry.etag is not None and request_headers.get(b"if-none-match") == entry.etag:
            kept = (b"etag", b"cache-control", b"x-snapshot-version")
            headers = [(k, v) for k, v in entry.headers if k.lower() in kept]
            await send({"type": "http.response.start", "status": 304, "headers": headers})
            await send({"type": "http.response.body", "body": b""})
            return
        await send({"type": "http.response.start", "status": entry.status, "headers": entry.headers})
        await send({"type": "http.response.body", "body": b"" if scope["method"] == "HEAD" else entry.body})
