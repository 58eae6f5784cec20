"""Benchmark: sustained checks/s of the collector pipeline against the simulator, beside the raw client rate.

Registers N models pointed at a zero-latency simulator running in its own process, then measures, each
phase in a fresh child process so its memory and CPU are its own:

  raw       the same aiohttp client (make_session + run_probe) probing the same simulator, nothing stored
  backlog   the real pipeline (claim_due -> probe_all -> COPY -> evaluate) with every model due at once:
            the most checks per second it can sustain
  steady    the schedule as production runs it: N models at their interval, spread over it; whether the
            pipeline keeps up (checks/s against the offered N/interval, and how late slots run)
  celery    (optional) the same through a real Celery worker and beat over Redis

Prints checks/s, the ratio to the raw rate of the same run, CPU per process and the collector's peak RSS.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from datetime import datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import (  # noqa: E402
    PYTHON,
    ROOT,
    CpuMeter,
    bench_env,
    peak_rss_mb,
    print_table,
    setup_django,
    simulator_process,
    stop_process,
    write_figures,
)

PROVIDER = "bench"
UPSTREAM = "bench-model"
TARGET_CHECKS_PER_S = 1000
MEMORY_LIMIT_MB = 200


def scenario(output_tokens: int, ttft_ms: float = 0, tokens_per_s: float = 0) -> dict[str, Any]:
    """Zero latency and unpaced tokens by default: the simulator answers as fast as it can, so the figures
    are the collector's (or the simulator's own) limit, not a sleep. A latency shows how many probes must be
    in flight (COLLECTOR_CONCURRENCY) for a rate: about rate x latency."""
    ttft: Any = {"p50": ttft_ms, "p95": ttft_ms * 2, "max": ttft_ms * 4} if ttft_ms else 0
    return {
        "seed": 1,
        "defaults": {"ttft_ms": ttft, "tokens_per_s": tokens_per_s, "output_tokens": output_tokens},
        "models": {UPSTREAM: {}},
    }


# --- Setup (parent process) ------------------------------------------------------------------------------------------


def register_models(count: int, endpoint: str, interval: int) -> None:
    """Exactly `count` enabled benchmark models, probing `endpoint` every `interval` seconds."""
    from monitoring.models import AIModel, Provider

    provider, _ = Provider.objects.get_or_create(slug=PROVIDER, defaults={"name": "Benchmark"})
    existing = AIModel.objects.filter(provider=provider).count()
    if existing < count:
        AIModel.objects.bulk_create(
            [
                AIModel(provider=provider, name=f"bench {i}", slug=f"m{i}", upstream_model=UPSTREAM, public=False)
                for i in range(existing, count)
            ],
            batch_size=5000,
        )
    models = AIModel.objects.filter(provider=provider)
    models.update(
        endpoint=endpoint,
        interval_seconds=interval,
        timeout_seconds=10,
        probe_kind="openai_chat",
        probe_config={"max_tokens": 16},
        enabled=False,
    )
    ids = list(models.order_by("pk").values_list("pk", flat=True)[:count])
    AIModel.objects.filter(pk__in=ids).update(enabled=True)
    # Nothing else is probed in the benchmark database.
    AIModel.objects.exclude(provider=provider).update(enabled=False)


# The starting statuses a phase can ask for: "settled" is a running install whose models were all
# confirmed up (each result then only confirms it); "unknown" is a fresh install or a mass outage.
STARTING_STATUS = {"settled": "operational", "unknown": "unknown"}


def reset_evidence(start: str = "settled") -> None:
    """Empty the results and the schedule and set every status alike, so each phase starts the same."""
    from django.db import connection
    from django.utils import timezone

    from monitoring.models import ModelStatus

    with connection.cursor() as cursor:
        cursor.execute("TRUNCATE collectors_checkresult")
        cursor.execute("DELETE FROM collectors_probeslot")
        cursor.execute("TRUNCATE monitoring_statuschange CASCADE")
    # Operational and freshly checked by default, as a running install mostly is: each result then confirms
    # its model's status, and the staleness sweep finds nothing to do. "unknown" makes every first result a
    # transition (a fresh install, or a mass outage and recovery).
    status = STARTING_STATUS[start]
    checked = timezone.now() if status != "unknown" else None
    ModelStatus.objects.update(status=status, last_checked_at=checked, last_latency_ms=None, message="", manual=False)
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE collectors_probeslot, monitoring_modelstatus")


# --- Children --------------------------------------------------------------------------------------------------------


def child_raw(duration: float, concurrency: int, simulator_pid: int) -> dict[str, Any]:
    """Probe the registered models in a loop with the collector's client for `duration` s; nothing stored."""
    from django.db import connections

    from collectors.probes import make_session, run_probe
    from collectors.targets import target_of
    from monitoring.models import AIModel

    targets = [target_of(m) for m in AIModel.objects.filter(enabled=True).select_related("credential")]
    connections.close_all()
    outcomes: dict[str, int] = {}
    meters: list[CpuMeter] = []

    async def run() -> float:
        deadline = time.monotonic() + duration
        async with make_session(limit=concurrency) as session:
            # Warm the connection pool so the figure is the steady rate, as in a long-running collector.
            await asyncio.gather(*(run_probe(t, session) for t in targets[:concurrency]))
            meters.append(CpuMeter({"collector": os.getpid(), "simulator": simulator_pid}))
            started = time.monotonic()
            deadline = started + duration

            async def worker(offset: int) -> None:
                i = offset
                while time.monotonic() < deadline:
                    result = await run_probe(targets[i % len(targets)], session)
                    outcomes[result.outcome] = outcomes.get(result.outcome, 0) + 1
                    i += concurrency

            await asyncio.gather(*(worker(i) for i in range(concurrency)))
            return time.monotonic() - started

    elapsed = asyncio.run(run())
    cpu = meters[0].stop()
    probed = sum(outcomes.values())
    return {"probed": probed, "elapsed_s": elapsed, "rate": probed / elapsed, "outcomes": outcomes,
            "peak_rss_mb": peak_rss_mb(), "cpu": cpu}  # fmt: skip


