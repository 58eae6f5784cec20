"""django-timescaledb's PostgreSQL engine, with one change: `migrate` on a server without TimescaleDB preloaded
stops with a message naming shared_preload_libraries, instead of a traceback from CREATE EXTENSION."""

from __future__ import annotations

from django.core.management.base import CommandError
from timescale.db.backends.postgresql.base import DatabaseWrapper as TimescaleDatabaseWrapper


class DatabaseWrapper(TimescaleDatabaseWrapper):
    def prepare_database(self) -> None:
        from collectors import timescale

        reason = timescale.refusal(self)
        if reason:
            raise CommandError(reason)
        super().prepare_database()
