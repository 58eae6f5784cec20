"""The page's overall status now, from what each public model shows: for senders with no snapshot at hand."""

from __future__ import annotations

from datetime import datetime

from django.utils import timezone

from monitoring.models import AIModel
from monitoring.status import Status, page_indicator, page_status

# What `AIModel.shown_record` reads of the status row.
SHOWN_FIELDS = ("model_id", "status", "since", "message", "last_checked_at", "manual")


def current_page_status(now: datetime | None = None) -> dict:
    """Statuspage's `status` object (indicator, description, counts) as the page would show it now."""
    now = now or timezone.now()
    counts = dict.fromkeys(Status.values, 0)
    models = AIModel.objects.filter(public=True).select_related("status_row")
    for model in models.only("interval_seconds", *(f"status_row__{f}" for f in SHOWN_FIELDS)):
        counts[model.shown_record(now)[0]] += 1
    return page_status(page_indicator(counts), sum(counts.values()), counts[Status.UNKNOWN])
