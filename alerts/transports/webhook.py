"""Generic webhooks, signed per the Standard Webhooks specification (webhook-id, -timestamp, -signature)."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import secrets
import time
from urllib.parse import urlsplit

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.serializers.json import DjangoJSONEncoder
from django.utils.translation import gettext as _

from alerts import outbound
from alerts.transports import Delivered, DeliveryFailed, Envelope, InvalidDestination

SECRET_PREFIX = "whsec_"
# The event types receivers switch on.
EVENT_TYPES = {
    "alert": "model.alert",
    "recovery": "model.recovery",
    "reminder": "model.reminder",
    "flapping": "model.flapping",
    "settled": "model.settled",
    "incident": "incident.updated",
    "anomaly": "model.anomaly",
    "burn_rate": "model.burn_rate",
    "test": "channel.test",
}


class InvalidSecret(ValueError):
    pass


def new_secret() -> str:
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(32)).decode()


def check_secret(secret: str) -> bytes:
    """The key bytes of a `whsec_<base64>` secret (24 to 64 bytes, as the specification suggests)."""
    if not secret.startswith(SECRET_PREFIX):
        raise InvalidSecret(_("A signing secret looks like whsec_ followed by base64; leave it empty to get one."))
    try:
        key = base64.b64decode(secret[len(SECRET_PREFIX) :], validate=True)
    except (binascii.Error, ValueError):
        raise InvalidSecret(_("The part after whsec_ is not valid base64.")) from None
    if not 24 <= len(key) <= 64:
        raise InvalidSecret(_("The secret must decode to 24 to 64 bytes."))
    return key


def sign(secret: str, message_id: str, timestamp: int, body: str) -> str:
    """The webhook-signature header value: v1,<base64 HMAC-SHA256 of "id.timestamp.body">."""
    digest = hmac.new(check_secret(secret), f"{message_id}.{timestamp}.{body}".encode(), hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def validate(url: str) -> None:
    try:
        outbound.validate_http_url(url)
    except ValidationError as exc:
        raise InvalidDestination(exc.messages[0]) from None


def mask(url: str) -> str:
    # A query string may carry a token; the rest of the URL is what an operator recognises.
    parts = urlsplit(url)
    return url if not parts.query else url.split("?", 1)[0] + "?…"


def body(envelope: Envelope) -> str:
    message = envelope.message
    document = {
        "type": EVENT_TYPES[envelope.kind],
        "timestamp": envelope.payload.get("at") or envelope.payload.get("sent_at"),
        "data": {
            **envelope.payload,
            "language": envelope.language,
            "url": message.url,
            "message": {"title": message.title, "summary": message.summary, "text": message.as_text()},
        },
    }
    return json.dumps(document, cls=DjangoJSONEncoder, ensure_ascii=False, separators=(",", ":"))


def send(channel, envelope: Envelope) -> Delivered:
    text = body(envelope)
    # The timestamp is the moment of this attempt: receivers refuse signatures older than a few minutes.
    timestamp = int(time.time())
    headers = {
        "Content-Type": "application/json",
        "User-Agent": "ai-status-alerts",
        "webhook-id": envelope.message_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": sign(channel.secret, envelope.message_id, timestamp, text),
    }
    try:
        answer = outbound.post(channel.url, text.encode(), headers, settings.ALERT_TIMEOUT_SECONDS)
    except outbound.UnsafeDestination as exc:
        raise DeliveryFailed(str(exc)) from None
    except outbound.RequestFailed as exc:
        raise DeliveryFailed(str(exc), status_code=exc.status_code, response=exc.body) from None
    return Delivered(answer.status_code, answer.body)
