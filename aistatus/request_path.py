"""Django's HTTP request path under ASGI in one hop to a thread: signals, middleware, view and rendering together.

Django's own ASGI handler runs every synchronous middleware hook, the request signals and the view
each on a thread hop of their own, in a thread pool made for each request (ThreadSensitiveContext):
about a dozen hops per request, which cost more than a small view itself. Here the whole synchronous
request path runs in one call on a fixed pool of threads, and only reading the body and sending the
response stay on the event loop. Asynchronous views (the SSE stream) keep Django's own handler.
"""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor

from django.core import signals
from django.core.exceptions import RequestAborted
from django.core.handlers import base
from django.core.handlers.asgi import ASGIHandler, get_script_prefix
from django.http import HttpResponse
from django.urls import Resolver404, resolve, set_script_prefix

MAX_REMEMBERED_PATHS = 4096


class OneHopHandler(ASGIHandler):
    def __init__(self, threads: int) -> None:
        base.BaseHandler.__init__(self)
        self.load_middleware(is_async=False)
        # At most `threads` requests hold a database connection at once: keep it within the pool's size.
        self.executor = ThreadPoolExecutor(threads, thread_name_prefix="django")
        self.async_views = ASGIHandler()
        self._async_path: dict[str, bool] = {}

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            raise ValueError(f"Django can only handle ASGI/HTTP connections, not {scope['type']}.")
        if self._is_async_view(scope["path"]):
            return await self.async_views(scope, receive, send)
        try:
            body_file = await self.read_body(receive)
        except RequestAborted:
            return
        loop = asyncio.get_running_loop()
        response, body = await loop.run_in_executor(self.executor, self._respond, scope, body_file)
        await self._send(response, body, send)

    def _respond(self, scope, body_file) -> tuple[HttpResponse, bytes]:
        """The synchronous request path, start to finish, on one thread (database connections included)."""
        response = None
        try:
            set_script_prefix(get_script_prefix(scope))
            signals.request_started.send(sender=self.__class__, scope=scope)
            request, response = self.create_request(scope, body_file)
            if request is not None:
                response = self.get_response(request)
                response._handler_class = self.__class__
            # Read here, on this thread: a synchronous streaming response (a file) is iterated where it was made.
            body = b"".join(response.streaming_content) if response.streaming else response.content
            return response, body
        finally:
            if response is not None:
                response.close()  # request_finished: connections go back to the pool on this thread
            else:
                signals.request_finished.send(sender=self.__class__)
            body_file.close()

    async def _send(self, response: HttpResponse, body: bytes, send) -> None:
        headers = [(_latin1(name), _latin1(value)) for name, value in response.items()]
        headers += [(b"Set-Cookie", c.output(header="").encode("ascii").strip()) for c in response.cookies.values()]
        await send({"type": "http.response.start", "status": response.status_code, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    def _is_async_view(self, path: str) -> bool:
        known = self._async_path.get(path)
        if known is None:
            try:
                known = asyncio.iscoroutinefunction(resolve(path).func)
            except (Resolver404, ValueError, TypeError):
                known = False  # not routed, or not a path at all: the synchronous path answers with a 4xx
            if len(self._async_path) >= MAX_REMEMBERED_PATHS:
                self._async_path.clear()
            self._async_path[path] = known
        return known


def _latin1(text: str | bytes) -> bytes:
    return text.encode("latin1") if isinstance(text, str) else bytes(text)
