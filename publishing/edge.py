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
from dataclasses import dataclass
from functools import cached_property

from django.conf import settings
from django.urls import LocalePrefixPattern, URLResolver, get_resolver

from publishing.snapshot_store import REFRESH_WAIT_SECONDS, snapshot_thread, store

# A snapshot older than this is never served while a refresh runs; younger ones are, meanwhile.
SERVE_WHILE_REFRESHING = 1.0
MAX_ENTRIES = 2000


def served_from_snapshot(view):
    """Marks a view that answers from the snapshot alone (see statuspage.responses): the edge keeps its bytes."""
    view.served_from_snapshot = True
    return view


def hot_paths(urlconf: str | None = None) -> re.Pattern:
    """The paths the edge looks up, from the URL conf: every route to a view marked served_from_snapshot.

    A language prefix (i18n_patterns) stands for each of settings.LANGUAGES. Everything else goes
    straight to Django without a look at the snapshot.
    """
    routes = [f"(?:{route})" for route in _marked_routes(get_resolver(urlconf).url_patterns, "")]
    return re.compile("^/(?:" + "|".join(routes or ["(?!)"]) + r")\Z")


def _marked_routes(patterns, prefix: str):
    for entry in patterns:
        if isinstance(entry, URLResolver):
            yield from _marked_routes(entry.url_patterns, prefix + _route_regex(entry.pattern))
        elif getattr(entry.callback, "served_from_snapshot", False):
            yield prefix + _route_regex(entry.pattern)


def _route_regex(pattern) -> str:
    if isinstance(pattern, LocalePrefixPattern):
        return "(?:" + "|".join(re.escape(code) for code, _name in settings.LANGUAGES) + ")/"
    regex = pattern.regex.pattern.removeprefix("^").removesuffix(r"\Z").removesuffix("$")
    # One alternation holds many routes: their group names would clash, and only matching counts here.
    return re.sub(r"\(\?P<\w+>", "(?:", regex)


def _credentialed(headers: list[tuple[bytes, bytes]]) -> bool:
    session = settings.SESSION_COOKIE_NAME.encode() + b"="
    for name, value in headers:
        if name == b"authorization" or (name == b"cookie" and session in value):
            return True
    return False


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
        self.entries: dict[tuple[str, bytes, bytes], Entry] = {}
        self._refreshing: asyncio.Future | None = None
        self._refresh_started = 0.0
        self._refreshed_at = 0.0
        self._inflight: dict[tuple[str, bytes, bytes], asyncio.Future] = {}

    @cached_property
    def hot_paths(self) -> re.Pattern:
        return hot_paths()

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http" or scope["method"] not in ("GET", "HEAD") or not self.hot_paths.match(scope["path"]):
            return await self.app(scope, receive, send)
        request_headers = scope.get("headers", [])
        if _credentialed(request_headers):
            # Signed-in readers (a token, a session) may be shown more: their answers are never shared.
            return await self.app(scope, receive, send)
        # The host is part of the key: absolute links (pagination) name the host that was asked.
        host = next((value for name, value in request_headers if name == b"host"), b"")
        key = (scope["path"], scope.get("query_string", b""), host)
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
            self._refreshing = loop.run_in_executor(snapshot_thread, store.get)
            self._refresh_started = time.monotonic()
        stuck = False
        if snapshot is None or time.monotonic() - self._refreshed_at > SERVE_WHILE_REFRESHING:
            # A refresh stuck on a database that does not answer is waited for once, briefly, by all.
            left = None if snapshot is None else self._refresh_started + REFRESH_WAIT_SECONDS - time.monotonic()
            try:
                await asyncio.wait_for(asyncio.shield(self._refreshing), None if left is None else max(left, 0.0))
                self._refreshed_at = time.monotonic()
            except TimeoutError:
                stuck = True
        # Stuck: served from what is held, with what went stale meanwhile shown unknown. Otherwise the
        # refresh's own result (aging it here too would make two versions of every due snapshot).
        current = store.aged() if stuck else store.peek()
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
