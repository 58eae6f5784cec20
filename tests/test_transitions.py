"""Status transitions written in batches: the same rows and events as one call each, in one transaction."""

from datetime import timedelta

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from monitoring.models import AIModel, ModelStatus, StatusChange
from monitoring.signals import statuses_changed
from monitoring.status import Status
from monitoring.transitions import StatusUpdate, record_statuses

pytestmark = pytest.mark.django_db


@pytest.fixture
def models(provider):
    return [
        AIModel.objects.create(provider=provider, name=f"M{i}", slug=f"m{i}", endpoint="http://127.0.0.1:1/v1")
        for i in range(5)
    ]


def test_a_batch_writes_one_change_per_real_transition_in_order_with_the_rows_to_match(
    models, django_capture_on_commit_callbacks
):
    announced = []

    def listener(sender, changes, **kwargs):
        announced.append([change.model.pk for change in changes])

    statuses_changed.connect(listener)
    try:
        at = timezone.now() - timedelta(seconds=5)
        with django_capture_on_commit_callbacks(execute=True):
            record_statuses([StatusUpdate(models[4].pk, Status.OPERATIONAL, at=at)])
        updates = [
            StatusUpdate(models[3].pk, Status.MAJOR_OUTAGE, reason="HTTP 503", at=at, checked=True, latency_ms=12.0),
            StatusUpdate(models[0].pk, Status.DEGRADED_PERFORMANCE, reason="slow", at=at),
            StatusUpdate(models[4].pk, Status.OPERATIONAL, reason="fine", at=at, checked=True, latency_ms=80.0),
        ]
        with django_capture_on_commit_callbacks(execute=True):
            changes = record_statuses(updates)
    finally:
        statuses_changed.disconnect(listener)
    assert [(c.model_id, c.from_status, c.to_status) for c in changes] == [
        (models[3].pk, "unknown", "major_outage"),
        (models[0].pk, "unknown", "degraded_performance"),
    ]
    assert changes[0].pk < changes[1].pk and StatusChange.objects.filter(pk__in=[c.pk for c in changes]).count() == 2
    # One announcement per committed batch, its changes in sequence order with their models loaded.
    assert announced == [[models[4].pk], [models[3].pk, models[0].pk]]
    down = ModelStatus.objects.get(model=models[3])
    assert (down.status, down.since, down.message, down.last_checked_at, down.last_latency_ms) == (
        "major_outage",
        at,
        "HTTP 503",
        at,
        12.0,
    )
    same = ModelStatus.objects.get(model=models[4])  # no transition: only the evidence moved
    assert (same.status, same.last_latency_ms) == ("operational", 80.0)
    assert ModelStatus.objects.get(model=models[1]).status == Status.UNKNOWN


def test_a_batch_that_rolls_back_announces_nothing(models, django_capture_on_commit_callbacks):
    announced = []

    def listener(sender, changes, **kwargs):
        announced.append(changes)

    statuses_changed.connect(listener)
    try:
        with django_capture_on_commit_callbacks(execute=True), pytest.raises(RuntimeError):
            with transaction.atomic():
                record_statuses([StatusUpdate(models[0].pk, Status.MAJOR_OUTAGE)])
                raise RuntimeError("the caller's transaction fails")
    finally:
        statuses_changed.disconnect(listener)
    assert announced == []
    assert ModelStatus.objects.get(model=models[0]).status == Status.UNKNOWN


def test_a_failing_listener_does_not_stop_the_others_or_the_writer(models, django_capture_on_commit_callbacks):
    heard = []

    def broken(sender, changes, **kwargs):
        raise ConnectionError("listener away")

    def working(sender, changes, **kwargs):
        heard.extend(c.pk for c in changes)

    statuses_changed.connect(broken)
    statuses_changed.connect(working)
    try:
        with django_capture_on_commit_callbacks(execute=True):
            changes = record_statuses([StatusUpdate(models[0].pk, Status.MAJOR_OUTAGE)])
    finally:
        statuses_changed.disconnect(broken)
        statuses_changed.disconnect(working)
    assert heard == [changes[0].pk]


def test_two_updates_of_one_model_in_a_batch_are_two_transitions(models):
    changes = record_statuses(
        [StatusUpdate(models[0].pk, Status.OPERATIONAL), StatusUpdate(models[0].pk, Status.MAJOR_OUTAGE)]
    )
    assert [(c.from_status, c.to_status) for c in changes] == [
        ("unknown", "operational"),
        ("operational", "major_outage"),
    ]
    assert ModelStatus.objects.get(model=models[0]).status == Status.MAJOR_OUTAGE


def test_a_model_deleted_meanwhile_is_skipped_and_the_rest_are_written(models):
    gone = models[1].pk
    models[1].delete()
    changes = record_statuses([StatusUpdate(gone, Status.MAJOR_OUTAGE), StatusUpdate(models[2].pk, Status.OPERATIONAL)])
    assert [c.model_id for c in changes] == [models[2].pk]


def test_a_batch_costs_the_same_few_statements_whatever_its_size(models):
    def statements(count: int, status: str) -> int:
        with CaptureQueriesContext(connection) as queries:
            record_statuses([StatusUpdate(m.pk, status) for m in models[:count]])
        return len(queries)

    assert statements(1, Status.OPERATIONAL) == statements(5, Status.MAJOR_OUTAGE)


def test_an_unknown_status_is_refused_before_anything_is_written(models):
    with pytest.raises(ValueError, match="unknown status"):
        record_statuses([StatusUpdate(models[0].pk, Status.OPERATIONAL), StatusUpdate(models[1].pk, "fine")])
    assert not StatusChange.objects.exists()
