"""Incidents opened and resolved by the evidence: an outage opens one (one per provider at a time),
recovery moves it to monitoring, and recovery that holds resolves it.

Driven by the event log like the alerts (its own cursor), plus a periodic check of what has held.
Every step is an IncidentUpdate, so that the page, the feeds and subscribed channels see the same story.
A flapping model keeps that story short: its repeated flips fold into one update, rewritten at each
flip ("flapping: down 5 times in 10 minutes"), and an incident resolved a moment ago is reopened
rather than a new one opened. So does a whole provider going down: the models that join an incident
in one run fold into one "also affected" update ("40 more models are also affected since ..."). A
model hidden or disabled resolves the automatic incident it was the last watched model of.

A run walks its changes in id order with a Walk, which knows each model's status as of the change
at hand without a query per model: a provider's thousand models recovering cost a few queries, not
a thousand per change.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
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
# The folded "also affected" update names this many models, then says how many more.
JOINS_NAMED = 10


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


def automatic_title(provider_name: str, count: int, model: AIModel | None = None) -> str:
    """The title written for an automatic incident of `count` models: `model` names it when it is the only one."""
    if count == 1:
        return _("%(model)s is unavailable") % {"model": model_label(model_data(model))}
    return _("%(provider)s: %(count)d models unavailable") % {"provider": provider_name, "count": count}


def open_incident_of(model: AIModel) -> Incident | None:
    return (
        Incident.objects.filter(automatic=True, provider_id=model.provider_id)
        .exclude(state=Incident.State.RESOLVED)
        .order_by("-started_at")
        .first()
    )


def on_outage(change: StatusChange, walk: Walk) -> Incident:
    """Open an incident for the model's provider, or add the model to the one already open."""
    model = change.model
    walk.incidents_changed()
    incident = open_incident_of(model) or recently_resolved_incident_of(model, change.at)
    impact = IMPACT[change.to_status]
    if incident is None:
        title, titles = written(lambda: automatic_title(model.provider.name, 1, model), limit=200)
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
                % outage_facts(model, change)
            )
        )
        incident.add_update(Incident.State.INVESTIGATING, body, at=change.at, translations=bodies)
        return incident
    # The ids only: a provider's thousand models join one by one, and the title needs only their count.
    affected = list(incident.models_affected.values_list("pk", flat=True))
    fields = ["updated_at"]
    if IMPACT_ORDER.index(impact) > IMPACT_ORDER.index(incident.impact):
        incident.impact = impact
        fields.append("impact")
    if model.pk in affected:
        incident.save(update_fields=fields)
        if incident.state in (Incident.State.MONITORING, Incident.State.RESOLVED):
            # Down again after recovering: the flapping update tells it, rewritten at every flip.
            tell_flapping(incident, model, change)
        # Otherwise a model escalating from partial to major: that is in the impact.
        return incident
    # Keep an operator's own title; replace only the one written here (which names its only model).
    only = AIModel.objects.select_related("provider").get(pk=affected[0]) if len(affected) == 1 else None
    if incident.title == automatic_title(model.provider.name, len(affected), only)[:200]:
        incident.title, incident.title_translations = written(
            lambda: automatic_title(model.provider.name, len(affected) + 1), limit=200
        )
        fields += ["title", "title_translations"]
    incident.models_affected.add(model)
    incident.save(update_fields=fields)
    walk.tell_join(incident, model, change)
    return incident


def outage_facts(model: AIModel, change: StatusChange) -> dict[str, str]:
    """How a model went down, in the language active when called."""
    return {
        "model": model_label(model_data(model)),
        "status": status_label(change.to_status).lower(),
        "at": format_moment(change.at),
        "reason": evidence(change.reason),
    }


@dataclass
class Joins:
    """The models that joined an incident during one run, told by one update."""

    joined: list[tuple[AIModel, StatusChange]] = field(default_factory=list)
    update: IncidentUpdate | None = None

    def write(self) -> str:
        """The update's text, in the language active when called."""
        if len(self.joined) == 1:
            text = _("%(model)s is also affected: in %(status)s since %(at)s. Latest check: %(reason)s.")
            return text % outage_facts(*self.joined[0])
        labels = ", ".join(model_label(model_data(model)) for model, _change in self.joined[:JOINS_NAMED])
        if len(self.joined) > JOINS_NAMED:
            labels = _("%(models)s and %(count)d more") % {"models": labels, "count": len(self.joined) - JOINS_NAMED}
        return _("%(count)d more models are also affected since %(at)s: %(models)s.") % {
            "count": len(self.joined),
            "at": format_moment(self.joined[0][1].at),
            "models": labels,
        }


