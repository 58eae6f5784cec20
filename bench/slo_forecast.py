"""The latency forecast's accuracy and interval coverage, and what an SLO run costs.

`forecast`: simulated hourly p50/p95 series (a daily load shape, noise, a slow drift, and in a quarter
of them a level shift a day before the end), eight days each; the product's forecast two hours ahead
is compared with what the series did, against two baselines made from the same history: the last hour
(naive) and the same hour a day before (seasonal naive). Pure Python: no database.

`slo`: its own database (BENCH_DATABASE_URL), `--models` models probed every minute for `--hours`
hours; times the first SLO run (it counts the history), then, after one more minute of results, an
incremental run, beside the rollup update of that same minute (the baseline, measured in the same run).
"""

from __future__ import annotations

import argparse
import math
import os
import random
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from anomalies.forecast import forecast_ahead  # noqa: E402

HOURS = 24 * 8


def series(rng: random.Random, base: float, noise: float) -> list[float]:
    drift = rng.uniform(-0.002, 0.004)  # per hour, relative
    shift_at = HOURS - 24 if rng.random() < 0.25 else None
    values = []
    for h in range(HOURS + 2):
        daily = 1.0 + 0.35 * max(0.0, math.sin((h % 24 - 6) / 24 * 2 * math.pi))
        level = base * daily * (1 + drift * h) * (1.5 if shift_at is not None and h >= shift_at else 1.0)
        values.append(max(1.0, rng.gauss(level, noise * level)))
    return values


def bench_forecast(count: int) -> None:
    rng = random.Random(1)
    held = {"p50": 0, "p95": 0}
    errors = {name: [] for name in ("product", "naive", "seasonal naive")}
    spent = 0.0
    made = 0
    for _ in range(count):
        base = rng.uniform(150.0, 1500.0)
        for metric, factor, noise in (("p50", 1.0, 0.05), ("p95", 2.5, 0.12)):
            values = series(rng, base * factor, noise)
            *history, _, actual = values
            start = time.process_time()
            forecast = forecast_ahead(history, steps=2)
            spent += time.process_time() - start
            made += 1
            held[metric] += forecast.low <= actual <= forecast.high
            errors["product"].append(abs(forecast.value - actual) / actual)
            errors["naive"].append(abs(history[-1] - actual) / actual)
            errors["seasonal naive"].append(abs(values[-1 - 24] - actual) / actual)
    print(f"forecasts: {made} ({count} models x p50, p95), 8 days of hours, 2 hours ahead")
    print(f"80 % interval held the actual value: p50 {held['p50'] / count:.1%}, p95 {held['p95'] / count:.1%}")
    for name, values in errors.items():
        print(f"mean absolute % error, {name}: {statistics.fmean(values):.1%}")
    print(f"CPU per forecast (history replayed for the interval): {spent / made * 1e3:.2f} ms")


def bench_slo(models: int, hours: int) -> None:
    from bench.common import setup_django

    setup_django(migrate=True)
    from datetime import timedelta

    from django.db import connection
    from django.utils import timezone

    from anomalies.models import BurnAlert, SloCount, SloCursor, SloStatus
    from anomalies.slo import run_slos
    from collectors.models import CheckResult, CheckRollup, RollupCursor
    from collectors.rollups import update_rollups
    from monitoring.models import AIModel, Provider
    from monitoring.outcomes import Outcome

    for table in (BurnAlert, SloStatus, SloCount, SloCursor, CheckResult, CheckRollup, RollupCursor, AIModel, Provider):
        with connection.cursor() as cursor:
            cursor.execute(f"TRUNCATE {table._meta.db_table} CASCADE")
    provider = Provider.objects.create(name="Bench", slug="bench")
    AIModel.objects.bulk_create(AIModel(provider=provider, name=f"m{i}", slug=f"m{i}") for i in range(models))
    ids = list(AIModel.objects.values_list("pk", flat=True))
    now = timezone.now().replace(second=30, microsecond=0)
    rng = random.Random(2)

    def results(start, minutes):
        return [
            CheckResult(
                model_id=i,
                time=start + timedelta(minutes=m, seconds=rng.uniform(0, 59)),
                outcome=Outcome.OK if rng.random() > 0.002 else Outcome.PROVIDER_FAULT,
                latency_ms=900.0,
                ttft_ms=rng.uniform(100, 900),
            )
            for i in ids
            for m in range(minutes)
        ]

    CheckResult.objects.bulk_create(results(now - timedelta(hours=hours), hours * 60), batch_size=5000)
    while update_rollups(now=now)["minute"]:  # at most two hours of results a call
        pass
    started = time.perf_counter(), time.process_time()
    run_slos(now)
    first = time.perf_counter() - started[0], time.process_time() - started[1]
    CheckResult.objects.bulk_create(results(now, 1), batch_size=5000)
    later = now + timedelta(minutes=1)
    started = time.perf_counter(), time.process_time()
    update_rollups(now=later + timedelta(seconds=180))
    rollup = time.perf_counter() - started[0], time.process_time() - started[1]
    started = time.perf_counter(), time.process_time()
    run_slos(later)
    slo = time.perf_counter() - started[0], time.process_time() - started[1]
    print(f"SLO: {models} models, a result a minute each, {hours} h of history ({models * hours * 60} results)")
    print(f"first run (the kept minutes): {first[0]:.2f} s wall, {first[1]:.2f} s CPU in Python")
    print(f"a later run: {slo[0] * 1e3:.0f} ms wall, {slo[1] * 1e3:.0f} ms CPU in Python")
    print(
        f"rollup update of the same minute (baseline): {rollup[0] * 1e3:.0f} ms wall; ratio {slo[0] / rollup[0]:.1f}x"
    )
    print(f"per model per run: {slo[1] / models * 1e6:.0f} us CPU in Python")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("part", choices=["forecast", "slo"])
    parser.add_argument("--models", type=int, default=500)
    parser.add_argument("--hours", type=int, default=8)
    args = parser.parse_args()
    bench_forecast(args.models) if args.part == "forecast" else bench_slo(args.models, args.hours)
