"""Incident feeds from the snapshot: the page's (`/feeds/incidents.atom`), a provider's and a model's."""

from __future__ import annotations

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.urls import reverse
from django.utils import translation
from django.utils.feedgenerator import Atom1Feed
from django.utils.html import escape
from django.utils.translation import gettext as _
from django.views.decorators.http import require_safe

from monitoring.models import Incident
from monitoring.status import label_of
from publishing.edge import served_from_snapshot
from publishing.snapshot import Snapshot
from publishing.snapshot_store import current_snapshot
from statuspage.presentation import as_datetime
from statuspage.responses import site_url, snapshot_response


def _entry_content(incident: dict) -> str:
    """The timeline, newest first, as the entry's HTML content."""
    lines = [
        f"<p><strong>{escape(label_of(Incident.State, update['state']))}</strong> ({escape(update['at'])}): "
        f"{escape(update['body'])}</p>"
        for update in incident["updates"]
    ]
    if incident["models"]:
        affected = _("Affected models: %(models)s") % {"models": ", ".join(incident["models"])}
        lines.append(f"<p>{escape(affected)}</p>")
    return "".join(lines) or f"<p>{escape(label_of(Incident.State, incident['state']))}</p>"


def concerns(incident: dict, provider: str | None, model: str | None) -> bool:
    """Whether an incident belongs in a provider's or a model's feed (every incident is in the page's)."""
    if model:
        return model in incident["models"]
    if provider:
        return incident["provider"] == provider or any(m.startswith(f"{provider}/") for m in incident["models"])
    return True


def incidents_feed(
    snapshot: Snapshot, base_url: str, *, provider: str | None = None, model: str | None = None, feed_path: str = ""
) -> bytes:
    """The feed in the site's language (LANGUAGE_CODE), the language its stored texts are written in."""
    data = snapshot.data
    site_name = data["page"]["site_name"]
    with translation.override(settings.LANGUAGE_CODE):
        history = base_url + reverse("statuspage-incidents")
        feed_url = base_url + (feed_path or reverse("statuspage-feed-incidents"))
        target = model or provider
        title = _("%(site)s: incidents") % {"site": site_name}
        if target:
            title = _("%(site)s: incidents of %(target)s") % {"site": site_name, "target": target}
        feed = Atom1Feed(
            title=title,
            link=history,
            description=_("Incidents on %(site)s") % {"site": site_name},
            language=settings.LANGUAGE_CODE,
            feed_url=feed_url,
            feed_guid=feed_url,
            author_name=site_name,
        )
        for incident in data["incidents"]:
            if not concerns(incident, provider, model):
                continue
            link = f"{history}#incident-{incident['id']}"
            feed.add_item(
                title=f"[{label_of(Incident.State, incident['state'])}] {incident['title']}",
                link=link,
                unique_id=link,
                description=_entry_content(incident),
                pubdate=as_datetime(incident["started_at"]),
                updateddate=as_datetime(incident["updated_at"]),
                categories=[incident["impact"], *incident["models"]],
            )
        return feed.writeString("utf-8").encode()


@served_from_snapshot
@require_safe
def incidents_atom(request: HttpRequest) -> HttpResponse:
    snapshot = current_snapshot()
    return snapshot_response(
        request,
        snapshot,
        lambda: incidents_feed(snapshot, site_url(request)),
        content_type="application/atom+xml; charset=utf-8",
        variant="incidents-atom",
        cors=True,
        content_language=settings.LANGUAGE_CODE,
    )


def _public_target(snapshot: Snapshot, provider: str, model: str | None) -> bool:
    slugs = {m["slug"] for m in snapshot.data["models"]}
    if model:
        return f"{provider}/{model}" in slugs
    return any(slug.startswith(f"{provider}/") for slug in slugs)


@require_safe
def provider_atom(request: HttpRequest, provider: str) -> HttpResponse:
    return _target_atom(request, provider, None)


@require_safe
def model_atom(request: HttpRequest, provider: str, model: str) -> HttpResponse:
    return _target_atom(request, provider, model)


def _target_atom(request: HttpRequest, provider: str, model: str | None) -> HttpResponse:
    snapshot = current_snapshot()
    if not _public_target(snapshot, provider, model):
        return HttpResponse(status=404)
    body = incidents_feed(
        snapshot,
        site_url(request),
        provider=provider,
        model=f"{provider}/{model}" if model else None,
        feed_path=request.path,
    )
    response = HttpResponse(body, content_type="application/atom+xml; charset=utf-8")
    response["Access-Control-Allow-Origin"] = "*"
    response["Content-Language"] = settings.LANGUAGE_CODE
    return response
