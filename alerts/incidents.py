"""Incidents opened and resolved by the evidence: an outage opens one (one per provider at a time),
recovery moves it to monitoring, and recovery that holds resolves it.

Driven by the event log like the alerts (its own cursor), plus a periodic check of what has held.
Every step is an IncidentUpdate, so that the page, the feeds and subscribed channels see the same story.
A flapping model keeps that story short: its repeated flips fold into one update, rewritten at each
flip ("flapping: down 5 times in 10 minutes"), and an incident resolved a moment ago is reopened
rather than a new one opened. A model hidden or disabled resolves the automatic incident it was
the last watched model of.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta

from django.conf import settings
from django.utils import timezone, translation
from django.utils.translation import gettext as _

from alerts.cursor import locked_cursor
from alerts.messages import model_label
from alerts.planner import model_data
from alerts.rules import OUTAGE_STATUSES
from monitoring.dates import format_moment
from monitoring.durations import format_duration
from monitoring.models import AIModel, Incident, IncidentUpdate, ModelStatus, StatusChange
from monitoring.status import Status, status_label

CURSOR = "incidents"
BATCH = 500
# Statuspage's impact for the worst status among the affected models.
IMPACT = {Status.PARTIAL_OUTAGE: Incident.Impact.MAJOR, Status.MAJOR_OUTAGE: Incident.Impact.CRITICAL}
IMPACT_ORDER = [Incident.Impact.NONE, Incident.Impact.MINOR, Incident.Impact.MAJOR, Incident.Impact.CRITICAL]
# The update that tells a model's flapping carries the model's id under this key beside its
# translations (which only ever hold language codes), so the next flip rewrites it.
FLAPPING_KEY = "flapping_model"


def evidence(reason: str) -> str:
    """The evidence part of a derived reason, without the English verdict before it and the final stop.

    "failing: HTTP 503: overloaded." reads "HTTP 503: overloaded": the verdict is the status, which
    the sentence already names in the reader's language.
    """
    text = (reason or "").strip()
    head, sep, rest = text.partition(": ")
    if sep and head.split(" ", 1)[0] in ("failing", "degraded", "awaiting", "probe"):
        text = rest
    return text.rstrip(" .") or "—"


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
            "status": status_label(change.to_status).lower(),
            "at": format_moment(change.at),
            "reason": evidence(change.reason),
        }

    incident = open_incident_of(model) or recently_resolved_incident_of(model, change.at)
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
            lambda: (
                _("%(model)s has been in %(status)s since %(at)s. Latest check: %(reason)s. We are investigating.")
                % facts()
            )
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
        body, bodies = written(
            lambda: _("%(model)s is also affected: in %(status)s since %(at)s. Latest check: %(reason)s.") % facts()
        )
    incident.save(update_fields=fields)
    if model in affected:
        if incident.state in (Incident.State.MONITORING, Incident.State.RESOLVED):
            # Down again after recovering: the flapping update tells it, rewritten at every flip.
            tell_flapping(incident, model, change)
        # Otherwise a model escalating from partial to major: that is in the impact.
        return incident
    state = Incident.State.INVESTIGATING if incident.state != Incident.State.IDENTIFIED else incident.state
    incident.add_update(state, body, at=change.at, translations=bodies)
    return incident


def recently_resolved_incident_of(model: AIModel, at: datetime) -> Incident | None:
    """An automatic incident of the model resolved within the flapping window: reopened, not opened anew."""
    return (
        Incident.objects.filter(
            automatic=True,
            provider_id=model.provider_id,
            models_affected=model,
            state=Incident.State.RESOLVED,
            resolved_at__gt=at - timedelta(minutes=settings.ALERT_FLAP_MINUTES),
        )
        .order_by("-resolved_at")
        .first()
    )


def flapping_update(incident: Incident) -> IncidentUpdate | None:
    """The incident's latest update when it is the one telling a model's flapping."""
    latest = incident.updates.order_by("-at", "-id").first()
    if latest is None or FLAPPING_KEY not in latest.body_translations:
        return None
    # An operator who edited it has the last word: the next flip writes a new update instead.
    return latest if latest.body_translations.get(settings.LANGUAGE_CODE) == latest.body else None


def tell_flapping(
    incident: Incident, model: AIModel, change: StatusChange, recovered_at: datetime | None = None
) -> None:
    """Write (or rewrite) the one update that tells how often `model` went down during the incident."""
    downs = (
        StatusChange.objects.filter(model=model, at__gte=incident.started_at, id__lte=change.pk)
        .filter(to_status__in=OUTAGE_STATUSES)
        .exclude(from_status__in=OUTAGE_STATUSES)
        .count()
    )
    # In whole minutes: "down 5 times in 10 min", not "in 9 min 58 s".
    minutes = max(1, round(((recovered_at or change.at) - incident.started_at).total_seconds() / 60))

    def write() -> str:
        facts = {"model": model_label(model_data(model)), "count": downs, "span": format_duration(minutes * 60)}
        if recovered_at is None:
            facts.update(
                status=status_label(change.to_status).lower(),
                at=format_moment(change.at),
                reason=evidence(change.reason),
            )
            return (
                _(
                    "%(model)s is flapping: down %(count)d times in %(span)s, now in %(status)s since %(at)s. "
                    "Latest check: %(reason)s. We are investigating."
                )
                % facts
            )
        facts["at"] = format_moment(recovered_at)
        return (
            _(
                "%(model)s is flapping: down %(count)d times in %(span)s, operational again since %(at)s. "
                "We are monitoring."
            )
            % facts
        )

    body, bodies = written(write)
    bodies[FLAPPING_KEY] = str(model.pk)
    state = Incident.State.MONITORING if recovered_at else Incident.State.INVESTIGATING
    at = recovered_at or change.at
    update = flapping_update(incident)
    if update is None or update.body_translations.get(FLAPPING_KEY) != str(model.pk):
        incident.add_update(state, body, at=at, translations=bodies)
        return
    update.state, update.body, update.body_translations, update.at = state, body, bodies, at
    update.save(update_fields=["state", "body", "body_translations", "at"])
    incident.follow_updates()


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
            flapping = flapping_update(incident)
            if flapping is not None:
                # The flapping story goes on in its own update rather than in one more.
                model = AIModel.objects.select_related("provider").get(pk=flapping.body_translations[FLAPPING_KEY])
                tell_flapping(incident, model, change, recovered_at=recovered_at)
                continue
            body, bodies = written(
                lambda at=recovered_at: (
                    _("Every affected model is operational again since %(at)s. We are monitoring.")
                    % {"at": format_moment(at)}
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


def resolve_unwatched(now: datetime) -> int:
    """Resolve open automatic incidents whose affected models are all hidden or disabled now.

    Nobody watches them any more: the public page no longer shows them, and no probe will tell of
    their recovery. Any path that hides a model counts (admin, bulk actions, the API, raw updates).
    """
    resolved = 0
    watched = AIModel.objects.filter(public=True, enabled=True)
    incidents = (
        Incident.objects.filter(automatic=True, models_affected__isnull=False)
        .exclude(state=Incident.State.RESOLVED)
        .exclude(models_affected__in=watched)
        .distinct()
    )
    for incident in incidents:
        body, bodies = written(lambda: _("Resolved: the affected models are no longer monitored here."))
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
        resolved = resolve_held(now) + resolve_unwatched(now)
    return {"changes": seen, "resolved": resolved}
