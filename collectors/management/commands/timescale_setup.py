"""Put check results on TimescaleDB: a hypertable, continuous aggregates and retention policies; safe to re-run."""

from __future__ import annotations

import time
from datetime import timedelta

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import DatabaseError, connections, transaction

from collectors import timescale


class Command(BaseCommand):
    help = (
        "Convert collectors_checkresult to a TimescaleDB hypertable (its rows moved into daily chunks), create "
        "continuous aggregates per minute, hour and day, and set retention from RESULT_RETENTION_DAYS and the "
        "*_ROLLUP_RETENTION_DAYS settings. Re-running applies the current definition and settings: aggregates "
        "defined differently are replaced, their older history kept. Without the timescaledb extension (installed "
        "and preloaded) it exits with an error and changes nothing. Converting a large table rewrites it under a lock."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--database", default="default", help="Database alias (default: default).")
        parser.add_argument("--dry-run", action="store_true", help="Print the statements; change nothing.")
        parser.add_argument(
            "--percentiles",
            action="store_true",
            help="Also keep latency p50/p95 (percentile_cont) in the aggregates, as the page shows them; "
            "TimescaleDB 2.7+ accepts it. Without it the aggregates hold counts and maxima only.",
        )
        parser.add_argument(
            "--refresh",
            action="store_true",
            help="Afterwards, fill the aggregates from the results still kept (RESULT_RETENTION_DAYS); older "
            "buckets keep what they hold.",
        )

    def handle(self, *args, database: str, dry_run: bool, percentiles: bool, refresh: bool, **options) -> None:
        connection = connections[database]
        try:
            state = timescale.inspect(connection)
        except timescale.TimescaleUnavailable as exc:
            raise CommandError(str(exc)) from None
        except DatabaseError as exc:
            raise CommandError(f"cannot read the database ({exc}); has `migrate` run? Nothing was changed.") from None
        retention = timescale.Retention.from_settings(settings)
        steps = timescale.plan(
            retention,
            timedelta(seconds=settings.ROLLUP_GRACE_SECONDS),
            primary_key=state.primary_key_without_time,
            hypertable=state.hypertable,
            has_primary_key=state.has_primary_key,
            percentiles=percentiles,
            existing=state.aggregates,
            columns=state.aggregate_columns,
        )
        if dry_run:
            for step in steps:
                self.stdout.write(f"-- {step.purpose}\n{step.sql};\n")
            if refresh:
                self.stdout.write(
                    "\n".join(f"{sql};" for sql in timescale.refresh_sql(timescale.first_raw_result(connection))) + "\n"
                )
            if not state.available:
                self.stderr.write(f"Note: {timescale.NOT_AVAILABLE}")
            return
        try:
            timescale.check(state)
        except timescale.TimescaleUnavailable as exc:
            raise CommandError(str(exc)) from None

        try:
            # One transaction: a failure anywhere leaves the database as it was.
            with transaction.atomic(using=database), connection.cursor() as cursor:
                if state.version is None:
                    self.stdout.write("create the timescaledb extension")
                    cursor.execute("CREATE EXTENSION IF NOT EXISTS timescaledb")
                    timescale.check(timescale.inspect(connection))
                for step in steps:
                    self.stdout.write(step.purpose)
                    cursor.execute(step.sql)
        except timescale.TimescaleUnavailable as exc:
            raise CommandError(str(exc)) from None
        except DatabaseError as exc:
            raise CommandError(f"TimescaleDB setup failed and was rolled back: {exc}") from None
        if refresh:
            # CALL refresh_continuous_aggregate cannot run inside a transaction block.
            for sql in timescale.refresh_sql(timescale.first_raw_result(connection)):
                self.stdout.write(sql)
                self._refresh(connection, sql)
        self.stdout.write(self.style.SUCCESS(f"{timescale.TABLE} is on TimescaleDB; aggregates: "
                                             f"{', '.join(timescale.AGGREGATES.values())}"))  # fmt: skip

    def _refresh(self, connection, sql: str, attempts: int = 10) -> None:
        """Run one refresh; TimescaleDB's own policy job may be refreshing the same aggregate: wait and retry."""
        for attempt in range(attempts):
            try:
                with connection.cursor() as cursor:
                    cursor.execute(sql)
                return
            except DatabaseError as exc:
                if "concurrently" not in str(exc) or attempt == attempts - 1:
                    raise CommandError(f"refresh failed: {exc}") from None
                time.sleep(1)
