"""Numbers as the page writes them, in the page's language (durations: monitoring.durations)."""

from __future__ import annotations

import re

from django.utils.translation import gettext as _


def percent(value: float | None) -> str:
    if value is None:
        return "—"
    # Two decimals show the difference between 99.9 % and 99.99 %; a perfect record reads 100 %.
    text = f"{value:.2f}".rstrip("0").rstrip(".")
    return f"{text}%"


def budget_left(value: float | None) -> str:
    """An error budget left (1 = untouched) as a whole percentage; "—" when unknown, and said when overspent."""
    if value is None:
        return "—"
    if value < 0:
        return _("overspent by %(percent)s%%") % {"percent": f"{-value * 100:.0f}"}
    return f"{value * 100:.0f}%"


def milliseconds(value: float | None) -> str:
    if value is None:
        return "—"
    if value >= 10000:
        return _("%(seconds)s s") % {"seconds": f"{value / 1000:.1f}"}
    return _("%(ms)s ms") % {"ms": f"{value:.0f}"}


# The verdicts status derivation writes (monitoring/derivation.py), in English in the database and
# the APIs; the page says them in its language. What follows a verdict is evidence (often the
# provider's own error message) and is shown as it came.
_VERDICTS = [
    (re.compile(r"answered in (?P<ms>\d+) ms"), lambda: _("answered in %(ms)s ms")),
    (re.compile(r"answered"), lambda: _("answered")),
    (
        re.compile(r"latency (?P<ms>\d+) ms over the (?P<limit>\d+) ms threshold"),
        lambda: _("latency %(ms)s ms over the %(limit)s ms threshold"),
    ),
    (
        re.compile(r"time to first token (?P<ms>\d+) ms over the (?P<limit>\d+) ms threshold"),
        lambda: _("time to first token %(ms)s ms over the %(limit)s ms threshold"),
    ),
    (re.compile(r"failing: (?P<evidence>.*)", re.S), lambda: _("failing: %(evidence)s")),
    (
        re.compile(r"failing in (?P<regions>.+?) of (?P<count>\d+) regions: (?P<evidence>.*)", re.S),
        lambda: _("failing in %(regions)s of %(count)s regions: %(evidence)s"),
    ),
    (re.compile(r"degraded: (?P<evidence>.*)", re.S), lambda: _("degraded: %(evidence)s")),
    (
        re.compile(r"degraded in (?P<regions>.+?) of (?P<count>\d+) regions: (?P<evidence>.*)", re.S),
        lambda: _("degraded in %(regions)s of %(count)s regions: %(evidence)s"),
    ),
    (re.compile(r"probe or account fault: (?P<evidence>.*)", re.S), lambda: _("probe or account fault: %(evidence)s")),
    (re.compile(r"awaiting confirmation: (?P<evidence>.*)", re.S), lambda: _("awaiting confirmation: %(evidence)s")),
    (re.compile(r"no fresh results"), lambda: _("no fresh results")),
    (re.compile(r"no result in the last (?P<seconds>\d+) s"), lambda: _("no result in the last %(seconds)s s")),
    (re.compile(r"scheduled maintenance"), lambda: _("scheduled maintenance")),
]


def reason(text: str) -> str:
    """A derived reason in the active language: its verdict translated, its evidence as it came."""
    for pattern, template in _VERDICTS:
        match = pattern.fullmatch(text or "")
        if match:
            parts = match.groupdict()
            if "evidence" in parts:
                parts["evidence"] = reason(parts["evidence"])  # "degraded: latency … over …"
            return template() % parts
    return text
