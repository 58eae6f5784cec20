"""How a moment reads in the active language: Django's localised date and time, with the time zone named."""

from __future__ import annotations

from datetime import datetime

from django.utils import formats, timezone


def format_moment(value: datetime | str | None) -> str:
    """One format per language (DATETIME_FORMAT of the active locale) in the site's time zone, named."""
    if not value:
        return ""
    moment = datetime.fromisoformat(value) if isinstance(value, str) else value
    local = timezone.localtime(moment) if timezone.is_aware(moment) else moment
    return f"{formats.date_format(local, 'DATETIME_FORMAT')} {local.tzname() or ''}".strip()
