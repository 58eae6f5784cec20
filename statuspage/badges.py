"""Shields-like SVG badges for a model: its status, its 90-day uptime and its 24-hour median latency."""

from __future__ import annotations

from collections.abc import Callable

from django.http import HttpRequest, HttpResponse
from django.utils import translation
from django.utils.html import escape
from django.views.decorators.http import require_safe

from monitoring.status import Status, status_label
from publishing.edge import served_from_snapshot
from publishing.snapshot_store import current_snapshot
from statuspage.responses import snapshot_response

SVG = "image/svg+xml; charset=utf-8"
GREY = "#9f9f9f"
LABEL_GREY = "#555"

STATUS_COLOURS = {
    Status.OPERATIONAL: "#4c1",
    Status.DEGRADED_PERFORMANCE: "#dfb317",
    Status.PARTIAL_OUTAGE: "#fe7d37",
    Status.MAJOR_OUTAGE: "#e05d44",
    Status.UNDER_MAINTENANCE: "#007ec6",
    # Without evidence: grey and saying so, never green.
    Status.UNKNOWN: GREY,
}

# Approximate advance widths of Verdana at 11 px, which badges are set in; other characters count as wide.
_NARROW = set("iljI.,:;|!'` ")
_SEMI = set('frt()[]{}/\\-"*')
_WIDE = set("mwMW%@")
_CAPITALS = set("ABCDEFGHJKLNOPQRSTUVXYZ&#")


def text_width(text: str) -> float:
    width = 0.0
    for char in text:
        if char in _NARROW:
            width += 3.6
        elif char in _SEMI:
            width += 4.6
        elif char in _WIDE:
            width += 10.7
        elif char in _CAPITALS:
            width += 7.6
        elif char.isascii():
            width += 6.6
        else:
            width += 11.0
    return width


def render_badge(label: str, message: str, colour: str) -> str:
    """A flat two-part badge: grey label, coloured message, each with a faint text shadow."""
    left = round(text_width(label) + 12)
    right = round(text_width(message) + 12)
    total = left + right
    title = escape(f"{label}: {message}")
    label, message = escape(label), escape(message)
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{total}" height="20" role="img" aria-label="{title}">'
        f"<title>{title}</title>"
        '<linearGradient id="shine" x2="0" y2="100%"><stop offset="0" stop-color="#bbb" stop-opacity=".1"/>'
        '<stop offset="1" stop-opacity=".1"/></linearGradient>'
        f'<clipPath id="round"><rect width="{total}" height="20" rx="3" fill="#fff"/></clipPath>'
        f'<g clip-path="url(#round)"><rect width="{left}" height="20" fill="{LABEL_GREY}"/>'
        f'<rect x="{left}" width="{right}" height="20" fill="{colour}"/>'
        f'<rect width="{total}" height="20" fill="url(#shine)"/></g>'
        '<g fill="#fff" text-anchor="middle" font-family="Verdana,Geneva,DejaVu Sans,sans-serif" font-size="11">'
        f'<text x="{left / 2:.1f}" y="15" fill="#010101" fill-opacity=".3">{label}</text>'
        f'<text x="{left / 2:.1f}" y="14">{label}</text>'
        f'<text x="{left + right / 2:.1f}" y="15" fill="#010101" fill-opacity=".3">{message}</text>'
        f'<text x="{left + right / 2:.1f}" y="14">{message}</text></g></svg>'
    )


def uptime_colour(percent: float) -> str:
    if percent >= 99.9:
        return "#4c1"
    if percent >= 99:
        return "#97ca00"
    if percent >= 95:
        return "#dfb317"
    if percent >= 90:
        return "#fe7d37"
    return "#e05d44"


def _status(model: dict) -> tuple[str, str, str]:
    # Badges are embedded anywhere and speak English, the status vocabulary's own words in lower case.
    with translation.override("en"):
        message = status_label(model["status"]).lower()
    return model["name"], message, STATUS_COLOURS[model["status"]]


def _uptime(model: dict) -> tuple[str, str, str]:
    value = model["uptime"]["percent_90d"]
    if value is None:
        return "uptime 90d", "no data", GREY
    return "uptime 90d", f"{value:.2f}".rstrip("0").rstrip(".") + "%", uptime_colour(value)


def _latency(model: dict) -> tuple[str, str, str]:
    value = model["latency"]["p50_ms"]
    if value is None:
        return "latency p50 24h", "no data", GREY
    # Latency alone says nothing good or bad without the model's threshold: a neutral colour.
    return "latency p50 24h", f"{value:.0f} ms", "#007ec6"


def _badge(request: HttpRequest, provider: str, model: str, kind: str, figures: Callable) -> HttpResponse:
    snapshot = current_snapshot()
    slug = f"{provider}/{model}"
    item = next((m for m in snapshot.data["models"] if m["slug"] == slug), None)
    if item is None:
        # Still an image, so an embed shows what went wrong rather than a broken picture; its size does
        # not depend on what was asked for (a long name would make a huge image).
        response = HttpResponse(render_badge("badge", "not found", GREY), content_type=SVG, status=404)
        response["Cache-Control"] = "no-cache"
        return response
    return snapshot_response(
        request,
        snapshot,
        lambda: render_badge(*figures(item)),
        content_type=SVG,
        variant=kind,
        cors=True,
        content_language="en",
    )


@served_from_snapshot
@require_safe
def status_badge(request: HttpRequest, provider: str, model: str) -> HttpResponse:
    return _badge(request, provider, model, "status", _status)


@served_from_snapshot
@require_safe
def uptime_badge(request: HttpRequest, provider: str, model: str) -> HttpResponse:
    return _badge(request, provider, model, "uptime", _uptime)


@served_from_snapshot
@require_safe
def latency_badge(request: HttpRequest, provider: str, model: str) -> HttpResponse:
    return _badge(request, provider, model, "latency", _latency)
