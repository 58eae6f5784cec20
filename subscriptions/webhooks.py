"""Webhook subscribers: a challenge first, Statuspage's subscriber payloads, Standard Webhooks signatures.

Payloads follow Atlassian Statuspage's subscriber webhooks: `meta` (the unsubscribe link), `page`,
and `incident` (incident updates; maintenance reads as an incident with impact "maintenance") or
`component_update` with `component` (status flips). Sending and signing reuse alerts' outbound
HTTP (private addresses refused unless listed in WEBHOOK_ALLOWED_HOSTS) and its signer.
"""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from functools import partial

from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.utils.translation import gettext as _

from alerts import outbound
from alerts.messages import page_url, site_url
from alerts.transports.webhook import new_secret, sign
from monitoring.page import current_page_status
from subscriptions.email import BatchOutcome
from subscriptions.messages import link
from subscriptions.models import Subscriber, SubscriberMessage
from subscriptions.tokens import manage_token

# Webhooks of one batch are posted this many at a time.
PARALLEL = 16


class ChallengeFailed(Exception):
    """The endpoint did not echo the challenge; the message says what it answered."""


def headers(secret: str, message_id: str, body: str) -> dict[str, str]:
    timestamp = int(time.time())
    return {
        "Content-Type": "application/json",
        "User-Agent": "ai-status-subscriptions",
        "webhook-id": message_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": sign(secret, message_id, timestamp, body),
    }


def dumps(document: dict) -> str:
    return json.dumps(document, cls=DjangoJSONEncoder, ensure_ascii=False, separators=(",", ":"))


def challenge(url: str, follows: dict) -> str:
    """Hand a new secret to the endpoint with a challenge it must echo; returns the secret once it has."""
    secret, word = new_secret(), secrets.token_urlsafe(24)
    message_id = f"challenge_{secrets.token_hex(12)}"
    body = dumps({"type": "subscription.challenge", "challenge": word, "secret": secret, "follows": follows})
    try:
        answer = outbound.post(url, body.encode(), headers(secret, message_id, body), settings.ALERT_TIMEOUT_SECONDS)
    except (outbound.UnsafeDestination, outbound.RequestFailed) as exc:
        raise ChallengeFailed(str(exc)) from None
    try:
        echoed = json.loads(answer.body).get("challenge")
    except (ValueError, AttributeError):
        echoed = answer.body.strip()
    if echoed != word:
        raise ChallengeFailed(_("The endpoint answered without echoing the challenge."))
    return secret


def page_object() -> dict:
    """Statuspage's `page` object: the site, and its overall status when the batch is sent."""
    status = current_page_status()
    return {
        "id": settings.SITE_NAME,
        "name": settings.SITE_NAME,
        "url": site_url(),
        "status_indicator": status["indicator"],
        "status_description": status["description"],
    }


def _incident(payload: dict) -> dict:
    incident, update = payload["incident"], payload["incident"]["update"]
    return {
        "id": str(incident["id"]),
        "name": incident["title"],
        "status": incident["state"],
        "impact": incident["impact"],
        "created_at": incident["started_at"],
        "updated_at": incident["updated_at"],
        "resolved_at": incident["resolved_at"],
        "shortlink": page_url(settings.LANGUAGE_CODE),
        "components": [{"id": slug, "name": slug} for slug in incident["models"]],
        "incident_updates": [
            {
                "id": str(update["id"]),
                "incident_id": str(incident["id"]),
                "status": update["state"],
                "body": update["body"],
                "created_at": update["at"],
                "display_at": update["at"],
                "updated_at": update["at"],
            }
        ],
    }


MAINTENANCE_STATUS = {"scheduled": "scheduled", "started": "in_progress", "ended": "completed"}


def _maintenance(payload: dict) -> dict:
    window = payload["maintenance"]
    return {
        "id": f"maintenance-{window['id']}",
        "name": window["title"],
        "status": MAINTENANCE_STATUS[payload["phase"]],
        "impact": "maintenance",
        "scheduled_for": window["starts_at"],
        "scheduled_until": window["ends_at"],
        "created_at": payload["at"],
        "updated_at": payload["at"],
        "shortlink": page_url(settings.LANGUAGE_CODE),
        "incident_updates": [
            {
                "status": MAINTENANCE_STATUS[payload["phase"]],
                "body": window.get("description") or window["title"],
                "created_at": payload["at"],
                "display_at": payload["at"],
            }
        ],
    }


def document(kind: str, payload: dict, unsubscribe_url: str, page: dict) -> dict:
    """The Statuspage-shaped body of an announcement."""
    meta = {"unsubscribe": unsubscribe_url, "documentation": site_url() + "/api/schema/"}
    if kind == "status":
        model = payload["model"]
        return {
            "meta": meta,
            "page": page,
            "component_update": {
                "id": str(payload["change_id"]),
                "component_id": model["public_slug"],
                "old_status": payload["from_status"],
                "new_status": payload["to_status"],
                "created_at": payload["at"],
            },
            "component": {"id": model["public_slug"], "name": f"{model['provider_name']} {model['name']}"},
        }
    incident = _maintenance(payload) if kind == "maintenance" else _incident(payload)
    return {"meta": meta, "page": page, "incident": incident}


def _post(item: SubscriberMessage, page: dict) -> tuple[int, str | None]:
    subscriber: Subscriber = item.subscriber
    token = manage_token(subscriber.pk, subscriber.key)
    unsubscribe_url = link("subscriptions-unsubscribe", subscriber.language, token)
    body = dumps(document(item.announcement.kind, item.announcement.payload, unsubscribe_url, page))
    try:
        outbound.post(
            subscriber.webhook_url,
            body.encode(),
            headers(subscriber.secret, item.message_id, body),
            settings.ALERT_TIMEOUT_SECONDS,
        )
    except (outbound.UnsafeDestination, outbound.RequestFailed) as exc:
        return item.pk, str(exc)
    except Exception as exc:  # one endpoint's surprise must not end the batch
        return item.pk, f"{type(exc).__name__}: {exc}"
    return item.pk, None


def send_batch(items: Iterable[SubscriberMessage]) -> BatchOutcome:
    """Post each message, several at a time; every failure counts against its endpoint."""
    outcome = BatchOutcome()
    items = [item for item in items if item.announcement_id]
    by_id = {item.pk: item for item in items}
    page = page_object() if items else {}
    with ThreadPoolExecutor(max_workers=PARALLEL) as pool:
        for message_id, error in pool.map(partial(_post, page=page), items):
            if error is None:
                outcome.sent.append(message_id)
            else:
                outcome.failed[message_id] = (by_id[message_id].attempts, error)
                outcome.refused.append(by_id[message_id].subscriber_id)
    return outcome
