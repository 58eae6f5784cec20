"""How a duration reads in the active language: the one formatter of pages, incidents and messages."""

from __future__ import annotations

from django.utils.translation import gettext as _


def format_duration(seconds: float) -> str:
    """The two largest units, the way a person says it: "45 s", "5 min", "1 h 5 min", "2 d 3 h"."""
    seconds = max(0, int(round(seconds)))
    units = [
        (86400, _("%(n)d d")),
        (3600, _("%(n)d h")),
        (60, _("%(n)d min")),
        (1, _("%(n)d s")),
    ]
    parts = []
    for size, pattern in units:
        if seconds >= size or (size == 1 and not parts):
            parts.append(pattern % {"n": seconds // size})
            seconds %= size
        elif parts:
            break  # "1 h 5 s" reads oddly: the second unit is the next one down or none
        if len(parts) == 2:
            break
    return " ".join(parts)
