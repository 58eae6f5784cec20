"""Sending notifications: claim with one conditional update, send, log the attempt, retry with backoff.

A notification is claimed by writing a token and a lease (claimed_by, claimed_until) where nobody
holds it; only the holder of the token may record the outcome. A redelivered task, or a worker
restarted mid-round, finds the notification sent or held by someone else and does nothing. A
worker that dies while sending loses its lease and the notification is sent again, with the same
message id, so that receivers can drop the duplicate.
"""

from __future__ import annotations

import logging
import time
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db.models import Exists, F, OuterRef, Q, QuerySet
from django.utils import timezone
from django.utils.translation import gettext as _

from alerts.messages import render
from alerts.models import Channel, DeliveryAttempt, Notification, Outbox
from alerts.transports import Delivered, DeliveryFailed, Envelope, transport_for

log = logging.getLogger(__name__)
MAX_LOGGED = 2000


@dataclass(frozen=True, slots=True)
class Outcome:
    notification_id: int
    ok: bool
    state: str
    error: str = ""
    status_code: int | None = None


def lease() -> timedelta:
    # Longer than any send can take, so that a lease runs out only when its worker is gone.
    return timedelta(seconds=3 * settings.ALERT_TIMEOUT_SECONDS + 30)


def backoff(attempts: int) -> timedelta:
    """The wait after the n-th failed attempt: base, 2×base, 4×base, ... up to the cap."""
    seconds = settings.ALERT_RETRY_BASE_SECONDS * 2 ** max(0, attempts - 1)
    return timedelta(seconds=min(seconds, settings.ALERT_RETRY_MAX_SECONDS))


def _unclaimed(now: datetime) -> Q:
    return Q(claimed_until__isnull=True) | Q(claimed_until__lt=now)


def claim(
    notification_id: int, now: datetime, token: str | None = None, *, outbox: type[Outbox] = Notification
) -> str | None:
    """Take a pending message for one send. Returns the token, or None when someone else holds it."""
    token = token or uuid.uuid4().hex
    taken = outbox.objects.filter(_unclaimed(now), pk=notification_id, state=Outbox.State.PENDING).update(
        claimed_by=token, claimed_until=now + lease()
    )
    return token if taken else None


def claim_batch(due: QuerySet, now: datetime, limit: int) -> tuple[str, list[int]]:
    """Claim up to `limit` due messages of an outbox under one token, with one conditional update.

    `due` narrows the outbox (a kind, an enabled receiver); what is pending, due and unheld is
    taken here. Rows another worker took between the look and the update are simply not ours.
    """
    token = uuid.uuid4().hex
    pending = due.filter(_unclaimed(now), state=Outbox.State.PENDING, next_attempt_at__lte=now)
    ids = list(pending.order_by("next_attempt_at", "id").values_list("id", flat=True)[:limit])
    if not ids:
        return token, []
    outbox = due.model
    outbox.objects.filter(_unclaimed(now), pk__in=ids, state=Outbox.State.PENDING).update(
        claimed_by=token, claimed_until=now + lease()
    )
    return token, sorted(outbox.objects.filter(pk__in=ids, claimed_by=token).values_list("id", flat=True))


def after_attempt(attempts: int, ok: bool, error: str, now: datetime, max_attempts: int) -> tuple[str, dict]:
    """The state and fields of a message after its n-th attempt: sent, retried later with backoff, or given up."""
    if ok:
        return Outbox.State.SENT, {"sent_at": now, "last_error": ""}
    if attempts >= max_attempts:
        return Outbox.State.FAILED, {"last_error": error}
    return Outbox.State.PENDING, {"last_error": error, "next_attempt_at": now + backoff(attempts)}


def settle_batch(
    outbox: type[Outbox],
    token: str,
    sent: list[int],
    failed: dict[int, tuple[int, str]],
    now: datetime,
    max_attempts: int,
) -> None:
    """Record a batch's outcomes under its claim token: the sent in one update, each failure with its backoff.

    `failed` maps a message id to (its attempts before this one, the error).
    """
    released = {"claimed_by": "", "claimed_until": None}
    if sent:
        outbox.objects.filter(pk__in=sent, claimed_by=token).update(
            state=Outbox.State.SENT, sent_at=now, last_error="", attempts=F("attempts") + 1, **released
        )
    for message_id, (attempts, error) in failed.items():
        state, fields = after_attempt(attempts + 1, False, error[:MAX_LOGGED], now, max_attempts)
        outbox.objects.filter(pk=message_id, claimed_by=token).update(
            state=state, attempts=attempts + 1, **fields, **released
        )


def due(now: datetime, limit: int) -> list[int]:
    # Messages about one model reach a channel in order: a recovery waits while the alert before it is
    # being retried. Other models and other channels are not held up.
    earlier = Notification.objects.filter(
        channel=OuterRef("channel"), model=OuterRef("model"), state=Notification.State.PENDING, id__lt=OuterRef("id")
    )
    return list(
        Notification.objects.filter(
            _unclaimed(now), state=Notification.State.PENDING, next_attempt_at__lte=now, channel__enabled=True
        )
        .filter(Q(model__isnull=True) | ~Exists(earlier))
        .order_by("next_attempt_at", "id")
        .values_list("id", flat=True)[:limit]
    )


