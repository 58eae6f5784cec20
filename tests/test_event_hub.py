"""The in-memory fan-out: bounded queues, slow clients dropped without slowing others, ordering."""

import asyncio
import json

import pytest

from publishing.realtime import clients as clients_module
from publishing.realtime.clients import PushClient, QueueClient
from publishing.realtime.eager import run_eagerly
from publishing.realtime.hub import Hub


def event(seq: int) -> dict:
    return {"type": "status_change", "seq": seq}


async def test_a_client_that_never_reads_is_dropped_and_the_others_get_everything(monkeypatch):
    monkeypatch.setattr(clients_module, "QUEUE_SIZE", 5)
    hub = Hub()
    monkeypatch.setattr(hub, "_schedule_snapshot_event", lambda: None)
    dropped = []
    stuck = hub.register(QueueClient(on_drop=lambda: dropped.append("stuck")))
    reader = hub.register(QueueClient())
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
    client = hub.register(QueueClient())
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

    async def fake_catch_up(timeout=None):
        caught_up.append(True)
        return True

    monkeypatch.setattr(hub, "_catch_up", fake_catch_up)
    hub.last_seq = 10
    await hub.on_message(event(11))
    assert hub.last_seq == 11 and not caught_up
    await hub.on_message(event(13))  # 12 was missed: read the log rather than skip it
    assert caught_up and hub.last_seq == 11
    await asyncio.sleep(0)


async def test_a_write_that_needs_no_wait_runs_in_the_callers_step():
    written = []

    async def write(text):
        written.append(text)

    assert run_eagerly(write("a")) is None
    assert written == ["a"]


async def test_a_write_that_must_wait_is_finished_by_a_task_with_what_it_awaited():
    room = asyncio.get_running_loop().create_future()
    seen = []

    async def write():
        seen.append(await room)
        await asyncio.sleep(0)  # a bare yield on the way is carried on too
        return "done"

    task = run_eagerly(write())
    assert task is not None and not task.done() and seen == []
    room.set_result("room")
    assert await task == "done" and seen == ["room"]


async def test_an_error_before_any_wait_reaches_the_caller_and_one_after_reaches_the_coroutine():
    async def broken():
        raise ConnectionResetError

    with pytest.raises(ConnectionResetError):
        run_eagerly(broken())

    gone = asyncio.get_running_loop().create_future()
    caught = []

    async def write():
        try:
            await gone
        except ConnectionResetError:
            caught.append(True)
            raise

    task = run_eagerly(write())
    gone.set_exception(ConnectionResetError())
    with pytest.raises(ConnectionResetError):
        await task
    assert caught == [True]


async def test_cancelling_a_waiting_write_before_its_task_starts_runs_its_cleanup():
    cleaned = []

    async def write():
        try:
            await asyncio.get_running_loop().create_future()
        finally:
            cleaned.append(True)

    task = run_eagerly(write())
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert cleaned == [True]


async def test_a_write_cancelled_after_its_lock_was_handed_to_it_passes_the_lock_on():
    # A Task's cancellation semantics: asyncio.Lock wakes the next waiter only on CancelledError.
    lock = asyncio.Lock()
    await lock.acquire()

    async def write():
        async with lock:
            await asyncio.sleep(10)

    task = run_eagerly(write())
    other = asyncio.ensure_future(lock.acquire())
    await asyncio.sleep(0)
    lock.release()  # handed to the waiting write...
    task.cancel()  # ...which is cancelled before it resumes
    assert await asyncio.wait_for(other, 1) is True
    with pytest.raises(asyncio.CancelledError):
        await task


async def test_a_cleanup_that_itself_waits_still_runs_when_a_waiting_write_is_cancelled():
    cleaned = []

    async def write():
        try:
            await asyncio.get_running_loop().create_future()
        finally:
            await asyncio.sleep(0)
            cleaned.append(True)

    task = run_eagerly(write())
    await asyncio.sleep(0)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert cleaned == [True]


class Socket:
    """A client's socket as the push client sees it: writes finish at once unless `full` is set."""

    def __init__(self):
        self.frames = []
        self.room: asyncio.Event = asyncio.Event()
        self.room.set()
        self.writes_in_flight = 0
        self.most_in_flight = 0

    async def write(self, text):
        self.writes_in_flight += 1
        self.most_in_flight = max(self.most_in_flight, self.writes_in_flight)
        try:
            await self.room.wait()
            self.frames.append(json.loads(text)["seq"])
        finally:
            self.writes_in_flight -= 1


