"""How periodic work reports a database it cannot reach: one line at most every 30 s, then reconnect."""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Callable
from typing import Any, TypeVar

from django.db import DatabaseError, connections

log = logging.getLogger("monitoring.outages")
QUIET_SECONDS = 30.0
_last_report = 0.0


def database_unavailable(task: str, exc: Exception) -> None:
    """A database outage should read as a message, not a traceback every round."""
    global _last_report
    if time.monotonic() - _last_report > QUIET_SECONDS:
        first_line = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        log.warning("%s: database unavailable (%s); retrying every round", task, first_line)
        _last_report = time.monotonic()
    connections.close_all()


Result = TypeVar("Result")


def reports_database_outage(fallback: Callable[[], Any]) -> Callable[[Callable[..., Result]], Callable[..., Result]]:
    """For periodic tasks: a database error ends this run quietly with `fallback()`; the next run tries again."""

    def decorate(task: Callable[..., Result]) -> Callable[..., Result]:
        @functools.wraps(task)
        def run(*args, **kwargs):
            try:
                return task(*args, **kwargs)
            except DatabaseError as exc:
                database_unavailable(task.__name__, exc)
                return fallback()

        return run

    return decorate
