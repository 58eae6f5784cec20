"""Celery tasks: a round every second plans notifications, keeps incidents and hands due sends to workers."""

from __future__ import annotations

import logging

from celery import shared_task
from django.utils import timezone

from alerts.anomaly_alerts import plan_anomalies
from alerts.burn_alerts import plan_burn_alerts
from alerts.delivery import claim_due, deliver
from alerts.incidents import update_incidents
from alerts.planner import plan
from monitoring.outages import reports_database_outage

log = logging.getLogger(__name__)


def alerts_round() -> dict:
    """Plan, keep incidents, dispatch: the body of the periodic task."""
    now = timezone.now()
    planned = plan(now) + plan_anomalies(now) + plan_burn_alerts(now)
    incidents = update_incidents(now)
    dispatched = 0
    for notification_id, token in claim_due(now):
        # Each send is its own task: a slow receiver holds one worker slot, never the others' messages.
        try:
            send_notification.delay(notification_id, token)
        except Exception as exc:  # the broker is away: the claims run out and a later round hands them out
            log.warning("process_alerts: cannot queue sends (%s)", exc)
            break
        dispatched += 1
    return {"planned": planned, "incidents": incidents, "dispatched": dispatched}


@shared_task(ignore_result=True)
@reports_database_outage(dict)
def process_alerts() -> dict:
    return alerts_round()


@shared_task(ignore_result=True)
@reports_database_outage(lambda: None)
def send_notification(notification_id: int, token: str) -> bool | None:
    """Send one claimed notification. Redelivered or late, it does nothing unless the claim is still its own."""
    outcome = deliver(notification_id, token)
    return outcome.ok if outcome else None
