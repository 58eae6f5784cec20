"""Routes public reads to a read replica; writes, reads that decide them, the admin and migrations to the primary.

A read goes to a replica only inside a public-read scope (publishing.read_scope), opened by the
snapshot build and by the middleware for anonymous safe requests, and never inside a transaction
on the primary. The scope's first read picks the database (replica_monitor's order: same region,
then other regions by round trip, then the primary), skipping replicas that lag or hold less than
the newest event sequence this process has seen; later reads in the scope stay on it.
"""

from __future__ import annotations

from django.db import connections

from aistatus.replica_monitor import get_monitor
from publishing import snapshot_store
from publishing.read_scope import PRIMARY, current


class ReplicaRouter:
    def db_for_read(self, model, **hints) -> str:
        scope = current.get()
        if scope is None:
            return PRIMARY
        if scope.alias is not None:
            return scope.alias
        if connections[PRIMARY].in_atomic_block:
            alias = PRIMARY  # a transaction on the primary reads what it is about to write
        else:
            monitor = get_monitor()
            alias = monitor.choose(scope.excluded, snapshot_store.store.known_sequence) if monitor else PRIMARY
        scope.alias = alias
        return alias

    def db_for_write(self, model, **hints) -> str:
        return PRIMARY

    def allow_relation(self, obj1, obj2, **hints) -> bool:
        return True

    def allow_migrate(self, db, app_label, model_name=None, **hints) -> bool:
        return db == PRIMARY