def claim_due(now: datetime | None = None, limit: int = 200) -> list[tuple[int, str]]:
    """Claim what is due; each (id, token) is then sent by whoever holds the token."""
    now = now or timezone.now()
    claimed = []
    for notification_id in due(now, limit):
        token = claim(notification_id, now)
        if token:
            claimed.append((notification_id, token))
    return claimed


def envelope_of(notification: Notification) -> Envelope:
    language = notification.channel.language
    return Envelope(
        message_id=notification.message_id,
        kind=notification.kind,
        payload=notification.payload,
        message=render(notification.kind, notification.payload, language),
        language=language,
    )


def deliver(
    notification_id: int, token: str, now: datetime | None = None, *, even_if_disabled: bool = False
) -> Outcome | None:
    """Send a claimed notification once and record the outcome. None when the claim is no longer ours."""
    notification = (
        Notification.objects.select_related("channel")
        .filter(pk=notification_id, claimed_by=token, state=Notification.State.PENDING)
        .first()
    )
    if notification is None:
        return None
    channel = notification.channel
    if not channel.enabled and not even_if_disabled:
        reason = _("The channel is disabled.")
        Notification.objects.filter(pk=notification_id, claimed_by=token).update(
            state=Notification.State.CANCELLED, last_error=reason, claimed_by="", claimed_until=None
        )
        return Outcome(notification_id, False, Notification.State.CANCELLED, reason)
    started = time.monotonic()
    try:
        result: Delivered | DeliveryFailed = transport_for(channel.kind).send(channel, envelope_of(notification))
    except DeliveryFailed as exc:
        result = exc
    except Exception as exc:  # a bug or an unexpected library error must not leave the claim hanging
        log.exception("sending notification %s failed", notification_id)
        result = DeliveryFailed(f"{type(exc).__name__}: {exc}")
    duration_ms = (time.monotonic() - started) * 1000
    return _record(notification, token, result, duration_ms, now or timezone.now())


def _record(
    notification: Notification, token: str, result: Delivered | DeliveryFailed, duration_ms: float, now: datetime
) -> Outcome:
    ok = isinstance(result, Delivered)
    attempts = notification.attempts + 1
    error = "" if ok else str(result)[:MAX_LOGGED]
    DeliveryAttempt.objects.create(
        notification=notification,
        number=attempts,
        at=now,
        ok=ok,
        status_code=result.status_code,
        duration_ms=round(duration_ms, 1),
        error=error,
        response=result.response[:MAX_LOGGED],
    )
    # A test is tried once: the operator is waiting for the answer.
    max_attempts = 1 if notification.kind == Notification.Kind.TEST else settings.ALERT_MAX_ATTEMPTS
    state, fields = after_attempt(attempts, ok, error, now, max_attempts)
    Notification.objects.filter(pk=notification.pk, claimed_by=token).update(
        state=state, attempts=attempts, claimed_by="", claimed_until=None, **fields
    )
    if notification.kind != Notification.Kind.TEST:
        _count(notification.channel, ok, error, now)
    return Outcome(notification.pk, ok, state, error, result.status_code)


def _count(channel: Channel, ok: bool, error: str, now: datetime) -> None:
    """Consecutive failed attempts per channel; past the limit the channel is disabled and flagged."""
    if ok:
        Channel.objects.filter(pk=channel.pk, consecutive_failures__gt=0).update(consecutive_failures=0)
        return
    Channel.objects.filter(pk=channel.pk).update(consecutive_failures=F("consecutive_failures") + 1)
    failures = Channel.objects.filter(pk=channel.pk).values_list("consecutive_failures", flat=True).first() or 0
    limit = settings.ALERT_CHANNEL_DISABLE_AFTER
    if failures >= limit:
        reason = _("Disabled after %(n)d failed attempts in a row. Last error: %(error)s") % {
            "n": failures,
            "error": error[:500],
        }
        if channel.disable(reason, now):
            log.warning("alert channel %s (%s) disabled: %s", channel.pk, channel.name, reason)


def deliver_due(now: datetime | None = None, limit: int = 200) -> list[Outcome]:
    """Claim and send what is due, here and now, one after another (tests and single-process runs)."""
    now = now or timezone.now()
    outcomes: list[Outcome] = []
    # Several passes: a message held behind an earlier one about the same model becomes due once that is sent.
    for _pass in range(10):
        claimed = claim_due(now, limit)
        for notification_id, token in claimed:
            outcome = deliver(notification_id, token, now)
            if outcome is not None:
                outcomes.append(outcome)
        if not claimed:
            break
    return outcomes


def send_test(channel: Channel, now: datetime | None = None) -> Outcome:
    """Send a test message to a channel at once and say how it went."""
    now = now or timezone.now()
    notification = Notification.objects.create(
        channel=channel,
        kind=Notification.Kind.TEST,
        payload={"channel": channel.name, "at": now.isoformat()},
        dedupe_key=f"test:{uuid.uuid4().hex}",
        next_attempt_at=now,
        created_at=now,
    )
    token = claim(notification.pk, now)
    # A disabled channel can be tested too: that is how an operator checks a fix before enabling it.
    return deliver(notification.pk, token, now, even_if_disabled=True)
