"""Must show: a latency level shift injected into one simulated model reaches a WebSocket client as an `anomaly`
event within two probe intervals, while a healthy model probed over the same time raises none.

Real pieces: the simulator, the collectors' probing rounds, the detection run (the Celery tasks' bodies,
run here in threads), PostgreSQL, Redis and the ASGI server with a real WebSocket client.
"""

from __future__ import annotations

import asyncio
import json
import math
import random
import threading
import time
from datetime import timedelta

import aiohttp
import pytest
import websockets
from asgiref.sync import sync_to_async
from django.conf import settings
from django.db import connections
from django.utils import timezone

from anomalies.detection import run_detection
from collectors.models import CheckResult, ProbeSlot
from collectors.schedule import ensure_slots
from collectors.tasks import probe_round
from monitoring.models import AIModel, ProbeKind
from monitoring.outcomes import Outcome

pytestmark = [pytest.mark.django_db(transaction=True)]

INTERVAL = 10
HISTORY_POINTS = 300
# The simulated models' time to first token: a lognormal through p50 and p95, as the simulator draws it.
P50, P95 = 300.0, 450.0
SHIFTED = {"p50": 3000, "p95": 3300, "max": 4000}


@pytest.fixture(autouse=True)
async def close_connections():
    yield
    await sync_to_async(connections.close_all)()


def sample_ttft(rng: random.Random) -> float:
    sigma = math.log(P95 / P50) / 1.6448536269514722
    return P50 * math.exp(sigma * rng.gauss(0.0, 1.0))


def seed_history(model: AIModel, rng: random.Random, after_first_token_ms: float) -> None:
    """A compressed history: what the last HISTORY_POINTS probes of this model would have stored (time to
    first token as the simulator draws it, the rest of the answer as a real probe measured it). Output
    speed is left out: that series learns from the live probes and says nothing meanwhile."""
    first = timezone.now() - (HISTORY_POINTS + 1) * timedelta(seconds=INTERVAL)
    results = []
    for i in range(HISTORY_POINTS):
        ttft = sample_ttft(rng)
        results.append(
            CheckResult(
                model=model,
                time=first + i * timedelta(seconds=INTERVAL),
                outcome=Outcome.OK,
                http_status=200,
                ttft_ms=ttft,
                latency_ms=ttft + after_first_token_ms,
            )
        )
    CheckResult.objects.bulk_create(results)


@pytest.fixture
def models(provider, scenario, simulator):
    behaviour = {"ttft_ms": {"p50": P50, "p95": P95, "max": 1000}, "tokens_per_s": 2000}
    scenario({"shifting": behaviour, "steady": behaviour})
    created = []
    rng = random.Random(13)
    for name in ("shifting", "steady"):
        model = AIModel.objects.create(
            provider=provider,
            name=name,
            slug=name,
            probe_kind=ProbeKind.OPENAI_CHAT,
            endpoint=simulator.base_url,
            upstream_model=name,
            probe_config={"max_tokens": 16},
            interval_seconds=INTERVAL,
            timeout_seconds=8,
        )
        created.append(model)
    # A real probe of each first, to learn what the rest of an answer takes after its first token.
    ensure_slots("default")
    ProbeSlot.objects.update(next_due_at=timezone.now())
    probe_round("default")
    for model in created:
        measured = CheckResult.objects.filter(model=model, outcome=Outcome.OK).latest("time")
        seed_history(model, rng, measured.latency_ms - measured.ttft_ms)
    run_detection()  # the detectors learn the history (they say "learning" without it)
    return created


class Loop(threading.Thread):
    """Runs a task body again and again, as beat would, until stopped."""

    def __init__(self, body, pause: float) -> None:
        super().__init__(daemon=True)
        self.body, self.pause, self.stopping = body, pause, threading.Event()

    def run(self) -> None:
        try:
            while not self.stopping.is_set():
                self.body()
                self.stopping.wait(self.pause)
        finally:
            connections.close_all()

    def stop(self) -> None:
        self.stopping.set()
        self.join(30)


async def test_a_latency_level_shift_reaches_a_websocket_client_within_two_probe_intervals(
    asgi_server, models, simulator
):
    shifting, steady = models
    url = asgi_server(REDIS_URL=settings.REDIS_URL)
    probing = Loop(lambda: probe_round("default"), 0.2)
    detecting = Loop(run_detection, settings.ANOMALY_RUN_SECONDS)
    probing.start()
    detecting.start()
    events: list[dict] = []
    try:
        async with websockets.connect(url.replace("http://", "ws://") + "/ws/status/", origin=url) as ws:
            assert json.loads(await ws.recv())["type"] == "hello"
            # Both models probed normally for a while first: the healthy run raises nothing.
            await read_anomalies(ws, events, seconds=INTERVAL * 1.5)
            async with aiohttp.ClientSession() as http:
                patched = await http.patch(f"{simulator.url}/_control/models/shifting", json={"ttft_ms": SHIFTED})
                assert patched.status == 200
            injected = time.monotonic()
            opened = await read_anomalies(
                ws, events, seconds=2 * INTERVAL, until=lambda: any(opened_for(e, shifting) for e in events)
            )
            elapsed = time.monotonic() - injected
            # The healthy model keeps being probed for the rest of the two intervals.
            await read_anomalies(ws, events, seconds=max(0.0, 2 * INTERVAL - elapsed))
    finally:
        probing.stop()
        detecting.stop()
    assert opened, await sync_to_async(why_not)(shifting, events)
    assert elapsed <= 2 * INTERVAL
    for event in (e for e in events if opened_for(e, shifting)):
        # Slower first tokens: TTFT and latency above their range; output speed (measured over the whole
        # answer) below it.
        anomaly = event["anomaly"]
        if anomaly["metric"] == "tokens_per_s":
            assert anomaly["direction"] == "below" and anomaly["observed"] < anomaly["expected"][0]
        else:
            assert anomaly["metric"] in {"ttft", "latency"}
            assert anomaly["direction"] == "above" and anomaly["observed"] > anomaly["expected"][1]
    assert not [e for e in events if e["model"] == steady.public_slug]


def why_not(model: AIModel, events: list[dict]) -> str:
    """What the pipeline saw, to tell a detector that scored low from a slow or broken delivery."""
    from anomalies.models import Anomaly

    recent = CheckResult.objects.filter(model=model).order_by("-time")[:4]
    seen = [(r.time.strftime("%H:%M:%S"), r.outcome, round(r.ttft_ms or 0)) for r in recent]
    anomalies = list(Anomaly.objects.filter(model=model).values("metric", "started_at", "peak_score"))
    where = f"no anomaly event for {model.public_slug} within {2 * INTERVAL} s: {events}"
    return f"{where}; latest results {seen}; anomalies {anomalies}"


def opened_for(event: dict, model: AIModel) -> bool:
    return event["model"] == model.public_slug and event["state"] == "opened"


async def read_anomalies(ws, events: list[dict], seconds: float, until=lambda: False) -> bool:
    """Collect `anomaly` events for up to `seconds`; True once `until()` holds."""
    deadline = time.monotonic() + seconds
    while not until():
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return False
        try:
            message = json.loads(await asyncio.wait_for(ws.recv(), remaining))
        except TimeoutError:
            return until()
        if message["type"] == "anomaly":
            events.append(message)
    return True
