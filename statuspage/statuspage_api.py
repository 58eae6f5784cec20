"""Statuspage-compatible JSON (`/api/v2/...`): Statuspage's field names and enums, read from the snapshot alone.

Statuspage has no "unknown" component status, and its clients only know its five. A model without
evidence is therefore reported as `degraded_performance` (never `operational`) with `"unknown": true`
and a description saying so; the page's indicator is at least `minor` while any model is unknown
(or when there is none), and its description counts the models without evidence.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable

from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.http import HttpRequest, HttpResponse
from django.urls import reverse
from django.utils import translation
from django.utils.text import slugify
from django.views.decorators.http import require_safe

from monitoring.status import Status, page_status
from publishing.edge import served_from_snapshot
from publishing.snapshot import Snapshot
from publishing.snapshot_store import current_snapshot
from statuspage.responses import site_url, snapshot_response

UNKNOWN_AS = Status.DEGRADED_PERFORMANCE
UNKNOWN_DESCRIPTION = "Status unknown: no recent evidence."


def component_status(status: str) -> str:
    """Our status in Statuspage's enum: the same word, except that unknown is never operational."""
    return UNKNOWN_AS if status == Status.UNKNOWN else status


class Document:
    """The Statuspage objects of one snapshot, with absolute links for one site."""

    def __init__(self, snapshot: Snapshot, base_url: str) -> None:
        self.data = snapshot.data
        self.base_url = base_url
        self.page_id = slugify(self.data["page"]["site_name"]) or "status"
        self.provider_ids = {p["slug"]: p["id"] for p in self.data["providers"]}
        with translation.override(settings.LANGUAGE_CODE):
            self.pages_url = base_url + reverse("statuspage-index")
            self.history_url = base_url + reverse("statuspage-incidents")
        self.models = {m["slug"]: self._model_component(m, position) for position, m in enumerate(self.data["models"])}

    def page(self) -> dict:
        return {
            "id": self.page_id,
            "name": self.data["page"]["site_name"],
            "url": f"{self.base_url}/",
            "time_zone": "Etc/UTC",
            "updated_at": self.data["built_at"],
        }

    def status(self) -> dict:
        page = self.data["page"]
        return page_status(page["indicator"], page["model_count"], page["unknown_count"])

    def _model_component(self, model: dict, position: int) -> dict:
        unknown = model["status"] == Status.UNKNOWN
        description = model["description"] or None
        if unknown:
            description = f"{UNKNOWN_DESCRIPTION} {description}" if description else UNKNOWN_DESCRIPTION
        provider_id = self.provider_ids[model["provider"]]
        return {
            "id": f"m{model['id']}",
            "name": model["name"],
            "status": component_status(model["status"]),
            "created_at": model.get("created_at") or model["since"],
            "updated_at": model["since"],
            "position": position + 1,
            "description": description,
            "showcase": True,
            "start_date": None,
            "group_id": f"p{provider_id}",
            "page_id": self.page_id,
            "group": False,
            "only_show_if_degraded": False,
            "unknown": unknown,
        }

    def components(self) -> list[dict]:
        """Each provider as a component group followed by its models, as Statuspage lists groups."""
        out = []
        for position, provider in enumerate(self.data["providers"]):
            members = [c for c in self.models.values() if c["group_id"] == f"p{provider['id']}"]
            out.append(
                {
                    "id": f"p{provider['id']}",
                    "name": provider["name"],
                    "status": component_status(provider["status"]),
                    "created_at": provider.get("created_at") or self.data["built_at"],
                    "updated_at": self.data["built_at"],
                    "position": position + 1,
                    "description": None,
                    "showcase": False,
                    "start_date": None,
                    "group_id": None,
                    "page_id": self.page_id,
                    "group": True,
                    "only_show_if_degraded": False,
                    "components": [c["id"] for c in members],
                    "unknown": provider["status"] == Status.UNKNOWN,
                }
            )
            out.extend(members)
        return out

    def _affected(self, slugs: list[str]) -> list[dict]:
        return [self.models[slug] for slug in slugs if slug in self.models]

    def incident(self, incident: dict) -> dict:
        incident_id = f"i{incident['id']}"
        updates = incident["updates"]  # newest first
        affected = self._affected(incident["models"])
        monitoring_at = next((u["at"] for u in reversed(updates) if u["state"] == "monitoring"), None)
        return {
            "id": incident_id,
            "name": incident["title"],
            "status": incident["state"],
            "created_at": incident["started_at"],
            "updated_at": incident["updated_at"],
            "monitoring_at": monitoring_at,
            "resolved_at": incident["resolved_at"],
            "impact": incident["impact"],
            "shortlink": f"{self.history_url}#incident-{incident['id']}",
            "started_at": incident["started_at"],
            "page_id": self.page_id,
            "incident_updates": [
                {
                    # Updates have no public id of their own: numbered from the first one, so ids stay put.
                    "id": f"{incident_id}u{len(updates) - index}",
                    "status": update["state"],
                    "body": update["body"],
                    "incident_id": incident_id,
                    "created_at": update["at"],
                    "updated_at": update["at"],
                    "display_at": update["at"],
                    "affected_components": [
                        {"code": c["id"], "name": c["name"], "old_status": c["status"], "new_status": c["status"]}
                        for c in affected
                    ],
                    "deliver_notifications": True,
                    "custom_tweet": None,
                    "tweet_id": None,
                }
                for index, update in enumerate(updates)
            ],
            "components": affected,
        }

    def incidents(self, *, unresolved_only: bool = False) -> list[dict]:
        return [self.incident(i) for i in self.data["incidents"] if not unresolved_only or i["state"] != "resolved"]

    def maintenance(self, window: dict) -> dict:
        maintenance_id = f"sm{window['id']}"
        if window.get("recurring"):
            # Each repetition of a recurring window is its own Statuspage maintenance, told apart by its start.
            maintenance_id += "-" + re.sub(r"\D", "", str(window["starts_at"]))[:12]
        state = window.get("status") or ("in_progress" if window["active"] else "scheduled")
        return {
            "id": maintenance_id,
            "name": window["title"],
            "status": state,
            "created_at": window["starts_at"],
            "updated_at": window["starts_at"],
            "monitoring_at": None,
            "resolved_at": None,
            "impact": "maintenance",
            "shortlink": self.pages_url,
            "started_at": window["starts_at"],
            "page_id": self.page_id,
            "incident_updates": [
                {
                    "id": f"{maintenance_id}u1",
                    "status": state,
                    "body": window["description"] or window["title"],
                    "incident_id": maintenance_id,
                    "created_at": window["starts_at"],
                    "updated_at": window["starts_at"],
                    "display_at": window["starts_at"],
                    "affected_components": [],
                    "deliver_notifications": True,
                    "custom_tweet": None,
                    "tweet_id": None,
                }
            ],
            "components": self._affected(window["models"]),
            "scheduled_for": window["starts_at"],
            "scheduled_until": window["ends_at"],
        }

    def maintenances(self, *, active: bool | None = None) -> list[dict]:
        return [self.maintenance(w) for w in self.data["maintenances"] if active is None or w["active"] == active]


