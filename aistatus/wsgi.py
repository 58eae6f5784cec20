"""WSGI entry point, for servers that speak only WSGI (live updates need the ASGI one)."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "aistatus.settings")
application = get_wsgi_application()
