"""Staff pages of the API's model list, kept as rendered bytes while the database still holds what they show.

A page is kept with the notice count it was built at (registry_changes), the ids of the models it
lists and the first moment one of its statuses turns `unknown` with time alone. It is served again
while no notice since touched everything or one of its models, and that moment has not come. So a
probe's write drops the pages that list its model, not the others. A page is behind the database at
most by the time PostgreSQL takes to deliver a notice; this process's own writes not at all
(registry_changes.note_committed).

Kept: pages for readers who see everything (staff), which read the primary, so that a page is never
built from a replica behind the notices. Not kept: pages filtered by status (a model not listed
may join them), queries with parameters the list does not know, and the browsable HTML API.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from django.http import HttpResponse
from django.utils import timezone

from monitoring.api.registry_changes import changes

MAX_PAGES = 500
# Filters on what a model is (its row or its provider's): a notice for `*` covers their changes.
KEPT_PARAMETERS = frozenset({"provider", "kind", "probe_kind", "enabled", "page"})


@dataclass(slots=True)
class Page:
    built_at: int
    model_ids: tuple[int, ...]
    until: datetime | None
    body: bytes
    content_type: str


_pages: dict[tuple, Page] = {}


def key_of(request, *, staff: bool) -> tuple | None:
    """What a page depends on besides the database: the query, the host and scheme its links name and the
    rendering asked for. None for a request whose answer is not kept."""
    if not staff or request.accepted_renderer.format != "json":
        return None
    query = request.query_params
    if not KEPT_PARAMETERS.issuperset(query.keys()):
        return None
    parameters = tuple(sorted((name, tuple(query.getlist(name))) for name in query))
    return (parameters, request.get_host(), request.scheme, request.accepted_media_type)


def get(key: tuple | None) -> HttpResponse | None:
    if key is None:
        return None
    page = _pages.get(key)
    if page is None:
        return None
    if (page.until is not None and timezone.now() >= page.until) or not changes.current(page.built_at, page.model_ids):
        _pages.pop(key, None)
        return None
    return HttpResponse(page.body, content_type=page.content_type)


def keep(key: tuple, built_at: int, view, data: dict, model_ids: tuple[int, ...], turns: list) -> HttpResponse:
    """Renders the page as DRF would and keeps it, unless a status on it has already turned with time."""
    request = view.request
    renderer = request.accepted_renderer
    body = renderer.render(data, request.accepted_media_type, view.get_renderer_context())
    content_type = f"{renderer.media_type}; charset={renderer.charset}" if renderer.charset else renderer.media_type
    until = min((moment for moment in turns if moment is not None), default=None)
    if until is None or timezone.now() < until:
        if len(_pages) >= MAX_PAGES:
            _pages.clear()
        _pages[key] = Page(built_at, model_ids, until, body, content_type)
    return HttpResponse(body, content_type=content_type)
