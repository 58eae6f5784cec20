"""Celery tasks: a round every second announces what happened and sends what is due, batch by batch."""

from __future__ import annotations

import time

from celery import shared_task
from django.utils import timezone

from monitoring.outages import reports_database_outage
from subscriptions.announcements import plan
from subscriptions.sending import send_until

# A round sends for at most this long; the next round (or a parallel one) claims the rest.
ROUND_SECONDS = 30.0


def subscriptions_round() -> dict:
    now = timezone.now()
    planned = plan(now)
    return {"planned": planned, "claimed": send_until(time.monotonic() + ROUND_SECONDS)}


@shared_task(ignore_result=True)
@reports_database_outage(dict)
def notify_subscribers() -> dict:
    return subscriptions_round()
