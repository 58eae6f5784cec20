"""A burst of changes (a fault ending) reaches live clients in batch frames when they ask for them
(`?batch=1`), one frame per event otherwise, and in one write per wake-up over SSE."""

import asyncio
import json
import time

import aiohttp
import pytest
import redis
import websockets
from asgiref.sync import sync_to_async

from monitoring.events import encode, status_change_event
from monitoring.models import AIModel
from monitoring.transitions import StatusUpdate, record_statuses
from publishing.realtime import clients as clients_module
from publishing.realtime.clients import PushClient, QueueClient, batch_frame
from publishing.realtime.hub import Hub
from publishing.realtime.publisher import channel
from tests.test_live_updates import close_connections, sse_read, ws_url  # noqa: F401 (an autouse fixture)

BURST = 300

server = pytest.mark.django_db(transaction=True)


@pytest.fixture
def many_models(provider):
    AIModel.objects.bulk_create(
        AIModel(provider=provider, name=f"M{i}", slug=f"m{i}", endpoint="http://127.0.0.1:1/v1") for i in range(BURST)
    )
    return list(AIModel.objects.filter(provider=provider).select_related("provider"))


def write_burst(models: list[AIModel], settings) -> list[int]:
    """BURST changes written, then published at once through one pipeline: they reach the server's
    subscription together, as the messages held by a frozen Redis do when it resumes."""
    redis_url = settings.REDIS_URL
    settings.REDIS_URL = ""  # this process publishes nothing itself while writing
    try:
        changes = record_statuses([StatusUpdate(m.pk, "major_outage", reason="provider down") for m in models])
    finally:
        settings.REDIS_URL = redis_url
    by_id = {m.pk: m for m in models}
    pipeline = redis.Redis.from_url(redis_url).pipeline(transaction=False)
    for change in changes:
        pipeline.publish(channel(), encode(status_change_event(change, by_id[change.model_id])))
    pipeline.execute()
    return [change.pk for change in changes]


async def ws_frames(ws, last_seq: int, timeout: float = 15.0) -> list[dict]:
    """Frames (heartbeats and snapshots left out) until the status change `last_seq` has arrived."""
    frames: list[dict] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        frame = json.loads(await asyncio.wait_for(ws.recv(), deadline - time.monotonic()))
        if frame["type"] in ("heartbeat", "snapshot"):
            continue
        frames.append(frame)
        if any(e["type"] == "status_change" and e["seq"] >= last_seq for e in unbatched([frame])):
            break
    return frames


def unbatched(frames: list[dict]) -> list[dict]:
    return [event for frame in frames for event in (frame["events"] if frame["type"] == "batch" else [frame])]


def change_seqs(events: list[dict]) -> list[int]:
    return [e["seq"] for e in events if e["type"] == "status_change"]


@server
async def test_a_burst_reaches_a_batch_client_in_fewer_frames_and_the_others_event_by_event(
    asgi_server, many_models, settings
):
    url = asgi_server(REDIS_URL=settings.REDIS_URL)
    async with (
        websockets.connect(ws_url(url, "?batch=1"), origin=url) as batched,
        websockets.connect(ws_url(url), origin=url) as plain,
        aiohttp.ClientSession() as http,
        http.get(url + "/api/v1/events/") as stream,
    ):
        for ws in (batched, plain):
            assert json.loads(await ws.recv())["type"] == "hello"
        assert (await sse_read(stream, lambda e: e))[0]["type"] == "hello"
        await asyncio.sleep(1)  # the server's subscription is up
        seqs = await sync_to_async(write_burst)(many_models, settings)
        batched_frames = await ws_frames(batched, seqs[-1])
        plain_frames = await ws_frames(plain, seqs[-1])
        sse_events = await sse_read(stream, lambda e: seqs[-1] in change_seqs(e), timeout=15)

    assert change_seqs(unbatched(batched_frames)) == seqs  # complete, in order, no duplicates
    assert len(batched_frames) < len(seqs) and any(f["type"] == "batch" for f in batched_frames)
    for frame in batched_frames:
        if frame["type"] == "batch":
            assert len(frame["events"]) > 1 and frame["seq"] == frame["events"][-1]["seq"]
    assert all(frame["type"] != "batch" for frame in plain_frames)
    assert change_seqs(plain_frames) == seqs
    assert change_seqs(sse_events) == seqs


