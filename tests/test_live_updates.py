"""Live updates over WebSocket and SSE from a real ASGI server: delivery within a second, resume, faults."""

import asyncio
import json
import time

import aiohttp
import pytest
import websockets
from asgiref.sync import sync_to_async
from django.conf import settings
from django.db import connections

from monitoring.models import AIModel, StatusChange
from monitoring.transitions import record_status

pytestmark = [pytest.mark.django_db(transaction=True)]


@pytest.fixture(autouse=True)
async def close_connections():
    # Connections opened by sync_to_async threads would keep the test database from being dropped.
    yield
    await sync_to_async(connections.close_all)()


@pytest.fixture
def models(provider):
    return [
        AIModel.objects.create(provider=provider, name=f"M{i}", slug=f"m{i}", endpoint="http://127.0.0.1:1/v1")
        for i in range(3)
    ]


def ws_url(http_url: str, query: str = "") -> str:
    return http_url.replace("http://", "ws://") + "/ws/status/" + query


async def ws_events(ws, until, timeout: float = 5.0) -> list[dict]:
    """Read events until `until(events)` holds; heartbeats are skipped."""
    events: list[dict] = []
    deadline = time.monotonic() + timeout
    while not until(events):
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            break
        try:
            event = json.loads(await asyncio.wait_for(ws.recv(), remaining))
        except TimeoutError:
            break
        if event["type"] != "heartbeat":
            events.append(event)
    return events


def changes(events: list[dict]) -> list[dict]:
    return [e for e in events if e["type"] == "status_change"]


async def set_status(model: AIModel, status: str) -> StatusChange:
    return await sync_to_async(record_status)(model.pk, status, reason="test", source="operator", manual=True)


async def test_a_status_change_reaches_a_websocket_client_within_a_second(asgi_server, models):
    url = asgi_server(REDIS_URL=settings.REDIS_URL)
    async with websockets.connect(ws_url(url), origin=url) as ws:
        hello = (await ws_events(ws, lambda e: e))[0]
        assert hello["type"] == "hello"
        started = time.monotonic()
        change = await set_status(models[0], "major_outage")
        events = await ws_events(ws, lambda e: changes(e))
        elapsed = time.monotonic() - started
    event = changes(events)[0]
    assert event == {
        "type": "status_change",
        "seq": change.pk,
        "model": "openai/m0",
        "model_id": models[0].pk,
        "from": "unknown",
        "to": "major_outage",
        "at": event["at"],
        "reason": "test",
        "manual": True,
    }
    assert elapsed < 1.0


async def sse_read(response, until, timeout: float = 5.0) -> list[dict]:
    events: list[dict] = []
    buffer = b""
    deadline = time.monotonic() + timeout
    while not until(events) and time.monotonic() < deadline:
        chunk = await asyncio.wait_for(response.content.readany(), deadline - time.monotonic())
        if not chunk:
            break
        buffer += chunk
        while b"\n\n" in buffer:
            frame, buffer = buffer.split(b"\n\n", 1)
            lines = dict(line.split(": ", 1) for line in frame.decode().splitlines() if ": " in line)
            if "data" in lines:
                event = json.loads(lines["data"])
                assert lines.get("id") == str(event["seq"]) and lines["event"] == event["type"]
                events.append(event)
    return events


async def test_a_status_change_reaches_an_sse_client_within_a_second_with_its_sequence_as_id(asgi_server, models):
    url = asgi_server(REDIS_URL=settings.REDIS_URL)
    async with aiohttp.ClientSession() as http, http.get(url + "/api/v1/events/") as response:
        assert response.headers["Content-Type"].startswith("text/event-stream")
        assert (await sse_read(response, lambda e: e))[0]["type"] == "hello"
        started = time.monotonic()
        change = await set_status(models[1], "partial_outage")
        events = await sse_read(response, lambda e: changes(e))
        assert time.monotonic() - started < 1.0
    assert changes(events)[0]["seq"] == change.pk and changes(events)[0]["to"] == "partial_outage"


