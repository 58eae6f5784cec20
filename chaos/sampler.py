"""What users see, read every 250 ms: the page, /api/v1/models/, /api/v2/summary.json and a WebSocket client.

Each reading keeps the time it was asked, which models it showed `operational` (as the set of those it did
not, since most are), and for HTTP the answer's status and latency. A WebSocket and an SSE client also
note when each "pulse" (an operator's status change the suite makes to time live delivery) arrives.
"""

from __future__ import annotations

import asyncio
import json
import re
import threading
import time
from dataclasses import dataclass, field

import aiohttp
import websockets

from chaos.seed import PROVIDER, PULSE_MODEL, PULSE_PROVIDER

PERIOD_S = 0.25
PAGE_ITEM = re.compile(r'<li class="model" data-model="([^"]+)" data-status="([^"]+)"')
PULSE = f"{PULSE_PROVIDER}/{PULSE_MODEL}"


@dataclass
class Reading:
    at: float  # when it was asked (epoch)
    source: str
    not_operational: frozenset[str]  # chaos models shown anything but operational
    seen: int  # chaos models it showed at all
    unknown: int  # chaos models it showed unknown
    # When its (last) answer arrived: what it shows may be the product's knowledge at any moment from
    # `at` to this one. A live client's state is read at once (None: the same as `at`).
    answered: float | None = None

    @property
    def until(self) -> float:
        return self.at if self.answered is None else self.answered


@dataclass
class Request:
    at: float
    source: str
    status: int  # 0: no answer (refused, reset, timed out)
    seconds: float
    # For a failed read: the URL that failed (a list's later page, too) and what came back: the exception,
    # or the start of the body of a non-2xx answer. Empty for a 2xx.
    url: str = ""
    error: str = ""


@dataclass
class Record:
    readings: list[Reading] = field(default_factory=list)
    requests: list[Request] = field(default_factory=list)
    pulses: dict[str, dict[str, float]] = field(default_factory=dict)  # reason -> transport -> received at
    ws_connected: bool = False


def _describe(failure: BaseException) -> str:
    """The exception's kind and message, short (a timeout's message is often empty)."""
    text = str(failure).strip()
    return f"{type(failure).__name__}: {text}"[:160] if text else type(failure).__name__


def _chaos(slug: str) -> str | None:
    provider, _, model = slug.partition("/")
    return model if provider == PROVIDER else None


def _not_operational(statuses: dict[str, str]) -> tuple[frozenset[str], int, int]:
    unknown = sum(1 for s in statuses.values() if s == "unknown")
    return frozenset(m for m, s in statuses.items() if s != "operational"), len(statuses), unknown


