"""The TimescaleDB path: turn the check-result table into a hypertable, add continuous aggregates and retention.

Nothing here runs on plain PostgreSQL: `manage.py timescale_setup` checks for the extension first and
changes nothing without it. On plain PostgreSQL the same figures are kept in CheckRollup by the
update_rollups task, and apply_retention deletes old rows; the application keeps reading CheckRollup
either way, so this path can be switched on (or left off) without touching the code that reads.

Why a command and not the timescale:// engine alone: django-timescaledb 0.2.13 makes a table a
hypertable only when its migration creates it, so a database migrated under the plain engine keeps a
plain table after switching engines; this converts it. A hypertable's unique indexes must include the
partitioning column, so the primary key on `id` alone is replaced by one on (id, time).

Continuous aggregates (TimescaleDB 2.9 or later, for aggregates built on aggregates):

  collectors_checkresult_minute   from the raw results: counts by outcome, latency of answered checks
                                  (sum, count, max; p50/p95 by percentile_cont only when asked for)
  collectors_checkresult_hour     from the minutes: counts and sums added, maxima kept, percentiles
  collectors_checkresult_day      from the hours      averaged weighted by answered checks (as CheckRollup)

Percentiles cannot be combined exactly; hours and days hold averages of the finer buckets' weighted
by their ok counts, as CheckRollup does (rollups.py), so both sources read the same figures
(collectors/rollup_reader.py). Without --percentiles the aggregates keep counts and maxima only
and the page shows no latency figures.

Re-running applies the current definition. Each aggregate carries its definition's signature as a
comment; when one differs (say --percentiles was added), the three aggregates are replaced together
(each level is built on the one below), and history is kept: the old aggregates' buckets that the
raw results no longer cover are first copied into a plain `<aggregate>_history` hypertable with the
same retention, which the reader reads beside the new aggregate. Refreshes never reach past the raw
retention, so no bucket is ever recomputed from results that are gone.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from collectors.models import CheckResult, Period
from collectors.rollups import OUTCOMES

TABLE = CheckResult._meta.db_table
TIME_COLUMN = "time"
CHUNK_INTERVAL = timedelta(days=1)
MINIMUM_VERSION = (2, 9)

AGGREGATES = {
    Period.MINUTE: f"{TABLE}_minute",
    Period.HOUR: f"{TABLE}_hour",
    Period.DAY: f"{TABLE}_day",
}
BUCKET = {Period.MINUTE: timedelta(minutes=1), Period.HOUR: timedelta(hours=1), Period.DAY: timedelta(days=1)}
# How far back each refresh looks for changed (late) data, at most: a refresh must never reach past its
# source's retention, or it would empty buckets whose source rows are gone.
LOOKBACK = {Period.MINUTE: timedelta(days=1), Period.HOUR: timedelta(days=3), Period.DAY: timedelta(days=7)}
SCHEDULE = {Period.MINUTE: timedelta(minutes=1), Period.HOUR: timedelta(minutes=10), Period.DAY: timedelta(hours=1)}

NOT_PRELOADED = (
    "the timescaledb extension is installed on this PostgreSQL server but not preloaded: add timescaledb to "
    "shared_preload_libraries in postgresql.conf (shared_preload_libraries = 'timescaledb') and restart the "
    "server. Nothing was changed."
)
NOT_AVAILABLE = (
    "the timescaledb extension is not available on this database; install TimescaleDB on the PostgreSQL "
    "server (with timescaledb in shared_preload_libraries) to use this path. Nothing was changed: on plain "
    "PostgreSQL the rollup tables and the update_rollups and apply_retention tasks do this work."
)


class TimescaleUnavailable(RuntimeError):
    """The database cannot take the TimescaleDB path; nothing was changed."""


@dataclass(frozen=True, slots=True)
class Retention:
    """Days each level is kept, from the settings of the same names."""

    raw_days: int
    minute_days: int
    hour_days: int
    day_days: int

    @classmethod
    def from_settings(cls, settings: Any) -> Retention:
        return cls(
            int(settings.RESULT_RETENTION_DAYS),
            int(settings.MINUTE_ROLLUP_RETENTION_DAYS),
            int(settings.HOUR_ROLLUP_RETENTION_DAYS),
            int(settings.DAY_ROLLUP_RETENTION_DAYS),
        )

    def of(self, level: str) -> int:
        return {"raw": self.raw_days, Period.MINUTE: self.minute_days, Period.HOUR: self.hour_days,
                Period.DAY: self.day_days}[level]  # fmt: skip


@dataclass(frozen=True, slots=True)
class Step:
    """One statement of the setup, with what it is for (printed by --dry-run and as it runs)."""

    purpose: str
    sql: str


def span(delta: timedelta) -> str:
    """A duration in words PostgreSQL reads as an interval: whole days, hours, minutes or else seconds."""
    seconds = int(delta.total_seconds())
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60)):
        if seconds % size == 0:
            count = seconds // size
            return f"{count} {unit}{'' if count == 1 else 's'}"
    return f"{seconds} second{'' if seconds == 1 else 's'}"


def interval(delta: timedelta) -> str:
    """A PostgreSQL interval literal."""
    return f"INTERVAL '{span(delta)}'"


def days(n: int) -> str:
    return interval(timedelta(days=n))


# --- The statements --------------------------------------------------------------------------------------------------


# The index create_hypertable adds on `time` by default; the model has its own (checkresult_time).
DEFAULT_TIME_INDEX = f"{TABLE}_{TIME_COLUMN}_idx"


def hypertable_steps(primary_key: str | None, *, hypertable: bool, has_primary_key: bool) -> list[Step]:
    """The table as a hypertable keyed by (id, time), with one index on time.

    `primary_key`: a key without `time` to replace (a plain table migrated by Django); a hypertable
    made by django-timescaledb's engine has no key at all and gets one.
    """
    steps = []
    if primary_key:
        steps += [
            Step(
                f"drop the primary key {primary_key} (a hypertable's unique indexes must include {TIME_COLUMN})",
                f'ALTER TABLE "{TABLE}" DROP CONSTRAINT "{primary_key}"',
            ),  # fmt: skip
        ]
    if primary_key or not has_primary_key:
        steps.append(
            Step(
                "keep ids unique with a primary key that includes the partitioning column",
                f'ALTER TABLE "{TABLE}" ADD CONSTRAINT "{TABLE}_pkey" PRIMARY KEY (id, "{TIME_COLUMN}")',
            )
        )
    if not hypertable:
        steps.append(
            Step(
                f"make {TABLE} a hypertable on {TIME_COLUMN}, one chunk a day, moving the existing rows into chunks",
                f"SELECT create_hypertable('{TABLE}', '{TIME_COLUMN}', migrate_data => true, "
                f"chunk_time_interval => {interval(CHUNK_INTERVAL)}, "
                # The table already has its time and (model, time) indexes.
                "create_default_indexes => false, if_not_exists => true)",
            )
        )
    steps.append(
        Step(
            "one index on time: drop the default one the engine's create_hypertable added beside checkresult_time",
            f'DROP INDEX IF EXISTS "{DEFAULT_TIME_INDEX}"',
        )
    )
    return steps


def _outcome_counts(source: str | None) -> list[str]:
    if source is None:
        return ["count(*) AS total"] + [f"count(*) FILTER (WHERE outcome = '{o}') AS {o}" for o in OUTCOMES]
    return ["sum(total)::bigint AS total"] + [f"sum({o})::bigint AS {o}" for o in OUTCOMES]


def aggregate_sql(period: str, percentiles: bool) -> str:
    """CREATE MATERIALIZED VIEW of one level: minutes from raw results, hours from minutes, days from hours."""
    name = AGGREGATES[period]
    bucket = interval(BUCKET[period])
    if period == Period.MINUTE:
        answered = "outcome = 'ok' AND latency_ms IS NOT NULL"
        figures = [
            *_outcome_counts(None),
            f"sum(latency_ms) FILTER (WHERE {answered}) AS latency_sum_ms",
            f"count(latency_ms) FILTER (WHERE {answered}) AS latency_count",
            f"max(latency_ms) FILTER (WHERE {answered}) AS latency_max_ms",
        ]
        if percentiles:
            # Ordered-set aggregates are accepted in continuous aggregates since TimescaleDB 2.7 (its release
            # notes); off by default, since the plain counts, sums and maxima work on every version.
            figures += [
                f"percentile_cont(0.5) WITHIN GROUP (ORDER BY latency_ms) FILTER (WHERE {answered}) AS latency_p50_ms",
                f"percentile_cont(0.95) WITHIN GROUP (ORDER BY latency_ms) FILTER (WHERE {answered}) AS latency_p95_ms",
            ]
        source, time_column = TABLE, TIME_COLUMN
    else:
        figures = [
            *_outcome_counts("finer"),
            "sum(latency_sum_ms) AS latency_sum_ms",
            "sum(latency_count)::bigint AS latency_count",
            "max(latency_max_ms) AS latency_max_ms",
        ]
        if percentiles:
            # Weighted by ok counts over the finer buckets that have a figure, as CheckRollup's hours and days.
            figures += [
                f"sum(latency_{p} * ok) FILTER (WHERE latency_{p} IS NOT NULL) "
                f"/ NULLIF(sum(ok) FILTER (WHERE latency_{p} IS NOT NULL), 0) AS latency_{p}"
                for p in ("p50_ms", "p95_ms")
            ]
        source = AGGREGATES[Period.MINUTE if period == Period.HOUR else Period.HOUR]
        time_column = "bucket"
    columns = ",\n       ".join(figures)
    return (
        f"CREATE MATERIALIZED VIEW {name}\n"
        "WITH (timescaledb.continuous, timescaledb.materialized_only = false) AS\n"
        f"SELECT model_id, time_bucket({bucket}, {time_column}) AS bucket,\n"
        f"       {columns}\n"
        f"FROM {source}\n"
        "GROUP BY model_id, time_bucket(" + bucket + f", {time_column})\n"
        "WITH NO DATA"
    )


def refresh_window(period: str, retention: Retention, grace: timedelta) -> tuple[timedelta, timedelta]:
    """(start_offset, end_offset) of a level's refresh policy."""
    source_days = retention.of("raw" if period == Period.MINUTE else (Period.MINUTE if period == Period.HOUR
                                                                       else Period.HOUR))  # fmt: skip
    # Stay a day inside the source's retention, and cover at least two buckets as TimescaleDB requires.
    start = min(LOOKBACK[period], timedelta(days=max(source_days - 1, 0)))
    end = max(BUCKET[period], grace) if period == Period.MINUTE else BUCKET[period]
    start = max(start, end + 2 * BUCKET[period])
    return start, end