async def test_a_websocket_client_that_reconnects_gets_exactly_what_it_missed_in_order(asgi_server, models):
    url = asgi_server(REDIS_URL=settings.REDIS_URL)
    first = await set_status(models[0], "major_outage")
    async with websockets.connect(ws_url(url), origin=url) as ws:
        # A client keeps the highest seq it has seen: the hello's, or the change's if the server
        # had not taken it in yet when the client connected (it then follows as a live event).
        seen = await ws_events(ws, lambda e: max((x["seq"] for x in e), default=0) >= first.pk)
        last_seq = max(e["seq"] for e in seen)
    assert last_seq == first.pk
    missed = [
        await set_status(models[1], "partial_outage"),
        await set_status(models[2], "degraded_performance"),
        await set_status(models[0], "operational"),
    ]
    async with websockets.connect(ws_url(url, f"?last_seq={last_seq}"), origin=url) as ws:
        events = await ws_events(ws, lambda e: len(changes(e)) >= 3, timeout=3)
        # Nothing more arrives: no duplicates.
        extra = await ws_events(ws, lambda e: changes(e), timeout=1.5)
    assert [e["seq"] for e in changes(events)] == [c.pk for c in missed]
    assert [e["to"] for e in changes(events)] == ["partial_outage", "degraded_performance", "operational"]
    assert changes(extra) == []


async def test_a_websocket_client_asking_mid_stream_gets_everything_after_its_sequence_again_in_order(
    asgi_server, models
):
    url = asgi_server(REDIS_URL=settings.REDIS_URL)
    async with websockets.connect(ws_url(url), origin=url) as ws:
        start = (await ws_events(ws, lambda e: e))[0]["seq"]
        made = [await set_status(m, "major_outage") for m in models]
        live = await ws_events(ws, lambda e: len(changes(e)) >= 3)
        await ws.send(json.dumps({"type": "resume", "last_seq": made[0].pk}))
        resumed = await ws_events(ws, lambda e: len(changes(e)) >= 2)
        extra = await ws_events(ws, lambda e: changes(e), timeout=1)
    assert [e["seq"] for e in changes(live)] == [c.pk for c in made] and made[0].pk > start
    assert [e["seq"] for e in changes(resumed)] == [c.pk for c in made[1:]]
    assert changes(extra) == []


async def test_an_sse_client_resumes_with_last_event_id(asgi_server, models):
    url = asgi_server(REDIS_URL=settings.REDIS_URL)
    first = await set_status(models[0], "major_outage")
    missed = [await set_status(m, "partial_outage") for m in models]
    headers = {"Last-Event-ID": str(first.pk)}
    async with aiohttp.ClientSession() as http, http.get(url + "/api/v1/events/", headers=headers) as response:
        events = await sse_read(response, lambda e: len(changes(e)) >= 3)
    assert [e["seq"] for e in changes(events)] == [c.pk for c in missed]


async def test_an_unknown_or_too_old_sequence_asks_the_client_to_refetch_the_snapshot(asgi_server, models):
    url = asgi_server(REDIS_URL=settings.REDIS_URL)
    await set_status(models[0], "major_outage")
    async with websockets.connect(ws_url(url, "?last_seq=999999"), origin=url) as ws:
        events = await ws_events(ws, lambda e: len(e) >= 2)
    assert [e["type"] for e in events] == ["hello", "resync"]


async def reply(ws, kind: str) -> dict:
    events = await ws_events(ws, lambda e: any(x["type"] == kind for x in e))
    return next(x for x in events if x["type"] == kind)


