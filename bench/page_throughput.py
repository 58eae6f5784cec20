"""Status page throughput and freshness: each locale's page, summary.json and the snapshot beside a bare ASGI app.

One uvicorn process serves the product (edge included) from its own database, seeded with the demo
registry and 90 days of history. `hey -z <duration> -c 64` measures, one after another in the same
run: a bare ASGI app returning the /en/ page's bytes (the ceiling), each locale's page, summary.json,
the snapshot, the page's stylesheet and a trivial Django view (/healthz). Then freshness: while /en/
is hammered, statuses change and the time until the served page carries the new version is
measured. Last, the time build_snapshot() takes for 1,000 models (profiled when over its 200 ms budget).

    .venv/bin/python bench/page_throughput.py [--duration 10] [--connections 64] [--json figures.json]
"""

from __future__ import annotations

import argparse
import cProfile
import io
import os
import pstats
import random
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from datetime import timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(Path(__file__).resolve().parent))
# Its own database and Redis database: it flushes and refills them.
os.environ.setdefault("BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/aistatus_page_bench")
os.environ.setdefault("BENCH_REDIS_URL", "redis://127.0.0.1:6379/12")

from common import (  # noqa: E402
    PYTHON,
    bench_env,
    free_port,
    print_table,
    setup_django,
    stop_process,
    wait_for_port,
    write_figures,
)

BUILD_BUDGET_MS = 200
FRESHNESS_BUDGET_S = 1.0


# --- The bare ASGI app: cached bytes and nothing else (the ceiling for this machine) ---------------------------


def _bare_body() -> bytes:
    return Path(os.environ["BARE_BODY_FILE"]).read_bytes()


_BARE: dict[str, Any] = {}


async def bare_app(scope, receive, send) -> None:
    if scope["type"] != "http":
        return
    if "body" not in _BARE:
        _BARE["body"] = _bare_body()
        _BARE["headers"] = [
            (b"content-type", b"text/html; charset=utf-8"),
            (b"content-length", str(len(_BARE["body"])).encode()),
        ]
    await send({"type": "http.response.start", "status": 200, "headers": _BARE["headers"]})
    await send({"type": "http.response.body", "body": _BARE["body"]})


# --- Data --------------------------------------------------------------------------------------------------------


def seed(days: int = 90) -> None:
    """The demo registry with 90 days of status history and 24 hours of latency rollups."""
    from django.core.management import call_command
    from django.utils import timezone

    from collectors.models import CheckRollup
    from demo.registry import seed_demo
    from monitoring.models import AIModel, ModelStatus, StatusChange
    from monitoring.status import Status

    call_command("flush", interactive=False, verbosity=0)
    seed_demo()
    now = timezone.now()
    rng = random.Random(7)
    changes, rollups = [], []
    models = list(AIModel.objects.all())
    AIModel.objects.update(created_at=now - timedelta(days=days + 1))
    for model in models:
        at = now - timedelta(days=days)
        status = Status.OPERATIONAL
        changes.append(StatusChange(model=model, from_status=Status.UNKNOWN, to_status=status, at=at))
        while True:
            at += timedelta(hours=rng.uniform(48, 480))
            if at >= now - timedelta(hours=1):
                break
            outage = rng.choice([Status.DEGRADED_PERFORMANCE, Status.PARTIAL_OUTAGE, Status.MAJOR_OUTAGE])
            changes.append(StatusChange(model=model, from_status=status, to_status=outage, at=at))
            back = at + timedelta(minutes=rng.uniform(3, 90))
            changes.append(StatusChange(model=model, from_status=outage, to_status=Status.OPERATIONAL, at=back))
            at = back
        hour = now.replace(minute=0, second=0, microsecond=0)
        for h in range(24):
            p50 = rng.uniform(200, 900)
            rollups.append(
                CheckRollup(
                    model=model,
                    period="hour",
                    bucket=hour - timedelta(hours=h),
                    total=360,
                    ok=358,
                    provider_fault=2,
                    latency_p50_ms=p50,
                    latency_p95_ms=p50 * 2.2,
                    latency_max_ms=p50 * 4,
                )
            )
    StatusChange.objects.bulk_create(changes, batch_size=2000)
    CheckRollup.objects.bulk_create(rollups, batch_size=2000)
    # Fresh evidence for every model (far ahead), so the statuses shown are the recorded ones.
    ModelStatus.objects.update(status=Status.OPERATIONAL, last_checked_at=now + timedelta(days=1), since=now)