PERIODS = (Period.MINUTE, Period.HOUR, Period.DAY)
SUPERSEDED = "_superseded"


def signature(percentiles: bool) -> str:
    """What an aggregate's comment says of its definition; a different one means it must be replaced."""
    return "aistatus rollups v2" + (" with percentiles" if percentiles else "")


def history_table(period: str) -> str:
    return f"{AGGREGATES[period]}_history"


def _first_full_bucket(period: str) -> str:
    """SQL for the first bucket the raw results cover whole (infinity when there are none)."""
    bucket = interval(BUCKET[period])
    first = f'(SELECT min("{TIME_COLUMN}") FROM "{TABLE}")'
    return (
        f"COALESCE(CASE WHEN time_bucket({bucket}, {first}) = {first} THEN {first} "
        f"ELSE time_bucket({bucket}, {first}) + {bucket} END, 'infinity'::timestamptz)"
    )


def aggregate_columns(percentiles: bool) -> list[str]:
    """The columns of an aggregate of the current definition, in order."""
    latency = ["latency_sum_ms", "latency_count", "latency_max_ms"]
    return ["model_id", "bucket", "total", *OUTCOMES, *latency] + (
        ["latency_p50_ms", "latency_p95_ms"] if percentiles else []
    )


def replacement_steps(
    existing: dict[str, str | None],
    retention: Retention,
    percentiles: bool,
    columns: dict[str, list[str]] | None = None,
) -> list[Step]:
    """Replace aggregates whose definition differs, keeping the history the raw results can no longer rebuild.

    `existing`: each aggregate's current signature ("" when it carries none: an earlier definition);
    missing aggregates are not in it. `columns`: each existing aggregate's columns. Every level is built
    on the one below, so all three are replaced.
    """
    present = [p for p in PERIODS if AGGREGATES[p] in existing]
    steps = [
        Step(
            f"set {AGGREGATES[p]} aside while its new definition is built",
            f"ALTER MATERIALIZED VIEW {AGGREGATES[p]} RENAME TO {AGGREGATES[p]}{SUPERSEDED}",
        )
        for p in present
    ]
    for period in PERIODS:
        steps += [
            Step(f"continuous aggregate per {period}", aggregate_sql(period, percentiles)),
            Step(
                f"mark {AGGREGATES[period]} with its definition",
                f"COMMENT ON VIEW {AGGREGATES[period]} IS '{signature(percentiles)}'",
            ),
        ]
    for period in present:
        view, history = AGGREGATES[period], history_table(period)
        old = f"{view}{SUPERSEDED}"
        keep = retention.of(period)
        # Only the columns both definitions have move over; the others stay empty in the history.
        shared = ", ".join(c for c in aggregate_columns(percentiles) if c in (columns or {}).get(view, ()))
        steps += [
            Step(
                f"keep {view}'s earlier history in {history}",
                f"CREATE TABLE IF NOT EXISTS {history} (LIKE {view})",
            ),
            Step(
                f"{history}: a hypertable on bucket, dropped like {view} after {keep} days",
                f"SELECT create_hypertable('{history}', 'bucket', migrate_data => true, if_not_exists => true, "
                f"chunk_time_interval => {interval(timedelta(days=7))})",
            ),
            *(
                [
                    Step(
                        f"{history} holds the percentiles too (an earlier definition's history may lack them)",
                        f"ALTER TABLE {history} ADD COLUMN IF NOT EXISTS latency_p50_ms double precision, "
                        "ADD COLUMN IF NOT EXISTS latency_p95_ms double precision",
                    )
                ]
                if percentiles
                else []
            ),
            Step(
                f"copy the buckets of {old} that the raw results no longer cover whole",
                f"INSERT INTO {history} ({shared}) SELECT {shared} FROM {old} "
                f"WHERE bucket < {_first_full_bucket(period)} "
                f"AND bucket > COALESCE((SELECT max(bucket) FROM {history}), '-infinity'::timestamptz)",
            ),
            Step(
                f"retention policy of {history}",
                f"SELECT add_retention_policy('{history}', drop_after => {days(keep)}, if_not_exists => true)",
            ),
        ]
    steps += [
        Step(f"drop the superseded {AGGREGATES[p]}", f"DROP MATERIALIZED VIEW {AGGREGATES[p]}{SUPERSEDED}")
        for p in reversed(present)
    ]
    return steps


