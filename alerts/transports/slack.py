"""Slack incoming webhooks, with Block Kit messages (header, summary with fields, context, a link button)."""

from __future__ import annotations

import json
from urllib.parse import urlsplit

from django.conf import settings
from django.core.exceptions import ValidationError

from alerts import outbound
from alerts.messages import Message
from alerts.transports import Delivered, DeliveryFailed, Envelope, InvalidDestination

# Block Kit limits: header text 150 characters, section text 3,000, a field 2,000, at most 10 fields.
HEADER_MAX, TEXT_MAX, FIELD_MAX, FIELDS_MAX = 150, 3000, 2000, 10
TONE_EMOJI = {"bad": ":red_circle:", "warning": ":large_orange_circle:", "good": ":large_green_circle:"}


def validate(url: str) -> None:
    try:
        outbound.validate_http_url(url, https_only=True)
    except ValidationError as exc:
        raise InvalidDestination(exc.messages[0]) from None


def mask(url: str) -> str:
    # The path of an incoming webhook is its credential.
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}/…" if parts.netloc else "…"


def _escape(text: str) -> str:
    # Slack's mrkdwn reads &, < and > as markup.
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def blocks(message: Message) -> list[dict]:
    emoji = TONE_EMOJI.get(message.tone)
    summary = f"{emoji} {_escape(message.summary)}" if emoji else _escape(message.summary)
    section: dict = {"type": "section", "text": {"type": "mrkdwn", "text": _cut(summary, TEXT_MAX)}}
    fields = [
        {"type": "mrkdwn", "text": _cut(f"*{_escape(label)}*\n{_escape(value)}", FIELD_MAX)}
        for label, value in message.facts[:FIELDS_MAX]
        if value
    ]
    if fields:
        section["fields"] = fields
    out = [
        {"type": "header", "text": {"type": "plain_text", "text": _cut(message.title, HEADER_MAX), "emoji": True}},
        section,
    ]
    if message.url:
        out.append(
            {
                "type": "actions",
                "elements": [
                    {
                        "type": "button",
                        "text": {"type": "plain_text", "text": _cut(message.link_text, 75), "emoji": True},
                        "url": message.url,
                        "action_id": "open_status_page",
                    }
                ],
            }
        )
    if message.footer:
        out.append({"type": "context", "elements": [{"type": "mrkdwn", "text": _cut(_escape(message.footer), 3000)}]})
    return out


def payload(envelope: Envelope) -> dict:
    message = envelope.message
    # `text` is the fallback shown in notifications and by clients without Block Kit.
    return {"text": f"{message.title}: {message.summary}", "blocks": blocks(message)}


def send(channel, envelope: Envelope) -> Delivered:
    body = json.dumps(payload(envelope), ensure_ascii=False).encode()
    headers = {"Content-Type": "application/json; charset=utf-8", "User-Agent": "ai-status-alerts"}
    try:
        answer = outbound.post(channel.url, body, headers, settings.ALERT_TIMEOUT_SECONDS)
    except outbound.UnsafeDestination as exc:
        raise DeliveryFailed(str(exc)) from None
    except outbound.RequestFailed as exc:
        raise DeliveryFailed(str(exc), status_code=exc.status_code, response=exc.body) from None
    return Delivered(answer.status_code, answer.body)
