"""Web Push subscribers: payloads encrypted to the browser's keys (aes128gcm) and signed with the site's VAPID key.

Posted through alerts' outbound HTTP, so a push endpoint on a private address is refused like a
webhook (unless its host is listed in WEBHOOK_ALLOWED_HOSTS).
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from functools import lru_cache
from urllib.parse import urlsplit

from cryptography.hazmat.primitives import serialization
from django.conf import settings
from django.core.exceptions import ValidationError
from django.utils import translation
from django.utils.translation import gettext as _
from py_vapid import Vapid, b64urlencode
from pywebpush import WebPusher, WebPushException

from alerts import outbound
from subscriptions.email import BatchOutcome
from subscriptions.messages import announcement_message
from subscriptions.models import Subscriber, SubscriberMessage

PARALLEL = 16
# A push service keeps an undelivered message this long (seconds) for an offline browser.
TTL = 24 * 3600
# The push service's way of saying the browser's subscription is gone for good.
GONE = {404, 410}


@lru_cache(maxsize=4)
def _vapid(private_key: str) -> Vapid:
    return Vapid.from_string(private_key=private_key)


def enabled() -> bool:
    return bool(settings.VAPID_PRIVATE_KEY)


def public_key() -> str:
    """The applicationServerKey browsers subscribe with (base64url of the uncompressed point)."""
    if not enabled():
        return ""
    key = _vapid(settings.VAPID_PRIVATE_KEY).public_key
    return b64urlencode(key.public_bytes(serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint))


def validate(subscription: object) -> tuple[str, dict]:
    """The endpoint and keys of a browser's PushSubscription (its toJSON()), or a ValidationError on `push`."""
    if not enabled():
        raise ValidationError({"push": _("Web Push is not available on this site.")})
    if not isinstance(subscription, dict) or not isinstance(subscription.get("keys"), dict):
        raise ValidationError({"push": _("Give the browser's push subscription: endpoint and keys.")})
    endpoint = subscription.get("endpoint")
    keys = {name: subscription["keys"].get(name) for name in ("p256dh", "auth")}
    try:
        outbound.validate_http_url(endpoint if isinstance(endpoint, str) else "", https_only=True)
    except ValidationError as exc:
        raise ValidationError({"push": exc.messages}) from None
    try:
        if not all(isinstance(v, str) for v in keys.values()):
            raise WebPushException("keys")
        WebPusher({"endpoint": endpoint, "keys": keys})
    except (WebPushException, ValueError, TypeError):
        raise ValidationError({"push": _("The subscription's keys are not valid.")}) from None
    return endpoint, keys


def payload(item: SubscriberMessage) -> bytes:
    """What the service worker shows: a title, a line, the page to open; in the subscriber's language."""
    language = item.subscriber.language
    message = announcement_message(item.announcement.kind, item.announcement.payload, language)
    with translation.override(language):
        document = {
            "title": message.title,
            "body": message.summary[:300],
            "url": message.url,
            "tag": item.announcement.key,
            "language": language,
        }
    return json.dumps(document, ensure_ascii=False).encode()


def request_headers(endpoint: str, body: bytes) -> dict[str, str]:
    parts = urlsplit(endpoint)
    claims = {
        "aud": f"{parts.scheme}://{parts.netloc}",
        "sub": settings.VAPID_SUBJECT,
        "exp": int(time.time()) + 12 * 3600,
    }
    return {
        **_vapid(settings.VAPID_PRIVATE_KEY).sign(claims),
        "Content-Encoding": "aes128gcm",
        "Content-Type": "application/octet-stream",
        "TTL": str(TTL),
        "Urgency": "high",
    }


def _post(item: SubscriberMessage) -> tuple[int, str | None, bool]:
    """(message id, error or None, whether the browser's subscription is gone)."""
    subscriber: Subscriber = item.subscriber
    info = {"endpoint": subscriber.push_endpoint, "keys": subscriber.push_keys}
    try:
        body = WebPusher(info).encode(payload(item), content_encoding="aes128gcm")["body"]
        outbound.post(
            subscriber.push_endpoint,
            body,
            request_headers(subscriber.push_endpoint, body),
            settings.ALERT_TIMEOUT_SECONDS,
        )
    except outbound.RequestFailed as exc:
        return item.pk, str(exc), exc.status_code in GONE
    except Exception as exc:  # one browser's surprise must not end the batch
        return item.pk, f"{type(exc).__name__}: {exc}", False
    return item.pk, None, False


def send_batch(items: Iterable[SubscriberMessage]) -> BatchOutcome:
    """Push each message; a subscription the push service calls gone is deleted, like an unsubscribe."""
    outcome = BatchOutcome()
    items = [item for item in items if item.announcement_id]
    by_id = {item.pk: item for item in items}
    gone: list[int] = []
    with ThreadPoolExecutor(max_workers=PARALLEL) as pool:
        for message_id, error, is_gone in pool.map(_post, items):
            if error is None:
                outcome.sent.append(message_id)
            elif is_gone:
                gone.append(by_id[message_id].subscriber_id)
            else:
                outcome.failed[message_id] = (by_id[message_id].attempts, error)
                outcome.refused.append(by_id[message_id].subscriber_id)
    if gone:
        Subscriber.objects.filter(pk__in=gone).delete()
    return outcome
