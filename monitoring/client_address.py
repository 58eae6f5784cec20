"""The address a request or connection comes from, for per-address limits (sign-in, API, live connects).

Behind TRUSTED_PROXY_COUNT proxies that append to X-Forwarded-For, the client is that many entries
from the right; anything further left was written by the client and is not trusted. With no proxy
(the default) the header is ignored: a client could otherwise pick a new address per request.
"""

from __future__ import annotations

from django.conf import settings


def client_address(remote_addr: str | None, forwarded_for: str | None) -> str:
    proxies = getattr(settings, "TRUSTED_PROXY_COUNT", 0)
    if proxies and forwarded_for:
        hops = [hop.strip() for hop in forwarded_for.split(",") if hop.strip()]
        if hops:
            return hops[-min(proxies, len(hops))]
    return remote_addr or ""


def request_address(request) -> str:
    """The client address of a Django request (axes' AXES_CLIENT_IP_CALLABLE has this signature)."""
    return client_address(request.META.get("REMOTE_ADDR"), request.META.get("HTTP_X_FORWARDED_FOR"))


def scope_address(scope: dict) -> str:
    """The client address of an ASGI connection (WebSocket or HTTP scope)."""
    client = scope.get("client")
    forwarded = next((value for name, value in scope.get("headers", []) if name == b"x-forwarded-for"), None)
    return client_address(client[0] if client else None, forwarded.decode("latin-1") if forwarded else None)
