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
LATE_S = 0.5  # the sampler's own loop running this late is noted (see Sampler._watch_lag)
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
    # What the live clients went through (connects, ends, resyncs, failed snapshot fetches): (at, client, what).
    live: list[tuple[float, str, str]] = field(default_factory=list)
    # When the sampler's own loop ran more than LATE_S late, and by how much: (at, seconds).
    late: list[tuple[float, float]] = field(default_factory=list)


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


def unbatched(message: dict) -> list[dict]:
    """The events of one frame: a `batch` frame (asked for with `?batch=1`) carries several, in order."""
    return message.get("events", []) if message.get("type") == "batch" else [message]


def _version(version: str | None) -> tuple[int, int]:
    sequence, _, built = str(version or "0.0").partition(".")
    try:
        return int(sequence or 0), int(built or 0)
    except ValueError:
        return 0, 0


def newer(candidate: str | None, than: str | None) -> bool:
    """Whether snapshot version `candidate` is newer than `than` (versions are "<sequence>.<built ms>")."""
    return candidate is not None and _version(candidate) > _version(than)


@dataclass
class LiveState:
    """What a live client shows: the newest snapshot it fetched, then the status changes after it."""

    statuses: dict[str, str] = field(default_factory=dict)
    version: str | None = None
    seq: int = 0
    changed_at: dict[str, int] = field(default_factory=dict)  # model -> seq of the last change applied

    def apply_snapshot(self, document: dict) -> bool:
        """Take a fetched snapshot unless it is older than the one held (an answer overtaken by another)."""
        if self.version is not None and not newer(document.get("version"), self.version):
            return document.get("version") == self.version
        sequence = int(document.get("sequence") or 0)
        for item in document["models"]:
            model = _chaos(item["slug"])
            # A change that arrived while this snapshot was fetched is newer than what it says of that model.
            if model is not None and self.changed_at.get(model, 0) <= sequence:
                self.statuses[model] = item["status"]
        self.version = document.get("version")
        self.seq = max(self.seq, sequence)
        return True

    def apply_change(self, model: str, event: dict) -> None:
        """A change the held snapshot already includes (its sequence or older) is not applied again."""
        seq = event.get("seq")
        if isinstance(seq, int):
            if seq <= self.seq:
                return
            self.seq = seq
            self.changed_at[model] = seq
        self.statuses[model] = event["to"]


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

    def _log(self, client: str, what: str) -> None:
        self._add("live", (time.time(), client, what))

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
                asyncio.create_task(self._watch_lag()),
            ]
            while not self._stop.is_set():
                await asyncio.sleep(0.1)
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    async def _watch_lag(self) -> None:
        """Notes when this loop itself ran late: the readings' times would be the sampler's, not the product's."""
        while True:
            started = time.monotonic()
            await asyncio.sleep(0.1)
            late = time.monotonic() - started - 0.1
            if late > LATE_S:
                self._add("late", (time.time(), late))

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

    async def _snapshot(self, session: aiohttp.ClientSession) -> dict:
        async with session.get(self.web + "/api/v1/snapshot/") as response:
            response.raise_for_status()
            return await response.json()

    async def _websocket(self, session: aiohttp.ClientSession) -> None:
        """A live client that behaves as the page's own (static/statuspage/live.js): the snapshot once, then
        every status_change newer than what it holds; the snapshot again when a hello, snapshot or resync
        says a newer one exists (a snapshot changes without a status change when evidence goes stale).
        A failed fetch leaves what it holds until the next announcement, as on the page."""
        url = self.web.replace("http://", "ws://") + "/ws/status/?batch=1"
        last_seq: int | None = None
        live = LiveState()

        syncing: asyncio.Task | None = None

        async def fetch(reason: str) -> None:
            try:
                document = await self._snapshot(session)
            except (TimeoutError, aiohttp.ClientError, OSError, ValueError) as failure:
                self._log("websocket", f"snapshot fetch ({reason}) failed: {_describe(failure)}")
                return
            if not live.apply_snapshot(document):
                self._log("websocket", f"snapshot fetch ({reason}) got {document.get('version')}, older than held")

        async def sync(reason: str) -> None:
            """Fetch the snapshot beside the message loop, one fetch at a time (as the page's syncSnapshot):
            events keep being applied while it is under way."""
            nonlocal syncing
            if syncing is None or syncing.done():
                syncing = asyncio.create_task(fetch(reason))

        while True:
            try:
                query = f"&last_seq={last_seq}" if last_seq is not None else ""
                async with websockets.connect(url + query, origin=self.web, open_timeout=5) as ws:
                    sampler = None
                    try:
                        async for message in ws:
                            for event in unbatched(json.loads(message)):
                                kind = event.get("type")
                                if kind == "hello":
                                    self._log("websocket", f"connected ({'resumed' if query else 'new'})")
                                    if live.version is None or newer(event.get("snapshot_version"), live.version):
                                        await sync("hello")
                                    if sampler is None:
                                        with self._lock:
                                            self.record.ws_connected = True
                                        sampler = asyncio.create_task(self._sample_ws(live.statuses))
                                elif kind == "snapshot" and newer(event.get("version"), live.version):
                                    await sync("snapshot")
                                elif kind == "resync":
                                    self._log("websocket", "resync")
                                    await sync("resync")
                                elif kind == "status_change":
                                    if event["model"] == PULSE:
                                        self._pulse(event["reason"], "ws")
                                    elif (model := _chaos(event["model"])) is not None:
                                        live.apply_change(model, event)
                                if "seq" in event:
                                    last_seq = max(last_seq or 0, event["seq"])
                        self._log("websocket", f"closed by the server ({ws.close_code})")
                    finally:
                        with self._lock:
                            self.record.ws_connected = False
                        if sampler is not None:
                            sampler.cancel()
            except (TimeoutError, OSError, websockets.WebSocketException, aiohttp.ClientError, ValueError) as failure:
                self._log("websocket", f"connection ended: {_describe(failure)}")
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
                        self._log("sse", f"connected ({'resumed' if last_id else 'new'}, HTTP {response.status})")
                        async for raw in response.content:
                            line = raw.decode().rstrip("\n")
                            if line.startswith("id:"):
                                last_id = line[3:].strip()
                            elif line.startswith("data:"):
                                event = json.loads(line[5:])
                                if event.get("type") == "status_change" and event.get("model") == PULSE:
                                    self._pulse(event["reason"], "sse")
                                elif event.get("type") == "resync":
                                    self._log("sse", "resync")
                        self._log("sse", "closed by the server")
                except (TimeoutError, OSError, aiohttp.ClientError, ValueError) as failure:
                    self._log("sse", f"connection ended: {_describe(failure)}")
                await asyncio.sleep(0.5)
