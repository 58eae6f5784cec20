"""The public status pages, per locale: the overview, a model's detail and the incident history."""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.conf.locale import LANG_INFO
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect, JsonResponse
from django.shortcuts import render
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone, translation
from django.utils.cache import patch_vary_headers
from django.utils.translation import get_language, get_language_from_request, get_supported_language_variant
from django.views.decorators.http import require_safe

from monitoring.incident_data import incident_data, public_incidents, with_models_and_updates
from monitoring.models import Incident, StatusChange
from publishing.edge import served_from_snapshot
from publishing.snapshot import Snapshot, minute_medians, minute_rollups
from publishing.snapshot_store import current_snapshot
from statuspage.presentation import (
    as_datetime,
    banner,
    client_strings,
    incidents_key,
    localized_incident,
    provider_groups,
)
from statuspage.responses import snapshot_response

HTML = "text/html; charset=utf-8"
HISTORY_LENGTH = 50
INCIDENTS_PER_PAGE = 20


def _frame(snapshot: Snapshot) -> dict:
    """What every snapshot page carries: the version the script compares with, and the script's texts."""
    return {
        "snapshot": snapshot,
        "page": snapshot.data["page"],
        "client_strings": client_strings(),
        "live": True,
        # The page marks its statuses stale once its connection has been lost for longer than this.
        "probe_interval": min((m["interval_seconds"] for m in snapshot.data["models"]), default=30),
    }


@served_from_snapshot
@require_safe
def index(request: HttpRequest) -> HttpResponse:
    snapshot = current_snapshot()

    def render_page() -> str:
        data = snapshot.data
        context = {
            **_frame(snapshot),
            "banner": banner(data["page"]),
            "groups": provider_groups(data),
            "active_incidents": [
                localized_incident(i, get_language())
                for i in data["incidents"]
                if i["state"] != Incident.State.RESOLVED
            ],
            "maintenances": data["maintenances"],
            "incidents_key": incidents_key(data),
        }
        return render_to_string("statuspage/index.html", context, request)

    return snapshot_response(request, snapshot, render_page, content_type=HTML, variant=get_language())


def _find_model(snapshot: Snapshot, provider: str, model: str) -> dict | None:
    slug = f"{provider}/{model}"
    return next((m for m in snapshot.data["models"] if m["slug"] == slug), None)


def _wants_json(request: HttpRequest) -> bool:
    return request.accepts("application/json") and not request.accepts("text/html")


def _not_found(request: HttpRequest, message: str) -> HttpResponse:
    """A 404 in the form the client asked for: JSON for API clients, the localized page for browsers."""
    if _wants_json(request):
        return JsonResponse({"detail": message}, status=404)
    return render(request, "404.html", {"message": message}, status=404)


@served_from_snapshot
@require_safe
def model_detail(request: HttpRequest, provider: str, model: str) -> HttpResponse:
    snapshot = current_snapshot()
    item = _find_model(snapshot, provider, model)
    if item is None:
        return _not_found(request, f"No public model {provider}/{model}.")

    def render_page() -> str:
        # StatusChange rows up to the snapshot's sequence never change, so the page still only
        # changes with the snapshot's version and the edge may keep it.
        history = StatusChange.objects.filter(model_id=item["id"], id__lte=snapshot.sequence).order_by("-id")[
            :HISTORY_LENGTH
        ]
        # The last hour by minute, beside the 24 hours: read here for this one model.
        recent = minute_rollups([item["id"]], snapshot.built_at).get(item["id"], {})
        latency = {**item["latency"], "minutely_p50_ms": minute_medians(recent, snapshot.built_at)}
        context = {
            **_frame(snapshot),
            "model": {**item, "latency": latency},
            "provider": next(p for p in snapshot.data["providers"] if p["slug"] == item["provider"]),
            "history": list(history),
            "incidents": [
                localized_incident(i, get_language()) for i in snapshot.data["incidents"] if item["slug"] in i["models"]
            ],
            "maintenances": [m for m in snapshot.data["maintenances"] if item["slug"] in m["models"]],
            "slo_window_days": settings.SLO_WINDOW_DAYS,
        }
        return render_to_string("statuspage/model_detail.html", context, request)

    return snapshot_response(request, snapshot, render_page, content_type=HTML, variant=get_language())


# The first page of the history names each of these last days, saying so when nothing happened.
QUIET_DAYS_SHOWN = 14


def _by_day(entries: list[dict], *, quiet_days: bool) -> list[dict]:
    """Incidents grouped by the day they started (site time zone), newest first; with `quiet_days`, the
    last QUIET_DAYS_SHOWN days appear even without an incident."""
    grouped: dict = {}
    for entry in entries:
        day = timezone.localtime(as_datetime(entry["started_at"])).date()
        grouped.setdefault(day, []).append(entry)
    if quiet_days:
        today = timezone.localdate()
        for back in range(QUIET_DAYS_SHOWN):
            grouped.setdefault(today - timedelta(days=back), [])
    return [{"date": day, "incidents": grouped[day]} for day in sorted(grouped, reverse=True)]


@require_safe
def incident_history(request: HttpRequest) -> HttpResponse:
    """Every incident, newest first. Read from the database (older than the snapshot's window), so not edge-cached."""
    incidents = with_models_and_updates(public_incidents(Incident.objects.all())).order_by("-started_at", "-id")
    page = Paginator(incidents, INCIDENTS_PER_PAGE).get_page(request.GET.get("page"))
    entries = [localized_incident(incident_data(incident), get_language()) for incident in page]
    context = {
        "pager": page,
        "incidents": entries,
        "days": _by_day(entries, quiet_days=page.number == 1),
        "live": False,
    }
    response = render(request, "statuspage/incidents.html", context)
    response["Cache-Control"] = "no-cache"
    return response


@require_safe
def choose_language(request: HttpRequest) -> HttpResponseRedirect:
    """`/`: to the reader's language (their earlier choice, else Accept-Language, else the default)."""
    with translation.override(get_language_from_request(request)):
        response = HttpResponseRedirect(reverse("statuspage-index"))
    patch_vary_headers(response, ("Accept-Language", "Cookie"))
    return response


@require_safe
def other_language(request: HttpRequest, code: str, rest: str) -> HttpResponseRedirect:
    """A language prefix the site does not have: `/ko-kr/…` goes to `/ko/…`, `/fr/…` to the reader's fallback."""
    try:
        language = get_supported_language_variant(code.lower().replace("_", "-"))
    except LookupError:
        base = code.lower().replace("_", "-").split("-")[0]
        if not any(known.split("-")[0] == base for known in LANG_INFO):
            raise Http404(f"No page {request.path}") from None
        language = get_language_from_request(request)
    target = f"/{language}/{rest}"
    if request.META.get("QUERY_STRING"):
        target += "?" + request.META["QUERY_STRING"]
    response = HttpResponseRedirect(target)
    patch_vary_headers(response, ("Accept-Language", "Cookie"))
    return response
