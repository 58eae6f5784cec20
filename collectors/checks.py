"""System checks of the collectors: a TimescaleDB database that cannot take the TimescaleDB path says why.

Runs with `check --database default`; `migrate` stops with the same message before it changes anything
(collectors/timescale_backend).
"""

from __future__ import annotations

from django.core.checks import Error, Tags, register
from django.db import DatabaseError, connections

from collectors.rollup_reader import on_timescale


@register(Tags.database)
def timescaledb_is_usable(app_configs=None, databases=None, **kwargs) -> list[Error]:
    from collectors import timescale

    errors = []
    for alias in databases or []:
        if alias not in connections.databases or not on_timescale(alias):
            continue
        try:
            reason = timescale.refusal(connections[alias])
        except DatabaseError:
            continue  # the database itself is unreachable: other checks and commands say so
        if reason == timescale.NOT_AVAILABLE:
            errors.append(Error(reason, hint="Or use a postgres:// DATABASE_URL.", id="collectors.E001"))
        elif reason:
            hint = "shared_preload_libraries = 'timescaledb' in postgresql.conf, then restart PostgreSQL."
            errors.append(Error(reason, hint=hint, id="collectors.E002"))
    return errors
