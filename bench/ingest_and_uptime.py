"""Benchmark: bulk ingest of check results (rows/s) and the 90-day daily-uptime query for many models.

Ingest: N results (default 1,000,000) written through collectors.storage.insert_rows in batches, beside
baselines of the very same rows in the same run: a plain psycopg COPY in text format (what insert_rows
did before), the same in binary format (the driver's ceiling), and Django's bulk_create (on a slice;
the rate extrapolates). Each variant starts from an empty table with
its indexes, as a fresh install has. The ingested results are then rolled up with update_rollups.

Uptime: daily rollups (CheckRollup, period=day) for M models x D days (default 1,000 x 90) next to
the hour rollups the same 90 days leave, then the query a status page runs for them: per model per
day, ok/total and the failure counts. Median of several runs, against the 100 ms target.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import print_table, setup_django, write_figures  # noqa: E402

PROVIDER = "bench"
UPTIME_TARGET_MS = 100.0
OUTCOMES = ["ok"] * 96 + ["provider_fault", "timeout", "rate_limited", "probe_fault"]


def bench_models(count: int) -> list[int]:
    """Ids of `count` benchmark models (created when missing; the collector benchmark shares them)."""
    from monitoring.models import AIModel, Provider

    provider, _ = Provider.objects.get_or_create(slug=PROVIDER, defaults={"name": "Benchmark"})
    existing = AIModel.objects.filter(provider=provider).count()
    if existing < count:
        AIModel.objects.bulk_create(
            [
                AIModel(
                    provider=provider,
                    name=f"bench {i}",
                    slug=f"m{i}",
                    upstream_model="bench-model",
                    endpoint="http://127.0.0.1:9/v1",
                    public=False,
                    enabled=False,
                )  # fmt: skip
                for i in range(existing, count)
            ],
            batch_size=5000,
        )
    return list(AIModel.objects.filter(provider=provider).order_by("pk").values_list("pk", flat=True)[:count])


# --- Ingest ----------------------------------------------------------------------------------------------------------


def batches(model_ids: list[int], total: int, size: int, end: datetime, interval_s: int) -> Iterator[list]:
    """The same results every time it is called: each model probed every `interval_s`, up to `end`."""
    from collectors.probes.base import ProbeResult
    from collectors.storage import Observation

    rng = random.Random(7)
    per_model = -(-total // len(model_ids))
    start = end - timedelta(seconds=per_model * interval_s)
    made = 0
    batch: list[Observation] = []
    for step in range(per_model):
        moment = start + timedelta(seconds=step * interval_s)
        for model_id in model_ids:
            if made == total:
                break
            outcome = rng.choice(OUTCOMES)
            ok = outcome == "ok"
            result = ProbeResult(
                outcome,
                200 if ok else (503 if outcome == "provider_fault" else None),
                rng.uniform(80, 900) if ok else None,
                rng.uniform(40, 400) if ok else None,
                rng.uniform(40, 120) if ok else None,
                "" if ok else "HTTP 503: The model is unavailable (simulated outage).",
            )
            batch.append(Observation(model_id, "default", moment + timedelta(milliseconds=model_id % 1000), result))
            made += 1
            if len(batch) == size:
                yield batch
                batch = []
    if batch:
        yield batch


def truncate_results() -> None:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("TRUNCATE collectors_checkresult, collectors_checkrollup, collectors_rollupcursor")
        cursor.execute("CHECKPOINT")


def timed_ingest(name: str, write: Callable[[list], None], source: Callable[[], Iterator[list]]) -> dict[str, Any]:
    """Write every batch from `source` with `write`; only the writes are timed (making the rows is not).

    Besides the overall rate, the median of the batches' rates: a checkpoint or another process's burst
    during one batch moves the overall figure, not the median.
    """
    from django.db import transaction

    truncate_results()
    rows = 0
    spent = 0.0
    rates = []
    for batch in source():
        began = time.perf_counter()
        with transaction.atomic():
            write(batch)
        took = time.perf_counter() - began
        spent += took
        rows += len(batch)
        rates.append(len(batch) / took)
    median = statistics.median(rates)
    print(f"  {name:<28} {rows:>9,} rows in {spent:6.2f} s = {rows / spent:>9,.0f} rows/s "
          f"(median batch {median:,.0f} rows/s)", flush=True)  # fmt: skip
    return {"rows": rows, "seconds": spent, "rows_per_s": rows / spent, "median_batch_rows_per_s": median}


def plain_copy(batch: list, binary: bool = False) -> None:
    """A baseline: psycopg's COPY of the same tuples, no model layer at all (text, or binary with set_types)."""
    from django.db import connection

    from collectors.storage import COLUMNS, COPY_TYPES

    rows = [o.row() for o in batch]
    with connection.cursor() as cursor:
        options = " (FORMAT BINARY)" if binary else ""
        with cursor.copy(f"COPY collectors_checkresult ({', '.join(COLUMNS)}) FROM STDIN{options}") as copy:
            if binary:
                copy.set_types(COPY_TYPES)
            for row in rows:
                copy.write_row(row)


