"""Inline SVG for the page, drawn server-side so it works without JavaScript: uptime bars and latency sparklines."""

from __future__ import annotations

from datetime import date, timedelta
from functools import lru_cache

from django.utils import formats, timezone
from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe
from django.utils.translation import get_language
from django.utils.translation import gettext as _

from monitoring.durations import format_duration as duration
from statuspage.formatting import milliseconds, percent

BAR_STEP = 4  # one day: a 3-unit bar and a 1-unit gap
BAR_HEIGHT = 28
SPARK_WIDTH = 96
SPARK_HEIGHT = 24


def day_kind(day: float | list | None) -> str:
    """The bar's colour: the worst thing that happened that day; no evidence is grey, never green."""
    if day is None:
        return "none"
    if isinstance(day, list):
        _uptime, major, partial, degraded = day
        if major:
            return "major"
        if partial:
            return "partial"
        if degraded:
            return "degraded"
    return "up"


def day_figures(day: float | list | None) -> str:
    """The day's figures as the tooltip shows them."""
    if day is None:
        return _("No data")
    if not isinstance(day, list):
        return _("%(uptime)s uptime") % {"uptime": percent(day)}
    uptime, major, partial, degraded = day
    parts = [_("%(uptime)s uptime") % {"uptime": percent(uptime)}]
    if major:
        parts.append(_("major outage %(duration)s") % {"duration": duration(major)})
    if partial:
        parts.append(_("partial outage %(duration)s") % {"duration": duration(partial)})
    if degraded:
        parts.append(_("degraded %(duration)s") % {"duration": duration(degraded)})
    return " · ".join(parts)


def _runs(days: tuple) -> list[tuple[int, int, float | tuple | None]]:
    """Consecutive equal days as (start, length, value): a quiet quarter is a few elements, not ninety."""
    runs: list[tuple[int, int, float | tuple | None]] = []
    for index, day in enumerate(days):
        if runs and runs[-1][2] == day:
            start, length, value = runs[-1]
            runs[-1] = (start, length + 1, value)
        else:
            runs.append((index, 1, day))
    return runs


def uptime_bars(uptime: dict, *, days: int = 90, css_class: str = "bars") -> SafeString:
    """One bar per day, oldest first. Hovering shows the day's figures (a <title>; with scripts, a tooltip)."""
    values = list(uptime.get("days") or [])
    values = [None] * (days - len(values)) + values[-days:]
    first_day = uptime.get("first_day") or (timezone.now().date() - timedelta(days=days - 1)).isoformat()
    frozen = tuple(tuple(v) if isinstance(v, list) else v for v in values)
    return _uptime_bars(get_language(), css_class, first_day, frozen, uptime.get("percent_90d"))


# Below this many days of evidence the empty days before it are not drawn as grey bars but left
# blank with "collecting since …": a new model has no history to show, not 89 days without data.
COLLECTING_LABEL_MIN_EMPTY_DAYS = 30


# Most models' bars are unchanged from one snapshot to the next (a status change touches one model's
# last day), so each drawing is kept per language and data; a render redraws only what changed.
@lru_cache(maxsize=4096)
def _uptime_bars(language: str, css_class: str, first_day: str, values: tuple, overall: float | None) -> SafeString:
    start_day = date.fromisoformat(first_day)
    first_known = next((index for index, value in enumerate(values) if value is not None), None)
    collecting = first_known is not None and first_known >= COLLECTING_LABEL_MIN_EMPTY_DAYS
    elements = []
    for start, length, value in _runs(values):
        value = list(value) if isinstance(value, tuple) else value
        begin = start_day + timedelta(days=start)
        if length == 1:
            when = begin.isoformat()
        else:
            when = f"{begin.isoformat()} – {(begin + timedelta(days=length - 1)).isoformat()}"
        kind = "before" if collecting and start < first_known else day_kind(value)
        figures = _("Not collected yet") if kind == "before" else day_figures(value)
        # x and width give the days a rectangle covers; the title gives their figures (charts.js reads both).
        elements.append(
            f'<rect class="bar-{kind}" x="{start * BAR_STEP}" width="{length * BAR_STEP - 1}" '
            f'height="{BAR_HEIGHT}"><title>{escape(when)}: {escape(figures)}</title></rect>'
        )
    label = _("Uptime over %(days)s days: %(uptime)s") % {
        "days": len(values),
        "uptime": percent(overall) if overall is not None else _("no data"),
    }
    svg = (
        f'<svg class="{css_class}" viewBox="0 0 {len(values) * BAR_STEP - 1} {BAR_HEIGHT}" preserveAspectRatio="none" '
        f'role="img" aria-label="{escape(label)}" tabindex="0" data-first-day="{first_day}">'
        f"{''.join(elements)}</svg>"
    )
    if not collecting:
        return mark_safe(svg)
    since = formats.date_format(start_day + timedelta(days=first_known), "DATE_FORMAT")
    note = _("Collecting since %(date)s") % {"date": since}
    # The note fills the blank days (as a share of the row, so it lines up at every width). charts.js
    # applies the share: the Content-Security-Policy allows no style attribute (publishing/security_headers).
    share = 100 * first_known / len(values)
    return mark_safe(
        f'<span class="bars-frame">{svg}<span class="collecting" data-share="{share:.2f}">{escape(note)}</span></span>'
    )