def lateness_s(now: datetime) -> float:
    """How late the most overdue slot is at `now` (0 when nothing is overdue)."""
    from collectors.models import ProbeSlot

    oldest = (
        ProbeSlot.objects.filter(region="default", next_due_at__lte=now, model__enabled=True)
        .order_by("next_due_at")
        .values_list("next_due_at", flat=True)
        .first()
    )
    return (now - oldest).total_seconds() if oldest else 0.0


def child_pipeline(duration: float, mode: str, batch_limit: int | None, simulator_pid: int) -> dict[str, Any]:
    """Run probing rounds (collectors.tasks.probe_round) back to back for `duration` s and count what they did.

    Twice a second it notes how late the most overdue slot is: with a pipeline that keeps up, that stays
    small; with one that falls behind, it grows for as long as the run lasts.
    """
    from django.db import connections
    from django.utils import timezone

    from collectors.models import ProbeSlot
    from collectors.schedule import ensure_slots
    from collectors.tasks import probe_round

    now = timezone.now()
    ensure_slots("default", now)  # spread over each model's interval, as a fresh install does
    if mode == "backlog":
        ProbeSlot.objects.update(next_due_at=now)
    connections.close_all()

    probed = stored = spooled = rounds = changes = 0
    late: list[float] = []
    done = threading.Event()

    def watch() -> None:
        # On its own thread and connection, like a monitoring query beside the collector.
        while not done.wait(0.5):
            late.append(lateness_s(timezone.now()))
        connections.close_all()

    watcher = threading.Thread(target=watch, name="lateness")
    meter = CpuMeter({"collector": os.getpid(), "simulator": simulator_pid})
    started = time.monotonic()
    if mode != "backlog":
        watcher.start()
    while time.monotonic() - started < duration:
        summary = probe_round("default", batch_limit)
        if summary.probed == 0:
            if mode == "backlog":
                break  # drained: every model checked once
            time.sleep(0.05)
            continue
        rounds += 1
        probed += summary.probed
        stored += summary.stored
        spooled += summary.spooled
        changes += len(summary.changes)
    elapsed = time.monotonic() - started
    cpu = meter.stop()
    done.set()
    if watcher.is_alive():
        watcher.join()
    late.append(lateness_s(timezone.now()))
    connections.close_all()
    return {
        "probed": probed,
        "stored": stored,
        "spooled": spooled,
        "rounds": rounds,
        "status_changes": changes,
        "elapsed_s": elapsed,
        "rate": probed / elapsed if elapsed else 0.0,
        "lateness_p50_s": statistics.median(late),
        "lateness_max_s": max(late),
        "peak_rss_mb": peak_rss_mb(),
        "cpu": cpu,
    }