def plain_binary_copy(batch: list) -> None:
    plain_copy(batch, binary=True)


def orm_bulk_create(batch: list) -> None:
    from collectors.models import CheckResult
    from collectors.storage import COLUMNS

    CheckResult.objects.bulk_create([CheckResult(**dict(zip(COLUMNS, o.row(), strict=True))) for o in batch])


def time_rollups(end: datetime) -> dict[str, Any]:
    """update_rollups over everything just ingested, until the minute cursor reaches the end."""
    from collectors.models import CheckRollup
    from collectors.rollups import update_rollups

    now = end + timedelta(minutes=10)
    began = time.perf_counter()
    runs = 0
    while True:
        runs += 1
        written = update_rollups(now=now)
        if written.get("minute", 0) == 0 and runs > 1:
            break
    spent = time.perf_counter() - began
    counts = {p: CheckRollup.objects.filter(period=p).count() for p in ("minute", "hour", "day")}
    print(f"  update_rollups: {runs} runs in {spent:.2f} s -> {counts}", flush=True)
    return {"seconds": spent, "runs": runs, "buckets": counts}


# --- Uptime ----------------------------------------------------------------------------------------------------------


def fill_rollups(model_ids: list[int], days: int, today: datetime, with_hours: bool) -> dict[str, int]:
    """Day rollups for every model and day (and the hour rollups the same days leave), written by COPY."""
    from django.db import connection

    truncate_results()
    rng = random.Random(11)
    columns = ["model_id", "period", "bucket", "total", "ok", "provider_fault", "probe_fault", "rate_limited",
               "timeout", "broken_stream", "latency_p50_ms", "latency_p95_ms", "latency_max_ms"]  # fmt: skip
    counts = {"day": 0, "hour": 0}
    with connection.cursor() as cursor:
        with cursor.copy(f"COPY collectors_checkrollup ({', '.join(columns)}) FROM STDIN") as copy:
            # Laid out as update_rollups leaves them: a day's hour rows, then that day's day rows together.
            for day in range(days):
                bucket = today - timedelta(days=days - 1 - day)
                figures = []
                for model_id in model_ids:
                    failures = 0 if rng.random() < 0.9 else rng.randint(1, 400)
                    figures.append((model_id, failures, rng.uniform(150, 600)))
                if with_hours:
                    for hour in range(24):
                        at = bucket + timedelta(hours=hour)
                        for model_id, failures, p50 in figures:
                            lost = failures // 24
                            copy.write_row((model_id, "hour", at, 120, 120 - lost, lost, 0, 0, 0, 0,
                                            p50, p50 * 2.2, p50 * 4))  # fmt: skip
                    counts["hour"] += 24 * len(figures)
                for model_id, failures, p50 in figures:
                    copy.write_row((model_id, "day", bucket, 2880, 2880 - failures, failures, 0, 0, 0, 0,
                                    p50, p50 * 2.2, p50 * 4))  # fmt: skip
                counts["day"] += len(figures)
        cursor.execute("ANALYZE collectors_checkrollup")
    return counts


# The index the daily-uptime query wants: only day rows, in (model, day) order, carrying the figures the
# page reads, so the query is an index-only scan that needs no sort.
SUGGESTED_INDEX = (
    "CREATE INDEX IF NOT EXISTS rollup_day_covering ON collectors_checkrollup (model_id, bucket) "
    "INCLUDE (total, ok, provider_fault, timeout, broken_stream) WHERE period = 'day'"
)