def aggregate_steps(
    retention: Retention,
    grace: timedelta,
    percentiles: bool,
    existing: dict[str, str | None] | None = None,
    columns: dict[str, list[str]] | None = None,
) -> list[Step]:
    existing = existing or {}
    wanted = signature(percentiles)
    steps = []
    if any(existing.get(AGGREGATES[p]) != wanted for p in PERIODS):
        steps += replacement_steps(existing, retention, percentiles, columns)
    for period in PERIODS:
        name = AGGREGATES[period]
        start, end = refresh_window(period, retention, grace)
        steps += [
            # Replaced rather than kept, so that the current settings apply on every run.
            Step(
                f"refresh policy of {name}", f"SELECT remove_continuous_aggregate_policy('{name}', if_exists => true)"
            ),  # fmt: skip
            Step(
                f"refresh {name} every {span(SCHEDULE[period])}, looking back {span(start)}",
                f"SELECT add_continuous_aggregate_policy('{name}', start_offset => {interval(start)}, "
                f"end_offset => {interval(end)}, schedule_interval => {interval(SCHEDULE[period])})",
            ),
        ]
    return steps


def retention_steps(retention: Retention) -> list[Step]:
    steps = []
    for level, relation in [("raw", TABLE), *((p, AGGREGATES[p]) for p in (Period.MINUTE, Period.HOUR, Period.DAY))]:
        keep = retention.of(level)
        steps += [
            Step(f"retention policy of {relation}", f"SELECT remove_retention_policy('{relation}', if_exists => true)"),
            Step(
                f"drop chunks of {relation} older than {keep} days",
                f"SELECT add_retention_policy('{relation}', drop_after => {days(keep)})",
            ),  # fmt: skip
        ]
    return steps


