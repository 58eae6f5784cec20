"""API throttles: requests per client address (anonymous) and per user (token or session), set in settings.

API_THROTTLE_ANON and API_THROTTLE_TOKEN are DRF rates ("300/min"); "off" or empty turns one off.
An over-limit client gets 429 with Retry-After (DRF's Throttled), described in the OpenAPI schema.
"""

from __future__ import annotations

from django.conf import settings
from rest_framework.throttling import SimpleRateThrottle

from monitoring.client_address import request_address


def parse_rate(value: str | None) -> str | None:
    """A DRF rate, or None (no throttle) for "off", "0" or empty."""
    value = (value or "").strip()
    return None if value.lower() in ("", "off", "0", "none") else value


class AnonymousThrottle(SimpleRateThrottle):
    """Clients without credentials, per address."""

    scope = "anon"

    def get_rate(self) -> str | None:
        return parse_rate(settings.API_THROTTLE_ANON)

    def get_cache_key(self, request, view) -> str | None:
        if request.user and request.user.is_authenticated:
            return None
        return self.cache_format % {"scope": self.scope, "ident": request_address(request)}


class TokenThrottle(SimpleRateThrottle):
    """Signed-in clients (an API token, or the admin's session), per user."""

    scope = "token"

    def get_rate(self) -> str | None:
        return parse_rate(settings.API_THROTTLE_TOKEN)

    def get_cache_key(self, request, view) -> str | None:
        if not (request.user and request.user.is_authenticated):
            return None
        return self.cache_format % {"scope": self.scope, "ident": request.user.pk}