def latency_sparkline(
    latency: dict,
    *,
    css_class: str = "spark",
    last_hour: bool | None = None,
    expected: list[float] | None = None,
    anomalies: list[dict] = (),
) -> SafeString:
    """The median latency of each of the last 24 hours; a gap where an hour has no data.

    `last_hour` draws the last 60 minutes instead. By default a model whose snapshot carries its last
    hour (a new one, with only a few hours of figures) shows that: a line, not one stray dot.
    `expected` (low, high) is drawn as a band behind the line: the range the anomaly detector expects
    now; `anomalies` (with `started_at` and `ended_at`) shade the periods they cover.
    """
    hourly = tuple(latency.get("hourly_p50_ms") or [])
    minutely = tuple(latency.get("minutely_p50_ms") or [])
    if last_hour is None:
        last_hour = bool(minutely)
    values = minutely if last_hour else hourly
    periods = _periods(anomalies, last_hour) if anomalies else ()
    band = tuple(expected) if expected else None
    return _latency_sparkline(get_language(), css_class, values, last_hour, band, periods)


def _periods(anomalies: list[dict], last_hour: bool) -> tuple[tuple[float, float], ...]:
    """Anomaly periods as shares (0 to 1) of the chart's width, clipped to what it shows."""
    now = timezone.now()
    span = timedelta(hours=1) if last_hour else timedelta(hours=24)
    start = now - span
    out = []
    for anomaly in anomalies:
        begin = max(_parse(anomaly["started_at"]), start)
        end = min(_parse(anomaly["ended_at"]) if anomaly.get("ended_at") else now, now)
        if end >= start and begin <= now:
            out.append((round((begin - start) / span, 4), round(max(end - begin, span / 200) / span, 4)))
    return tuple(out)


def _parse(value):
    from statuspage.presentation import as_datetime

    return as_datetime(value)


@lru_cache(maxsize=4096)
def _latency_sparkline(
    language: str,
    css_class: str,
    values: tuple,
    last_hour: bool = False,
    band: tuple[float, float] | None = None,
    periods: tuple[tuple[float, float], ...] = (),
) -> SafeString:
    known = [v for v in values if v is not None]
    if last_hour:
        css_class += " spark-minutes"
    if not known:
        if last_hour:
            label = _("Median latency, last hour: no data")
        else:
            label = _("Median latency, last 24 hours: no data")
        return mark_safe(
            f'<svg class="{css_class} spark-empty" viewBox="0 0 {SPARK_WIDTH} {SPARK_HEIGHT}" '
            f'preserveAspectRatio="none" role="img" aria-label="{escape(label)}"><title>{escape(label)}</title>'
            f'<line x1="0" x2="{SPARK_WIDTH}" y1="{SPARK_HEIGHT - 1}" y2="{SPARK_HEIGHT - 1}"/></svg>'
        )
    top = max([*known, band[1] if band else 0.0]) or 1.0
    step = SPARK_WIDTH / max(len(values) - 1, 1)

    def point(index: int, value: float) -> str:
        return f"{index * step:.1f} {SPARK_HEIGHT - 1 - (SPARK_HEIGHT - 3) * value / top:.1f}"

    paths, dots, segment = [], [], []
    for index, value in enumerate([*values, None]):
        if value is not None:
            segment.append((index, value))
            continue
        if len(segment) == 1:
            # A lone hour: a round dot that stays round however the chart is stretched.
            dots.append(f"M{point(*segment[0])} h0.01")
        elif segment:
            paths.append("M" + " L".join(point(i, v) for i, v in segment))
        segment = []
    if last_hour:
        template = _("Median latency, last hour: %(low)s to %(high)s; latest %(latest)s")
    else:
        template = _("Median latency, last 24 hours: %(low)s to %(high)s; latest %(latest)s")
    label = template % {
        "low": milliseconds(min(known)),
        "high": milliseconds(max(known)),
        "latest": milliseconds(known[-1]),
    }
    # Behind the line: anomaly periods, then the expected band.
    path = "".join(
        f'<rect class="anomaly-period" x="{x * SPARK_WIDTH:.1f}" width="{w * SPARK_WIDTH:.1f}" y="0" '
        f'height="{SPARK_HEIGHT}"/>'
        for x, w in periods
    )
    if band:
        high = SPARK_HEIGHT - 1 - (SPARK_HEIGHT - 3) * band[1] / top
        low = SPARK_HEIGHT - 1 - (SPARK_HEIGHT - 3) * max(band[0], 0.0) / top
        title = _("Expected now: %(low)s to %(high)s") % {"low": milliseconds(band[0]), "high": milliseconds(band[1])}
        path += (
            f'<rect class="expected-band" x="0" width="{SPARK_WIDTH}" y="{high:.1f}" '
            f'height="{max(low - high, 0.5):.1f}"><title>{escape(title)}</title></rect>'
        )
    path += f'<path d="{" ".join(paths)}"/>' if paths else ""
    path += f'<path class="dots" d="{" ".join(dots)}"/>' if dots else ""
    return mark_safe(
        f'<svg class="{css_class}" viewBox="0 0 {SPARK_WIDTH} {SPARK_HEIGHT}" preserveAspectRatio="none" role="img" '
        f'aria-label="{escape(label)}"><title>{escape(label)}</title>{path}</svg>'
    )
