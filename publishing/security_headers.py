"""The security headers of every HTTP response: one set, given by Django's middleware and by the ASGI edges.

Public pages are served as the same prerendered bytes to everyone (publishing.edge), so the
Content-Security-Policy is a fixed string: no per-request nonce. The pages therefore carry no inline
script, no inline event handler and no style attribute (scripts and styles are static files; a
script sizes what needs a computed width through the CSSOM, which the policy allows).

Operators' pages get their own, looser policy for styles only: Django's admin scripts, the browsable
API and Swagger UI set style attributes. Redoc runs an inline script and a blob worker, so the Redoc
page alone allows those.
"""

from __future__ import annotations

from functools import lru_cache

from django.conf import settings

from monitoring.dual_mode import DualModeMiddleware

# The public pages: everything from this origin only, scripts and styles from files.
PUBLIC_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; font-src 'self'; "
    "connect-src 'self'; worker-src 'self'; manifest-src 'self'; object-src 'none'; base-uri 'none'; "
    "form-action 'self'; frame-ancestors 'none'"
)
# The admin, the browsable API and Swagger UI: scripts still from files only; style attributes allowed.
OPERATOR_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
    "font-src 'self' data:; connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; "
    "frame-ancestors 'none'"
)
# Redoc (/api/docs/redoc/) starts itself with an inline script and renders in a blob worker.
REDOC_POLICY = (
    "default-src 'self'; script-src 'self' 'unsafe-inline' blob:; worker-src 'self' blob:; "
    "style-src 'self' 'unsafe-inline'; img-src 'self' data:; font-src 'self' data:; connect-src 'self'; "
    "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
# Longest prefix first.
POLICIES = (
    ("/api/docs/redoc/", REDOC_POLICY),
    ("/admin/", OPERATOR_POLICY),
    ("/api/", OPERATOR_POLICY),
)

# No page of the site needs any of these browser features; none may be used, by it or by a frame.
# Passkeys (publickey-credentials-*) keep their default (this origin) for the admin's sign-in.
PERMISSIONS_POLICY = ", ".join(
    f"{feature}=()"
    for feature in (
        "accelerometer",
        "autoplay",
        "camera",
        "display-capture",
        "encrypted-media",
        "fullscreen",
        "geolocation",
        "gyroscope",
        "magnetometer",
        "microphone",
        "midi",
        "payment",
        "picture-in-picture",
        "screen-wake-lock",
        "usb",
        "xr-spatial-tracking",
    )
)


def content_security_policy(path: str) -> str:
    for prefix, policy in POLICIES:
        if path.startswith(prefix):
            return policy
    return PUBLIC_POLICY


@lru_cache(maxsize=8)
def _common(nosniff: bool, referrer: str, opener: str, frame: str) -> tuple[tuple[bytes, bytes], ...]:
    headers = [(b"permissions-policy", PERMISSIONS_POLICY.encode())]
    if nosniff:
        headers.append((b"x-content-type-options", b"nosniff"))
    if referrer:
        headers.append((b"referrer-policy", referrer.encode()))
    if opener:
        headers.append((b"cross-origin-opener-policy", opener.encode()))
    if frame:
        headers.append((b"x-frame-options", frame.encode()))
    return tuple(headers)


def security_headers(path: str) -> list[tuple[bytes, bytes]]:
    """The headers for a response to `path`, lowercased, as ASGI sends them (HSTS aside: it depends on the scheme)."""
    referrer = settings.SECURE_REFERRER_POLICY or ""
    if not isinstance(referrer, str):
        referrer = ",".join(referrer)
    common = _common(
        settings.SECURE_CONTENT_TYPE_NOSNIFF,
        ",".join(v.strip() for v in referrer.split(",") if v.strip()),
        settings.SECURE_CROSS_ORIGIN_OPENER_POLICY or "",
        getattr(settings, "X_FRAME_OPTIONS", "DENY") or "",
    )
    return [(b"content-security-policy", content_security_policy(path).encode()), *common]


def hsts_header() -> tuple[bytes, bytes] | None:
    """Strict-Transport-Security as Django's SecurityMiddleware gives it over HTTPS, or None when it is off."""
    if not settings.SECURE_HSTS_SECONDS:
        return None
    value = f"max-age={settings.SECURE_HSTS_SECONDS}"
    if settings.SECURE_HSTS_INCLUDE_SUBDOMAINS:
        value += "; includeSubDomains"
    if settings.SECURE_HSTS_PRELOAD:
        value += "; preload"
    return (b"strict-transport-security", value.encode())


class SecurityHeadersMiddleware(DualModeMiddleware):
    """Gives Django's responses the same headers as the edges; a view that set one of them keeps its own."""

    def __call__(self, request):
        if self.async_mode:
            return self._call_async(request)
        return _add(request, self.get_response(request))

    async def _call_async(self, request):
        return _add(request, await self.get_response(request))


def _add(request, response):
    for name, value in security_headers(request.path):
        response.headers.setdefault(name.decode(), value.decode())
    return response
