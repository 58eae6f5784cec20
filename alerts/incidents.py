"""Incidents opened and resolved by the evidence: an outage opens one (one per provider at a time),
recovery moves it to monitoring, and recovery that holds resolves it.

Driven by the event log like the alerts (its own cursor), plus a periodic check of what has held.
Every step is an IncidentUpdate, so that the page, the feeds and subscribed channels see the same story.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta

from django.conf import settings
from django.utils import timezone, translation
from django.utils.translation import gettext as _

from alerts.cursor import locked_cursor
from alerts.messages import format_time, model_label
from alerts.planner import model_data
from alerts.rules import OUTAGE_STATUSES
from monitoring.durations import format_duration
from monitoring.models import AIModel, Incident, ModelStatus, StatusChange
from monitoring.status import Status, status_label

CURSOR = "incidents"
BATCH = 500
# Statuspage's impact for the worst status among the affected models.
IMPACT = {Status.PARTIAL_OUTAGE: Incident.Impact.MAJOR, Status.MAJOR_OUTAGE: Incident.Impact.CRITICAL}
IMPACT_ORDER = [Incident.Impact.NONE, Incident.Impact.MINOR, Incident.Impact.MAJOR, Incident.Impact.CRITICAL]


def resolve_after() -> timedelta:
    return timedelta(seconds=settings.INCIDENT_RESOLVE_AFTER_SECONDS)


def written(write: Callable[[], str], limit: int | None = None) -> tuple[str, dict[str, str]]:
    """A text in LANGUAGE_CODE (what is stored as the text), and in every page language beside it."""
    translations = {}
    for language in {code for code, _name in settings.LANGUAGES} | {settings.LANGUAGE_CODE}:
        with translation.override(language):
            translations[language] = write()[:limit]
    return translations[settings.LANGUAGE_CODE], translations


def automatic_title(provider_name: str, models: list[AIModel]) -> str:
    if len(models) == 1:
        return _("%(model)s is unavailable") % {"model": model_label(model_data(models[0]))}
    return _("%(provider)s: %(count)d models unavailable") % {"provider": provider_name, "count": len(models)}


def open_incident_of(model: AIModel) -> Incident | None:
    return (
        Incident.objects.filter(automatic=True, provider_id=model.provider_id)
        .exclude(state=Incident.State.RESOLVED)
        .order_by("-started_at")
        .first()
    )


def on_outage(change: StatusChange) -> Incident:
    """Open an incident for the model's provider, or add the model to the one already open."""
    model = change.model

    def facts() -> dict[str, str]:  # in the language active when called
        return {
            "model": model_label(model_data(model)),
            "status": status_label(change.to_status),
            "at": format_time(change.at),
            "reason": change.reason or "—",
        }

    incident = open_incident_of(model)
    impact = IMPACT[change.to_status]
    if incident is None:
        title, titles = written(lambda: automatic_title(model.provider.name, [model]), limit=200)
        incident = Incident.objects.create(
            title=title,
            title_translations=titles,
            state=Incident.State.INVESTIGATING,
            impact=impact,
            provider=model.provider,
            automatic=True,
            started_at=change.at,
        )
        incident.models_affected.add(model)
        body, bodies = written(
            lambda: _("%(model)s is in %(status)s since %(at)s (%(reason)s). We are investigating.") % facts()
        )
        incident.add_update(Incident.State.INVESTIGATING, body, at=change.at, translations=bodies)
        return incident
    affected = list(incident.models_affected.select_related("provider"))
    fields = ["updated_at"]
    if IMPACT_ORDER.index(impact) > IMPACT_ORDER.index(incident.impact):
        incident.impact = impact
        fields.append("impact")
    if model not in affected:
        # Keep an operator's own title; replace only the one written here.
        if incident.title == automatic_title(model.provider.name, affected)[:200]:
            incident.title, incident.title_translations = written(
                lambda: automatic_title(model.provider.name, [*affected, model]), limit=200
            )
            fields += ["title", "title_translations"]
        incident.models_affected.add(model)
        body, bodies = written(lambda: _("%(model)s is also affected: %(status)s since %(at)s (%(reason)s).") % facts())
    else:
        body, bodies = written(lambda: _("%(model)s is down again: %(status)s since %(at)s (%(reason)s).") % facts())
    incident.updated_at = timezone.now()
    incident.save(update_fields=fields)
    if incident.state == Incident.State.MONITORING or model not in affected:
        # Back from monitoring, or news: say so. A model escalating from partial to major is in the impact.
        state = Incident.State.INVESTIGATING if incident.state == Incident.State.MONITORING else incident.state
        incident.add_update(state, body, at=change.at, translations=bodies)
    return incident


