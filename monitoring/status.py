"""The status vocabulary (Atlassian Statuspage's, plus `unknown`) and what may be shown without evidence."""

from __future__ import annotations

from datetime import datetime, timedelta

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _


class Status(models.TextChoices):
    UNKNOWN = "unknown", _("Unknown")
    OPERATIONAL = "operational", _("Operational")
    DEGRADED_PERFORMANCE = "degraded_performance", _("Degraded performance")
    PARTIAL_OUTAGE = "partial_outage", _("Partial outage")
    MAJOR_OUTAGE = "major_outage", _("Major outage")
    UNDER_MAINTENANCE = "under_maintenance", _("Under maintenance")


# Worst first: used to combine statuses (regions, providers, the page indicator).
SEVERITY = {
    Status.MAJOR_OUTAGE: 5,
    Status.PARTIAL_OUTAGE: 4,
    Status.DEGRADED_PERFORMANCE: 3,
    Status.UNDER_MAINTENANCE: 2,
    Status.UNKNOWN: 1,
    Status.OPERATIONAL: 0,
}


def worst_known(statuses) -> str:
    """A group's status (a provider's): the worst of its members with evidence; all unknown is unknown."""
    known = [status for status in statuses if status != Status.UNKNOWN]
    return max(known, key=SEVERITY.__getitem__) if known else Status.UNKNOWN


def page_indicator(counts: dict[str, int]) -> str:
    """Statuspage's indicator from the known statuses; unknown models are counted apart, never as up."""
    known = sum(n for status, n in counts.items() if status != Status.UNKNOWN)
    major = counts.get(Status.MAJOR_OUTAGE, 0)
    if major and 2 * major >= known:
        return "critical"
    if major:
        return "major"
    if counts.get(Status.PARTIAL_OUTAGE) or counts.get(Status.DEGRADED_PERFORMANCE):
        return "minor"
    if counts.get(Status.UNDER_MAINTENANCE):
        return "maintenance"
    return "none"


# Statuspage's own words for its indicators: its clients read them as they are, so they stay in English.
INDICATOR_DESCRIPTIONS = {
    "none": "All Systems Operational",
    "minor": "Minor Service Outage",
    "major": "Partial System Outage",
    "critical": "Major Service Outage",
    "maintenance": "Service Under Maintenance",
}


def page_status(indicator: str, model_count: int, unknown_count: int) -> dict:
    """Statuspage's `status` object; `none` ("All Systems Operational") only when every model is known to be up."""
    if model_count == 0:
        return {"indicator": "minor", "description": "No models are monitored", "unknown_count": 0, "model_count": 0}
    if indicator == "none" and unknown_count:
        indicator = "minor"
        description = f"Status unknown for {unknown_count} of {model_count} models"
    else:
        description = INDICATOR_DESCRIPTIONS[indicator]
        if unknown_count:
            description += f"; status unknown for {unknown_count} of {model_count} models"
    return {
        "indicator": indicator,
        "description": description,
        "unknown_count": unknown_count,
        "model_count": model_count,
    }


def label_of(choices: type[models.TextChoices], value: str) -> str:
    """A value's label from its TextChoices, in the active language; a value outside the choices as it is.

    The one way pages, badges, feeds and messages name a status, an incident state or an impact.
    """
    return str(choices(value).label) if value in choices.values else value


def status_label(status: str) -> str:
    return label_of(Status, status)


def stale_after(interval_seconds: int) -> timedelta:
    return timedelta(seconds=interval_seconds * settings.STALE_AFTER_INTERVALS)


def displayed_status(
    status: str,
    *,
    last_checked_at: datetime | None,
    interval_seconds: int,
    manual: bool,
    now: datetime,
) -> str:
    """The status a reader may be shown: evidence older than the staleness window is no evidence.

    Applied on every read for display, so the page says `unknown` even when every collector
    (and the periodic sweep with them) is dead. A manual status is an operator's statement and
    is shown as set.
    """
    if manual or status in (Status.UNKNOWN, Status.UNDER_MAINTENANCE):
        return status
    if last_checked_at is None or now - last_checked_at > stale_after(interval_seconds):
        return Status.UNKNOWN
    return status


def shown_until(
    status: str, *, last_checked_at: datetime | None, interval_seconds: int, manual: bool
) -> datetime | None:
    """The moment displayed_status() turns this record `unknown` with no write: when its evidence goes stale.

    None when time alone never changes what is shown (a manual status, unknown, maintenance, no evidence).
    """
    if manual or status in (Status.UNKNOWN, Status.UNDER_MAINTENANCE) or last_checked_at is None:
        return None
    return last_checked_at + stale_after(interval_seconds)


def shown_record(
    status: str,
    since: datetime,
    message: str,
    *,
    last_checked_at: datetime | None,
    interval_seconds: int,
    manual: bool,
    now: datetime,
) -> tuple[str, datetime, str]:
    """The status a reader is shown, since when and why: stale evidence reads `unknown` since it went stale."""
    shown = displayed_status(
        status, last_checked_at=last_checked_at, interval_seconds=interval_seconds, manual=manual, now=now
    )
    if shown == status:
        return shown, since, message
    window = stale_after(interval_seconds)
    return shown, (last_checked_at or since) + window, f"no result in the last {int(window.total_seconds())} s"
