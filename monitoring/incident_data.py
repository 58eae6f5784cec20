"""One incident as data: the one serialisation the page, the APIs, feeds and messages share."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django.db.models import Exists, OuterRef, Prefetch, QuerySet

from monitoring.models import AIModel, Incident, IncidentUpdate


def public_incidents(incidents: QuerySet[Incident]) -> QuerySet[Incident]:
    """The incidents public readers may see: those naming a public model, or no model at all.

    An incident shows publicly only the public models it affects; one left with none (its models
    hidden since) leaves the public page and JSON and stays in the admin. An operator's incident
    about a provider or the whole site names no model and is shown as written.
    """
    affected = Incident.models_affected.through.objects.filter(incident_id=OuterRef("pk"))
    return incidents.filter(~Exists(affected) | Exists(affected.filter(aimodel__public=True)))


def with_models_and_updates(incidents: QuerySet[Incident]) -> QuerySet[Incident]:
    """What incident_data reads, fetched in three queries for any number of incidents."""
    return incidents.select_related("provider").prefetch_related(
        Prefetch("models_affected", queryset=AIModel.objects.select_related("provider")),
        Prefetch("updates", queryset=IncidentUpdate.objects.order_by("-at", "-id")),
    )


def incident_data(
    incident: Incident, updates: Iterable[IncidentUpdate] | None = None, *, include_private: bool = False
) -> dict[str, Any]:
    """The incident with its updates (all of them, newest first, unless given).

    `title` and `body` are as stored (in LANGUAGE_CODE); `titles` and `bodies` carry them in every
    page language, which differ only for automatic texts an operator has not edited. Private models
    are named only when asked (operators' channels); the public never sees them.
    """
    models = incident.models_affected.all()
    return {
        "id": incident.pk,
        "title": incident.title,
        "titles": incident.titles(),
        "state": incident.state,
        "impact": incident.impact,
        "provider": incident.provider.slug if incident.provider else None,
        "models": sorted(m.public_slug for m in models if include_private or m.public),
        "automatic": incident.automatic,
        "started_at": incident.started_at,
        "resolved_at": incident.resolved_at,
        "updated_at": incident.updated_at,
        "updates": [
            {"id": u.pk, "state": u.state, "body": u.body, "bodies": u.bodies(), "at": u.at}
            for u in (incident.updates.all() if updates is None else updates)
        ],
    }