def statuses_of(incident: Incident) -> list[tuple[str, datetime]]:
    """The affected models' current statuses, with the time each began."""
    return list(ModelStatus.objects.filter(model__in=incident.models_affected.all()).values_list("status", "since"))


def statuses_as_of(incident: Incident, change: StatusChange) -> list[tuple[str, datetime]]:
    """The affected models' statuses just after `change`: a late run judges each change in its own time."""
    found = []
    for model_id in incident.models_affected.values_list("pk", flat=True):
        last = (
            StatusChange.objects.filter(model_id=model_id, id__lte=change.pk)
            .order_by("-id")
            .values_list("to_status", "at")
            .first()
        )
        found.append(last or (Status.UNKNOWN, incident.started_at))
    return found


def on_operational(change: StatusChange) -> None:
    """When every model of an open automatic incident is operational again, the incident is monitored."""
    incidents = Incident.objects.filter(automatic=True, models_affected=change.model_id).exclude(
        state__in=[Incident.State.RESOLVED, Incident.State.MONITORING]
    )
    for incident in incidents:
        statuses = statuses_as_of(incident, change)
        if statuses and all(status == Status.OPERATIONAL for status, _since in statuses):
            recovered_at = max(since for _status, since in statuses)
            body, bodies = written(
                lambda at=recovered_at: (
                    _("Every affected model is operational again since %(at)s. We are monitoring.")
                    % {"at": format_time(at)}
                )
            )
            incident.add_update(Incident.State.MONITORING, body, at=recovered_at, translations=bodies)


def resolve_held(now: datetime) -> int:
    """Resolve automatic incidents whose models have all stayed operational for the hold time."""
    resolved = 0
    for incident in Incident.objects.filter(automatic=True, state=Incident.State.MONITORING):
        statuses = statuses_of(incident)
        if not statuses or any(status != Status.OPERATIONAL for status, _since in statuses):
            continue
        recovered_at = max(since for _status, since in statuses)
        if now - recovered_at < resolve_after():
            continue
        hold, lasted = (now - recovered_at).total_seconds(), (recovered_at - incident.started_at).total_seconds()
        body, bodies = written(
            lambda hold=hold, lasted=lasted: (
                _("Resolved: every affected model has been operational for %(hold)s. The incident lasted %(lasted)s.")
                % {"hold": format_duration(hold), "lasted": format_duration(lasted)}
            )
        )
        incident.add_update(Incident.State.RESOLVED, body, at=now, translations=bodies)
        resolved += 1
    return resolved


def update_incidents(now: datetime | None = None) -> dict:
    """Open, join, monitor and resolve automatic incidents from new status changes and the clock."""
    now = now or timezone.now()
    seen = 0
    # Automatic incidents are stored in the site's language, with every page language beside it.
    with translation.override(settings.LANGUAGE_CODE), locked_cursor(CURSOR, now) as cursor:
        if cursor is None:
            return {"changes": 0, "resolved": 0}
        while True:
            changes = cursor.next_batch(BATCH)
            for change in changes:
                if change.to_status in OUTAGE_STATUSES:
                    on_outage(change)
                elif change.to_status == Status.OPERATIONAL:
                    on_operational(change)
            seen += len(changes)
            if len(changes) < BATCH:
                break
        resolved = resolve_held(now)
    return {"changes": seen, "resolved": resolved}
