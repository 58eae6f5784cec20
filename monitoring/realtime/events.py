"""The one event schema, the same on WebSocket and SSE; and publishing status changes once they are committed."""

from __future__ import annotations

import json
import logging
from typing import Any

from django.conf import settings
from django.db import transaction

from monitoring.models import AIModel, StatusChange

log = logging.getLogger(__name__)

CHANNEL = "aistatus:events"
_publisher = None


def status_change_event(change: StatusChange, model: AIModel) -> dict[str, Any]:
    return {
        "type": "status_change",
        "seq": change.pk,
        "model": model.public_slug,
        "model_id": change.model_id,
        "from": change.from_status,
        "to": change.to_status,
        "at": change.at.isoformat().replace("+00:00", "Z"),
        "reason": change.reason,
        "manual": change.manual,
    }


WIRE = "_wire"


def encode(event: dict[str, Any]) -> str:
    """The event's JSON text. Broadcast events carry it precomputed: encoded once, sent to thousands."""
    wire = event.get(WIRE)
    if wire is None:
        wire = json.dumps({k: v for k, v in event.items() if k != WIRE}, ensure_ascii=False, separators=(",", ":"))
    return wire


def _redis():
    global _publisher
    if _publisher is None:
        import redis

        _publisher = redis.Redis.from_url(settings.REDIS_URL, socket_connect_timeout=0.5, socket_timeout=0.5)
    return _publisher


def publish_after_commit(change: StatusChange, model: AIModel) -> None:
    """Announce a public model's change on Redis once it is committed; the database log stays the source.

    Subscribers that miss it (Redis away, a restart) read it from the event log instead.
    """
    if not settings.REDIS_URL or not model.public:
        return
    message = encode(status_change_event(change, model))

    def send() -> None:
        try:
            _redis().publish(CHANNEL, message)
        except Exception as exc:  # Redis away: subscribers fall back to the event log
            log.debug("event %s not published: %s", change.pk, exc)

    transaction.on_commit(send)
