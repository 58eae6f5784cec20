"""Delivering subscriber messages with alerts' machinery: claims, settled outcomes, backoff, stable ids.

What is subscriber-specific: a batch of mail is sent over one SMTP connection (webhooks are posted
several at a time), and a subscriber whose address keeps being refused, or whose endpoint keeps
failing, is paused after SUBSCRIPTIONS_PAUSE_AFTER failures in a row.
"""

from __future__ import annotations

from datetime import datetime

from django.conf import settings
from django.db.models import F
from django.utils import timezone
from django.utils.translation import gettext as _

from alerts.delivery import claim_batch, settle_batch
from subscriptions import email, push, webhooks
from subscriptions.models import Subscriber, SubscriberMessage


def _deliver(ids: list[int], token: str, now: datetime, rendered_cache: dict | None = None) -> email.BatchOutcome:
    items = list(
        SubscriberMessage.objects.filter(pk__in=ids, claimed_by=token)
        .select_related("subscriber", "announcement")
        .order_by("id")
    )
    by_mail = [item for item in items if item.subscriber.channel == Subscriber.Channel.EMAIL]
    by_webhook = [item for item in items if item.subscriber.channel == Subscriber.Channel.WEBHOOK]
    outcome = email.send_batch(by_mail, rendered_cache) if by_mail else email.BatchOutcome()
    by_push = [item for item in items if item.subscriber.channel == Subscriber.Channel.PUSH]
    for sender, batch in ((webhooks.send_batch, by_webhook), (push.send_batch, by_push)):
        if batch:
            posted = sender(batch)
            outcome.sent += posted.sent
            outcome.failed.update(posted.failed)
            outcome.refused += posted.refused
    settle_batch(SubscriberMessage, token, outcome.sent, outcome.failed, now, settings.SUBSCRIPTIONS_MAX_ATTEMPTS)
    _count(outcome, now)
    return outcome


def _count(outcome: email.BatchOutcome, now: datetime) -> None:
    if outcome.sent:
        Subscriber.objects.filter(messages__pk__in=outcome.sent, consecutive_failures__gt=0).update(
            consecutive_failures=0
        )
    for subscriber_id in set(outcome.refused):
        Subscriber.objects.filter(pk=subscriber_id).update(consecutive_failures=F("consecutive_failures") + 1)
        subscriber = Subscriber.objects.filter(pk=subscriber_id).first()
        if subscriber and subscriber.consecutive_failures >= settings.SUBSCRIPTIONS_PAUSE_AFTER:
            subscriber.pause(
                _("Paused after %(n)d refused or failed deliveries in a row.") % {"n": subscriber.consecutive_failures},
                now,
            )


def due_messages():
    return SubscriberMessage.objects.filter(subscriber__paused_at__isnull=True)


def send_due(now: datetime | None = None, limit: int | None = None, rendered_cache: dict | None = None) -> int:
    """Claim one batch of due messages and send it; returns how many were claimed."""
    now = now or timezone.now()
    token, ids = claim_batch(due_messages(), now, limit or settings.SUBSCRIPTIONS_BATCH)
    if ids:
        _deliver(ids, token, now, rendered_cache)
    return len(ids)


def send_all_due(now: datetime | None = None, max_batches: int = 1000) -> int:
    """Send batches until nothing is due (tests, commands, single-process runs)."""
    claimed, cache = 0, {}
    for _batch in range(max_batches):
        taken = send_due(now, rendered_cache=cache)
        claimed += taken
        if not taken:
            break
    return claimed
