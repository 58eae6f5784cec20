"""Announces committed status changes on Redis, so every web process's hub hears of them at once.

Connected to `monitoring.signals.statuses_changed`. Subscribers that miss a message (Redis away, a
restart) read the change from the event log instead: Redis only makes delivery faster.
"""

from __future__ import annotations

import logging

from django.conf import settings

from anomalies.events import anomaly_event
from monitoring.events import encode, status_change_event
from monitoring.models import StatusChange

log = logging.getLogger(__name__)

_publisher = None


def channel() -> str:
    """The pub/sub channel of this site's events.

    Redis shares pub/sub channels across its database numbers, so the name carries the number: two sites
    (or two test runs) on one Redis server with their own databases never hear each other's events.
    """
    from urllib.parse import urlparse

    database = urlparse(settings.REDIS_URL).path.strip("/") or "0"
    return f"aistatus:events:{database}"


def _redis():
    global _publisher
    if _publisher is None:
        import redis

        _publisher = redis.Redis.from_url(settings.REDIS_URL, socket_connect_timeout=0.5, socket_timeout=0.5)
    return _publisher


def publish_changes(sender, changes: list[StatusChange], **kwargs) -> None:
    """Publish each public model's change; private models' changes never leave the database."""
    if not settings.REDIS_URL:
        return
    for change in changes:
        if not change.model.public:
            continue
        try:
            _redis().publish(channel(), encode(status_change_event(change, change.model)))
        except Exception as exc:  # Redis away: subscribers fall back to the event log
            log.debug("event %s not published: %s", change.pk, exc)
            return


def publish_anomalies(sender, events: list, **kwargs) -> None:
    """Publish each public model's anomaly events; a hub that misses one reads it from the anomalies' log."""
    if not settings.REDIS_URL:
        return
    for event in events:
        model = event.anomaly.model
        if not model.public:
            continue
        try:
            _redis().publish(channel(), encode(anomaly_event(event, model.public_slug, model.pk)))
        except Exception as exc:  # Redis away: subscribers fall back to the anomalies' log
            log.debug("anomaly event %s not published: %s", event.pk, exc)
            return
