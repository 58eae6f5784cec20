"""The incident feed (`/feeds/incidents.atom`): open and recent incidents from the snapshot, one entry each."""

from __future__ import annotations

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.utils.feedgenerator import Atom1Feed
from django.utils.html import escape
from django.views.decorators.http import require_safe

from monitoring.snapshot import Snapshot
from monitoring.snapshot_store import current_snapshot
from statuspage.presentation import as_datetime
from statuspage.responses import site_url, snapshot_response


def _entry_content(incident: dict) -> str:
    """The timeline, newest first, as the entry's HTML content."""
    lines = [
        f"<p><strong>{escape(update['state'].title())}</strong> ({escape(update['at'])}): {escape(update['body'])}</p>"
        for update in incident["updates"]
    ]
    if incident["models"]:
        lines.append(f"<p>Affected: {escape(', '.join(incident['models']))}</p>")
    return "".join(lines) or f"<p>{escape(incident['state'].title())}</p>"


def incidents_feed(snapshot: Snapshot, base_url: str) -> bytes:
    data = snapshot.data
    pages = f"{base_url}/{settings.LANGUAGE_CODE}/"
    feed = Atom1Feed(
        title=f"{data['page']['site_name']}: incidents",
        link=f"{pages}incidents/",
        description=f"Incidents on {data['page']['site_name']}",
        language=settings.LANGUAGE_CODE,
        feed_url=f"{base_url}/feeds/incidents.atom",
        feed_guid=f"{base_url}/feeds/incidents.atom",
        author_name=data["page"]["site_name"],
    )
    for incident in data["incidents"]:
        link = f"{pages}incidents/#incident-{incident['id']}"
        feed.add_item(
            title=f"[{incident['state'].title()}] {incident['title']}",
            link=link,
            unique_id=link,
            description=_entry_content(incident),
            pubdate=as_datetime(incident["started_at"]),
            updateddate=as_datetime(incident["updated_at"]),
            categories=[incident["impact"], *incident["models"]],
        )
    return feed.writeString("utf-8").encode()


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
        content_language="en",
    )
