"""Clients resuming together from one sequence (a web restart) share one read of the event log."""

import asyncio

import pytest
from asgiref.sync import sync_to_async
from django.db import connections

from monitoring.models import AIModel, StatusChange
from monitoring.transitions import record_status
from publishing.realtime import hub as hub_module
from publishing.realtime.hub import Hub
from publishing.snapshot import latest_sequence

pytestmark = [pytest.mark.django_db(transaction=True)]


@pytest.fixture(autouse=True)
async def close_connections():
    # Connections opened by the event-log thread would keep the test database from being dropped.
    yield
    await asyncio.get_running_loop().run_in_executor(hub_module._db_thread, connections.close_all)
    await sync_to_async(connections.close_all)()


@pytest.fixture
def models(provider):
    return [
        AIModel.objects.create(provider=provider, name=f"M{i}", slug=f"m{i}", endpoint="http://127.0.0.1:1/v1")
        for i in range(3)
    ]


async def change(model: AIModel, status: str):
    return await sync_to_async(record_status)(model.pk, status, reason="test", source="operator", manual=True)


async def restarted_hub(monkeypatch) -> tuple[Hub, list[int]]:
    """A hub as a freshly started process has it: nothing handed out, nothing held; its log reads counted."""
    hub = Hub()
    monkeypatch.setattr(hub, "_schedule_snapshot_event", lambda: None)
    hub.last_seq = await sync_to_async(latest_sequence)()
    reads = []
    real = hub_module._read_backlog

    def counted(after, known):
        reads.append(after)
        return real(after, known)

    monkeypatch.setattr(hub_module, "_read_backlog", counted)
    return hub, reads


async def test_two_hundred_clients_resuming_from_one_sequence_get_every_missed_event_from_one_read(monkeypatch, models):
    first = await change(models[0], "major_outage")
    missed = [await change(m, "partial_outage") for m in models]
    missed += [await change(m, "operational") for m in models]
    hub, reads = await restarted_hub(monkeypatch)

    backlogs = await asyncio.gather(*(hub.backlog(first.pk) for _ in range(200)))

    assert reads == [first.pk]
    for backlog in backlogs:
        assert [e["seq"] for e in backlog] == [c.pk for c in missed]


async def test_a_client_resuming_from_a_shared_read_also_gets_what_was_emitted_after_it(monkeypatch, models):
    first = await change(models[0], "major_outage")
    missed = await change(models[1], "partial_outage")
    hub, reads = await restarted_hub(monkeypatch)
    assert [e["seq"] for e in await hub.backlog(first.pk)] == [missed.pk]

    later = await change(models[2], "degraded_performance")
    hub._emit([{"type": "status_change", "seq": later.pk, "model": "openai/m2"}])  # as the subscription would
    resumed = await hub.backlog(first.pk)

    assert reads == [first.pk]  # the same read, not a second one
    assert [e["seq"] for e in resumed] == [missed.pk, later.pk]


async def test_an_unknown_sequence_is_still_answered_with_a_resync(monkeypatch, models):
    await change(models[0], "major_outage")
    await change(models[1], "major_outage")
    hub, _ = await restarted_hub(monkeypatch)
    gone = hub.last_seq - 1
    await sync_to_async(StatusChange.objects.filter(pk=gone).delete)()

    assert await hub.backlog(gone) is None
