"""Which reads may be served by a replica: the public ones, marked by a scope that the database router consults.

Only the read side opens this scope (the snapshot build, anonymous safe requests); collectors,
transitions, alerts, the admin and staff requests never do, so every read that decides a write goes
to the primary. Within one scope every query goes to the same database (the router pins it on the
first read), so a snapshot is built from one consistent source. `public_read()` runs a function in
a scope and, when the replica it used fails or turns out to be behind, runs it again on the next
one; the primary is the last resort.
"""

from __future__ import annotations

import contextvars
import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import TypeVar

from django.db import DatabaseError, connections
from django.dispatch import Signal

log = logging.getLogger(__name__)

PRIMARY = "default"
T = TypeVar("T")

# Sent with `alias` when a query on a replica failed: the replica monitor takes it out at once.
replica_failed = Signal()


class PublicRead:
    """One public read: the database it is pinned to (chosen on first use) and the replicas ruled out."""

    __slots__ = ("alias", "excluded")

    def __init__(self, excluded: frozenset[str] | set[str] = frozenset()) -> None:
        self.alias: str | None = None
        self.excluded = excluded

    @property
    def on_replica(self) -> bool:
        return self.alias is not None and self.alias != PRIMARY


current: contextvars.ContextVar[PublicRead | None] = contextvars.ContextVar("public_read", default=None)


class ReadState:
    """What the read side knows about the primary, set by the replica monitor (None: no replicas configured)."""

    primary_down_since: datetime | None = None


state = ReadState()


def paused_since() -> str | None:
    """When the primary went away (as the snapshot carries it: updates are paused), or None while it answers."""
    since = state.primary_down_since
    return None if since is None else since.isoformat().replace("+00:00", "Z")


@contextmanager
def public_reads(excluded: frozenset[str] | set[str] = frozenset()) -> Iterator[PublicRead]:
    scope = PublicRead(excluded)
    token = current.set(scope)
    try:
        yield scope
    finally:
        current.reset(token)


def give_up_replica(scope: PublicRead, exc: BaseException | None = None) -> None:
    """The replica failed: close this thread's connection to it and, unless it was only busy, tell the monitor."""
    alias = scope.alias
    if not scope.on_replica:
        return
    log.warning("public read on %s failed, trying the next database: %s", alias, str(exc or "").strip()[:200])
    try:
        connections[alias].close()
    except Exception:  # the connection is already broken; the pool replaces it
        pass
    # Every pooled connection in use (or the pool renewed meanwhile) says nothing about the server.
    if type(getattr(exc, "__cause__", None)).__name__ not in ("PoolTimeout", "PoolClosed"):
        replica_failed.send(sender=PublicRead, alias=alias)


def _drop_broken_primary_connection() -> None:
    """Outside a request nothing closes a broken connection: a thread would keep failing after the primary returns."""
    connection = connections[PRIMARY]
    if not connection.in_atomic_block:
        try:
            connection.close()
        except Exception:  # already broken
            pass


def public_read(read: Callable[[], T], accept: Callable[[T], bool] | None = None) -> T:
    """Run `read` as a public read; on a replica that fails, or whose result `accept` refuses, run it on the next.

    The primary is the last resort: its errors (and its result) are final.
    """
    excluded: set[str] = set()
    while True:
        with public_reads(frozenset(excluded)) as scope:
            try:
                result = read()
            except DatabaseError as exc:
                if not scope.on_replica:
                    _drop_broken_primary_connection()
                    raise
                give_up_replica(scope, exc)
                excluded.add(scope.alias)
                continue
        if scope.on_replica and accept is not None and not accept(result):
            log.info("%s is behind the newest sequence this process has seen; reading elsewhere", scope.alias)
            excluded.add(scope.alias)
            continue
        return result
