"""Rollup figures for whoever reads them (snapshot, metrics): one interface, two sources, chosen once.

On plain PostgreSQL (and SQLite) the figures are CheckRollup rows, kept by the update_rollups task.
On TimescaleDB they are the continuous aggregates that `timescale_setup` creates (collectors/
timescale.py), kept by TimescaleDB's own policies, and the rollup task does not run there. Both
give the same columns with the same meaning: counts by outcome, latency p50/p95 (answered checks;
hours and days weighted by ok counts) and maximum, per model and bucket.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from functools import cache

from django.conf import settings
from django.db import connections, router
from django.db.models import Count, Max, Sum

from collectors.models import CheckRollup, Period

FIGURES = (
    "total",
    "ok",
    "provider_fault",
    "probe_fault",
    "rate_limited",
    "timeout",
    "broken_stream",
    "latency_p50_ms",
    "latency_p95_ms",
    "latency_max_ms",
)
TIMESCALE_ENGINE = "collectors.timescale_backend"


def _checked(fields: Sequence[str]) -> list[str]:
    unknown = [f for f in fields if f not in FIGURES]
    if unknown:
        raise ValueError(f"unknown rollup figure {unknown[0]!r}")
    return list(fields)


class RollupTableReader:
    """CheckRollup, the rollup tables of plain PostgreSQL."""

    source = "rollup tables"

    def __init__(self, using: str | None = None) -> None:
        # None: the database router chooses (a replica for public reads).
        self.using = using

    def _rollups(self):
        return CheckRollup.objects.using(self.using) if self.using else CheckRollup.objects

    def rows(
        self, period: str, since: datetime, fields: Sequence[str], model_ids: Sequence[int] | None = None
    ) -> list[tuple]:
        """(model_id, bucket, *fields) of every bucket from `since` on."""
        query = self._rollups().filter(period=period, bucket__gte=since)
        if model_ids is not None:
            query = query.filter(model_id__in=model_ids)
        return list(query.values_list("model_id", "bucket", *_checked(fields)))

    def sums(self, period: str, since: datetime, fields: Sequence[str]) -> dict[str, int]:
        query = self._rollups().filter(period=period, bucket__gte=since)
        totals = query.aggregate(**{f: Sum(f) for f in _checked(fields)})
        return {f: totals[f] or 0 for f in fields}

    def mark(self, period: str, since: datetime) -> tuple:
        """Changes whenever any bucket from `since` on changes (rows are replaced whole, with new ids)."""
        query = self._rollups().filter(period=period, bucket__gte=since)
        marks = query.aggregate(n=Count("id"), checks=Sum("total"), last=Max("id"))
        return (marks["n"], marks["checks"], marks["last"])


class AggregateReader:
    """TimescaleDB's continuous aggregates, with what a redefinition kept of their earlier history."""

    source = "continuous aggregates"

    def __init__(self, using: str | None = None) -> None:
        self._using = using
        self._known_columns: dict[str, set[str]] = {}

    @property
    def using(self) -> str:
        # None: the database router chooses, as for the rollup tables (a replica for public reads).
        return self._using or router.db_for_read(CheckRollup) or "default"

    def _columns(self, view: str) -> set[str]:
        if view not in self._known_columns:
            with connections[self.using].cursor() as cursor:
                cursor.execute(
                    "SELECT attname FROM pg_attribute WHERE attrelid = to_regclass(%s) AND attnum > 0", [view]
                )
                self._known_columns[view] = {row[0] for row in cursor.fetchall()}
        return self._known_columns[view]

    def _relation(self, period: str, since: datetime, fields: Sequence[str]) -> tuple[str, list]:
        """The buckets from `since` on: the aggregate's, and before them what a redefinition kept in history."""
        from collectors import timescale

        view = timescale.AGGREGATES[period]
        # Aggregates set up without --percentiles have no percentile columns: those figures read as none.
        present = self._columns(view)
        figures = [f if f in present else f"NULL::double precision AS {f}" for f in _checked(fields)]
        columns = ", ".join(["model_id", "bucket", *figures])
        history = timescale.history_table(period)
        if not timescale.relation_exists(connections[self.using], history):
            return f"(SELECT {columns} FROM {view} WHERE bucket >= %s)", [since]
        newest = f"COALESCE((SELECT max(bucket) FROM {history}), '-infinity'::timestamptz)"
        sql = (
            f"(SELECT {columns} FROM {view} WHERE bucket >= %s AND bucket > {newest} "
            f"UNION ALL SELECT {columns} FROM {history} WHERE bucket >= %s)"
        )
        return sql, [since, since]

    def rows(
        self, period: str, since: datetime, fields: Sequence[str], model_ids: Sequence[int] | None = None
    ) -> list[tuple]:
        relation, params = self._relation(period, since, fields)
        sql = f"SELECT * FROM {relation} AS figures"
        if model_ids is not None:
            sql += " WHERE model_id = ANY(%s)"
            params = [*params, list(model_ids)]
        with connections[self.using].cursor() as cursor:
            cursor.execute(sql, params)
            return [tuple(row) for row in cursor.fetchall()]

    def sums(self, period: str, since: datetime, fields: Sequence[str]) -> dict[str, int]:
        relation, params = self._relation(period, since, fields)
        columns = ", ".join(f"COALESCE(sum({f}), 0)" for f in fields)
        with connections[self.using].cursor() as cursor:
            cursor.execute(f"SELECT {columns} FROM {relation} AS figures", params)
            return dict(zip(fields, (int(v) for v in cursor.fetchone()), strict=True))

    def mark(self, period: str, since: datetime) -> tuple:
        relation, params = self._relation(period, since, ["total"])
        with connections[self.using].cursor() as cursor:
            cursor.execute(f"SELECT count(*), sum(total), max(bucket) FROM {relation} AS figures", params)
            return tuple(cursor.fetchone())


def on_timescale(using: str = "default") -> bool:
    return settings.DATABASES[using]["ENGINE"] == TIMESCALE_ENGINE


@cache
def rollup_reader() -> RollupTableReader | AggregateReader:
    """The source for this deployment, chosen once per process from the primary's engine."""
    return AggregateReader() if on_timescale() else RollupTableReader()


__all__ = ["FIGURES", "AggregateReader", "Period", "RollupTableReader", "on_timescale", "rollup_reader"]
