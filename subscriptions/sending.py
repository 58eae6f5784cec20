"""Delivering subscriber messages with alerts' machinery: claims, settled outcomes, backoff, stable ids.

What is subscriber-specific: a batch of mail is sent over one SMTP connection (webhooks are posted
several at a time), and a subscriber whose address keeps being refused, or whose endpoint keeps
failing, is paused after SUBSCRIPTIONS_PAUSE_AFTER failures in a row.
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime

from django.conf import settings
from django.db import connection, connections
from django.db.models import F
from django.utils import timezone
from django.utils.translation import gettext as _

from alerts.delivery import claim_batch, settle_batch
from subscriptions import email, mail_sending, push, webhooks
from subscriptions.models import Announcement, Subscriber, SubscriberMessage

# What sending reads of a message and its subscriber: loading whole rows (their timestamps, and the
# announcement's payload decoded once per message) cost more than making the mail.
MESSAGE_FIELDS = ("message_id", "attempts", "kind", "payload", "subscriber_id", "announcement_id")
SUBSCRIBER_FIELDS = ("channel", "email", "language", "key", "webhook_url", "secret", "push_endpoint", "push_keys")


def claimed(ids: list[int], token: str) -> list[SubscriberMessage]:
    """The messages of a claim still held under its token, with their subscribers and announcements
    (each announcement loaded once for the batch)."""
    items = list(
        SubscriberMessage.objects.filter(pk__in=ids, claimed_by=token)
        .select_related("subscriber")
        .only(*MESSAGE_FIELDS, *(f"subscriber__{name}" for name in SUBSCRIBER_FIELDS))
        .order_by("id")
    )
    announcements = Announcement.objects.in_bulk({item.announcement_id for item in items} - {None})
    for item in items:
        if item.announcement_id is not None:
            item.announcement = announcements[item.announcement_id]
    return items


def _deliver(ids: list[int], token: str, now: datetime, rendered_cache: dict | None = None) -> email.BatchOutcome:
    return _send_claimed(claimed(ids, token), token, now, rendered_cache)


def _send_claimed(
    items: list[SubscriberMessage], token: str, now: datetime, rendered_cache: dict | None = None
) -> email.BatchOutcome:
    outcome = _send(items, rendered_cache)
    _settle(items, token, now, outcome)
    return outcome


def _send(
    items: list[SubscriberMessage], rendered_cache: dict | None, mail_round: mail_sending.MailRound | None = None
) -> email.BatchOutcome:
    by_mail = [item for item in items if item.subscriber.channel == Subscriber.Channel.EMAIL]
    by_webhook = [item for item in items if item.subscriber.channel == Subscriber.Channel.WEBHOOK]
    outcome = mail_sending.send_batch(by_mail, rendered_cache, mail_round) if by_mail else email.BatchOutcome()
    by_push = [item for item in items if item.subscriber.channel == Subscriber.Channel.PUSH]
    for sender, batch in ((webhooks.send_batch, by_webhook), (push.send_batch, by_push)):
        if batch:
            posted = sender(batch)
            outcome.sent += posted.sent
            outcome.failed.update(posted.failed)
            outcome.refused += posted.refused
    return outcome


def _settle(items: list[SubscriberMessage], token: str, now: datetime, outcome: email.BatchOutcome) -> None:
    settle_batch(SubscriberMessage, token, outcome.sent, outcome.failed, now, settings.SUBSCRIPTIONS_MAX_ATTEMPTS)
    sent = set(outcome.sent)
    _count(outcome, {item.subscriber_id for item in items if item.pk in sent}, now)


def _count(outcome: email.BatchOutcome, delivered_to: set[int], now: datetime) -> None:
    if delivered_to:
        Subscriber.objects.filter(pk__in=delivered_to, consecutive_failures__gt=0).update(consecutive_failures=0)
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


def _claim_next(limit: int) -> tuple[str, datetime, list[SubscriberMessage]]:
    now = timezone.now()
    token, ids = claim_batch(due_messages(), now, limit)
    return token, now, claimed(ids, token) if ids else []


def _close_connections() -> None:
    connections.close_all()


def send_until(deadline: float, rendered_cache: dict | None = None) -> int:
    """Send batch after batch until nothing is due or time.monotonic() passes `deadline`; returns how
    many were claimed. A second thread claims and loads the next batch, and records the last one's
    outcome, while one is being sent, so that the database's work overlaps the mail server's (not
    inside a transaction, where a second connection would not see its rows: there it claims in
    turn, as send_due does). The thread runs its work in order: a batch is settled before the
    claim after next. Mail goes over SMTP connections kept open from batch to batch (`MailRound`)."""
    cache = {} if rendered_cache is None else rendered_cache
    limit, total = settings.SUBSCRIPTIONS_BATCH, 0
    if connection.in_atomic_block:
        while time.monotonic() < deadline:
            taken = send_due(rendered_cache=cache)
            total += taken
            if not taken:
                break
        return total
    with ThreadPoolExecutor(1, thread_name_prefix="subscriptions-claim") as pool, mail_sending.MailRound() as mail:
        try:
            token, now, items = _claim_next(limit)
            settling = None
            while items:
                total += len(items)
                upcoming = pool.submit(_claim_next, limit) if time.monotonic() < deadline else None
                outcome = _send(items, cache, mail)
                if settling is not None:
                    settling.result()  # raises what recording the previous batch raised
                settling = pool.submit(_settle, items, token, now, outcome)
                token, now, items = upcoming.result() if upcoming else ("", now, [])
            if settling is not None:
                settling.result()
        finally:
            pool.submit(_close_connections).result()
    return total


def send_all_due(now: datetime | None = None, max_batches: int = 1000) -> int:
    """Send batches until nothing is due (tests, commands, single-process runs)."""
    claimed, cache = 0, {}
    for _batch in range(max_batches):
        taken = send_due(now, rendered_cache=cache)
        claimed += taken
        if not taken:
            break
    return claimed
