"""Signed links: a confirmation that expires and carries the requested choice, a lasting manage link."""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.core import signing

from subscriptions.models import Subscriber

CONFIRM_SALT = "subscriptions.confirm"
MANAGE_SALT = "subscriptions.manage"


class BadToken(Exception):
    """A link that was tampered with, has expired, or belongs to a subscription that no longer exists."""

    def __init__(self, expired: bool = False) -> None:
        super().__init__("expired" if expired else "invalid")
        self.expired = expired


def confirm_max_age() -> timedelta:
    return timedelta(hours=settings.SUBSCRIPTIONS_CONFIRM_HOURS)


def confirmation_token(subscriber: Subscriber, choice: dict) -> str:
    return signing.dumps({"s": subscriber.pk, "k": subscriber.key, "c": choice}, salt=CONFIRM_SALT, compress=True)


def manage_signer() -> signing.TimestampSigner:
    return signing.TimestampSigner(salt=MANAGE_SALT)


def manage_token(subscriber_id: int, key: str, signer: signing.TimestampSigner | None = None) -> str:
    # No expiry: an unsubscribe link must work however old the mail is (RFC 8058). What signing.dumps
    # makes; a batch passes one signer for all its copies.
    return (signer or manage_signer()).sign_object({"s": subscriber_id, "k": key})


def _subscriber(data: object) -> Subscriber:
    if not isinstance(data, dict) or not isinstance(data.get("s"), int):
        raise BadToken()
    subscriber = Subscriber.objects.filter(pk=data["s"]).first()
    if subscriber is None or subscriber.key != data.get("k"):
        raise BadToken()
    return subscriber


def read_confirmation(token: str) -> tuple[Subscriber, dict]:
    try:
        data = signing.loads(token, salt=CONFIRM_SALT, max_age=confirm_max_age())
    except signing.SignatureExpired:
        raise BadToken(expired=True) from None
    except signing.BadSignature:
        raise BadToken() from None
    choice = data.get("c") if isinstance(data, dict) else None
    if not isinstance(choice, dict):
        raise BadToken()
    return _subscriber(data), choice


def read_manage(token: str) -> Subscriber:
    try:
        data = signing.loads(token, salt=MANAGE_SALT)
    except signing.BadSignature:
        raise BadToken() from None
    return _subscriber(data)