class Sampler:
    """Runs in a thread of its own with its own event loop until `stop()`."""

    def __init__(self, web: str, models: int) -> None:
        self.web = web
        self.models = models
        self.record = Record()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=lambda: asyncio.run(self._main()), daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(30)

    def take(self) -> Record:
        """What was recorded since the last take (a scenario's share)."""
        with self._lock:
            record, self.record = self.record, Record(ws_connected=self.record.ws_connected)
        return record

    def all_unknown(self, since: float) -> bool:
        """Whether every reader has shown every model unknown at least once since `since`."""
        with self._lock:
            readings = list(self.record.readings)
        done = {r.source for r in readings if r.at >= since and r.unknown == self.models}
        return done >= {"page", "api_v1", "summary", "websocket"}

    def _add(self, kind: str, item) -> None:
        with self._lock:
            getattr(self.record, kind).append(item)

    def _pulse(self, reason: str, transport: str) -> None:
        with self._lock:
            self.record.pulses.setdefault(reason, {}).setdefault(transport, time.time())

    # -- the loops -------------------------------------------------------------------------------

    async def _main(self) -> None:
        timeout = aiohttp.ClientTimeout(total=5)
        async with aiohttp.ClientSession(timeout=timeout) as session:
            tasks = [
                asyncio.create_task(self._poll(session, "page", "/en/", self._page)),
                asyncio.create_task(self._poll(session, "api_v1", "/api/v1/models/?provider=chaos", self._api_v1)),
                asyncio.create_task(self._poll(session, "summary", "/api/v2/summary.json", self._summary)),
                asyncio.create_task(self._websocket(session)),
                asyncio.create_task(self._sse()),
            ]
            while not self._stop.is_set():
                await asyncio.sleep(0.1)
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    async def _poll(self, session: aiohttp.ClientSession, source: str, path: str, parse) -> None:
        next_at = time.monotonic()
        while True:
            asked, started = time.time(), time.monotonic()
            status, body, url, error = 0, [], self.web + path, ""
            try:
                status, body = await self._get(session, url)
                # The model list comes 100 a page: a reading is every page, following `next`.
                while status == 200 and source == "api_v1" and (following := json.loads(body[-1]).get("next")):
                    url = following
                    status, more = await self._get(session, url)
                    body += more
            except (TimeoutError, aiohttp.ClientError, OSError, ValueError) as failure:
                status, error = 0, _describe(failure)
            if status != 0 and not 200 <= status < 300:
                error = body[-1][:120].decode(errors="replace") if body else ""
            failed = not 200 <= status < 300
            seconds = time.monotonic() - started
            answered = asked + seconds
            self._add("requests", Request(asked, source, status, seconds, url if failed else "", error))
            if status == 200:
                try:
                    statuses = parse(body)
                except (ValueError, KeyError, TypeError):
                    statuses = None
                if statuses is not None:
                    self._add("readings", Reading(asked, source, *_not_operational(statuses), answered=answered))
            next_at += PERIOD_S
            await asyncio.sleep(max(0.0, next_at - time.monotonic()))
            if next_at < time.monotonic() - 5 * PERIOD_S:  # fell behind (a slow answer): do not burst
                next_at = time.monotonic()

    @staticmethod
    async def _get(session: aiohttp.ClientSession, url: str) -> tuple[int, list[bytes]]:
        async with session.get(url) as response:
            return response.status, [await response.read()]

    @staticmethod
    def _page(bodies: list[bytes]) -> dict[str, str]:
        statuses = {}
        for slug, status in PAGE_ITEM.findall(bodies[0].decode()):
            if (model := _chaos(slug)) is not None:
                statuses[model] = status
        return statuses

    @staticmethod
    def _api_v1(bodies: list[bytes]) -> dict[str, str]:
        statuses = {}
        for item in (item for body in bodies for item in json.loads(body)["results"]):
            provider = item["provider"]["slug"] if isinstance(item["provider"], dict) else item["provider"]
            if provider == PROVIDER:
                statuses[item["slug"]] = item["status"]["status"]
        return statuses

    @staticmethod
    def _summary(bodies: list[bytes]) -> dict[str, str]:
        statuses = {}
        for component in json.loads(bodies[0])["components"]:
            if component.get("group"):
                continue
            name = component["name"]
            if name.startswith("m") and name[1:].isdigit():
                statuses[name] = "unknown" if component.get("unknown") else component["status"]
        return statuses

    async def _snapshot(self, session: aiohttp.ClientSession) -> dict[str, str]:
        async with session.get(self.web + "/api/v1/snapshot/") as response:
            document = await response.json()
        return {m: s for item in document["models"] if (m := _chaos(item["slug"])) for s in [item["status"]]}

    async def _websocket(self, session: aiohttp.ClientSession) -> None:
        """A live client: the snapshot once, then every status_change applied; sampled while connected."""
        url = self.web.replace("http://", "ws://") + "/ws/status/"
        last_seq: int | None = None
        state: dict[str, str] = {}
        while True:
            try:
                query = f"?last_seq={last_seq}" if last_seq is not None else ""
                async with websockets.connect(url + query, origin=self.web, open_timeout=5) as ws:
                    sampler = None
                    try:
                        async for message in ws:
                            event = json.loads(message)
                            kind = event.get("type")
                            # A new snapshot can change what is shown without a status change (evidence
                            # going stale between sweeps): a client refetches it, as README "Live updates" says.
                            if kind == "hello" and last_seq is None or kind in ("resync", "snapshot"):
                                fresh = await self._snapshot(session)
                                state.clear()
                                state.update(fresh)
                            if kind == "hello" and sampler is None:
                                with self._lock:
                                    self.record.ws_connected = True
                                sampler = asyncio.create_task(self._sample_ws(state))
                            if kind == "status_change":
                                if event["model"] == PULSE:
                                    self._pulse(event["reason"], "ws")
                                elif (model := _chaos(event["model"])) is not None:
                                    state[model] = event["to"]
                            if "seq" in event:
                                last_seq = max(last_seq or 0, event["seq"])
                    finally:
                        with self._lock:
                            self.record.ws_connected = False
                        if sampler is not None:
                            sampler.cancel()
            except (TimeoutError, OSError, websockets.WebSocketException, aiohttp.ClientError, ValueError):
                pass
            await asyncio.sleep(0.5)

    async def _sample_ws(self, state: dict[str, str]) -> None:
        while True:
            current = dict(state)
            if current:
                self._add("readings", Reading(time.time(), "websocket", *_not_operational(current)))
            await asyncio.sleep(PERIOD_S)

    async def _sse(self) -> None:
        last_id = None
        timeout = aiohttp.ClientTimeout(total=None, sock_connect=5, sock_read=30)
        async with aiohttp.ClientSession(timeout=timeout) as session:
            while True:
                headers = {"Last-Event-ID": last_id} if last_id else {}
                try:
                    async with session.get(self.web + "/api/v1/events/", headers=headers) as response:
                        async for raw in response.content:
                            line = raw.decode().rstrip("\n")
                            if line.startswith("id:"):
                                last_id = line[3:].strip()
                            elif line.startswith("data:"):
                                event = json.loads(line[5:])
                                if event.get("type") == "status_change" and event.get("model") == PULSE:
                                    self._pulse(event["reason"], "sse")
                except (TimeoutError, OSError, aiohttp.ClientError, ValueError):
                    pass
                await asyncio.sleep(0.5)
