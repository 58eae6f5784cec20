"""Opens the public-read scope for anonymous safe requests; a staff user's own writes are read back from the primary.

A request is a public read when it is a GET/HEAD/OPTIONS with no session, no Authorization header
and no read-your-writes cookie, and is not for the admin: the pages, badges, feeds, the
Statuspage JSON and anonymous API GETs. Everything else reads the primary (no scope is opened).
The middleware runs the view itself, inside the scope, so that a replica failing in the middle of
a request is given up and the view runs again on the next database: the request does not fail.
"""

from __future__ import annotations

import asyncio

from django.conf import settings
from django.db import DatabaseError
from django.http import HttpRequest, HttpResponse

from publishing.read_scope import give_up_replica, public_reads

SAFE_METHODS = ("GET", "HEAD", "OPTIONS")
# Set after a signed-in user's successful write: their reads go to the primary until it expires.
READ_YOUR_WRITES_COOKIE = "aistatus_primary"


def is_public_read(request: HttpRequest) -> bool:
    return (
        request.method in SAFE_METHODS
        and "HTTP_AUTHORIZATION" not in request.META
        and settings.SESSION_COOKIE_NAME not in request.COOKIES
        and READ_YOUR_WRITES_COOKIE not in request.COOKIES
        and not request.path.startswith("/admin/")
    )


class PublicReadMiddleware:
    def __init__(self, get_response) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if request.method not in SAFE_METHODS and response.status_code < 400 and _signed_in(request):
            response.set_cookie(
                READ_YOUR_WRITES_COOKIE,
                "1",
                max_age=settings.READ_YOUR_WRITES_SECONDS,
                httponly=True,
                samesite="Lax",
            )
        return response

    def process_view(self, request: HttpRequest, view_func, view_args, view_kwargs) -> HttpResponse | None:
        if not settings.REPLICAS or asyncio.iscoroutinefunction(view_func) or not is_public_read(request):
            return None
        excluded: set[str] = set()
        while True:
            with public_reads(frozenset(excluded)) as scope:
                try:
                    response = view_func(request, *view_args, **view_kwargs)
                    # A template response reads while it renders: render it here, on the same database.
                    if callable(getattr(response, "render", None)) and not response.is_rendered:
                        response = response.render()
                    return response
                except DatabaseError as exc:
                    if not scope.on_replica:
                        raise
                    give_up_replica(scope, exc)
                    excluded.add(scope.alias)


def _signed_in(request: HttpRequest) -> bool:
    user = getattr(request, "user", None)
    if user is not None and user.is_authenticated:
        return True
    # A REST client signs in per request (a token): its writes count as signed in too.
    return "HTTP_AUTHORIZATION" in request.META
