"""The API's model list pages, kept as rendered bytes while the database still holds what they show.

A page is kept with the notice count it was built at (registry_changes), the ids of the models it
lists and the first moment one of its statuses turns `unknown` with time alone. It is served again
while no notice since touched everything or one of its models, and that moment has not come. So a
probe's write drops the pages that list its model, not the others, and a page is never older than
the database by more than the time PostgreSQL takes to deliver a notice (this process's own writes:
not at all, see registry_changes.note_local_writes).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from django.utils import timezone

from monitoring.api.registry_changes import changes

MAX_PAGES = 500


@dataclass(slots=True)
class Page:
    built_at: int
    model_ids: tuple[int, ...]
    until: datetime | None
    body: bytes
    content_type: str


_pages: dict[tuple, Page] = {}


def key_of(request, *, staff: bool) -> tuple | None:
    """What a page depends on besides the database: who may see what, the query, the host its links name and
    the rendering asked for. None for a request whose answer is not kept (a browsable HTML page)."""
    if request.accepted_renderer.format != "json":
        return None
    return (staff, request.get_full_path(), request.get_host(), request.scheme, request.accepted_media_type)


def get(key: tuple | None) -> Page | None:
    if key is None:
        return None
    page = _pages.get(key)
    if page is None:
        return None
    if (page.until is not None and timezone.now() >= page.until) or not changes.current(page.built_at, page.model_ids):
        _pages.pop(key, None)
        return None
    return page


def put(key: tuple, page: Page) -> None:
    if len(_pages) >= MAX_PAGES:
        _pages.clear()
    _pages[key] = page
