"""The agent's work: follow the assignment, probe each model on its interval with jitter, push results in batches.

Three loops on one event loop:
- assignment: ask every `refresh_seconds` (30), or at once when a batch's answer hints at a change;
- probing: a heap of due times, at most `concurrency` probes at once, the same jitter as the Celery
  collectors (collectors.jitter) and the same probe modules (collectors.probes.run_probe);
- sending: results in batches of up to `batch_size`, every `flush_seconds`; what the site does not
  take goes to the disk spool, which is drained in order before anything newer is sent.
"""

from __future__ import annotations

import asyncio
import heapq
import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from collectors.jitter import first_delay, next_delay
from collectors.probes import PROBES, make_session, run_probe
from collectors.probes.base import ProbeResult, ProbeTarget

from . import VERSION
from .site import Rejected, SiteClient, Unauthorized, Unavailable
from .spool import Spool

log = logging.getLogger("collectors.agent")

REGION_HEADER = "X-Probe-Region"
# The probe loop's coarsest sleep: well within the ±5 % jitter of a 10 s interval.
SLEEP_GRANULARITY_S = 0.01


@dataclass(frozen=True, slots=True)
class AgentConfig:
    server: str
    token: str
    spool_dir: Path
    spool_max_results: int = 1_000_000
    concurrency: int = 500
    batch_size: int = 2000
    flush_seconds: float = 0.5
    max_backoff_s: float = 30.0

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None) -> AgentConfig:
        env = os.environ if environ is None else environ
        missing = [name for name in ("AGENT_SERVER", "AGENT_TOKEN") if not env.get(name)]
        if missing:
            raise SystemExit(f"Set {' and '.join(missing)} (the site's URL and this agent's token).")
        return cls(
            server=env["AGENT_SERVER"],
            token=env["AGENT_TOKEN"],
            spool_dir=Path(env.get("AGENT_SPOOL_DIR") or Path.cwd() / "var" / "agent-spool"),
            spool_max_results=int(env.get("AGENT_SPOOL_MAX_RESULTS", 1_000_000)),
            concurrency=int(env.get("AGENT_CONCURRENCY", 500)),
            batch_size=min(int(env.get("AGENT_BATCH_SIZE", 2000)), 5000),
            flush_seconds=float(env.get("AGENT_FLUSH_SECONDS", 0.5)),
            max_backoff_s=float(env.get("AGENT_MAX_BACKOFF_SECONDS", 30)),
        )


@dataclass(frozen=True, slots=True)
class Assigned:
    target: ProbeTarget
    interval_s: float


def targets_of(document: dict[str, Any], region: str, warned: set[tuple[int, str]]) -> dict[int, Assigned]:
    """The usable models of an assignment. A kind this agent does not know is skipped with one warning."""
    assigned: dict[int, Assigned] = {}
    for model in document.get("models", []):
        try:
            model_id, kind = int(model["id"]), str(model["probe_kind"])
            if kind not in PROBES:
                if (model_id, kind) not in warned:
                    warned.add((model_id, kind))
                    log.warning("skipping model %s: this agent has no probe for the kind %r", model.get("name"), kind)
                continue
            credential = model.get("credential")
            api_key = ""
            if credential:
                # A shared key comes with the assignment; otherwise the agent's own environment holds it.
                api_key = credential.get("api_key") or os.environ.get(credential.get("env") or "", "")
            target = ProbeTarget(
                model_id=model_id,
                probe_kind=kind,
                endpoint=str(model["endpoint"]),
                upstream_model=str(model["upstream_model"]),
                api_key=api_key,
                timeout_s=float(model["timeout_seconds"]),
                config=dict(model.get("probe_config") or {}),
                region=region,
            )
            assigned[model_id] = Assigned(target, float(model["interval_seconds"]))
        except (KeyError, TypeError, ValueError) as exc:
            if (-1, repr(model)[:80]) not in warned:
                warned.add((-1, repr(model)[:80]))
                log.warning("skipping an assignment entry the agent cannot read (%s): %.200r", exc, model)
    return assigned


