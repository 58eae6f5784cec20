"""Announcing writes one message per follower; a large announcement leaves the outbox analyzed, so that
each claim reads the first due rows in the claim index's order instead of every pending row."""

from __future__ import annotations

import pytest
from django.db import connection
from django.utils import timezone

from alerts.models import EventCursor
from monitoring.models import AIModel, Incident, Provider
from subscriptions import announcements
from subscriptions.models import Subscriber, SubscriberMessage

pytestmark = pytest.mark.django_db


def outbox_statistics() -> list[str]:
    """The values PostgreSQL's statistics list as most common in the outbox's `state` column."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT most_common_vals::text FROM pg_stats WHERE tablename = %s AND attname = 'state'",
            [SubscriberMessage._meta.db_table],
        )
        row = cursor.fetchone()
    return row[0].strip("{}").split(",") if row else []


def forget_statistics() -> None:
    with connection.cursor() as cursor:
        cursor.execute("DELETE FROM pg_statistic WHERE starelid = %s::regclass", [SubscriberMessage._meta.db_table])


def outage_followed_by(count: int) -> int:
    EventCursor.objects.get_or_create(name="subscriptions", defaults={"last_id": 0})
    provider = Provider.objects.create(name="Anthropic", slug="anthropic")
    model = AIModel.objects.create(provider=provider, name="Claude", slug="claude", endpoint="http://127.0.0.1:9/v1")
    now = timezone.now()
    made = Subscriber.objects.bulk_create(
        [Subscriber(email=f"reader{i}@example.com", confirmed_at=now) for i in range(count)]
    )
    Subscriber.providers.through.objects.bulk_create(
        [Subscriber.providers.through(subscriber_id=s.pk, provider_id=provider.pk) for s in made]
    )
    incident = Incident.objects.create(title="Claude is down", provider=provider, impact="critical")
    incident.models_affected.add(model)
    incident.add_update("investigating", "Requests fail. We are investigating.")
    return announcements.plan()


def test_a_large_announcement_analyzes_the_outbox_it_filled(monkeypatch):
    monkeypatch.setattr(announcements, "ANALYZE_AFTER", 20)
    forget_statistics()

    assert outage_followed_by(25) == 25

    assert outbox_statistics() == ["pending"]


def test_a_small_announcement_leaves_the_statistics_to_autovacuum(monkeypatch):
    monkeypatch.setattr(announcements, "ANALYZE_AFTER", 20)
    forget_statistics()

    assert outage_followed_by(19) == 19

    assert outbox_statistics() == []
