"""The agent's side of the site's API: its assignment (with ETag) and its result batches."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import aiohttp
import orjson

from . import VERSION


class Unauthorized(Exception):
    """The site refused the token (wrong or revoked): 401."""


class Unavailable(Exception):
    """The site did not answer, or answered 5xx: try again later; nothing was taken for sure."""


class Rejected(Exception):
    """The site refused the batch as malformed (400); sending it again would not help."""


@dataclass(slots=True)
class Assignment:
    document: dict[str, Any] | None  # None when unchanged (304)
    etag: str
    last_seq: int


class SiteClient:
    def __init__(self, server: str, token: str, timeout_s: float = 30.0) -> None:
        self.server = server.rstrip("/")
        self._headers = {"Authorization": f"Bearer {token}", "User-Agent": f"aistatus-agent/{VERSION}"}
        self._timeout = aiohttp.ClientTimeout(total=timeout_s)
        self._session: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> SiteClient:
        self._session = aiohttp.ClientSession(headers=self._headers, timeout=self._timeout)
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        if self._session is not None:
            await self._session.close()

    async def assignment(self, etag: str = "") -> Assignment:
        headers = {"If-None-Match": etag} if etag else {}
        try:
            async with self._session_().get(self.server + "/api/v1/agents/assignment/", headers=headers) as response:
                await self._check(response)
                last_seq = int(response.headers.get("X-Agent-Last-Seq", "0") or 0)
                if response.status == 304:
                    return Assignment(None, etag, last_seq)
                document = orjson.loads(await response.read())
                return Assignment(document, response.headers.get("ETag", ""), last_seq)
        except _NETWORK_ERRORS as exc:
            raise Unavailable(_describe(exc)) from exc

    async def push(self, body: bytes) -> dict[str, Any]:
        """Send one batch (JSON bytes); the site's receipt."""
        headers = {"Content-Type": "application/json"}
        try:
            url = self.server + "/api/v1/agents/results/"
            async with self._session_().post(url, data=body, headers=headers) as response:
                await self._check(response)
                return orjson.loads(await response.read())
        except _NETWORK_ERRORS as exc:
            raise Unavailable(_describe(exc)) from exc

    def _session_(self) -> aiohttp.ClientSession:
        assert self._session is not None, "use SiteClient as an async context manager"
        return self._session

    @staticmethod
    async def _check(response: aiohttp.ClientResponse) -> None:
        if response.status in (401, 403):
            detail = (await response.text())[:200]
            raise Unauthorized(f"HTTP {response.status}: {detail}")
        if response.status == 400:
            raise Rejected((await response.text())[:2000])
        if response.status >= 300 and response.status != 304:
            raise Unavailable(f"HTTP {response.status}")


_NETWORK_ERRORS = (aiohttp.ClientError, TimeoutError, OSError, orjson.JSONDecodeError)


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