def plan(
    retention: Retention, grace: timedelta, *, primary_key: str | None = f"{TABLE}_pkey", hypertable: bool = False,
    has_primary_key: bool = True, percentiles: bool = False, existing: dict[str, str | None] | None = None,
    columns: dict[str, list[str]] | None = None,
) -> list[Step]:  # fmt: skip
    """Every statement of the setup, in order, for a database in the given state (see State)."""
    steps = hypertable_steps(primary_key, hypertable=hypertable, has_primary_key=has_primary_key)
    return steps + aggregate_steps(retention, grace, percentiles, existing, columns) + retention_steps(retention)


def first_full_bucket(moment: datetime, period: str) -> datetime:
    """The first bucket of `period` that starts at or after `moment` (so it is covered whole from there on)."""
    size = BUCKET[period]
    epoch = datetime(1970, 1, 1, tzinfo=UTC)
    buckets, remainder = divmod(moment.astimezone(UTC) - epoch, size)
    return epoch + (buckets + (1 if remainder else 0)) * size


def refresh_sql(first_raw: datetime | None) -> list[str]:
    """Fill the aggregates, finest first, from the first bucket the raw results still cover whole.

    Older buckets keep what they hold: recomputing them from results that retention has dropped
    would empty them. CALL cannot run inside a transaction. No raw results: nothing to refresh.
    """
    if first_raw is None:
        return []
    return [
        f"CALL refresh_continuous_aggregate('{AGGREGATES[p]}', "
        f"'{first_full_bucket(first_raw, p):%Y-%m-%d %H:%M:%S}+00'::timestamptz, NULL)"
        for p in PERIODS
    ]