def seed_thousand_models() -> None:
    """1,000 public models over 10 providers, each with 90 days of history and 24 hourly rollups."""
    from django.utils import timezone

    from collectors.models import CheckRollup
    from monitoring.models import AIModel, ModelStatus, Provider, StatusChange
    from monitoring.status import Status

    now = timezone.now()
    rng = random.Random(11)
    providers = [
        Provider.objects.create(name=f"Bench {i}", slug=f"bench-{i}", display_order=100 + i) for i in range(10)
    ]
    models = AIModel.objects.bulk_create(
        [
            AIModel(
                provider=providers[i % 10], name=f"bench-model-{i}", slug=f"m{i}", created_at=now - timedelta(days=91)
            )
            for i in range(1000 - AIModel.objects.count())
        ],
        batch_size=1000,
    )
    changes, rollups = [], []
    hour = now.replace(minute=0, second=0, microsecond=0)
    for model in models:
        at = now - timedelta(days=90)
        changes.append(StatusChange(model=model, from_status=Status.UNKNOWN, to_status=Status.OPERATIONAL, at=at))
        for _ in range(rng.randint(2, 10)):
            at += timedelta(days=rng.uniform(1, 8))
            if at >= now:
                break
            changes.append(StatusChange(model=model, from_status="operational", to_status="major_outage", at=at))
            changes.append(
                StatusChange(
                    model=model, from_status="major_outage", to_status="operational", at=at + timedelta(minutes=20)
                )
            )
        rollups += [
            CheckRollup(
                model=model,
                period="hour",
                bucket=hour - timedelta(hours=h),
                total=60,
                ok=60,
                latency_p50_ms=300,
                latency_p95_ms=700,
            )
            for h in range(24)
        ]
    StatusChange.objects.bulk_create(changes, batch_size=5000)
    CheckRollup.objects.bulk_create(rollups, batch_size=5000)
    ModelStatus.objects.update(status=Status.OPERATIONAL, last_checked_at=now + timedelta(days=1))


# --- Measuring -----------------------------------------------------------------------------------------------------


def hey(url: str, duration: float, connections: int, extra: list[str] | None = None) -> dict[str, Any]:
    command = ["hey", "-z", f"{duration:g}s", "-c", str(connections), *(extra or []), url]
    completed = subprocess.run(command, capture_output=True, text=True, check=True)
    out = completed.stdout
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    p99 = re.search(r"99% in ([\d.]+) secs", out)
    p50 = re.search(r"50% in ([\d.]+) secs", out)
    codes = dict(re.findall(r"\[(\d+)\]\s+(\d+) responses", out))
    errors = re.search(r"Error distribution:(.*)", out, re.S)
    return {
        "rps": rate,
        "p50_ms": float(p50.group(1)) * 1000 if p50 else None,
        "p99_ms": float(p99.group(1)) * 1000 if p99 else None,
        "codes": {code: int(n) for code, n in codes.items()},
        "errors": errors.group(1).strip()[:300] if errors else "",
    }


def get(url: str) -> tuple[dict[str, str], bytes]:
    with urllib.request.urlopen(url, timeout=10) as response:
        return dict(response.headers.items()), response.read()


def serve(app: str, port: int, env: dict[str, str], log: Path, app_dir: Path = ROOT) -> subprocess.Popen:
    command = [PYTHON, "-m", "uvicorn", app, "--host", "127.0.0.1", "--port", str(port), "--app-dir", str(app_dir)]
    command += ["--no-access-log", "--log-level", "warning"]
    process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=log.open("w"), stderr=subprocess.STDOUT)
    wait_for_port(port, process)
    return process


def freshness(base: str, duration: float, connections: int, rounds: int) -> list[float]:
    """While /en/ is hammered, change a status and time until the served page carries the new version."""
    from monitoring.models import AIModel
    from monitoring.status import Status
    from monitoring.transitions import record_status

    model = AIModel.objects.get(slug="gpt-4o")
    load = threading.Thread(target=hey, args=(f"{base}/en/", duration, connections), daemon=True)
    load.start()
    time.sleep(1.0)
    delays = []
    statuses = [Status.MAJOR_OUTAGE, Status.OPERATIONAL]
    for index in range(rounds):
        before = get(f"{base}/en/")[0]["x-snapshot-version"]
        target = statuses[index % 2]
        started = time.monotonic()
        record_status(model.pk, target, checked=True, reason="bench")
        marker = f'data-model="openai/gpt-4o" data-status="{target}"'.encode()
        while True:
            headers, body = get(f"{base}/en/")
            if headers["x-snapshot-version"] != before and marker in body:
                break
            if time.monotonic() - started > 10:
                raise RuntimeError("the page did not move within 10 s")
            time.sleep(0.005)
        delays.append(time.monotonic() - started)
        time.sleep(max(0.0, (duration - 2) / rounds - delays[-1]))
    load.join()
    return delays


