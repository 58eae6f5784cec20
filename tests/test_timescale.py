"""The TimescaleDB path: refused cleanly, changing nothing, on plain PostgreSQL; the SQL it would run is right."""

import os
import subprocess
import sys
from datetime import timedelta
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command
from django.db import connection
from django.test import override_settings

from collectors import timescale
from collectors.models import CheckRollup
from collectors.rollups import OUTCOMES

ROOT = Path(__file__).resolve().parent.parent
RETENTION = timescale.Retention(raw_days=14, minute_days=7, hour_days=90, day_days=400)
GRACE = timedelta(seconds=120)


def _timescale_preloaded() -> bool:
    return timescale.refusal(connection) is None


def _schema() -> dict:
    """Everything the setup would change: extensions, the table's constraints and indexes, views, policies."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT extname FROM pg_extension ORDER BY 1")
        extensions = cursor.fetchall()
        cursor.execute(
            "SELECT conname, contype, pg_get_constraintdef(oid) FROM pg_constraint "
            "WHERE conrelid = 'collectors_checkresult'::regclass ORDER BY 1"
        )
        constraints = cursor.fetchall()
        cursor.execute(
            "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'collectors_checkresult' ORDER BY 1"
        )
        indexes = cursor.fetchall()
        cursor.execute("SELECT matviewname FROM pg_matviews ORDER BY 1")
        views = cursor.fetchall()
        cursor.execute("SELECT nspname FROM pg_namespace ORDER BY 1")
        schemas = cursor.fetchall()
    return {"extensions": extensions, "constraints": constraints, "indexes": indexes, "views": views,
            "schemas": schemas}  # fmt: skip


@pytest.fixture
def plain_postgresql(db):
    # Decided by preload, not by the extension's files: a server that has them but does not preload the
    # library refuses too, and must say so.
    if _timescale_preloaded():
        pytest.skip("this PostgreSQL preloads timescaledb; the refusal cannot be observed here")


def test_the_command_refuses_on_plain_postgresql_and_changes_nothing(plain_postgresql):
    before = _schema()
    with pytest.raises(CommandError) as refused:
        call_command("timescale_setup", stdout=StringIO())
    assert str(refused.value) == timescale.refusal(connection)
    assert _schema() == before
    assert ("collectors_checkresult_pkey", "p", "PRIMARY KEY (id)") in before["constraints"]


@pytest.mark.django_db(transaction=True)
def test_the_command_exits_non_zero_with_the_reason(plain_postgresql):
    db = connection.settings_dict
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "aistatus.settings",
        "DATABASE_URL": f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}",
        "SECRET_KEY": "test",
    }
    before = _schema()
    done = subprocess.run(
        [sys.executable, "manage.py", "timescale_setup"], cwd=ROOT, env=env, capture_output=True, text=True
    )
    assert done.returncode != 0
    assert timescale.refusal(connection) in done.stderr
    assert "Nothing was changed" in done.stderr and "Traceback" not in done.stderr
    assert _schema() == before


@override_settings(RESULT_RETENTION_DAYS=30, MINUTE_ROLLUP_RETENTION_DAYS=5, HOUR_ROLLUP_RETENTION_DAYS=60,
                   DAY_ROLLUP_RETENTION_DAYS=365)  # fmt: skip
def test_a_dry_run_prints_the_statements_for_this_database_from_the_settings(plain_postgresql):
    before = _schema()
    out = StringIO()
    call_command("timescale_setup", "--dry-run", stdout=out, stderr=StringIO())
    sql = out.getvalue()
    assert 'ALTER TABLE "collectors_checkresult" DROP CONSTRAINT "collectors_checkresult_pkey"' in sql
    assert "create_hypertable('collectors_checkresult', 'time', migrate_data => true" in sql
    assert "add_retention_policy('collectors_checkresult', drop_after => INTERVAL '30 days')" in sql
    assert "add_retention_policy('collectors_checkresult_minute', drop_after => INTERVAL '5 days')" in sql
    assert "add_retention_policy('collectors_checkresult_hour', drop_after => INTERVAL '60 days')" in sql
    assert "add_retention_policy('collectors_checkresult_day', drop_after => INTERVAL '365 days')" in sql
    assert _schema() == before


def test_inspect_reads_a_plain_table(plain_postgresql):
    state = timescale.inspect(connection)
    assert (state.version, state.hypertable, state.primary_key_without_time, state.preloaded) == (
        None,
        False,
        "collectors_checkresult_pkey",
        False,
    )
    with pytest.raises(timescale.TimescaleUnavailable, match="Nothing was changed"):
        timescale.check(state)


def test_an_old_timescaledb_is_refused():
    with pytest.raises(timescale.TimescaleUnavailable, match="2.9 or later"):
        timescale.check(timescale.State((2, 8, 1), True, False, None, preloaded=True))
    with pytest.raises(timescale.TimescaleUnavailable, match="shared_preload_libraries"):
        timescale.check(timescale.State((2, 17, 0), True, True, None, preloaded=False))
    timescale.check(timescale.State((2, 17, 0), True, True, None, preloaded=True))


def test_the_table_becomes_a_daily_hypertable_after_its_primary_key_includes_time():
    steps = [s.sql for s in timescale.plan(RETENTION, GRACE)]
    drop = steps.index('ALTER TABLE "collectors_checkresult" DROP CONSTRAINT "collectors_checkresult_pkey"')
    add = steps.index(
        'ALTER TABLE "collectors_checkresult" ADD CONSTRAINT "collectors_checkresult_pkey" PRIMARY KEY (id, "time")'
    )
    hypertable = next(i for i, s in enumerate(steps) if "create_hypertable" in s)
    assert drop < add < hypertable
    assert steps[hypertable] == (
        "SELECT create_hypertable('collectors_checkresult', 'time', migrate_data => true, "
        "chunk_time_interval => INTERVAL '1 day', create_default_indexes => false, if_not_exists => true)"
    )


def test_a_table_that_is_a_hypertable_already_is_left_alone():
    sql = " ".join(s.sql for s in timescale.plan(RETENTION, GRACE, primary_key=None, hypertable=True))
    assert "create_hypertable('collectors_checkresult'" not in sql and "CONSTRAINT" not in sql
    assert "CREATE MATERIALIZED VIEW collectors_checkresult_minute" in sql


def test_a_hypertable_the_engine_made_without_a_key_gets_the_id_and_time_key_and_one_time_index():
    steps = [s.sql for s in timescale.plan(RETENTION, GRACE, primary_key=None, hypertable=True, has_primary_key=False)]
    assert steps[:2] == [
        'ALTER TABLE "collectors_checkresult" ADD CONSTRAINT "collectors_checkresult_pkey" PRIMARY KEY (id, "time")',
        'DROP INDEX IF EXISTS "collectors_checkresult_time_idx"',
    ]


def test_aggregates_of_the_current_definition_are_kept_and_others_replaced_with_their_history():
    same = dict.fromkeys(timescale.AGGREGATES.values(), timescale.signature(percentiles=True))
    kept = " ".join(s.sql for s in timescale.plan(RETENTION, GRACE, hypertable=True, percentiles=True, existing=same))
    assert "CREATE MATERIALIZED VIEW" not in kept and "DROP MATERIALIZED VIEW" not in kept
    assert "add_continuous_aggregate_policy('collectors_checkresult_day'" in kept

    earlier = dict.fromkeys(timescale.AGGREGATES.values(), "")  # made before definitions carried a signature
    columns = dict.fromkeys(timescale.AGGREGATES.values(), timescale.aggregate_columns(percentiles=False))
    steps = [
        s.sql
        for s in timescale.plan(RETENTION, GRACE, hypertable=True, percentiles=True, existing=earlier, columns=columns)
    ]
    order = [
        "ALTER MATERIALIZED VIEW collectors_checkresult_minute RENAME TO collectors_checkresult_minute_superseded",
        "CREATE MATERIALIZED VIEW collectors_checkresult_day",
        "CREATE TABLE IF NOT EXISTS collectors_checkresult_day_history (LIKE collectors_checkresult_day)",
        "INSERT INTO collectors_checkresult_day_history (model_id, bucket, total,",
        "DROP MATERIALIZED VIEW collectors_checkresult_day_superseded",
        "DROP MATERIALIZED VIEW collectors_checkresult_minute_superseded",
    ]
    positions = [next(i for i, sql in enumerate(steps) if sql.startswith(start)) for start in order]
    assert positions == sorted(positions)
    copy = next(sql for sql in steps if sql.startswith("INSERT INTO collectors_checkresult_day_history"))
    # Percentiles the old definition lacked are not copied; the buckets raw results still cover are recomputed.
    assert "latency_p50_ms" not in copy and "FROM collectors_checkresult_day_superseded WHERE bucket <" in copy


def test_a_refresh_starts_at_the_first_bucket_the_raw_results_still_cover_whole():
    from datetime import UTC, datetime

    first = datetime(2026, 11, 19, 12, 0, 30, tzinfo=UTC)
    starts = [sql.split("', '")[1].split("'::")[0] for sql in timescale.refresh_sql(first)]
    assert starts == ["2026-11-19 12:01:00+00", "2026-11-19 13:00:00+00", "2026-11-20 00:00:00+00"]
    assert timescale.refresh_sql(first)[0] == (
        "CALL refresh_continuous_aggregate('collectors_checkresult_minute', "
        "'2026-11-19 12:01:00+00'::timestamptz, NULL)"
    )
    midnight = datetime(2026, 11, 20, tzinfo=UTC)
    assert timescale.refresh_sql(midnight)[2].endswith("'2026-11-20 00:00:00+00'::timestamptz, NULL)")
    assert timescale.refresh_sql(None) == []


def test_the_aggregates_mirror_the_rollups_figures_level_on_level():
    sources = {"minute": ("collectors_checkresult", "time", "1 minute"),
               "hour": ("collectors_checkresult_minute", "bucket", "1 hour"),
               "day": ("collectors_checkresult_hour", "bucket", "1 day")}  # fmt: skip
    rollup_fields = {f.name for f in CheckRollup._meta.fields}
    for period, (source, time_column, width) in sources.items():
        sql = timescale.aggregate_sql(period, percentiles=False)
        assert sql.startswith(f"CREATE MATERIALIZED VIEW collectors_checkresult_{period}\n")
        assert "timescaledb.continuous" in sql and "timescaledb.materialized_only = false" in sql
        assert f"time_bucket(INTERVAL '{width}', {time_column}) AS bucket" in sql
        assert f"\nFROM {source}\n" in sql and sql.endswith("WITH NO DATA")
        for figure in ["total", *OUTCOMES, "latency_max_ms"]:
            assert figure in rollup_fields
            assert f" AS {figure}," in sql or f" AS {figure}\n" in sql
        assert "latency_sum_ms" in sql and "latency_count" in sql
        # Plain TimescaleDB aggregates only, unless percentiles are asked for.
        assert "percentile_cont" not in sql and "latency_p50_ms" not in sql
    assert "percentile_cont(0.95) WITHIN GROUP (ORDER BY latency_ms)" in timescale.aggregate_sql("minute", True)
    assert (
        "sum(latency_p50_ms * ok) FILTER (WHERE latency_p50_ms IS NOT NULL) "
        "/ NULLIF(sum(ok) FILTER (WHERE latency_p50_ms IS NOT NULL), 0)"
    ) in timescale.aggregate_sql("day", True)


def test_refresh_windows_stay_inside_their_sources_retention():
    plan = " ".join(s.sql for s in timescale.plan(RETENTION, GRACE))
    assert ("add_continuous_aggregate_policy('collectors_checkresult_minute', start_offset => INTERVAL '1 day', "
            "end_offset => INTERVAL '2 minutes', schedule_interval => INTERVAL '1 minute')") in plan  # fmt: skip
    assert "add_continuous_aggregate_policy('collectors_checkresult_hour', start_offset => INTERVAL '3 days'" in plan
    assert "add_continuous_aggregate_policy('collectors_checkresult_day', start_offset => INTERVAL '7 days'" in plan
    short = timescale.Retention(raw_days=1, minute_days=2, hour_days=90, day_days=400)
    for period in ("minute", "hour", "day"):
        start, end = timescale.refresh_window(period, short, GRACE)
        source_days = {"minute": 1, "hour": 2, "day": 90}[period]
        assert start < timedelta(days=source_days)
        assert start - end >= 2 * timescale.BUCKET[period]


def test_every_policy_is_replaced_so_a_rerun_applies_the_current_settings():
    steps = [s.sql for s in timescale.plan(RETENTION, GRACE)]
    for relation in ["collectors_checkresult", *timescale.AGGREGATES.values()]:
        remove = steps.index(f"SELECT remove_retention_policy('{relation}', if_exists => true)")
        assert "add_retention_policy" in steps[remove + 1] and f"'{relation}'" in steps[remove + 1]
    for view in timescale.AGGREGATES.values():
        assert f"SELECT remove_continuous_aggregate_policy('{view}', if_exists => true)" in steps
