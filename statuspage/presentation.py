"""What the page says about a snapshot: status labels, the overall banner, models grouped by provider."""

from __future__ import annotations

from datetime import datetime

from django.utils.dateparse import parse_datetime
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from monitoring.status import SEVERITY, Status, status_label

# Worst first, the order counts are listed in.
STATUS_ORDER = sorted(Status.values, key=lambda s: -SEVERITY[s])

# The banner's tone per Statuspage indicator; `up` (green) only when every model is known to be operational.
INDICATOR_TONES = {
    "minor": "degraded_performance",
    "major": "partial_outage",
    "critical": "major_outage",
    "maintenance": "under_maintenance",
}


def as_datetime(value: str | datetime | None) -> datetime | None:
    """The snapshot's data carries ISO strings (it is parsed from the JSON body)."""
    if value is None or isinstance(value, datetime):
        return value
    return parse_datetime(value)


def headline(indicator: str, model_count: int, unknown_count: int) -> str:
    if model_count == 0:
        return _("No models are monitored yet")
    if indicator == "none":
        if unknown_count == 0:
            return _("All systems operational")
        if unknown_count == model_count:
            return _("No recent evidence for any model")
        return _("No known issues")
    return {
        "minor": _("Partially degraded service"),
        "major": _("Partial outage"),
        "critical": _("Major outage"),
        "maintenance": _("Under maintenance"),
    }[indicator]


def unknown_sentence(unknown_count: int, model_count: int) -> str:
    return ngettext(
        "%(n)s of %(m)s models has no recent evidence; it is shown as “—”.",
        "%(n)s of %(m)s models have no recent evidence; they are shown as “—”.",
        unknown_count,
    ) % {"n": unknown_count, "m": model_count}


def banner(page: dict) -> dict:
    """The overall banner. Never "all operational" while any model is unknown or when there is none."""
    model_count, unknown_count = page["model_count"], page["unknown_count"]
    indicator = page["indicator"]
    if indicator == "none":
        tone = "operational" if model_count and not unknown_count else "unknown"
    else:
        tone = INDICATOR_TONES[indicator]
    return {
        "tone": tone,
        "indicator": indicator,
        "headline": headline(indicator, model_count, unknown_count),
        "unknown_sentence": unknown_sentence(unknown_count, model_count) if unknown_count else "",
        "counts": [
            {"status": status, "label": status_label(status), "count": page["counts"].get(status, 0)}
            for status in STATUS_ORDER
        ],
    }


def provider_groups(data: dict) -> list[dict]:
    """Providers in page order, each with its models (already in page order in the snapshot)."""
    groups = {p["slug"]: {**p, "models": []} for p in data["providers"]}
    for model in data["models"]:
        groups[model["provider"]]["models"].append(model)
    return list(groups.values())


def localized_incident(incident: dict, language: str) -> dict:
    """A snapshot's incident with its automatic texts in the reader's language."""
    return {
        **incident,
        "title": incident.get("titles", {}).get(language) or incident["title"],
        "updates": [{**u, "body": u.get("bodies", {}).get(language) or u["body"]} for u in incident["updates"]],
    }


def incidents_key(data: dict) -> str:
    """What the page shows of incidents and maintenance, as live.js computes it from a snapshot to see a change."""
    incidents = [f"i{i['id']}:{i['state']}:{i['updated_at']}" for i in data["incidents"] if i["state"] != "resolved"]
    windows = [f"m{w['id']}:{w['starts_at']}:{1 if w['active'] else 0}" for w in data["maintenances"]]
    return ";".join([*incidents, *windows])


def client_strings() -> dict:
    """The texts live updates need, in the page's language (the script itself carries none)."""
    placeholders = {"n": "{n}", "m": "{m}"}

    def plural(singular: str, plural_: str) -> list[str]:
        return [ngettext(singular, plural_, count) % placeholders for count in (1, 2)]

    return {
        "status": {status: status_label(status) for status in Status.values},
        "headline": {
            "empty": _("No models are monitored yet"),
            "none": _("All systems operational"),
            "none_all_unknown": _("No recent evidence for any model"),
            "none_some_unknown": _("No known issues"),
            "minor": _("Partially degraded service"),
            "major": _("Partial outage"),
            "critical": _("Major outage"),
            "maintenance": _("Under maintenance"),
        },
        "unknown_sentence": plural(
            "%(n)s of %(m)s models has no recent evidence; it is shown as “—”.",
            "%(n)s of %(m)s models have no recent evidence; they are shown as “—”.",
        ),
        "connection": {
            "live": _("Live"),
            "polling": _("Live · checked every 10 s"),
            "reconnecting": _("Reconnecting…"),
            "stale": _("Last updated {ago}"),
        },
        "changed": _("{model}: {from} → {to}"),
    }
