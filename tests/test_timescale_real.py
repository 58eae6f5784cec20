"""The TimescaleDB path on a real TimescaleDB: setup, conversion, re-runs, history kept, reads through the aggregates.

Runs only where TIMESCALE_TEST_URL names a PostgreSQL server with timescaledb preloaded (for example
postgres://postgres@127.0.0.1:55432/postgres); each test makes a database of its own there and drops it.
"""

import json
import os
import subprocess
import sys
import uuid
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg
import pytest

ROOT = Path(__file__).resolve().parent.parent
SERVER = os.environ.get("TIMESCALE_TEST_URL", "")

pytestmark = pytest.mark.skipif(not SERVER, reason="TIMESCALE_TEST_URL names no TimescaleDB server to test against")


def _url(database: str, scheme: str) -> str:
    parts = urlsplit(SERVER)
    return urlunsplit((scheme, parts.netloc, f"/{database}", "", ""))


@contextmanager
def fresh_database():
    name = f"aistatus_ts_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(_url("postgres", "postgresql"), autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield name
    finally:
        with psycopg.connect(_url("postgres", "postgresql"), autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def manage(database: str, *args: str, scheme: str = "timescale", **env: str) -> subprocess.CompletedProcess:
    environment = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "aistatus.settings",
        "DATABASE_URL": _url(database, scheme),
        "REDIS_URL": "",
        "SECRET_KEY": "test",
        "LOG_LEVEL": "WARNING",
        **env,
    }
    done = subprocess.run(
        [sys.executable, "manage.py", *args], cwd=ROOT, env=environment, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done


def sql(database: str, statement: str, params=None) -> list[tuple]:
    with psycopg.connect(_url(database, "postgresql"), autocommit=True) as conn:
        cursor = conn.execute(statement, params)
        return cursor.fetchall() if cursor.description else []


def seed_results(database: str, hours_back: float, until_hours_back: float = 1.0, every_seconds: int = 60) -> int:
    """Two models with results every `every_seconds` over a past span: mostly ok with varied latency, some faults."""
    sql(database, "INSERT INTO monitoring_provider (name, slug, url, display_order, created_at) "
                  "VALUES ('Acme', 'acme', '', 0, now())")  # fmt: skip
    for slug in ("one", "two"):
        sql(
            database,
            "INSERT INTO monitoring_aimodel (provider_id, name, slug, description, kind, probe_kind, endpoint, "
            "upstream_model, probe_config, interval_seconds, timeout_seconds, latency_threshold_ms, "
            "ttft_threshold_ms, failures_to_confirm, successes_to_recover, public, enabled, display_order, "
            "created_at, updated_at) SELECT id, %s, %s, '', 'chat', 'openai_chat', 'http://127.0.0.1:1/v1', '', "
            "'{}', 60, 30, 10000, 5000, 2, 2, true, true, 0, now(), now() FROM monitoring_provider",
            [slug.title(), slug],
        )
    return sql(
        database,
        """
        INSERT INTO collectors_checkresult (time, model_id, region, outcome, http_status, latency_ms, error)
        SELECT t, m.id, 'default',
               CASE WHEN extract(epoch FROM t)::bigint %% 7 = 0 THEN 'provider_fault' ELSE 'ok' END,
               200, 100 + (extract(epoch FROM t)::bigint %% 97) + m.id * 10, ''
        FROM monitoring_aimodel m,
             generate_series(date_trunc('hour', now()) - make_interval(secs => %s),
                             date_trunc('hour', now()) - make_interval(secs => %s) - INTERVAL '1 second',
                             make_interval(secs => %s)) AS t
        RETURNING 1
        """,
        [hours_back * 3600, until_hours_back * 3600, every_seconds],
    ).__len__()


READ_BOTH = """
import json
from datetime import timedelta
from django.utils import timezone
from collectors.rollup_reader import AggregateReader, RollupTableReader
from publishing import snapshot

since = timezone.now() - timedelta(days=30)
out = {}
for name, reader in (("tables", RollupTableReader()), ("aggregates", AggregateReader())):
    snapshot.rollup_reader = lambda reader=reader: reader
    ids = [1, 2]
    out[name] = {
        "hours": sorted([m, b.isoformat(), *[None if v is None else round(float(v), 6) for v in rest]]
                        for m, b, *rest in reader.rows("hour", since, ["total", "ok", "provider_fault",
                                                                      "latency_p50_ms", "latency_p95_ms"])),
        "days": sorted([m, b.isoformat(), t] for m, b, t in reader.rows("day", since, ["total"])),
        "minute_sums": reader.sums("minute", since, ["total", "ok", "provider_fault"]),
        "page_24h": snapshot._latency(ids, timezone.now()),
    }
print(json.dumps(out, default=str))
"""


def read_both(database: str) -> dict:
    done = manage(database, "shell", "-c", READ_BOTH)
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_a_fresh_database_gets_the_id_and_time_key_one_time_index_aggregates_and_retention():
    with fresh_database() as db:
        manage(db, "migrate", "--noinput", "-v", "0")
        first = manage(db, "timescale_setup", "--percentiles", RESULT_RETENTION_DAYS="9").stdout
        assert "continuous aggregate per minute" in first
        key = sql(db, "SELECT pg_get_constraintdef(oid) FROM pg_constraint "
                      "WHERE conrelid = 'collectors_checkresult'::regclass AND contype = 'p'")  # fmt: skip
        assert key == [('PRIMARY KEY (id, "time")',)]
        indexes = {name for (name,) in sql(db, "SELECT indexname FROM pg_indexes WHERE tablename = "
                                               "'collectors_checkresult'")}  # fmt: skip
        assert indexes == {"collectors_checkresult_pkey", "checkresult_model_time", "checkresult_time"}
        policies = sql(db, "SELECT hypertable_name, config->>'drop_after' FROM timescaledb_information.jobs "
                           "WHERE proc_name = 'policy_retention' ORDER BY 1")  # fmt: skip
        assert ("collectors_checkresult", "9 days") in policies and len(policies) == 4
        again = manage(db, "timescale_setup", "--percentiles", RESULT_RETENTION_DAYS="9").stdout
        assert "continuous aggregate per" not in again and "is on TimescaleDB" in again


def test_a_table_migrated_on_plain_postgresql_is_converted_with_its_rows():
    with fresh_database() as db:
        manage(db, "migrate", "--noinput", "-v", "0", scheme="postgres")
        rows = seed_results(db, hours_back=3)
        manage(db, "timescale_setup", "--percentiles", scheme="postgres")
        assert sql(db, "SELECT count(*) FROM collectors_checkresult") == [(rows,)]
        assert sql(db, "SELECT count(*) FROM timescaledb_information.hypertables "
                       "WHERE hypertable_name = 'collectors_checkresult'") == [(1,)]  # fmt: skip
        key = sql(db, "SELECT pg_get_constraintdef(oid) FROM pg_constraint "
                      "WHERE conrelid = 'collectors_checkresult'::regclass AND contype = 'p'")  # fmt: skip
        assert key == [('PRIMARY KEY (id, "time")',)]


def test_the_page_reads_the_same_figures_through_the_aggregates_as_through_the_rollup_tables():
    with fresh_database() as db:
        manage(db, "migrate", "--noinput", "-v", "0")
        seed_results(db, hours_back=5, until_hours_back=1)
        # The rollup task works off a backlog a few hours per run: run it until it has nothing left to write.
        manage(
            db,
            "shell",
            "-c",
            "from collectors.rollups import update_rollups\nfor _ in range(5): update_rollups()",
        )
        manage(db, "timescale_setup", "--percentiles", "--refresh")
        both = read_both(db)
        assert both["tables"]["hours"] and both["tables"]["hours"] == both["aggregates"]["hours"]
        assert both["tables"]["minute_sums"] == both["aggregates"]["minute_sums"]
        assert both["tables"]["page_24h"] == both["aggregates"]["page_24h"]
        assert both["tables"]["page_24h"]["1"]["p50_ms"] is not None


def test_adding_percentiles_later_replaces_the_aggregates_and_keeps_their_history():
    with fresh_database() as db:
        manage(db, "migrate", "--noinput", "-v", "0")
        manage(db, "timescale_setup", RESULT_RETENTION_DAYS="1")
        seed_results(db, hours_back=72, until_hours_back=1, every_seconds=300)
        manage(db, "timescale_setup", "--refresh", RESULT_RETENTION_DAYS="4")
        before = read_both(db)["aggregates"]["days"]
        # Retention drops the oldest raw results: the aggregates keep those days.
        sql(db, "SELECT drop_chunks('collectors_checkresult', older_than => now() - INTERVAL '1 day')")
        assert sql(db, "SELECT min(time) > now() - INTERVAL '2 days' FROM collectors_checkresult") == [(True,)]

        done = manage(db, "timescale_setup", "--percentiles", "--refresh", RESULT_RETENTION_DAYS="1").stdout
        assert "keep collectors_checkresult_day's earlier history" in done
        after = read_both(db)["aggregates"]
        assert after["days"] == before
        assert any(row[3] is not None for row in after["hours"])  # the percentiles are there now
