"""System checks for the two ways a status page lies by configuration: a disk that vanishes, a model with no status."""

from __future__ import annotations

import os

from django.conf import settings
from django.core.checks import Error, Warning, register
from django.core.exceptions import ImproperlyConfigured
from django.db import DatabaseError, connections

SERVERLESS_MARKERS = ("VERCEL", "AWS_LAMBDA_FUNCTION_NAME", "K_SERVICE", "NETLIFY", "FUNCTION_TARGET")


@register("database", deploy=False)
def sqlite_only_where_disk_is_kept(app_configs=None, **kwargs):
    if not settings.DATABASES["default"]["ENGINE"].endswith("sqlite3"):
        return []
    platform = next((name for name in SERVERLESS_MARKERS if os.environ.get(name)), None)
    if platform:
        return [
            Error(
                f"SQLite is in use on a serverless platform ({platform} is set): each instance has its own "
                "disk, so check results and statuses would vanish between deploys and differ between instances.",
                hint="Set DATABASE_URL to a PostgreSQL database, for example postgres://user:pass@host:5432/aistatus.",
                id="monitoring.E001",
            )
        ]
    if not settings.DEBUG and not settings.ALLOW_SQLITE:
        return [
            Error(
                "SQLite is in use with DEBUG off: a production install needs a database that survives "
                "redeploys and is shared by every process.",
                hint="Set DATABASE_URL to a PostgreSQL database, or set ALLOW_SQLITE=1 if this is a "
                "deliberate single-machine install with a persistent disk.",
                id="monitoring.E002",
            )
        ]
    return []


@register("database")
def supported_database(app_configs=None, **kwargs):
    vendor = connections["default"].vendor
    if vendor in ("postgresql", "sqlite"):
        return []
    return [
        Error(
            f"The {vendor} database is not supported: the trigger that gives every model its status "
            "exists for PostgreSQL and SQLite only.",
            hint="Use PostgreSQL (DATABASE_URL=postgres://...).",
            id="monitoring.E003",
        )
    ]


@register("database")
def every_model_has_a_status(app_configs=None, databases=None, **kwargs):
    # Runs only when checks are asked to touch the database (migrate, `check --database default`)
    # and quietly does nothing before the tables exist.
    if not databases or "default" not in databases:
        return []
    from monitoring.models import AIModel

    try:
        missing = AIModel.objects.filter(status_row__isnull=True).count()
    except DatabaseError:
        return []
    if not missing:
        return []
    return [
        Warning(
            f"{missing} model(s) have no status row and would be missing from the status page.",
            hint="Run `python manage.py reconcile_statuses`.",
            id="monitoring.W001",
        )
    ]


@register("security")
def secrets_have_their_own_key(app_configs=None, **kwargs):
    """Without FIELD_ENCRYPTION_KEYS the secrets' key is derived from SECRET_KEY: allowed, but said."""
    from monitoring.fields import _fernet, configured_keys

    try:
        _fernet(configured_keys())
    except ImproperlyConfigured as exc:
        return [Error(str(exc), id="monitoring.E004")]
    if settings.DEBUG or settings.FIELD_ENCRYPTION_KEYS:
        return []
    return [
        Warning(
            "FIELD_ENCRYPTION_KEYS is not set: provider API keys and webhook secrets are encrypted with a key "
            "derived from SECRET_KEY, so changing SECRET_KEY makes them unreadable, and whoever has "
            "SECRET_KEY can read them from a database dump.",
            hint='Set FIELD_ENCRYPTION_KEYS to a key of its own (python -c "from cryptography.fernet import '
            'Fernet; print(Fernet.generate_key().decode())"), followed by the derived key until '
            "`manage.py rotate_encryption_key` has run (see README, Secrets at rest).",
            id="monitoring.W002",
        )
    ]