def uptime_queries(model_ids: list[int], days: int, today: datetime) -> dict[str, Callable[[], Any]]:
    """The ways a page may read 90 days of daily figures for these models; each returns its rows."""
    from django.contrib.postgres.aggregates import ArrayAgg
    from django.db import connection
    from django.db.models import F
    from django.db.models.functions import TruncDate

    from collectors.models import CheckRollup, Period

    start = today - timedelta(days=days - 1)
    days_of = CheckRollup.objects.filter(period=Period.DAY, bucket__gte=start, model_id__in=model_ids)
    failed = F("provider_fault") + F("timeout") + F("broken_stream")

    def orm_rows() -> list:
        # What a view writes first: one dict per model and day.
        return list(days_of.order_by("model_id", "bucket").values("model_id", "bucket", "total", "ok", failed=failed))

    def orm_arrays() -> list:
        # One row per model, each figure an array over the days: the database groups, Python converts 1,000 rows.
        return list(
            days_of.values("model_id")
            .annotate(
                days=ArrayAgg(TruncDate("bucket"), ordering="bucket"),
                oks=ArrayAgg("ok", ordering="bucket"),
                totals=ArrayAgg("total", ordering="bucket"),
                failures=ArrayAgg(failed, ordering="bucket"),
            )
            .order_by()
        )

    def sql_rows() -> list:
        # The rows of orm_rows as plain tuples: what the database and the driver cost without the ORM.
        with connection.cursor() as cursor:
            cursor.execute(
                """
                SELECT model_id, bucket, total, ok, provider_fault + timeout + broken_stream
                FROM collectors_checkrollup
                WHERE period = 'day' AND bucket >= %s AND model_id = ANY(%s::bigint[])
                ORDER BY model_id, bucket
                """,
                [start, model_ids],
            )
            return cursor.fetchall()

    def sql_arrays() -> list:
        # One ordered scan feeding every array (no sort per array), days as offsets from the first.
        with connection.cursor() as cursor:
            cursor.execute(
                """
                SELECT model_id, array_agg(day), array_agg(ok), array_agg(total), array_agg(failed)
                FROM (SELECT model_id, (bucket AT TIME ZONE 'UTC')::date - %s::date AS day, ok, total,
                             provider_fault + timeout + broken_stream AS failed
                      FROM collectors_checkrollup
                      WHERE period = 'day' AND bucket >= %s AND model_id = ANY(%s::bigint[])
                      ORDER BY model_id, bucket) AS days
                GROUP BY model_id
                """,
                [start.date(), start, model_ids],
            )
            return cursor.fetchall()

    return {
        "ORM, a row per model-day": orm_rows,
        "SQL, a row per model-day": sql_rows,
        "ORM, arrays per model": orm_arrays,
        "SQL, arrays per model": sql_arrays,
    }


def set_suggested_index(present: bool) -> None:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(SUGGESTED_INDEX if present else "DROP INDEX IF EXISTS rollup_day_covering")
        # Index-only scans need the visibility map; autovacuum keeps it on a live database.
        cursor.execute("VACUUM ANALYZE collectors_checkrollup")


def median_ms(query: Callable[[], Any], runs: int) -> tuple[float, list[float], int]:
    query()  # warm: plans cached, pages in shared buffers, as on a busy page
    times = []
    rows = 0
    for _ in range(runs):
        began = time.perf_counter()
        rows = len(query())
        times.append((time.perf_counter() - began) * 1000)
    return statistics.median(times), times, rows


def explain(model_ids: list[int], days: int, today: datetime) -> str:
    from django.db import connection

    start = today - timedelta(days=days - 1)
    with connection.cursor() as cursor:
        cursor.execute(
            "EXPLAIN (ANALYZE, BUFFERS, COSTS OFF) SELECT model_id, bucket, total, ok FROM collectors_checkrollup "
            "WHERE period = 'day' AND bucket >= %s AND model_id = ANY(%s::bigint[]) ORDER BY model_id, bucket",
            [start, model_ids],
        )
        return "\n".join(row[0] for row in cursor.fetchall())


