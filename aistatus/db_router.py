"""Reads of public data go to a healthy replica; writes, the admin and migrations to the primary."""

from __future__ import annotations

import logging
import random
import time

from django.conf import settings
from django.db import connections

log = logging.getLogger(__name__)

# A replica that failed is left alone for this long before it is tried again.
_RETRY_AFTER_SECONDS = 30.0
_failed_until: dict[str, float] = {}


def _healthy(alias: str) -> bool:
    if _failed_until.get(alias, 0.0) > time.monotonic():
        return False
    try:
        connections[alias].ensure_connection()
    except Exception as exc:  # any driver error means "not usable now"
        log.warning("replica %s skipped: %s", alias, exc)
        _failed_until[alias] = time.monotonic() + _RETRY_AFTER_SECONDS
        return False
    return True


class ReplicaRouter:
    def db_for_read(self, model, **hints):
        replicas = [alias for alias in settings.DATABASES if alias.startswith("replica")]
        random.shuffle(replicas)
        for alias in replicas:
            if _healthy(alias):
                return alias
        return "default"

    def db_for_write(self, model, **hints):
        return "default"

    def allow_relation(self, obj1, obj2, **hints):
        return True

    def allow_migrate(self, db, app_label, model_name=None, **hints):
        return db == "default"
