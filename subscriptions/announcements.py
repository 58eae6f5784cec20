"""From what happened to one message per subscriber: incident updates, maintenance phases, status flips.

Each event becomes one Announcement under a key that names it, so however often a round sees it,
subscribers hear of it once; the messages are written in the same transaction as the announcement.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta

from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.db import connection, transaction
from django.utils import timezone

from alerts.cursor import locked_cursor
from alerts.planner import change_data, model_data
from monitoring.incident_data import incident_data
from monitoring.models import AIModel, IncidentUpdate, Maintenance, StatusChange
from subscriptions.models import Announcement, SubscriberMessage
from subscriptions.signup import purge_unconfirmed

CURSOR = "subscriptions"
BATCH = 500
# News older than this when first seen is not sent (a round that was away for long, a fresh install).
LOOKBACK = timedelta(hours=1)
CHUNK = 5000
# Written at once, this many messages are analyzed in the same transaction: with statistics that
# predate them (few or no pending rows), PostgreSQL plans each claim as a read and sort of every
# pending row instead of the first few hundred in the claim index's order, and the claims of a large
# announcement add up to minutes of database time (autovacuum analyzes only a minute or more later).
ANALYZE_AFTER = 5000


def _json(data: dict) -> dict:
    return json.loads(json.dumps(data, cls=DjangoJSONEncoder))


def announce(key: str, kind: str, payload: dict, provider_ids: set[int], model_ids: set[int], now: datetime) -> int:
    """Write the announcement and a message to each subscriber following it; 0 when it was already made."""
    from subscriptions.models import Subscriber

    with transaction.atomic():
        announcement, created = Announcement.objects.get_or_create(
            key=key, defaults={"kind": kind, "payload": _json(payload), "created_at": now}
        )
        if not created:
            return 0
        recipients = Subscriber.following(provider_ids, model_ids).order_by("pk").values_list("pk", flat=True)
        if connection.vendor == "postgresql":
            written = _write_in_database(announcement, recipients, now)
            announcement.recipients = written
            announcement.save(update_fields=["recipients"])
            return written
        written, chunk = 0, []
        for subscriber_id in recipients.iterator(chunk_size=CHUNK):
            chunk.append(subscriber_id)
            if len(chunk) == CHUNK:
                written += _write(announcement, chunk, now)
                chunk = []
        written += _write(announcement, chunk, now)
        announcement.recipients = written
        announcement.save(update_fields=["recipients"])
    return written


def _write_in_database(announcement: Announcement, recipients, now: datetime) -> int:
    """One INSERT ... SELECT: the rows never travel to Python (a hundred thousand followers in a second
    or two, where building and binding them here took tens). Ids as alerts.models.new_message_id makes them."""
    select, params = recipients.query.sql_with_params()
    table = SubscriberMessage._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {table} (message_id, state, attempts, next_attempt_at, claimed_by, claimed_until, "  # noqa: S608
            "sent_at, last_error, created_at, subscriber_id, announcement_id, kind, payload) "
            "SELECT 'msg_' || replace(gen_random_uuid()::text, '-', ''), %s, 0, %s, '', NULL, NULL, '', %s, "
            f"follower.id, %s, %s, '{{}}'::jsonb FROM ({select}) AS follower (id) ON CONFLICT DO NOTHING",
            [SubscriberMessage.State.PENDING, now, now, announcement.pk, SubscriberMessage.Kind.ANNOUNCEMENT, *params],
        )
        written = cursor.rowcount
        if written >= ANALYZE_AFTER:
            cursor.execute(f"ANALYZE {table}")
        return written


def _write(announcement: Announcement, subscriber_ids: list[int], now: datetime) -> int:
    rows = [
        SubscriberMessage(
            subscriber_id=subscriber_id,
            announcement=announcement,
            kind=SubscriberMessage.Kind.ANNOUNCEMENT,
            next_attempt_at=now,
            created_at=now,
        )
        for subscriber_id in subscriber_ids
    ]
    SubscriberMessage.objects.bulk_create(rows, ignore_conflicts=True, batch_size=CHUNK)
    return len(rows)


def announce_status_change(change: StatusChange, now: datetime) -> int:
    model = change.model
    if not model.public:
        return 0
    payload = {"model": model_data(model), **change_data(change)}
    return announce(
        f"status-change:{change.pk}", Announcement.Kind.STATUS, payload, {model.provider_id}, {model.pk}, now
    )


def announce_incident_updates(now: datetime) -> int:
    written = 0
    updates = IncidentUpdate.objects.filter(at__gte=now - LOOKBACK).select_related("incident__provider").order_by("id")
    keys = {f"incident-update:{u.pk}": u for u in updates}
    seen = set(Announcement.objects.filter(key__in=list(keys)).values_list("key", flat=True))
    for key, update in keys.items():
        if key in seen:
            continue
        incident = update.incident
        models = [m for m in incident.models_affected.select_related("provider") if m.public]
        data = incident_data(incident, [update])
        data["update"] = data.pop("updates")[0]
        provider_ids = {m.provider_id for m in models} | ({incident.provider_id} if incident.provider_id else set())
        payload = {"incident": data, "at": update.at}
        written += announce(key, Announcement.Kind.INCIDENT, payload, provider_ids, {m.pk for m in models}, now)
    return written


def _maintenance_payload(window: Maintenance, phase: str, starts_at: datetime, ends_at: datetime) -> dict:
    return {
        "phase": phase,
        "at": starts_at if phase != "ended" else ends_at,
        "maintenance": {
            "id": window.pk,
            "title": window.title,
            "description": window.description,
            "provider": window.provider.name if window.provider_id else None,
            "model": f"{window.model.provider.name} {window.model.name}" if window.model_id else None,
            "starts_at": starts_at,
            "ends_at": ends_at,
            "recurrence": window.recurrence,
        },
    }


def _maintenance_targets(window: Maintenance) -> tuple[set[int], set[int]]:
    if window.model_id:
        return {window.model.provider_id}, {window.model_id}
    models = set(AIModel.objects.filter(provider_id=window.provider_id, public=True).values_list("pk", flat=True))
    return {window.provider_id}, models


def announce_maintenance(now: datetime) -> int:
    """Scheduled (once per window or series), started and ended (once per occurrence)."""
    written = 0
    longest = timedelta(minutes=Maintenance.MAX_DURATION_MINUTES)
    windows = Maintenance.objects.filter(ends_at__gt=now - LOOKBACK - longest).select_related(
        "provider", "model__provider"
    )
    for window in windows:
        if window.model_id and not window.model.public:
            continue
        providers, models = _maintenance_targets(window)
        upcoming = window.occurrences(now, now + timedelta(days=366))[:1]
        if upcoming and upcoming[0].starts_at > now:
            first = upcoming[0]
            key = f"maintenance:{window.pk}:scheduled"
            if not Announcement.objects.filter(key=key).exists():
                payload = _maintenance_payload(window, "scheduled", first.starts_at, first.ends_at)
                written += announce(key, Announcement.Kind.MAINTENANCE, payload, providers, models, now)
        for occurrence in window.occurrences(now - LOOKBACK - longest, now + timedelta(microseconds=1)):
            stamp = int(occurrence.starts_at.timestamp())
            for phase, moment in (("started", occurrence.starts_at), ("ended", occurrence.ends_at)):
                if not now - LOOKBACK < moment <= now:
                    continue
                key = f"maintenance:{window.pk}:{stamp}:{phase}"
                if Announcement.objects.filter(key=key).exists():
                    continue
                payload = _maintenance_payload(window, phase, occurrence.starts_at, occurrence.ends_at)
                written += announce(key, Announcement.Kind.MAINTENANCE, payload, providers, models, now)
    return written


def plan(now: datetime | None = None) -> int:
    """One round: new status flips (when turned on), incident updates and maintenance; returns messages written."""
    now = now or timezone.now()
    written = 0
    with locked_cursor(CURSOR, now) as cursor:
        if cursor is None:
            return 0
        while True:
            changes = cursor.next_batch(BATCH)
            # The cursor moves either way: turning flips on later does not replay the past.
            if settings.SUBSCRIPTIONS_STATUS_CHANGES:
                for change in changes:
                    written += announce_status_change(change, now)
            if len(changes) < BATCH:
                break
        written += announce_incident_updates(now)
        written += announce_maintenance(now)
        purge_unconfirmed(now)
    return written