def run_ingest(args: argparse.Namespace, ingest_ids: list[int], end: datetime) -> tuple[dict, dict]:
    """Each way of writing the same results, then the rollups over them."""
    from collectors.storage import insert_rows

    def source(limit: int) -> Callable[[], Iterator[list]]:
        return lambda: batches(ingest_ids, limit, args.batch, end, 30)

    print(f"ingest: {args.rows:,} results for {len(ingest_ids):,} models, {args.batch:,} rows per transaction")
    ingest = {
        "plain COPY": timed_ingest("plain psycopg COPY (text)", plain_copy, source(args.rows)),
        "plain binary COPY": timed_ingest("plain psycopg COPY (binary)", plain_binary_copy, source(args.rows)),
    }
    if args.orm_rows:
        ingest["bulk_create"] = timed_ingest("ORM bulk_create", orm_bulk_create, source(args.orm_rows))
    ingest["insert_rows"] = timed_ingest("storage.insert_rows", insert_rows, source(args.rows))
    return ingest, time_rollups(end)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000, help="results to ingest")
    parser.add_argument("--batch", type=int, default=50_000, help="rows per insert_rows call (one transaction)")
    parser.add_argument("--ingest-models", type=int, default=1_000, help="models the results belong to")
    parser.add_argument("--orm-rows", type=int, default=200_000, help="rows for the bulk_create baseline (0: skip)")
    parser.add_argument("--models", type=int, default=1_000, help="models on the uptime page")
    parser.add_argument("--days", type=int, default=90)
    parser.add_argument("--runs", type=int, default=11, help="timed runs per query (median reported)")
    parser.add_argument("--no-hours", action="store_true", help="leave out the hour rollups beside the days")
    parser.add_argument("--explain", action="store_true", help="print the query plan")
    parser.add_argument("--skip-ingest", action="store_true", help="only the uptime part")
    parser.add_argument("--json", help="write the figures to this file")
    args = parser.parse_args(argv)

    setup_django(migrate=True)
    results: dict[str, Any] = {"ingest": {}, "uptime": {}, "uptime_models": args.models, "uptime_days": args.days}

    model_ids = bench_models(max(args.ingest_models, args.models))
    end = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=5)

    if not args.skip_ingest:
        results["ingest"], results["rollups"] = run_ingest(args, model_ids[: args.ingest_models], end)

    today = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    page_ids = model_ids[: args.models]
    print(f"uptime: {args.models:,} models x {args.days} days of day rollups"
          f"{'' if args.no_hours else ' (and their hour rollups)'} ...", flush=True)  # fmt: skip
    began = time.perf_counter()
    results["uptime"]["rollup_rows"] = fill_rollups(page_ids, args.days, today, not args.no_hours)
    print(f"  filled {results['uptime']['rollup_rows']} in {time.perf_counter() - began:.1f} s", flush=True)
    for indexed in (False, True):
        set_suggested_index(indexed)
        schema = "with the suggested index" if indexed else "indexes as migrated"
        print(f"  {schema}:")
        for name, query in uptime_queries(page_ids, args.days, today).items():
            median, times, rows = median_ms(query, args.runs)
            key = f"{name} ({'+ index' if indexed else 'as migrated'})"
            results["uptime"][key] = {"median_ms": median, "min_ms": min(times), "max_ms": max(times), "rows": rows}
            print(f"    {name:<26} median {median:7.1f} ms  (min {min(times):.1f}, max {max(times):.1f}; "
                  f"{rows:,} rows)", flush=True)  # fmt: skip
        if args.explain:
            print(explain(page_ids, args.days, today))
    set_suggested_index(False)  # leave the schema as the migrations made it

    report(results)
    write_figures(args.json, results)
    return results


def report(results: dict[str, Any]) -> None:
    ingest = results["ingest"]
    print()
    if ingest:
        base = ingest["plain COPY"]["rows_per_s"]
        base_median = ingest["plain COPY"]["median_batch_rows_per_s"]
        print_table(
            [[name, f"{f['rows']:,}", f"{f['seconds']:.2f}", f"{f['rows_per_s']:,.0f}",
              f"{f['rows_per_s'] / base:.2f}", f"{f['median_batch_rows_per_s']:,.0f}",
              f"{f['median_batch_rows_per_s'] / base_median:.2f}"] for name, f in ingest.items()],
            ["ingest", "rows", "seconds", "rows/s", "x text COPY", "median batch rows/s", "x text COPY"],
        )  # fmt: skip
        print()
    uptime = {k: v for k, v in results["uptime"].items() if isinstance(v, dict) and "median_ms" in v}
    print_table(
        [[name, f"{f['rows']:,}", f"{f['median_ms']:.1f}", f"{f['min_ms']:.1f}", f"{f['max_ms']:.1f}",
          "met" if f["median_ms"] < UPTIME_TARGET_MS else "NOT met"] for name, f in uptime.items()],
        [f"{results['uptime_days']}-day daily uptime, {results['uptime_models']:,} models", "rows", "median ms",
         "min ms", "max ms", f"< {UPTIME_TARGET_MS:.0f} ms"],
    )  # fmt: skip


if __name__ == "__main__":
    main()
