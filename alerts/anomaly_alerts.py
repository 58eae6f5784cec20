"""Anomaly notices for channels that opted in ("anomaly" among their events): one when an anomaly opens,
one when it closes, damped like status flips.

Follows the anomalies' event log (AnomalyEvent ids, written by one detection run at a time, so they commit
in order) with its own cursor; the notices and the cursor's move commit together. Damping: a model whose
anomalies open ALERT_FLAP_CHANGES times within ALERT_FLAP_MINUTES gets one "flapping" notice instead,
and its further anomaly notices are held until openings fall under that rate again.
"""

from __future__ import annotations

from datetime import datetime

from django.db import transaction
from django.db.models import Max
from django.utils import timezone

from alerts.cursor import REPLAY_WINDOW
from alerts.damping import damped_notices
from alerts.models import Channel, EventCursor, Notification
from alerts.planner import flap_window, model_data
from alerts.rules import Rule, active_rules
from anomalies.events import anomaly_data
from anomalies.models import AnomalyEvent
from anomalies.records import describe

CURSOR = "anomalies"
BATCH = 500


def _openings_before(event: AnomalyEvent, opened: AnomalyEvent) -> int:
    """Anomalies of the model opened within the flap window up to (and with) the one `event` is about."""
    return AnomalyEvent.objects.filter(
        kind=AnomalyEvent.Kind.OPENED,
        anomaly__model_id=event.anomaly.model_id,
        id__lte=opened.pk,
        at__gt=opened.at - flap_window(),
    ).count()


def _opening_of(event: AnomalyEvent) -> AnomalyEvent | None:
    if event.kind == AnomalyEvent.Kind.OPENED:
        return event
    return AnomalyEvent.objects.filter(anomaly_id=event.anomaly_id, kind=AnomalyEvent.Kind.OPENED).first()


def _notices(event: AnomalyEvent, rules: list[Rule], now: datetime) -> list[Notification]:
    anomaly = event.anomaly
    model = anomaly.model
    covering = [rule for rule in rules if rule.covers(model)]
    if not covering:
        return []
    opened = _opening_of(event)
    count = _openings_before(event, opened) if opened else 0
    payload = {
        "model": model_data(model),
        "state": event.kind,
        "at": event.at.isoformat(),
        "anomaly": anomaly_data(anomaly),
        "reason": describe(anomaly),
    }
    return damped_notices(
        model,
        covering,
        openings=count,
        kind=Notification.Kind.ANOMALY,
        key=f"anomaly:{event.pk}",
        payload=payload,
        at=event.at,
        now=now,
        hold_at_limit=event.kind == AnomalyEvent.Kind.CLOSED,
    )


def plan_anomalies(now: datetime | None = None) -> int:
    """Notices for the anomaly events since the cursor. Returns the notifications written."""
    now = now or timezone.now()
    with transaction.atomic():
        if not EventCursor.objects.filter(name=CURSOR).exists():
            # A new install announces recent anomalies only, not the history.
            start = AnomalyEvent.objects.filter(at__lt=now - REPLAY_WINDOW).aggregate(last=Max("id"))["last"] or 0
            EventCursor.objects.get_or_create(name=CURSOR, defaults={"last_id": start, "updated_at": now})
        row = EventCursor.objects.select_for_update(skip_locked=True).filter(name=CURSOR).first()
        if row is None:
            return 0
        events = list(
            AnomalyEvent.objects.filter(id__gt=row.last_id)
            .select_related("anomaly__model__provider", "anomaly__model__status_row")
            .order_by("id")[:BATCH]
        )
        if not events:
            return 0
        rules = [rule for rule in active_rules() if Channel.Event.ANOMALY in rule.events]
        notices = [notice for event in events for notice in _notices(event, rules, now)]
        Notification.objects.bulk_create(notices, ignore_conflicts=True)
        row.last_id = events[-1].pk
        row.updated_at = now
        row.save(update_fields=["last_id", "updated_at"])
    return len(notices)
