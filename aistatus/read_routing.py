"""Opens the public-read scope for anonymous safe requests; a staff user's own writes are read back from the primary.

A request is a public read when it is a GET/HEAD/OPTIONS with no session, no Authorization header
and no read-your-writes cookie, and is not for the admin: the pages, badges, feeds, the
Statuspage JSON and anonymous API GETs. Everything else reads the primary (no scope is opened).
The middleware runs the view itself, inside the scope, so that a replica failing in the middle of
a request is given up and the view runs again on the next database: the request does not fail.
"""

from __future__ import annotations

from asgiref.sync import iscoroutinefunction, sync_to_async
from django.conf import settings
from django.db import DatabaseError
from django.http import HttpRequest, HttpResponse

from monitoring.dual_mode import DualModeMiddleware
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


class PublicReadMiddleware(DualModeMiddleware):
    def __init__(self, get_response) -> None:
        super().__init__(get_response)
        if self.async_mode:
            self.process_view = self._process_view_async

    def __call__(self, request: HttpRequest):
        if self.async_mode:
            return self._call_async(request)
        response = self.get_response(request)
        if _wrote(request, response) and (_token_client(request) or request.user.is_authenticated):
            _remember_write(response)
        return response

    async def _call_async(self, request: HttpRequest) -> HttpResponse:
        response = await self.get_response(request)
        if _wrote(request, response) and (_token_client(request) or (await request.auser()).is_authenticated):
            _remember_write(response)
        return response

    def process_view(self, request: HttpRequest, view_func, view_args, view_kwargs) -> HttpResponse | None:
        if not settings.REPLICAS or iscoroutinefunction(view_func) or not is_public_read(request):
            return None
        return _run_public_view(request, view_func, view_args, view_kwargs)

    async def _process_view_async(self, request: HttpRequest, view_func, view_args, view_kwargs):
        if not settings.REPLICAS or iscoroutinefunction(view_func) or not is_public_read(request):
            return None
        # On the request's own thread, as Django would run the view itself.
        return await sync_to_async(_run_public_view, thread_sensitive=True)(request, view_func, view_args, view_kwargs)


def _run_public_view(request: HttpRequest, view_func, view_args, view_kwargs) -> HttpResponse:
    """The view inside a public-read scope, run again on the next database when its replica fails."""
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


def _wrote(request: HttpRequest, response: HttpResponse) -> bool:
    return request.method not in SAFE_METHODS and response.status_code < 400


def _remember_write(response: HttpResponse) -> None:
    response.set_cookie(
        READ_YOUR_WRITES_COOKIE, "1", max_age=settings.READ_YOUR_WRITES_SECONDS, httponly=True, samesite="Lax"
    )


def _token_client(request: HttpRequest) -> bool:
    # A REST client signs in per request (a token): its writes count as a signed-in user's too.
    return "HTTP_AUTHORIZATION" in request.META
