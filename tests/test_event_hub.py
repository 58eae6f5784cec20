"""The in-memory fan-out: bounded queues, slow clients dropped without slowing others, ordering."""

import asyncio

import pytest

from monitoring.realtime import hub as hub_module
from monitoring.realtime.hub import Hub


def event(seq: int) -> dict:
    return {"type": "status_change", "seq": seq}


async def test_a_client_that_never_reads_is_dropped_and_the_others_get_everything(monkeypatch):
    monkeypatch.setattr(hub_module, "QUEUE_SIZE", 5)
    hub = Hub()
    monkeypatch.setattr(hub, "_schedule_snapshot_event", lambda: None)
    dropped = []
    stuck = hub.register(on_drop=lambda: dropped.append("stuck"))
    reader = hub.register()
    received = []
    for seq in range(1, 21):
        hub._emit([event(seq)])
        received.append((await reader.queue.get())["seq"])
    assert dropped == ["stuck"] and stuck.dropped and stuck not in hub.clients
    assert received == list(range(1, 21))
    assert hub.dropped == 1


async def test_events_are_emitted_once_and_in_order(monkeypatch):
    hub = Hub()
    monkeypatch.setattr(hub, "_schedule_snapshot_event", lambda: None)
    client = hub.register()
    hub._emit([event(1), event(2)])
    hub._emit([event(2), event(1), event(3)])
    seqs = []
    while not client.queue.empty():
        seqs.append(client.queue.get_nowait()["seq"])
    assert seqs == [1, 2, 3]


@pytest.mark.django_db
async def test_a_gap_in_pushed_events_is_filled_from_the_event_log(monkeypatch):
    hub = Hub()
    monkeypatch.setattr(hub, "_schedule_snapshot_event", lambda: None)
    caught_up = []

    async def fake_catch_up():
        caught_up.append(True)

    monkeypatch.setattr(hub, "_catch_up", fake_catch_up)
    hub.last_seq = 10
    await hub.on_message(event(11))
    assert hub.last_seq == 11 and not caught_up
    await hub.on_message(event(13))  # 12 was missed: read the log rather than skip it
    assert caught_up and hub.last_seq == 11
    await asyncio.sleep(0)
