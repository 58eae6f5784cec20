"""ASGI entry point: HTTP behind the edges (static files, prerendered public reads), WebSocket for live events."""

import os

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "aistatus.settings")
# Pooled database connections: under ASGI per-thread connections are never reused (see settings).
os.environ.setdefault("DATABASE_POOL_SIZE", "10")
django.setup(set_prefix=False)

from django.conf import settings  # noqa: E402

from aistatus.request_path import OneHopHandler  # noqa: E402

django_application = OneHopHandler(threads=settings.WEB_THREADS)

# Imported once the apps are loaded.
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from channels.security.websocket import AllowedHostsOriginValidator  # noqa: E402
from django.urls import path  # noqa: E402

from aistatus.lifespan import lifespan  # noqa: E402
from publishing.edge import SnapshotEdge  # noqa: E402
from publishing.realtime.consumers import StatusConsumer  # noqa: E402
from publishing.static_edge import StaticEdge  # noqa: E402

application = ProtocolTypeRouter(
    {
        "http": StaticEdge(SnapshotEdge(django_application)),
        # Browsers from other sites may not open the stream: Origin must match ALLOWED_HOSTS.
        "websocket": AllowedHostsOriginValidator(URLRouter([path("ws/status/", StatusConsumer.as_asgi())])),
        "lifespan": lifespan,
    }
)
