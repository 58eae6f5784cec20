"""The OpenAPI schema for the endpoints that are not DRF views: the Statuspage JSON, the snapshot, SSE, badges, feed.

These views answer from the snapshot (or stream) without DRF. drf-spectacular documents only DRF
views, so each gets a documentation-only APIView describing it; its `get` is never routed.
"""

from __future__ import annotations

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.openapi import AutoSchema
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.views import APIView

JSON_OBJECT = serializers.DictField(help_text="See Atlassian Statuspage's API for the fields.")
JSON_LIST = serializers.ListField(child=serializers.DictField())


SLUG_PARAMETERS = {"provider", "model", "slug"}
SLUG_PATTERN = "^[-a-zA-Z0-9_]+$"


class AIStatusSchema(AutoSchema):
    """Operation ids stay unique where one view is routed by id and by `<provider>/<model>`."""

    def get_operation_id(self) -> str:
        operation_id = super().get_operation_id()
        return f"{operation_id}_by_slug" if "{provider}" in self.path and "{model}" in self.path else operation_id

    def _resolve_path_parameters(self, variables):
        # A provider's or model's name in a path is a slug (Django's `slug` converter): say so, so that clients
        # and the fuzzer see the form of the name, not any string.
        parameters = super()._resolve_path_parameters(variables)
        for parameter in parameters:
            if parameter["name"] in SLUG_PARAMETERS and parameter["schema"] == {"type": "string"}:
                parameter["schema"] = {"type": "string", "pattern": SLUG_PATTERN}
        return parameters

    def _get_response_bodies(self, direction="response"):
        responses = super()._get_response_bodies(direction)
        # Every throttled view may answer 429 (monitoring/api/throttling.py).
        if direction == "response" and getattr(self.view, "throttle_classes", None):
            responses.setdefault("429", THROTTLED)
        return responses


RETRY_AFTER = {"Retry-After": {"schema": {"type": "integer"}, "description": "Seconds to wait before trying again."}}
THROTTLED = {
    "description": "Too many requests from this client (API_THROTTLE_ANON, API_THROTTLE_TOKEN).",
    "headers": RETRY_AFTER,
    "content": {
        "application/json": {
            "schema": {"type": "object", "properties": {"detail": {"type": "string"}}, "required": ["detail"]}
        }
    },
}


def _statuspage(name: str, fields: dict[str, serializers.Field], summary: str):
    body = inline_serializer(name, {"page": JSON_OBJECT, **fields})
    return extend_schema(
        summary=summary,
        tags=["statuspage"],
        auth=[],
        responses={200: body, 304: OpenApiResponse(description="Not modified (If-None-Match)")},
    )


def _documented(view, documentation: type[APIView]) -> None:
    view.cls = documentation
    view.initkwargs = {}


def _view(name: str, decorator) -> type[APIView]:
    def get(self, request, *args, **kwargs):  # pragma: no cover - documentation only
        raise NotImplementedError

    # Not DRF views, so not throttled by DRF: no 429 unless the documentation names one.
    attributes = {"get": decorator(get), "authentication_classes": [], "permission_classes": [], "throttle_classes": []}
    return type(name, (APIView,), attributes)


def describe_read_side() -> None:
    """Attach the documentation to the read side's views (called once, from the URL conf)."""
    from publishing import api as snapshot_api
    from publishing.realtime import sse
    from statuspage import badges, feeds, statuspage_api

    statuspage_docs = {
        statuspage_api.summary: ("StatuspageSummary", {"components": JSON_LIST, "incidents": JSON_LIST,
                                 "scheduled_maintenances": JSON_LIST, "status": JSON_OBJECT}, "Summary"),
        statuspage_api.status: ("StatuspageStatus", {"status": JSON_OBJECT}, "Page status and indicator"),
        statuspage_api.components: ("StatuspageComponents", {"components": JSON_LIST}, "Components (models)"),
        statuspage_api.incidents: ("StatuspageIncidents", {"incidents": JSON_LIST}, "Recent incidents"),
        statuspage_api.unresolved_incidents: ("StatuspageUnresolved", {"incidents": JSON_LIST}, "Open incidents"),
        statuspage_api.scheduled_maintenances: (
            "StatuspageMaintenances", {"scheduled_maintenances": JSON_LIST}, "Maintenance windows"),
        statuspage_api.upcoming_maintenances: (
            "StatuspageUpcoming", {"scheduled_maintenances": JSON_LIST}, "Upcoming maintenance windows"),
        statuspage_api.active_maintenances: (
            "StatuspageActive", {"scheduled_maintenances": JSON_LIST}, "Maintenance windows in progress"),
    }  # fmt: skip
    for view, (name, fields, summary) in statuspage_docs.items():
        _documented(view, _view(f"{name}Docs", _statuspage(name, fields, summary)))

    snapshot = extend_schema(
        summary="The public status document (every page and API renders from it)",
        tags=["snapshot"],
        auth=[],
        responses={200: OpenApiTypes.OBJECT, 304: OpenApiResponse(description="Not modified (If-None-Match)")},
    )
    _documented(snapshot_api.snapshot_view, _view("SnapshotDocs", snapshot))

    events = extend_schema(
        summary="Live events as Server-Sent Events (resume with Last-Event-ID or ?last_seq=N)",
        tags=["live"],
        auth=[],
        responses={
            (200, "text/event-stream"): OpenApiTypes.STR,
            429: OpenApiResponse(
                inline_serializer("LiveConnectsRefused", {"error": serializers.CharField()}),
                description="Too many live connects from this address (WS_CONNECTS_PER_MINUTE); see Retry-After.",
            ),
        },
    )
    _documented(sse.events_view, _view("EventsDocs", events))

    svg = {(200, "image/svg+xml"): OpenApiTypes.STR, (404, "image/svg+xml"): OpenApiTypes.STR}
    for view, summary in [
        (badges.status_badge, "A model's status badge"),
        (badges.uptime_badge, "A model's 90-day uptime badge"),
        (badges.latency_badge, "A model's latency badge"),
    ]:
        decorator = extend_schema(summary=summary, tags=["badges"], auth=[], responses=svg)
        _documented(view, _view(f"{view.__name__.title().replace('_', '')}Docs", decorator))
    feed = extend_schema(
        summary="Incidents as an Atom feed",
        tags=["feeds"],
        auth=[],
        responses={(200, "application/atom+xml"): OpenApiTypes.STR},
    )
    _documented(feeds.incidents_atom, _view("IncidentFeedDocs", feed))


class CollectorTokenScheme(OpenApiAuthenticationExtension):
    """A remote collector's token on /api/v1/ingest/."""

    target_class = "collectors.api.ingest.CollectorTokenAuthentication"
    name = "collectorToken"

    def get_security_definition(self, auto_schema):
        return {
            "type": "http",
            "scheme": "bearer",
            "description": "A collector token (manage.py create_collector_token).",
        }


class AgentTokenScheme(OpenApiAuthenticationExtension):
    """A remote agent's token on /api/v1/agents/."""

    target_class = "collectors.api.agents.AgentTokenAuthentication"
    name = "agentToken"

    def get_security_definition(self, auto_schema):
        return {
            "type": "http",
            "scheme": "bearer",
            "description": "A remote agent's token (manage.py create_agent).",
        }
