"""Responses rendered from the snapshot alone: an ETag per version, 304 on If-None-Match, the edge's version mark."""

from __future__ import annotations

from collections.abc import Callable

from django.conf import settings
from django.http import HttpRequest, HttpResponse, HttpResponseNotModified
from django.utils.cache import parse_etags

from publishing.snapshot import Snapshot


def snapshot_response(
    request: HttpRequest,
    snapshot: Snapshot,
    render: Callable[[], bytes | str],
    *,
    content_type: str,
    variant: str,
    cors: bool = False,
    content_language: str | None = None,
) -> HttpResponse:
    """Answer from `snapshot`: 304 when the client holds this version, else the rendered body.

    `X-Snapshot-Version` tells the ASGI edge that these bytes stay right for everyone until the
    version moves, so the view must not depend on anything but the snapshot and the URL. `render` is
    only called when a body is needed.
    """
    etag = f'"{snapshot.version}-{variant}"'
    if etag in parse_etags(request.headers.get("If-None-Match", "")):
        response = HttpResponseNotModified()
    else:
        response = HttpResponse(render(), content_type=content_type)
    response["ETag"] = etag
    # Clients revalidate every time; the edge answers that with a 304 in microseconds.
    response["Cache-Control"] = "no-cache"
    response["X-Snapshot-Version"] = snapshot.version
    if cors:
        # Statuspage widgets and badges are embedded on other sites.
        response["Access-Control-Allow-Origin"] = "*"
    if content_language:
        # Language-neutral formats: otherwise the first requester's language would be cached with them.
        response["Content-Language"] = content_language
    return response


def site_url(request: HttpRequest) -> str:
    """The public base URL for absolute links (feeds, Statuspage JSON): SITE_URL, else this request's host."""
    configured = getattr(settings, "SITE_URL", "")
    if configured:
        return configured.rstrip("/")
    return f"{request.scheme}://{request.get_host()}"