async def test_a_pushed_client_gets_what_was_broadcast_during_its_opening_without_the_backlogs_repeats():
    socket = Socket()
    client = PushClient(socket.write)
    client.deliver(event(3))  # broadcast while the backlog (up to 4) was being read
    client.deliver(event(5))
    assert socket.frames == []
    client.sent_seq = 4
    client.start()
    assert socket.frames == [5]


async def test_a_pushed_client_whose_socket_is_full_gets_the_held_events_in_order_one_write_at_a_time():
    socket = Socket()
    client = PushClient(socket.write)
    client.start()
    client.deliver(event(1))
    socket.room.clear()
    for seq in range(2, 6):
        assert client.deliver(event(seq))
    client.send({"type": "pong", "seq": 5})
    assert socket.frames == [1]
    socket.room.set()
    for _ in range(10):
        await asyncio.sleep(0)
    assert socket.frames == [1, 2, 3, 4, 5, 5]
    assert socket.most_in_flight == 1


async def test_a_pushed_client_that_stops_reading_is_dropped_and_the_others_get_everything(monkeypatch):
    monkeypatch.setattr(clients_module, "QUEUE_SIZE", 5)
    hub = Hub()
    monkeypatch.setattr(hub, "_schedule_snapshot_event", lambda: None)
    stuck_socket, reader_socket = Socket(), Socket()
    stuck_socket.room.clear()
    dropped = []
    stuck = hub.register(PushClient(stuck_socket.write, on_drop=lambda: dropped.append("stuck")))
    reader = hub.register(PushClient(reader_socket.write))
    stuck.start()
    reader.start()
    for seq in range(1, 21):
        hub._emit([event(seq)])
    assert dropped == ["stuck"] and stuck not in hub.clients
    assert reader_socket.frames == list(range(1, 21))
    stuck.close()  # what its disconnect does: the write that waited for room ends
    await asyncio.sleep(0)
    assert stuck_socket.writes_in_flight == 0


async def test_a_pushed_client_asking_for_more_while_not_reading_is_dropped_and_then_ignored(monkeypatch):
    monkeypatch.setattr(clients_module, "QUEUE_SIZE", 5)
    socket = Socket()
    socket.room.clear()
    dropped = []
    client = PushClient(socket.write, on_drop=lambda: dropped.append(True))
    client.start()
    for seq in range(1, 20):
        client.send({"type": "pong", "seq": seq})  # e.g. pings or resumes, never reading the answers
    assert dropped == [True] and client.dropped and client.closed
    assert client.deliver(event(30)) and len(client._held) == 0  # nothing piles up after the drop


async def test_a_pushed_client_whose_socket_is_gone_closes_without_troubling_the_hub(monkeypatch):
    hub = Hub()
    monkeypatch.setattr(hub, "_schedule_snapshot_event", lambda: None)

    async def gone(text):
        raise ConnectionResetError

    client = hub.register(PushClient(gone))
    client.start()
    hub._emit([event(1)])
    hub._emit([event(2)])
    assert client.closed


async def test_a_hub_that_met_the_database_away_at_its_first_start_starts_on_the_next_connection(monkeypatch):
    from django.db import DatabaseError

    hub = Hub()
    calls = []

    async def db(fn, *args):
        calls.append(fn)
        if len(calls) == 1:
            raise DatabaseError("the database is away")
        return 7

    monkeypatch.setattr(hub, "_db", db)
    monkeypatch.setattr(hub, "_start_following", lambda: None)
    with pytest.raises(DatabaseError):
        await hub.ensure_started()
    assert not hub._started
    await hub.ensure_started()
    assert hub._started and hub.last_seq == 7


async def test_the_web_process_follows_the_event_log_from_its_start_and_lets_go_at_its_stop(monkeypatch):
    from aistatus import lifespan as lifespan_module
    from publishing.realtime import hub as hub_module

    hub = Hub()
    followed = []

    async def db(fn, *args):
        return 42

    monkeypatch.setattr(hub, "_db", db)
    monkeypatch.setattr(hub, "_start_following", lambda: followed.append(True))
    monkeypatch.setattr(hub_module, "hub", hub)
    messages = iter([{"type": "lifespan.startup"}, {"type": "lifespan.shutdown"}])
    sent = []

    async def receive():
        return next(messages)

    async def send(message):
        sent.append((message["type"], hub._started))

    await lifespan_module.lifespan({"type": "lifespan"}, receive, send)
    assert followed == [True] and hub.last_seq == 42
    assert sent == [("lifespan.startup.complete", True), ("lifespan.shutdown.complete", False)]


