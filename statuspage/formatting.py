"""Numbers and durations as the page writes them, in the page's language."""

from __future__ import annotations

from django.utils.translation import gettext as _


def percent(value: float | None) -> str:
    if value is None:
        return "—"
    # Two decimals show the difference between 99.9 % and 99.99 %; a perfect record reads 100 %.
    text = f"{value:.2f}".rstrip("0").rstrip(".")
    return f"{text}%"


def milliseconds(value: float | None) -> str:
    if value is None:
        return "—"
    if value >= 10000:
        return _("%(seconds)s s") % {"seconds": f"{value / 1000:.1f}"}
    return _("%(ms)s ms") % {"ms": f"{value:.0f}"}


def duration(seconds: float) -> str:
    seconds = int(round(seconds))
    if seconds < 60:
        return _("%(s)s s") % {"s": seconds}
    minutes = seconds // 60
    if minutes < 60:
        return _("%(m)s min") % {"m": minutes}
    hours, minutes = divmod(minutes, 60)
    if not minutes:
        return _("%(h)s h") % {"h": hours}
    return _("%(h)s h %(m)s min") % {"h": hours, "m": minutes}