def time_build(repeats: int) -> tuple[list[float], str]:
    from publishing.snapshot import build_snapshot

    build_snapshot()  # warm connections and caches
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        build_snapshot()
        times.append((time.perf_counter() - started) * 1000)
    profile = ""
    if statistics.median(times) > BUILD_BUDGET_MS:
        profiler = cProfile.Profile()
        profiler.enable()
        build_snapshot()
        profiler.disable()
        stream = io.StringIO()
        pstats.Stats(profiler, stream=stream).sort_stats("cumulative").print_stats(25)
        profile = stream.getvalue()
    return times, profile


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per hey run")
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=1, help="times to measure every target (medians reported)")
    parser.add_argument("--freshness-rounds", type=int, default=6)
    parser.add_argument("--build-repeats", type=int, default=7)
    parser.add_argument("--json", help="write the figures to this file")
    args = parser.parse_args(argv)
    if shutil.which("hey") is None:
        raise SystemExit("hey is not installed")

    setup_django(migrate=True)
    from django.core.cache import cache

    seed()
    cache.clear()
    env = bench_env()
    work = Path(tempfile.mkdtemp(prefix="page-bench-"))
    site_port, bare_port = free_port(), free_port()
    site = serve("aistatus.asgi:application", site_port, env, work / "site.log")
    base = f"http://127.0.0.1:{site_port}"
    results: dict[str, Any] = {"connections": args.connections, "duration_s": args.duration}
    try:
        _, page = get(f"{base}/en/")
        (work / "page.html").write_bytes(page)
        results["page_bytes"] = len(page)
        bare = serve(
            "page_throughput:bare_app",
            bare_port,
            {**env, "BARE_BODY_FILE": str(work / "page.html")},
            work / "bare.log",
            app_dir=Path(__file__).resolve().parent,
        )
        try:
            targets = [("bare ASGI app (same bytes)", f"http://127.0.0.1:{bare_port}/")]
            targets += [(f"/{lang}/", f"{base}/{lang}/") for lang in ("ko", "en", "ja")]
            targets += [
                ("/api/v2/summary.json", f"{base}/api/v2/summary.json"),
                ("/api/v1/snapshot/", f"{base}/api/v1/snapshot/"),
                ("a static file (/static/statuspage/status.css)", f"{base}/static/statuspage/status.css"),
                ("trivial Django view (/healthz)", f"{base}/healthz"),
            ]
            # Each round measures every target, the bare app included, so a machine shared with other work
            # shows up as a round that is slow throughout rather than as one target that looks slow.
            rounds: list[dict[str, dict]] = []
            for number in range(args.rounds):
                runs = {}
                for name, url in targets:
                    for _ in range(3):
                        get(url)  # warm: the first request renders, the rest are the edge's bytes
                    runs[name] = hey(url, args.duration, args.connections)
                    run = runs[name]
                    print(
                        f"  round {number + 1} {name}: {run['rps']:.0f} req/s, p99 {run['p99_ms']:.1f} ms", flush=True
                    )
                rounds.append(runs)
        finally:
            stop_process(bare)
        results["rounds"] = rounds
        bare_name = targets[0][0]
        rows = []
        for name, _url in targets:
            rates = [r[name]["rps"] for r in rounds]
            ratios = [r[name]["rps"] / r[bare_name]["rps"] for r in rounds]
            rows.append(
                [
                    name,
                    f"{statistics.median(rates):.0f}",
                    f"{statistics.median(r[name]['p50_ms'] for r in rounds):.1f}",
                    f"{statistics.median(r[name]['p99_ms'] for r in rounds):.1f}",
                    f"{statistics.median(ratios):.2f}",
                    sum(sum(c for code, c in r[name]["codes"].items() if code != "200") for r in rounds),
                ]
            )
        print(f"\nmedians over {args.rounds} round(s) of hey -z {args.duration:g}s -c {args.connections}:")
        print_table(rows, ["target", "req/s", "p50 ms", "p99 ms", "vs bare", "non-200"])

        delays = freshness(base, max(args.duration, 8.0), args.connections, args.freshness_rounds)
        results["freshness_s"] = {"max": max(delays), "median": statistics.median(delays), "all": delays}
        print(
            f"\nfreshness under load (/en/, {args.connections} connections): status change -> served page "
            f"median {statistics.median(delays) * 1000:.0f} ms, max {max(delays) * 1000:.0f} ms "
            f"(budget {FRESHNESS_BUDGET_S * 1000:.0f} ms)"
        )
    finally:
        stop_process(site)

    seed_thousand_models()
    times, profile = time_build(args.build_repeats)
    results["build_1000_ms"] = {"median": statistics.median(times), "min": min(times), "max": max(times)}
    print(
        f"\nbuild_snapshot() for 1,000 models: median {statistics.median(times):.0f} ms, "
        f"min {min(times):.0f} ms, max {max(times):.0f} ms (budget {BUILD_BUDGET_MS} ms)"
    )
    if profile:
        print("over budget; where the time goes:\n" + profile)
    write_figures(args.json, results)
    shutil.rmtree(work, ignore_errors=True)
    return results


if __name__ == "__main__":
    main()