class Walk:
    """What one update_incidents run knows as it walks the new changes in id order.

    Each change is noted as the walk reaches it, so the affected models' statuses just after a change
    (a late run judges each change in its own time) come from memory: a model the run has not seen
    yet takes its latest change before the run, fetched for all such models in one query. The open
    incidents and their affected ids are loaded once, and again only after the run changed one.
    The models joining an incident in the run are told by one update, rewritten as more join: the
    run's updates commit with its cursor, so nobody can have handed that update out yet.
    """

    def __init__(self) -> None:
        self.first_id: int | None = None
        self.seen: dict[int, tuple[str, datetime]] = {}  # model id -> its latest change in the run
        self.before: dict[int, tuple[str, datetime] | None] = {}  # ... before the run (None: it has none)
        self.blockers: dict[int, int] = {}  # incident id -> the affected model last found not operational
        self.joins: dict[int, Joins] = {}  # incident id -> the update telling the models that joined it
        self._watched: list[tuple[Incident, dict[int, None]]] | None = None

    def note(self, change: StatusChange) -> None:
        if self.first_id is None:
            self.first_id = change.pk
        self.seen[change.model_id] = (change.to_status, change.at)

    def incidents_changed(self) -> None:
        """An incident was opened, joined or moved on: the next recovery loads the open ones afresh."""
        self._watched = None

    def recovering(self, model_id: int) -> list[tuple[Incident, dict[int, None]]]:
        """The open automatic incidents not monitored yet that the model is affected by, with their affected ids."""
        if self._watched is None:
            incidents = Incident.objects.filter(automatic=True).exclude(
                state__in=[Incident.State.RESOLVED, Incident.State.MONITORING]
            )
            affected: dict[int, dict[int, None]] = {}
            links = Incident.models_affected.through.objects.filter(incident__in=incidents).order_by("id")
            for incident_id, affected_id in links.values_list("incident_id", "aimodel_id"):
                affected.setdefault(incident_id, {})[affected_id] = None
            self._watched = [(incident, affected[incident.pk]) for incident in incidents if incident.pk in affected]
        return [(incident, ids) for incident, ids in self._watched if model_id in ids]

    def recovered_at(self, incident: Incident, model_ids: dict[int, None]) -> datetime | None:
        """When the last of the models became operational, as of the change just noted; None while one is not.

        A model without any change counts as unknown since the incident began.
        """
        blocker = self.blockers.get(incident.pk)
        # The model that held the incident open last time most likely still does: asked first.
        order = [blocker, *model_ids] if blocker in model_ids else list(model_ids)
        latest = None
        while order:
            missing = []
            for model_id in order:
                if model_id in self.seen:
                    status, since = self.seen[model_id]
                elif model_id in self.before:
                    status, since = self.before[model_id] or (Status.UNKNOWN, incident.started_at)
                else:
                    missing.append(model_id)
                    continue
                if status != Status.OPERATIONAL:
                    self.blockers[incident.pk] = model_id
                    return None
                latest = since if latest is None else max(latest, since)
            self.fetch_before(missing)
            order = missing
        return latest

    def fetch_before(self, model_ids: list[int]) -> None:
        """The models' latest changes before the run, in one query (DISTINCT ON, on the (model, -id) index)."""
        if not model_ids:
            return
        self.before.update(dict.fromkeys(model_ids))
        latest = (
            StatusChange.objects.filter(model_id__in=model_ids, id__lt=self.first_id)
            .order_by("model_id", "-id")
            .distinct("model_id")
            .values_list("model_id", "to_status", "at")
        )
        for model_id, status, at in latest:
            self.before[model_id] = (status, at)

    def tell_join(self, incident: Incident, model: AIModel, change: StatusChange) -> None:
        """Tell that the model joined the incident: in the update this run wrote for its joins, if still the latest."""
        joins = self.joins.get(incident.pk)
        latest = incident.updates.order_by("-at", "-id").values_list("pk", flat=True).first()
        if joins is not None and joins.update.pk == latest:
            joins.joined.append((model, change))
            update = joins.update
            update.body, update.body_translations = written(joins.write)
            update.save(update_fields=["body", "body_translations"])
            return
        joins = Joins(joined=[(model, change)])
        state = Incident.State.INVESTIGATING if incident.state != Incident.State.IDENTIFIED else incident.state
        body, bodies = written(joins.write)
        joins.update = incident.add_update(state, body, at=change.at, translations=bodies)
        self.joins[incident.pk] = joins


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


def on_operational(change: StatusChange, walk: Walk) -> None:
    """When every model of an open automatic incident is operational again, the incident is monitored."""
    for incident, model_ids in walk.recovering(change.model_id):
        recovered_at = walk.recovered_at(incident, model_ids)
        if recovered_at is None:
            continue
        walk.incidents_changed()
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
        walk = Walk()
        while True:
            changes = cursor.next_batch(BATCH)
            for change in changes:
                walk.note(change)
                if change.to_status in OUTAGE_STATUSES:
                    on_outage(change, walk)
                elif change.to_status == Status.OPERATIONAL:
                    on_operational(change, walk)
            seen += len(changes)
            if len(changes) < BATCH:
                break
        resolved = resolve_held(now) + resolve_unwatched(now)
    return {"changes": seen, "resolved": resolved}
