"""GET /api/v1/models/ and a model's detail for anonymous readers, rendered from the snapshot.

The same documents as the registry's API (monitoring.api) gives an anonymous reader, with its
filters and pages, but built from the snapshot alone: the ASGI edge keeps the bytes by version.
Requests carrying credentials (a token or a session) and every write go to the registry's API,
which reads the database.
"""

from __future__ import annotations

import hashlib

import orjson
from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.urls import path
from django.views.decorators.csrf import csrf_exempt
from rest_framework.exceptions import NotFound
from rest_framework.pagination import PageNumberPagination
from rest_framework.request import Request

from monitoring.api.views import AIModelFilter, model_detail, model_list
from publishing.edge import served_from_snapshot
from publishing.snapshot import Snapshot
from publishing.snapshot_store import current_snapshot
from statuspage.responses import snapshot_response

JSON = "application/json"


def _credentialed(request: HttpRequest) -> bool:
    return "HTTP_AUTHORIZATION" in request.META or settings.SESSION_COOKIE_NAME in request.COOKIES


def _document(item: dict) -> dict:
    """A snapshot model in the registry API's public shape (monitoring.api.serializers.AIModelSerializer)."""
    return {
        "id": item["id"],
        "public_slug": item["slug"],
        "provider": item["provider"],
        "provider_name": item["provider_name"],
        "name": item["name"],
        "slug": item["model"],
        "description": item["description"],
        "kind": item["kind"],
        "probe_kind": item["probe_kind"],
        "interval_seconds": item["interval_seconds"],
        "latency_threshold_ms": item["latency_threshold_ms"],
        "ttft_threshold_ms": item["ttft_threshold_ms"],
        "public": True,
        "display_order": item["display_order"],
        "status": {
            "status": item["status"],
            "since": item["since"],
            "last_checked_at": item["last_checked_at"],
            "last_latency_ms": item["last_latency_ms"],
            "message": item["message"],
            "manual": item["manual"],
        },
        "regions": item["regions"],
    }


def _matches(item: dict, wanted: dict) -> bool:
    checks = {
        "provider": item["provider"],
        "kind": item["kind"],
        "status": item["status"],
        "probe_kind": item["probe_kind"],
        "enabled": item["enabled"],
    }
    return all(value in (None, "") or checks[name] == value for name, value in wanted.items())


def _json(body, status: int) -> HttpResponse:
    return HttpResponse(orjson.dumps(body), status=status, content_type=JSON)


def _variant(request: HttpRequest, name: str) -> str:
    query = request.META.get("QUERY_STRING", "")
    return f"{name}-{hashlib.blake2b(query.encode(), digest_size=6).hexdigest()}" if query else name


@served_from_snapshot
@csrf_exempt
def models_view(request: HttpRequest) -> HttpResponse:
    """The public model list (filters `provider`, `kind`, `status`, `probe_kind`, `enabled`; 100 a page)."""
    if request.method != "GET" or _credentialed(request):
        return model_list(request)
    filters = AIModelFilter(request.GET)
    if not filters.is_valid():
        return _json({name: list(errors) for name, errors in filters.errors.items()}, 400)
    snapshot = current_snapshot()
    items = [item for item in snapshot.data["models"] if _matches(item, filters.form.cleaned_data)]
    pages = PageNumberPagination()
    try:
        page = pages.paginate_queryset(items, Request(request))
    except NotFound as exc:  # a page out of range: the same answer as the API's
        return _json({"detail": str(exc.detail)}, 404)
    body = pages.get_paginated_response([_document(item) for item in page]).data
    variant = _variant(request, "models")
    return snapshot_response(request, snapshot, lambda: orjson.dumps(body), content_type=JSON, variant=variant)


def _one(snapshot: Snapshot, kwargs: dict) -> dict | None:
    for item in snapshot.data["models"]:
        if ("pk" in kwargs and item["id"] == kwargs["pk"]) or (
            item["provider"] == kwargs.get("provider") and item["model"] == kwargs.get("model")
        ):
            return item
    return None


@served_from_snapshot
@csrf_exempt
def model_view(request: HttpRequest, **kwargs) -> HttpResponse:
    """One public model; a model the snapshot does not hold is looked up (and refused) by the registry's API."""
    if request.method != "GET" or _credentialed(request):
        return model_detail(request, **kwargs)
    snapshot = current_snapshot()
    item = _one(snapshot, kwargs)
    if item is None:
        return model_detail(request, **kwargs)
    document = _document(item)
    variant = f"model-{item['id']}"
    return snapshot_response(request, snapshot, lambda: orjson.dumps(document), content_type=JSON, variant=variant)


def _documented_as(view, drf_view):
    """The OpenAPI schema describes the wrapped DRF view (drf-spectacular reads these attributes)."""
    for name in ("cls", "initkwargs", "actions"):
        setattr(view, name, getattr(drf_view, name))
    return view


_documented_as(models_view, model_list)
_documented_as(model_view, model_detail)

urlpatterns = [
    path("v1/models/", models_view, name="api-model-list"),
    path("v1/models/<int:pk>/", model_view, name="api-model-detail"),
    path("v1/models/<slug:provider>/<slug:model>/", model_view, name="api-model-detail-slug"),
]
