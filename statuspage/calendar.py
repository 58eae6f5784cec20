"""The maintenance calendar (`/feeds/maintenance.ics`): every window of the next 30 days as an iCalendar event."""

from __future__ import annotations

from datetime import UTC, datetime

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.urls import reverse
from django.utils import translation
from django.views.decorators.http import require_safe

from publishing.snapshot_store import current_snapshot
from statuspage.presentation import as_datetime
from statuspage.responses import site_url


def _text(value: str) -> str:
    """RFC 5545 TEXT: backslash, semicolon, comma and newlines escaped."""
    return (
        value.replace("\\", "\\\\").replace(";", "\\;").replace(",", "\\,").replace("\r\n", "\\n").replace("\n", "\\n")
    )


def _fold(line: str) -> str:
    """Lines longer than 75 octets continue on the next, after a space (RFC 5545, 3.1)."""
    raw = line.encode()
    if len(raw) <= 75:
        return line
    parts, current = [], b""
    for char in line:
        encoded = char.encode()
        if len(current) + len(encoded) > (75 if not parts else 74):
            parts.append(current.decode())
            current = b""
        current += encoded
    parts.append(current.decode())
    return "\r\n ".join(parts)


def _stamp(value) -> str:
    return as_datetime(value).astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")


def maintenance_calendar(snapshot, base_url: str, provider: str | None = None, model: str | None = None) -> bytes:
    data = snapshot.data
    host = base_url.split("://", 1)[-1].split("/", 1)[0] or "localhost"
    now = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    with translation.override(settings.LANGUAGE_CODE):
        page = base_url + reverse("statuspage-index")
    lines = [
        "BEGIN:VCALENDAR",
        "VERSION:2.0",
        f"PRODID:-//{_text(data['page']['site_name'])}//maintenance//EN",
        "CALSCALE:GREGORIAN",
        "METHOD:PUBLISH",
        f"X-WR-CALNAME:{_text(data['page']['site_name'])}",
    ]
    for window in data["maintenances"]:
        if model and model not in window["models"]:
            continue
        if (
            provider
            and window["provider"] != provider
            and not any(m.startswith(f"{provider}/") for m in window["models"])
        ):
            continue
        affected = ", ".join(window["models"]) or window["provider"] or ""
        description = "\n".join(part for part in (window["description"], affected) if part)
        lines += [
            "BEGIN:VEVENT",
            f"UID:maintenance-{window['id']}-{_stamp(window['starts_at'])}@{host}",
            f"DTSTAMP:{now}",
            f"DTSTART:{_stamp(window['starts_at'])}",
            f"DTEND:{_stamp(window['ends_at'])}",
            f"SUMMARY:{_text(window['title'])}",
            f"DESCRIPTION:{_text(description)}",
            f"URL:{page}",
            "END:VEVENT",
        ]
    lines.append("END:VCALENDAR")
    return ("\r\n".join(_fold(line) for line in lines) + "\r\n").encode()


@require_safe
def maintenance_ics(request: HttpRequest) -> HttpResponse:
    """All windows, or one provider's (`?provider=openai`) or one model's (`?model=openai/gpt-4o`)."""
    body = maintenance_calendar(
        current_snapshot(), site_url(request), request.GET.get("provider") or None, request.GET.get("model") or None
    )
    response = HttpResponse(body, content_type="text/calendar; charset=utf-8")
    response["Access-Control-Allow-Origin"] = "*"
    return response
