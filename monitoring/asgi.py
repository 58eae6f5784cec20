"""ASGI entry point: HTTP today; WebSocket and SSE join it as live updates land."""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "monitoring.settings")
application = get_asgi_application()