async def test_malformed_client_messages_get_an_error_frame_and_the_stream_goes_on(asgi_server, models):
    url = asgi_server(REDIS_URL=settings.REDIS_URL)
    async with websockets.connect(ws_url(url, "?last_seq=abc"), origin=url) as ws:
        opening = await ws_events(ws, lambda e: any(x["type"] == "hello" for x in e))
        assert opening[0]["type"] == "error"
        # Replies are picked out by type: a snapshot event of the server's own may arrive in between.
        await ws.send("not json")
        assert await reply(ws, "error")
        await ws.send(json.dumps({"type": "dance"}))
        assert "unknown message type" in (await reply(ws, "error"))["message"]
        await ws.send(json.dumps({"type": "ping"}))
        assert await reply(ws, "pong")
        await set_status(models[0], "major_outage")
        assert changes(await ws_events(ws, lambda e: changes(e)))


async def test_a_websocket_from_another_origin_is_refused(asgi_server, models):
    url = asgi_server(REDIS_URL=settings.REDIS_URL)
    with pytest.raises(websockets.exceptions.InvalidStatus):
        async with websockets.connect(ws_url(url), origin="https://evil.example"):
            pass


async def test_events_still_arrive_without_redis_read_from_the_event_log(asgi_server, models):
    url = asgi_server(REDIS_URL="redis://127.0.0.1:1/0")  # nothing listens there
    async with websockets.connect(ws_url(url), origin=url) as ws:
        await ws_events(ws, lambda e: e)
        started = time.monotonic()
        await set_status(models[0], "major_outage")
        events = await ws_events(ws, lambda e: changes(e), timeout=5)
    assert changes(events) and time.monotonic() - started < 3.0


async def test_a_process_refuses_connections_over_its_limit(asgi_server, models):
    url = asgi_server(REDIS_URL=settings.REDIS_URL, REALTIME_MAX_CONNECTIONS="1")
    async with websockets.connect(ws_url(url), origin=url) as first:
        await ws_events(first, lambda e: e)
        async with websockets.connect(ws_url(url), origin=url) as second:
            with pytest.raises(websockets.exceptions.ConnectionClosed) as closed:
                await asyncio.wait_for(second.recv(), 3)
        assert closed.value.rcvd.code == 1013
        async with aiohttp.ClientSession() as http, http.get(url + "/api/v1/events/") as response:
            assert response.status == 503


async def test_a_websocket_client_hears_of_the_snapshot_that_shows_stale_evidence_unknown_without_a_sweep(
    asgi_server, models
):
    # Every collector stopped: no sweep writes the change to unknown, yet a live page must not stay green.
    from datetime import timedelta

    from django.utils import timezone

    from monitoring.models import ModelStatus
    from monitoring.status import stale_after

    model = models[0]
    url = asgi_server(REDIS_URL=settings.REDIS_URL)
    async with aiohttp.ClientSession() as session, websockets.connect(ws_url(url), origin=url) as ws:

        async def shown() -> str:
            async with session.get(url + "/api/v1/snapshot/") as response:
                return {m["slug"]: m["status"] for m in (await response.json())["models"]}["openai/m0"]

        await ws_events(ws, lambda e: e)  # hello
        # Evidence that turns stale 8 s from now; then nothing more is written.
        answered = timezone.now() - stale_after(model.interval_seconds) + timedelta(seconds=8)
        await sync_to_async(record_status)(model.pk, "operational", reason="answered", source="collector", at=answered)
        await sync_to_async(ModelStatus.objects.filter(model=model).update)(last_checked_at=answered)
        seen: list[dict] = []
        statuses = [await shown()]
        deadline = time.monotonic() + 25
        while statuses[-1] != "unknown" and time.monotonic() < deadline:
            events = await ws_events(ws, lambda e: any(x["type"] == "snapshot" for x in e), deadline - time.monotonic())
            seen += events
            if any(e["type"] == "snapshot" for e in events):
                statuses.append(await shown())
    assert statuses[0] == "operational" and statuses[-1] == "unknown", (statuses, seen)
    assert [e["to"] for e in changes(seen)] in ([], ["operational"])  # no change to unknown: the snapshot says it