async def test_a_dropped_websocket_counts_against_the_limit_until_its_connection_ends(monkeypatch):
    from publishing.realtime import consumers, session

    hub = Hub()
    monkeypatch.setattr(consumers, "hub", hub)
    monkeypatch.setattr(session, "hub", hub)
    monkeypatch.setattr(clients_module, "QUEUE_SIZE", 2)
    monkeypatch.setattr(hub, "_schedule_snapshot_event", lambda: None)
    consumer = consumers.StatusConsumer()
    closed = []

    async def close(code=None):
        closed.append(code)

    monkeypatch.setattr(consumer, "close", close)
    socket = Socket()
    socket.room.clear()  # the peer does not read
    consumer.client = PushClient(socket.write, on_drop=consumer._dropped)
    consumer.session = session.EventSession(consumer.client)
    consumer.client.start()
    for seq in range(1, 6):
        hub._emit([event(seq)])
    await asyncio.sleep(0)
    assert closed == [consumers.TOO_SLOW] and consumer.client not in hub.clients
    assert hub.connection_count == 1  # still open: its closing handshake waits on the peer
    await consumer.disconnect(1006)
    assert hub.connection_count == 0


async def test_a_change_committed_while_the_hub_reads_the_log_is_emitted_by_the_next_read(monkeypatch):
    from publishing.realtime import hub as hub_module

    log = [10]  # committed sequences

    def fetch_after(after: int, limit: int) -> list[dict]:
        found = [event(seq) for seq in log if seq > after]
        if 11 not in log:
            log.append(11)  # a public change commits right after this read
        return found

    async def on_this_thread(fn, *args):
        return fn(*args)

    hub = Hub()
    monkeypatch.setattr(hub, "_schedule_snapshot_event", lambda: None)
    monkeypatch.setattr(hub, "_db", on_this_thread)
    monkeypatch.setattr(hub, "_catch_up_anomalies", lambda: asyncio.sleep(0))
    monkeypatch.setattr(hub_module, "_fetch_after", fetch_after)
    monkeypatch.setattr(hub_module, "latest_sequence", lambda: max(log))
    client = hub.register(QueueClient())
    hub.last_seq = 10
    await hub._catch_up()
    await hub._catch_up()
    assert [e["seq"] for e in await asyncio.wait_for(client.next(), 1)] == [11]  # not passed over as seen


async def test_while_the_event_log_cannot_be_read_events_past_a_gap_still_reach_clients(monkeypatch):
    from django.db import DatabaseError

    reads = []

    async def database_away(fn, *args):
        reads.append(fn)
        raise DatabaseError("connection refused")

    hub = Hub()
    monkeypatch.setattr(hub, "_schedule_snapshot_event", lambda: None)
    monkeypatch.setattr(hub, "_db", database_away)
    client = hub.register(QueueClient())
    hub.last_seq = 10
    await hub.on_messages([event(12), event(13)])  # 11 never came: only the log could fill the gap
    assert [e["seq"] for e in await asyncio.wait_for(client.next(), 1)] == [12, 13]
    tried = len(reads)
    await hub.on_messages([event(15)])  # another gap soon after: not waited on again
    assert [e["seq"] for e in await asyncio.wait_for(client.next(), 1)] == [15] and len(reads) == tried


async def test_a_gap_is_not_held_by_a_database_that_does_not_answer(monkeypatch):
    from publishing.realtime import hub as hub_module

    async def no_answer(fn, *args):
        await asyncio.sleep(3600)

    monkeypatch.setattr(hub_module, "LOG_READ_TIMEOUT_SECONDS", 0.1)
    hub = Hub()
    monkeypatch.setattr(hub, "_schedule_snapshot_event", lambda: None)
    monkeypatch.setattr(hub, "_db", no_answer)
    client = hub.register(QueueClient())
    hub.last_seq = 10
    await asyncio.wait_for(hub.on_messages([event(12)]), 1)
    assert [e["seq"] for e in await asyncio.wait_for(client.next(), 1)] == [12]