def _respond(request: HttpRequest, variant: str, build: Callable[[Document], dict]) -> HttpResponse:
    snapshot = current_snapshot()

    def render() -> bytes:
        document = Document(snapshot, site_url(request))
        body = {"page": document.page(), **build(document)}
        return json.dumps(body, cls=DjangoJSONEncoder, ensure_ascii=False, separators=(",", ":")).encode()

    return snapshot_response(
        request,
        snapshot,
        render,
        content_type="application/json",
        variant=variant,
        cors=True,
        content_language="en",
    )


@served_from_snapshot
@require_safe
def summary(request: HttpRequest) -> HttpResponse:
    return _respond(
        request,
        "summary",
        lambda d: {
            "components": d.components(),
            "incidents": d.incidents(unresolved_only=True),
            "scheduled_maintenances": d.maintenances(),
            "status": d.status(),
        },
    )


@served_from_snapshot
@require_safe
def status(request: HttpRequest) -> HttpResponse:
    return _respond(request, "status", lambda d: {"status": d.status()})


@served_from_snapshot
@require_safe
def components(request: HttpRequest) -> HttpResponse:
    return _respond(request, "components", lambda d: {"components": d.components()})


@served_from_snapshot
@require_safe
def incidents(request: HttpRequest) -> HttpResponse:
    return _respond(request, "incidents", lambda d: {"incidents": d.incidents()})


@served_from_snapshot
@require_safe
def unresolved_incidents(request: HttpRequest) -> HttpResponse:
    return _respond(request, "unresolved", lambda d: {"incidents": d.incidents(unresolved_only=True)})


@served_from_snapshot
@require_safe
def scheduled_maintenances(request: HttpRequest) -> HttpResponse:
    return _respond(request, "maintenances", lambda d: {"scheduled_maintenances": d.maintenances()})


@served_from_snapshot
@require_safe
def upcoming_maintenances(request: HttpRequest) -> HttpResponse:
    return _respond(
        request, "maintenances-upcoming", lambda d: {"scheduled_maintenances": d.maintenances(active=False)}
    )


@served_from_snapshot
@require_safe
def active_maintenances(request: HttpRequest) -> HttpResponse:
    return _respond(request, "maintenances-active", lambda d: {"scheduled_maintenances": d.maintenances(active=True)})
