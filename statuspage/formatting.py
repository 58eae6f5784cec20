"""Numbers as the page writes them, in the page's language (durations: monitoring.durations)."""

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
