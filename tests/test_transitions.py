"""Status transitions written in batches: the same rows and events as one call each, in one transaction."""

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from monitoring.models import AIModel, ModelStatus, StatusChange
from monitoring.status import Status
from monitoring.transitions import StatusUpdate, record_statuses

pytestmark = pytest.mark.django_db


@pytest.fixture
def models(provider):
    return [
        AIModel.objects.create(provider=provider, name=f"M{i}", slug=f"m{i}", endpoint="http://127.0.0.1:1/v1")
        for i in range(5)
    ]


def test_a_batch_writes_one_change_per_real_transition_in_order_with_the_rows_to_match(models, monkeypatch):
    published = []
    monkeypatch.setattr("monitoring.transitions.publish_after_commit", lambda change, model: published.append(model))
    at = timezone.now() - timedelta(seconds=5)
    record_statuses([StatusUpdate(models[4].pk, Status.OPERATIONAL, at=at)])
    updates = [
        StatusUpdate(models[3].pk, Status.MAJOR_OUTAGE, reason="HTTP 503", at=at, checked=True, latency_ms=12.0),
        StatusUpdate(models[0].pk, Status.DEGRADED_PERFORMANCE, reason="slow", at=at),
        StatusUpdate(models[4].pk, Status.OPERATIONAL, reason="fine", at=at, checked=True, latency_ms=80.0),
    ]
    changes = record_statuses(updates)
    assert [(c.model_id, c.from_status, c.to_status) for c in changes] == [
        (models[3].pk, "unknown", "major_outage"),
        (models[0].pk, "unknown", "degraded_performance"),
    ]
    assert changes[0].pk < changes[1].pk and StatusChange.objects.filter(pk__in=[c.pk for c in changes]).count() == 2
    assert [m.pk for m in published] == [models[4].pk, models[3].pk, models[0].pk]
    down = ModelStatus.objects.get(model=models[3])
    assert (down.status, down.since, down.message, down.last_checked_at, down.last_latency_ms) == (
        "major_outage", at, "HTTP 503", at, 12.0
    )
    same = ModelStatus.objects.get(model=models[4])  # no transition: only the evidence moved
    assert (same.status, same.last_latency_ms) == ("operational", 80.0)
    assert ModelStatus.objects.get(model=models[1]).status == Status.UNKNOWN


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
