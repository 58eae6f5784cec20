"""Put check results on TimescaleDB: a hypertable, continuous aggregates and retention policies; safe to re-run."""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import DatabaseError, connections, transaction

from collectors import timescale


class Command(BaseCommand):
    help = (
        "Convert collectors_checkresult to a TimescaleDB hypertable (its rows moved into daily chunks), create "
        "continuous aggregates per minute, hour and day, and set retention from RESULT_RETENTION_DAYS and the "
        "*_ROLLUP_RETENTION_DAYS settings. Re-running applies the current settings. Without the timescaledb "
        "extension it exits with an error and changes nothing. Converting a large table rewrites it under a lock."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--database", default="default", help="Database alias (default: default).")
        parser.add_argument("--dry-run", action="store_true", help="Print the statements; change nothing.")
        parser.add_argument(
            "--percentiles",
            action="store_true",
            help="Also keep latency p50/p95 (percentile_cont) in the aggregates; TimescaleDB 2.7+ accepts it.",
        )
        parser.add_argument(
            "--refresh", action="store_true", help="Afterwards, fill the aggregates from all the results there are."
        )

    def handle(self, *args, database: str, dry_run: bool, percentiles: bool, refresh: bool, **options) -> None:
        connection = connections[database]
        try:
            state = timescale.inspect(connection)
        except timescale.TimescaleUnavailable as exc:
            raise CommandError(str(exc)) from None
        except DatabaseError as exc:
            raise CommandError(f"cannot read the database ({exc}); has `migrate` run? Nothing was changed.") from None
        steps = timescale.plan(
            timescale.Retention.from_settings(settings),
            timedelta(seconds=settings.ROLLUP_GRACE_SECONDS),
            primary_key=state.primary_key_without_time,
            hypertable=state.hypertable,
            percentiles=percentiles,
        )
        if dry_run:
            for step in steps:
                self.stdout.write(f"-- {step.purpose}\n{step.sql};\n")
            if refresh:
                self.stdout.write("\n".join(f"{sql};" for sql in timescale.refresh_sql()) + "\n")
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
            with connection.cursor() as cursor:
                for sql in timescale.refresh_sql():
                    self.stdout.write(sql)
                    cursor.execute(sql)
        self.stdout.write(self.style.SUCCESS(f"{timescale.TABLE} is on TimescaleDB; aggregates: "
                                             f"{', '.join(timescale.AGGREGATES.values())}"))  # fmt: skip
