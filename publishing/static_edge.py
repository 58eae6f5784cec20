"""Static files at the ASGI edge: WhiteNoise decides the response, the bytes are kept in memory.

Under ASGI each request that Django handles runs its synchronous parts on a thread started for that
request, and WhiteNoise, a synchronous middleware, adds two hops more: static files came out of
Django at about 450 requests/s here, against 15,000 pages/s from the snapshot edge. Every first
page view asks for the page's CSS and scripts, so in a surge of readers (an outage) the static
files, not the page, would set the limit. WhiteNoise's own index still chooses the file, encoding
and headers (ETag, 304, ranges, caching); only the serving moves in front of Django. Paths it does
not know go on to Django (a 404 there); WSGI deployments keep WhiteNoise as Django middleware.
"""

from __future__ import annotations

from urllib.parse import urlparse

from django.conf import settings

from publishing.security_headers import hsts_header, security_headers

MAX_CACHED_FILE = 1 << 20  # larger files are read per request


class StaticEdge:
    def __init__(self, app) -> None:
        self.app = app
        self.prefix = "/" + urlparse(settings.STATIC_URL or "/static/").path.strip("/") + "/"
        self._whitenoise = None
        self._bytes: dict[str, bytes] = {}
        # Computed once: every static path gets the same set (a policy on a script or stylesheet is inert).
        self._security = security_headers(self.prefix)
        self._hsts = hsts_header()

    @property
    def whitenoise(self):
        if self._whitenoise is None:
            # Built on first use: listing the files (finders included) reads the disk.
            from whitenoise.middleware import WhiteNoiseMiddleware

            self._whitenoise = WhiteNoiseMiddleware(get_response=None)
        return self._whitenoise

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith(self.prefix):
            return await self.app(scope, receive, send)
        whitenoise = self.whitenoise
        path = scope["path"]
        static_file = whitenoise.find_file(path) if whitenoise.autorefresh else whitenoise.files.get(path)
        if static_file is None:
            return await self.app(scope, receive, send)
        environ = {
            "HTTP_" + name.decode("latin-1").upper().replace("-", "_"): value.decode("latin-1")
            for name, value in scope.get("headers", [])
        }
        response = static_file.get_response(scope["method"], environ)
        body = self._body(response.file, cache=not whitenoise.autorefresh and response.status == 200)
        headers = [(name.lower().encode("latin-1"), value.encode("latin-1")) for name, value in response.headers]
        headers += self._security
        if self._hsts and scope.get("scheme") == "https":
            headers.append(self._hsts)
        await send({"type": "http.response.start", "status": int(response.status), "headers": headers})
        await send({"type": "http.response.body", "body": body})

    def _body(self, file, cache: bool) -> bytes:
        """The file's bytes: kept after the first read of a whole file, read each time for a range."""
        if file is None:  # HEAD, 304, 405
            return b""
        name = getattr(file, "name", None)
        try:
            if cache and name in self._bytes:
                return self._bytes[name]
            body = file.read()
        finally:
            getattr(file, "fileobj", file).close()  # a range's slice wraps the open file
        if cache and isinstance(name, str) and len(body) <= MAX_CACHED_FILE:
            self._bytes[name] = body
        return body