class Agent:
    def __init__(self, config: AgentConfig) -> None:
        self.config = config
        self.spool = Spool(config.spool_dir, config.spool_max_results)
        self.region = ""
        self.assigned: dict[int, Assigned] = {}
        self._generation: dict[int, int] = {}
        self._heap: list[tuple[float, int, int]] = []  # (due, generation, model id)
        self._etag = ""
        self._hint = ""
        self._refresh_seconds = 30.0
        self._refresh_now = asyncio.Event()
        self._stopping = asyncio.Event()
        self._warned: set[tuple[int, str]] = set()
        self._seq = self.spool.seq_reserved
        self._outbox: list[dict[str, Any]] = []
        self._inflight = 0
        self._slot_free = asyncio.Event()
        self._probes: set[asyncio.Task] = set()
        self.last_error = ""
        self._unauthorized = False
        self._unavailable = False
        self._rate_window: list[tuple[float, int]] = []
        self._produced = 0

    # -- public ----------------------------------------------------------------------------------

    def stop(self) -> None:
        self._stopping.set()

    async def run(self) -> None:
        async with SiteClient(self.config.server, self.config.token) as site:
            self._site = site
            if not await self._first_assignment():
                return
            headers = {REGION_HEADER: self.region}
            async with make_session(limit=self.config.concurrency, headers=headers) as session:
                loops = [
                    asyncio.create_task(self._assignment_loop()),
                    asyncio.create_task(self._probe_loop(session)),
                ]
                sending = asyncio.create_task(self._send_loop())
                await self._stopping.wait()
                for task in loops:
                    task.cancel()
                await asyncio.gather(*loops, return_exceptions=True)
                await self._finish_probes()
                await sending  # ends after the send under way: a batch is never cut off mid-request
                if not await self._send_all():
                    self._spool_outbox()
        log.info("agent stopped: %d result(s) acknowledged, %d spooled", self.spool.acknowledged, self.spool.depth)

    def health(self, batch_size: int, from_spool: bool = False) -> dict[str, Any]:
        """What rides on a batch of `batch_size` results: the spool depth and `sent` count as if it is taken."""
        now = time.monotonic()
        self._rate_window = [(t, n) for t, n in self._rate_window if now - t <= 10.0]
        self._rate_window.append((now, self._produced))
        first_t, first_n = self._rate_window[0]
        rate = (self._produced - first_n) / (now - first_t) if now > first_t else 0.0
        return {
            "version": VERSION,
            "results_per_s": round(rate, 2),
            "spool_depth": self.spool.depth - (batch_size if from_spool else 0),
            "spool_dropped": self.spool.dropped,
            "last_error": self.last_error,
            "sent": self.spool.acknowledged + batch_size,
        }

    # -- assignment ------------------------------------------------------------------------------

    async def _first_assignment(self) -> bool:
        backoff = 1.0
        while not self._stopping.is_set():
            if await self._refresh():
                return True
            await self._sleep(backoff)
            backoff = min(backoff * 2, self.config.max_backoff_s)
        return False

    async def _refresh(self) -> bool:
        try:
            answer = await self._site.assignment(self._etag)
        except Unauthorized as exc:
            self._note_unauthorized(exc)
            return False
        except (Unavailable, Rejected) as exc:
            self._note_unavailable(exc)
            return False
        self._authorized()
        self._available()
        if answer.last_seq >= self._seq:
            # The site holds results numbered past our counter (our state was lost): go on after them.
            self._seq = answer.last_seq
            self.spool.reserve(self._seq)
        if answer.document is not None:
            self._etag = answer.etag
            self._apply(answer.document)
        return True

    def _apply(self, document: dict[str, Any]) -> None:
        self.region = str(document.get("region") or "default")
        self._refresh_seconds = max(float(document.get("refresh_seconds") or 30), 1.0)
        fresh = targets_of(document, self.region, self._warned)
        now = time.monotonic()
        for model_id in self.assigned.keys() - fresh.keys():
            self._generation.pop(model_id, None)  # its heap entry is ignored when it comes up
        for model_id, assigned in fresh.items():
            old = self.assigned.get(model_id)
            if old is not None and old.interval_s == assigned.interval_s:
                continue  # same cadence: the next run keeps its place (and picks up the new settings)
            generation = self._generation.get(model_id, 0) + 1
            self._generation[model_id] = generation
            heapq.heappush(self._heap, (now + first_delay(assigned.interval_s), generation, model_id))
        self.assigned = fresh
        log.info("assignment: %d model(s) to probe in region %s", len(fresh), self.region)

    async def _assignment_loop(self) -> None:
        while True:
            try:
                await asyncio.wait_for(self._refresh_now.wait(), self._refresh_seconds)
            except TimeoutError:
                pass
            self._refresh_now.clear()
            await self._refresh()

    def _note_unauthorized(self, exc: Exception) -> None:
        self.last_error = f"unauthorized: {exc}"
        if not self._unauthorized:
            self._unauthorized = True
            log.error(
                "the site %s refused this agent's token (%s): check AGENT_TOKEN or issue a new one with "
                "`manage.py create_agent`; retrying with backoff",
                self.config.server,
                exc,
            )

    def _note_unavailable(self, exc: Exception) -> None:
        self.last_error = f"site unavailable: {exc}"
        if not self._unavailable:  # one line per outage, not one per attempt
            self._unavailable = True
            log.warning(
                "the site %s is unavailable (%s): spooling results to %s and retrying with backoff",
                self.config.server,
                exc,
                self.config.spool_dir,
            )

    def _available(self) -> None:
        if self._unavailable:
            self._unavailable = False
            self.last_error = ""
            log.warning("the site answers again; sending spooled results first")

    def _authorized(self) -> None:
        if self._unauthorized:
            self._unauthorized = False
            log.warning("the site accepts this agent's token again")

    # -- probing ---------------------------------------------------------------------------------

    async def _probe_loop(self, session) -> None:
        concurrency = self.config.concurrency
        while True:
            now = time.monotonic()
            heap = self._heap
            while heap and heap[0][0] <= now:
                if self._inflight >= concurrency:
                    self._slot_free.clear()
                    await self._slot_free.wait()
                    now = time.monotonic()
                due, generation, model_id = heapq.heappop(heap)
                if self._generation.get(model_id) != generation:
                    continue  # removed or rescheduled
                assigned = self.assigned[model_id]
                heapq.heappush(heap, (max(due + next_delay(assigned.interval_s), now), generation, model_id))
                self._inflight += 1
                task = asyncio.create_task(self._probe(assigned.target, session))
                self._probes.add(task)
                task.add_done_callback(self._probes.discard)
            # Sleep until the next is due, but never less than SLEEP_GRANULARITY_S: at thousands of probes a
            # second, waking for each one would cost more than the probes. New models wait at most a second.
            wait = min(heap[0][0] - time.monotonic(), 1.0) if heap else 1.0
            await asyncio.sleep(max(wait, SLEEP_GRANULARITY_S))

    async def _probe(self, target: ProbeTarget, session) -> None:
        started = time.time()
        try:
            result: ProbeResult = await run_probe(target, session)
        finally:
            self._inflight -= 1
            self._slot_free.set()
        self._seq += 1
        if self._seq >= self.spool.seq_reserved:
            self.spool.reserve(self._seq)
        self._produced += 1
        self._outbox.append(
            {
                "seq": self._seq,
                "model": target.model_id,
                "time": started,
                "outcome": str(result.outcome),
                "http_status": result.http_status,
                "latency_ms": result.latency_ms,
                "ttft_ms": result.ttft_ms,
                "tokens_per_s": result.tokens_per_s,
                "error": result.error[:2000],
            }
        )

    async def _finish_probes(self, grace_s: float = 10.0) -> None:
        if self._probes:
            _, pending = await asyncio.wait(set(self._probes), timeout=grace_s)
            for task in pending:
                task.cancel()

    # -- sending ---------------------------------------------------------------------------------

    async def _send_loop(self) -> None:
        backoff, next_attempt = 0.0, 0.0
        while not self._stopping.is_set():
            await self._sleep(self.config.flush_seconds)
            if time.monotonic() < next_attempt:
                self._spool_outbox()  # while backing off, results wait on disk, not in memory
                continue
            if await self._send_all():
                backoff = 0.0
            else:
                backoff = min(max(backoff * 2, 1.0), self.config.max_backoff_s)
                next_attempt = time.monotonic() + backoff

    async def _send_all(self) -> bool:
        """Send the spool (oldest first), then the outbox. False when the site did not take everything."""
        while len(self.spool):
            body = self.spool.oldest()
            ok = await self._push_spooled(body)
            if not ok:
                self._spool_outbox()
                return False
        while self._outbox:
            results = self._outbox[: self.config.batch_size]
            del self._outbox[: self.config.batch_size]
            body = orjson.dumps(results)
            if not await self._push(body, len(results)):
                self.spool.append(body, results[0]["seq"], len(results))
                self._spool_outbox()
                return False
        return True

    def _spool_outbox(self) -> None:
        # Newer results queue behind the spooled ones on disk, so order holds and memory stays bounded.
        while self._outbox:
            results = self._outbox[: self.config.batch_size]
            del self._outbox[: self.config.batch_size]
            self.spool.append(orjson.dumps(results), results[0]["seq"], len(results))

    async def _push_spooled(self, results_json: bytes) -> bool:
        count = results_json.count(b'"seq":')
        if not await self._push(results_json, count, from_spool=True):
            return False
        self.spool.remove_oldest()
        return True

    async def _push(self, results_json: bytes, count: int, from_spool: bool = False) -> bool:
        health = orjson.dumps(self.health(count, from_spool))
        body = b'{"agent_time":%s,"health":%s,"results":%s}' % (repr(time.time()).encode(), health, results_json)
        try:
            receipt = await self._site.push(body)
        except Unauthorized as exc:
            self._note_unauthorized(exc)
            return False
        except Unavailable as exc:
            self._note_unavailable(exc)
            return False
        except Rejected as exc:
            # A malformed batch cannot become valid by waiting; keep the evidence of why and go on.
            self.last_error = f"batch rejected: {exc}"
            log.error("the site rejected a batch of %d result(s) as malformed: %s", count, exc)
            return True
        self._authorized()
        self._available()
        self.spool.acknowledged += count
        self.spool.save_state()
        hint = receipt.get("assignment_hint", "")
        if hint and self._hint and hint != self._hint:
            self._refresh_now.set()
        self._hint = hint or self._hint
        return True

    async def _sleep(self, seconds: float) -> None:
        try:
            await asyncio.wait_for(self._stopping.wait(), seconds)
        except TimeoutError:
            pass