# --- Phases (parent process) -----------------------------------------------------------------------------------------


def run_child(args: list[str], simulator_pid: int, timeout: float, code: Path | None) -> dict[str, Any]:
    """Run a phase in a fresh process (it measures its own CPU and memory) and return its figures.

    `code` is the project tree the phase imports, this checkout when None.
    """
    command = [PYTHON, str(Path(__file__).resolve()), *args, "--simulator-pid", str(simulator_pid)]
    process = subprocess.Popen(
        command, cwd=code or ROOT, env=bench_env(code), stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    try:
        out, err = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        raise
    if process.returncode != 0:
        raise RuntimeError(f"{' '.join(args)} failed ({process.returncode}):\n{err.decode()[-4000:]}")
    return json.loads(out.decode().strip().splitlines()[-1])


def run_celery(duration: float, workdir: Path, simulator_pid: int, threads: int, code: Path | None) -> dict[str, Any]:
    """The production shape: beat queues a round every second, a worker (thread pool) runs them."""
    import redis
    from django.db import connections
    from django.utils import timezone

    from collectors.models import CheckResult
    from collectors.schedule import ensure_slots

    env = bench_env(code)
    redis.Redis.from_url(env["CELERY_BROKER_URL"]).flushdb()
    ensure_slots("default", timezone.now())
    connections.close_all()
    celery = [PYTHON, "-m", "celery", "-A", "aistatus"]
    logs = {name: open(workdir / f"{name}.log", "w") for name in ("worker", "beat")}
    worker = subprocess.Popen(
        [*celery, "worker", "-Q", "celery,probes.default", "--pool", "threads", "-c", str(threads), "-l", "WARNING"],
        cwd=code or ROOT, env=env, stdout=logs["worker"], stderr=subprocess.STDOUT,
    )  # fmt: skip
    beat = subprocess.Popen(
        [*celery, "beat", "-l", "WARNING", "-s", str(workdir / "beat-schedule")],
        cwd=code or ROOT, env=env, stdout=logs["beat"], stderr=subprocess.STDOUT,
    )  # fmt: skip
    try:
        time.sleep(8)  # the worker starts and runs its first rounds before the measurement
        before = CheckResult.objects.count()
        meter = CpuMeter({"collector": worker.pid, "simulator": simulator_pid, "beat": beat.pid})
        started = time.monotonic()
        late = []
        while time.monotonic() - started < duration:
            late.append(lateness_s(timezone.now()))
            time.sleep(1)
        after = CheckResult.objects.count()
        elapsed = time.monotonic() - started
        cpu = meter.stop()
        rss = _rss_mb(worker.pid)
    finally:
        stop_process(beat)
        stop_process(worker)
        for log in logs.values():
            log.close()
    stored = after - before
    return {
        "probed": stored,
        "stored": stored,
        "elapsed_s": elapsed,
        "rate": stored / elapsed,
        "lateness_p50_s": statistics.median(late),
        "lateness_max_s": max(late),
        "peak_rss_mb": rss,
        "cpu": cpu,
    }


def _rss_mb(pid: int) -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


PHASES = ("raw", "backlog", "steady", "celery")


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", type=int, default=10_000, help="models for the raw and backlog phases")
    parser.add_argument("--steady-models", type=int, default=30_000, help="models for the steady and celery phases")
    parser.add_argument("--interval", type=int, default=30, help="probe interval, seconds")
    parser.add_argument("--duration", type=float, default=20.0, help="seconds per phase (steady: >= 1.5 intervals)")
    parser.add_argument("--phases", default="raw,backlog,steady", help=f"comma-separated, from {', '.join(PHASES)}")
    parser.add_argument("--concurrency", type=int, default=None, help="default: COLLECTOR_CONCURRENCY")
    parser.add_argument("--batch-limit", type=int, default=None, help="default: COLLECTOR_BATCH_LIMIT")
    parser.add_argument("--output-tokens", type=int, default=16, help="tokens per simulated answer")
    parser.add_argument("--ttft-ms", type=float, default=0, help="simulated time to first token, median (p95 twice)")
    parser.add_argument("--tokens-per-s", type=float, default=0, help="simulated streaming pace (0: unpaced)")
    parser.add_argument("--statuses", choices=sorted(STARTING_STATUS), default="settled",
                        help="statuses before each phase; unknown makes every first result a transition")  # fmt: skip
    parser.add_argument("--celery-threads", type=int, default=4, help="worker threads of the celery phase")
    parser.add_argument(
        "--baseline-code",
        metavar="DIR",
        help="also run the pipeline phases with the project tree in DIR (see baseline_tree.py)",
    )
    parser.add_argument("--json", help="write the figures to this file")
    parser.add_argument("--child", choices=["raw", "pipeline"], help=argparse.SUPPRESS)
    parser.add_argument("--mode", default="backlog", help=argparse.SUPPRESS)
    parser.add_argument("--simulator-pid", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    phases = [p.strip() for p in args.phases.split(",") if p.strip()]
    if unknown := set(phases) - set(PHASES):
        parser.error(f"unknown phase(s): {', '.join(sorted(unknown))}")

    if args.concurrency:
        # The children and the Celery worker read it from the settings, like a deployment does.
        os.environ["COLLECTOR_CONCURRENCY"] = str(args.concurrency)
    if args.batch_limit:
        os.environ["COLLECTOR_BATCH_LIMIT"] = str(args.batch_limit)

    if args.child:
        setup_django()
        from django.conf import settings

        if args.child == "raw":
            figures = child_raw(args.duration, settings.COLLECTOR_CONCURRENCY, args.simulator_pid)
        else:
            figures = child_pipeline(args.duration, args.mode, None, args.simulator_pid)
        print(json.dumps(figures))
        return figures

    setup_django(migrate=True)
    from django.conf import settings
    from django.db import connections

    results: dict[str, Any] = {"concurrency": settings.COLLECTOR_CONCURRENCY,
                               "batch_limit": settings.COLLECTOR_BATCH_LIMIT}  # fmt: skip
    print(f"collector throughput: concurrency {results['concurrency']}, batch limit {results['batch_limit']}, "
          f"{os.cpu_count()} CPUs, phases {', '.join(phases)}", flush=True)  # fmt: skip
    workdir = Path(tempfile.mkdtemp(prefix="bench-collector-"))
    behaviour = scenario(args.output_tokens, args.ttft_ms, args.tokens_per_s)
    try:
        with simulator_process(behaviour, workdir) as (endpoint, simulator):

            def prepare(models: int) -> None:
                register_models(models, endpoint, args.interval)
                reset_evidence(args.statuses)
                connections.close_all()

            def child(models: int, duration: float, code: Path | None, *extra: str) -> dict[str, Any]:
                prepare(models)
                figures = run_child([*extra, "--duration", str(duration)], simulator.pid, duration * 4 + 120, code)
                figures["models"] = models
                return figures

            steady_s = max(args.duration, args.interval * 1.5)
            trees: list[tuple[str, Path | None]] = [("", None)]
            if args.baseline_code:
                trees.append((" (baseline)", Path(args.baseline_code).resolve()))
            for phase in phases:
                for suffix, code in trees if phase != "raw" else trees[:1]:
                    name = phase + suffix
                    if phase == "raw":
                        print(f"{name}: the client alone, {args.models:,} models, {args.duration:g} s", flush=True)
                        results[name] = child(args.models, args.duration, code, "--child", "raw")
                    elif phase == "backlog":
                        print(f"{name}: the pipeline, {args.models:,} models all due", flush=True)
                        results[name] = child(args.models, args.duration, code,
                                              "--child", "pipeline", "--mode", "backlog")  # fmt: skip
                    elif phase == "steady":
                        print(f"{name}: the pipeline, {args.steady_models:,} models every {args.interval} s, "
                              f"{steady_s:g} s", flush=True)  # fmt: skip
                        results[name] = child(args.steady_models, steady_s, code,
                                              "--child", "pipeline", "--mode", "steady")  # fmt: skip
                        results[name]["offered"] = args.steady_models / args.interval
                    else:
                        prepare(args.steady_models)
                        print(
                            f"{name}: Celery worker ({args.celery_threads} threads) and beat, "
                            f"{args.steady_models:,} models every {args.interval} s, {steady_s:g} s",
                            flush=True,
                        )
                        results[name] = run_celery(steady_s, workdir, simulator.pid, args.celery_threads, code)
                        results[name]["models"] = args.steady_models
                        results[name]["offered"] = args.steady_models / args.interval
    finally:
        shutil.rmtree(workdir, ignore_errors=True)

    report(results)
    write_figures(args.json, results)
    return results


def report(results: dict[str, Any]) -> None:
    raw = results.get("raw", {}).get("rate")
    phases = {name: f for name, f in results.items() if isinstance(f, dict) and "rate" in f}
    rows = []
    for name, figures in phases.items():
        cpu = figures["cpu"]
        rest = cpu["machine"] * (os.cpu_count() or 1) - cpu["collector"] - cpu["simulator"]
        rows.append(
            [
                name,
                f"{figures['models']:,}",
                f"{figures['rate']:,.0f}",
                f"{figures['rate'] / raw:.2f}" if raw else "",
                f"{figures['offered']:,.0f}" if "offered" in figures else "",
                f"{figures['lateness_p50_s']:.1f} / {figures['lateness_max_s']:.1f}" if "offered" in figures else "",
                f"{figures['peak_rss_mb']:.0f}",
                f"{cpu['collector']:.0f}%",
                f"{cpu['simulator']:.0f}%",
                f"{max(rest, 0):.0f}%",
            ]
        )
    print()
    print_table(
        rows,
        ["phase", "models", "checks/s", "x raw", "offered/s", "late p50/max s", "peak RSS MB",
         "collector CPU", "simulator CPU", "rest of machine"],
    )  # fmt: skip
    print("(CPU: percent of one core; 'rest' is PostgreSQL plus anything else running on the machine.)")
    if raw and set(results["raw"].get("outcomes", {})) - {"ok"}:
        print(f"raw client outcomes: {results['raw']['outcomes']}")
    print()
    for name, f in phases.items():
        if name.startswith("backlog"):
            share = f" ({f['rate'] / raw:.0%} of the raw client's {raw:,.0f}/s in the same run)" if raw else ""
            print(
                f"{name}: every model due: {f['rate']:,.0f} checks/s{share}; collector peak RSS at "
                f"{f['models']:,} models {f['peak_rss_mb']:.0f} MB "
                f"({'under' if f['peak_rss_mb'] < MEMORY_LIMIT_MB else 'OVER'} the {MEMORY_LIMIT_MB} MB target)"
            )
        elif "offered" in f:
            keeps_up = f["rate"] >= 0.95 * f["offered"] and f["lateness_max_s"] < 10
            print(
                f"{name}: {f['models']:,} models every {f['models'] / f['offered']:.0f} s: {f['rate']:,.0f} "
                f"checks/s of {f['offered']:,.0f}/s offered, slots ran {f['lateness_p50_s']:.1f} s late (median), "
                f"{f['lateness_max_s']:.1f} s at most: {'keeps up' if keeps_up else 'FALLS BEHIND'}"
            )
    measured = {name: f["rate"] for name, f in phases.items() if name != "raw" and "baseline" not in name}
    if measured:
        best = max(measured.values())
        print(
            f"target {TARGET_CHECKS_PER_S:,} checks/s: {'met' if best >= TARGET_CHECKS_PER_S else 'NOT met'} "
            f"(best pipeline phase {best:,.0f}/s)"
        )


if __name__ == "__main__":
    main()