@server
async def test_a_batch_client_resuming_after_a_burst_gets_what_it_missed_in_batch_frames(
    asgi_server, many_models, settings
):
    first = await sync_to_async(record_statuses)([StatusUpdate(many_models[0].pk, "degraded_performance")])
    url = asgi_server(REDIS_URL=settings.REDIS_URL)
    async with websockets.connect(ws_url(url), origin=url) as ws:
        before = json.loads(await ws.recv())["seq"]
    assert before == first[0].pk
    seqs = await sync_to_async(write_burst)(many_models, settings)
    async with websockets.connect(ws_url(url, f"?batch=1&last_seq={before}"), origin=url) as ws:
        batched_frames = await ws_frames(ws, seqs[-1])
    async with websockets.connect(ws_url(url, f"?last_seq={before}"), origin=url) as ws:
        plain_frames = await ws_frames(ws, seqs[-1])

    assert batched_frames[0] == {**batched_frames[0], "type": "hello", "seq": before}
    assert change_seqs(unbatched(batched_frames)) == seqs
    assert len(batched_frames) < len(seqs) / 10
    assert plain_frames[0]["type"] == "hello" and all(f["type"] != "batch" for f in plain_frames)
    assert change_seqs(plain_frames) == seqs


# -- the fan-out itself -----------------------------------------------------------------------------


def event(seq: int) -> dict:
    return {"type": "status_change", "seq": seq}


class Socket:
    def __init__(self) -> None:
        self.texts: list[str] = []

    async def write(self, text: str) -> None:
        self.texts.append(text)


def quiet_hub(monkeypatch) -> Hub:
    hub = Hub()
    monkeypatch.setattr(hub, "_schedule_snapshot_event", lambda: None)
    return hub


async def test_events_emitted_together_share_one_batch_frame_and_plain_clients_get_them_one_by_one(monkeypatch):
    hub = quiet_hub(monkeypatch)
    batched, other, plain = Socket(), Socket(), Socket()
    for socket, batches in ((batched, True), (other, True), (plain, False)):
        hub.register(PushClient(socket.write, batches=batches)).start()
    queued = hub.register(QueueClient())

    hub._emit([event(1), event(2), event(3)])
    hub._emit([event(4)])

    assert batched.texts[0] is other.texts[0]  # encoded once for both
    assert [json.loads(t) for t in batched.texts] == [
        {"type": "batch", "seq": 3, "events": [event(1), event(2), event(3)]},
        event(4),
    ]
    assert [json.loads(t) for t in plain.texts] == [event(1), event(2), event(3), event(4)]
    assert [e["seq"] for e in await queued.next()] == [1, 2, 3, 4]  # all queued events at once


async def test_a_batch_client_that_has_some_of_the_events_gets_a_frame_of_its_own_without_them(monkeypatch):
    socket = Socket()
    client = PushClient(socket.write, batches=True)
    events = [event(3), event(4), event(5), event(6)]
    client.deliver_all(events, batch_frame(events))  # broadcast while its backlog (up to 4) was being read
    client.sent_seq = 4
    client.start()
    assert [json.loads(t) for t in socket.texts] == [{"type": "batch", "seq": 6, "events": [event(5), event(6)]}]


async def test_a_batch_counts_its_events_against_the_bound(monkeypatch):
    monkeypatch.setattr(clients_module, "QUEUE_SIZE", 5)
    client = PushClient(Socket().write, batches=True)  # not started: everything is held
    three = [event(1), event(2), event(3)]
    assert client.deliver_all(three, batch_frame(three))
    more = [event(4), event(5), event(6)]
    assert client.deliver_all(more, batch_frame(more))  # 3 held: under the bound, the chunk is taken
    assert not client.deliver_all([event(7)], None)  # 6 held: QUEUE_SIZE behind, dropped


async def test_an_sse_client_is_dropped_once_it_holds_the_bound_not_before(monkeypatch):
    monkeypatch.setattr(clients_module, "QUEUE_SIZE", 5)
    client = QueueClient()
    assert client.deliver_all([event(1), event(2), event(3), event(4)], None)
    assert client.deliver_all([event(5), event(6), event(7)], None)  # a chunk arriving at 4 held
    assert not client.deliver_all([event(8)], None)


async def test_a_long_catch_up_is_emitted_in_chunks_fewer_per_turn_for_clients_taking_one_frame_per_event(
    monkeypatch,
):
    hub = quiet_hub(monkeypatch)
    socket = Socket()
    hub.register(PushClient(socket.write, batches=True)).start()
    await hub._emit_in_turns([event(seq) for seq in range(1, 451)])
    assert [len(json.loads(t)["events"]) for t in socket.texts] == [200, 200, 50]

    for _ in range(250):
        hub.register(PushClient(Socket().write)).start()
    socket.texts.clear()
    await hub._emit_in_turns([event(seq) for seq in range(451, 461)])
    # 250 frames per event (and a fiftieth of one for the batch client): 3 events make 1,000 writes a turn.
    frames = [json.loads(t) for t in socket.texts]
    assert [len(f["events"]) if f["type"] == "batch" else 1 for f in frames] == [3, 3, 3, 1]  # one alone: plain


async def test_sse_clients_count_a_tenth_of_a_write_per_event_in_the_chunk_size(monkeypatch):
    hub = quiet_hub(monkeypatch)
    for _ in range(1000):
        hub.register(QueueClient())
    assert hub._chunk_size() == 10  # 1,000 x 0.1 writes per event: 10 events make 1,000 a turn