def first_raw_result(connection: Any) -> datetime | None:
    with connection.cursor() as cursor:
        cursor.execute(f'SELECT min("{TIME_COLUMN}") FROM "{TABLE}"')
        return cursor.fetchone()[0]


# --- Against a database ----------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class State:
    """What the database has: the installed extension version (None: not installed), whether it could be
    installed, whether the result table is a hypertable, its primary key's name if that lacks `time`, whether
    it has a primary key at all, whether the server preloads the library, and each aggregate's signature."""

    version: tuple[int, ...] | None
    available: bool
    hypertable: bool
    primary_key_without_time: str | None
    has_primary_key: bool = True
    preloaded: bool = False
    aggregates: dict[str, str | None] = field(default_factory=dict)
    aggregate_columns: dict[str, list[str]] = field(default_factory=dict)


def _version(text: str) -> tuple[int, ...]:
    return tuple(int(part) for part in text.split("-")[0].split(".") if part.isdigit())


def preloaded(connection: Any) -> bool:
    with connection.cursor() as cursor:
        cursor.execute("SELECT current_setting('shared_preload_libraries')")
        libraries = cursor.fetchone()[0]
    return "timescaledb" in [name.strip() for name in libraries.split(",")]


def refusal(connection: Any) -> str | None:
    """Why this server cannot take the TimescaleDB path (the extension missing or not preloaded), or None."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1 FROM pg_available_extensions WHERE name = 'timescaledb'")
        if cursor.fetchone() is None:
            return NOT_AVAILABLE
    return None if preloaded(connection) else NOT_PRELOADED


def relation_exists(connection: Any, name: str) -> bool:
    with connection.cursor() as cursor:
        cursor.execute("SELECT to_regclass(%s) IS NOT NULL", [name])
        return cursor.fetchone()[0]


def inspect(connection: Any) -> State:
    """Read the state without changing anything. Raises TimescaleUnavailable on a database other than PostgreSQL."""
    if connection.vendor != "postgresql":
        raise TimescaleUnavailable(f"TimescaleDB needs PostgreSQL; this database is {connection.vendor}. "
                                   "Nothing was changed.")  # fmt: skip
    with connection.cursor() as cursor:
        cursor.execute("SELECT extversion FROM pg_extension WHERE extname = 'timescaledb'")
        row = cursor.fetchone()
        version = _version(row[0]) if row else None
        cursor.execute("SELECT 1 FROM pg_available_extensions WHERE name = 'timescaledb'")
        available = version is not None or cursor.fetchone() is not None
        hypertable = False
        aggregates: dict[str, str | None] = {}
        columns: dict[str, list[str]] = {}
        if version is not None:
            cursor.execute("SELECT 1 FROM timescaledb_information.hypertables WHERE hypertable_name = %s", [TABLE])
            hypertable = cursor.fetchone() is not None
            cursor.execute(
                "SELECT view_name, COALESCE(obj_description("
                "format('%%I.%%I', view_schema, view_name)::regclass, 'pg_class'), '') "
                "FROM timescaledb_information.continuous_aggregates WHERE view_name = ANY(%s)",
                [list(AGGREGATES.values())],
            )
            aggregates = dict(cursor.fetchall())
            for name in aggregates:
                cursor.execute(
                    "SELECT attname FROM pg_attribute WHERE attrelid = %s::regclass AND attnum > 0 "
                    "AND NOT attisdropped ORDER BY attnum",
                    [name],
                )
                columns[name] = [row[0] for row in cursor.fetchall()]
        cursor.execute(
            """
            SELECT c.conname, bool_or(a.attname = %s)
            FROM pg_constraint c JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = ANY(c.conkey)
            WHERE c.conrelid = %s::regclass AND c.contype = 'p'
            GROUP BY c.conname
            """,
            [TIME_COLUMN, TABLE],
        )
        key = cursor.fetchone()
    return State(
        version,
        available,
        hypertable,
        key[0] if key and not key[1] else None,
        has_primary_key=key is not None,
        preloaded=available and preloaded(connection),
        aggregates=aggregates,
        aggregate_columns=columns,
    )


def check(state: State) -> None:
    """Raise TimescaleUnavailable, saying why, when the setup cannot run on this database."""
    if not state.available:
        raise TimescaleUnavailable(NOT_AVAILABLE)
    if not state.preloaded:
        raise TimescaleUnavailable(NOT_PRELOADED)
    if state.version is not None and state.version < MINIMUM_VERSION:
        found = ".".join(map(str, state.version))
        wanted = ".".join(map(str, MINIMUM_VERSION))
        raise TimescaleUnavailable(
            f"TimescaleDB {found} is installed; this setup needs {wanted} or later "
            "(continuous aggregates built on continuous aggregates). Nothing was changed."
        )
