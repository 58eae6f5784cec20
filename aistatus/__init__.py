"""The project package: settings, URLs, the ASGI/WSGI entry points, the Celery app, database routing and health."""

from aistatus.celery import app as celery_app

__all__ = ["celery_app"]
