"""Read replicas: read throughput with 0, 1 and 2 replicas, their share of reads, failover time and the routing's cost.

Starts its own PostgreSQL 15 primary and two streaming replicas (regions eu and us) on free ports
in a temporary folder (tests/pg_cluster.py), migrates and seeds the demo registry, then:
- throughput: one uvicorn process in region eu with 0, 1 (eu) and 2 (eu, us) replicas; `hey -z
  <duration> -c 64` on /en/ (edge-served) and /api/v1/models/ (read from the database per request);
  the share of public reads each database served, from /metrics;
- failover: with 2 replicas, a client reading /api/v1/models/ every 20 ms while the eu replica is
  stopped (pg_ctl -m fast): the time until /readyz shows it down, the slowest request and failed
  requests during the switch, and the time until it is read again after it restarts;
- routing cost: per request, the anonymous-request test, opening the public-read scope and three
  routed reads (the first chooses, the others reuse), against the same loop calling a no-op router.

    .venv/bin/python bench/read_replicas.py [--duration 8] [--json figures.json]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import threading
import time
import timeit
import urllib.error
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(ROOT))

from common import PYTHON, free_port, print_table, stop_process, wait_for_port, write_figures  # noqa: E402

from tests import pg_cluster  # noqa: E402


def env_for(primary: pg_cluster.Cluster, replicas: str) -> dict[str, str]:
    return {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "aistatus.settings",
        "DATABASE_URL": primary.url(),
        "DATABASE_REPLICAS": replicas,
        "REGION": "eu",
        "REDIS_URL": os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/13"),
        "CACHE_KEY_PREFIX": f"bench-replicas-{time.monotonic_ns()}",
        "SECRET_KEY": "bench-only-secret-key",
        "LOG_LEVEL": "WARNING",
        # Load from 127.0.0.1 only: no per-address limits.
        "API_THROTTLE_ANON": "off",
        "API_THROTTLE_TOKEN": "off",
        "WS_CONNECTS_PER_MINUTE": "0",
    }


def fetch(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()
    except OSError:
        return 0, b""


def hey(url: str, duration: float) -> dict:
    out = subprocess.run(["hey", "-z", f"{duration:g}s", "-c", "64", url], capture_output=True, text=True).stdout
    codes = {int(c): int(n) for c, n in re.findall(r"\[(\d+)\]\s+(\d+) responses", out)}
    return {"rps": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)), "codes": codes}


def reads(base: str) -> dict[str, int]:
    text = fetch(f"{base}/metrics")[1].decode()
    return {m[1]: int(m[2]) for m in re.finditer(r'aistatus_public_reads_total\{database="(\w+)",[^}]*\} (\d+)', text)}


class Site:
    def __init__(self, env: dict[str, str], log: Path) -> None:
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        command = [PYTHON, "-m", "uvicorn", "aistatus.asgi:application", "--host", "127.0.0.1"]
        command += ["--port", str(self.port), "--log-level", "warning", "--no-access-log"]
        self.log = open(log, "w")
        self.process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=self.log, stderr=subprocess.STDOUT)
        wait_for_port(self.port, self.process, timeout=60)

    def stop(self) -> None:
        stop_process(self.process)
        self.log.close()


def throughput(primary, replicas: str, duration: float, log: Path) -> dict:
    site = Site(env_for(primary, replicas), log)
    try:
        for _ in range(20):  # warm up: templates, pools, the first snapshot
            fetch(f"{site.base}/en/")
            fetch(f"{site.base}/api/v1/models/")
        before = reads(site.base)
        figures = {"page": hey(f"{site.base}/en/", duration), "api": hey(f"{site.base}/api/v1/models/", duration)}
        after = reads(site.base)
        served = {db: after.get(db, 0) - before.get(db, 0) for db in after}
        total = sum(served.values())
        figures["replica_share"] = (total - served.get("primary", 0)) / total if total else 0.0
        figures["reads"] = served
        return figures
    finally:
        site.stop()


def failover(primary, eu, replicas: str, log: Path) -> dict:
    site = Site(env_for(primary, replicas), log)
    latencies: list[tuple[float, float, int]] = []
    stop = threading.Event()

    def client() -> None:
        while not stop.is_set():
            began = time.monotonic()
            status, _ = fetch(f"{site.base}/api/v1/models/")
            latencies.append((began, time.monotonic() - began, status))
            time.sleep(0.02)

    def state() -> str:
        body = json.loads(fetch(f"{site.base}/readyz")[1] or b"{}")
        return next((r["state"] for r in body.get("replicas", []) if r["region"] == "eu"), "?")

    try:
        thread = threading.Thread(target=client, daemon=True)
        thread.start()
        time.sleep(1.0)
        stopped = time.monotonic()
        eu.stop("fast")
        while state() != "down":
            time.sleep(0.01)
        detected = time.monotonic() - stopped
        time.sleep(1.0)
        eu.start()
        started = time.monotonic()
        while state() != "ok":
            time.sleep(0.01)
        back = time.monotonic() - started
        time.sleep(0.5)
        stop.set()
        thread.join()
        during = [(lat, status) for at, lat, status in latencies if at >= stopped - 0.1]
        return {
            "detected_s": detected,
            "back_s": back,
            "slowest_request_s": max(lat for lat, _ in during),
            "requests": len(during),
            "failed": sum(status != 200 for _, status in during),
        }
    finally:
        site.stop()


def routing_cost(primary, replicas: str, loops: int = 200_000) -> dict:
    """Microseconds per request the routing adds, in this process (replicas measured as healthy)."""
    os.environ.update(env_for(primary, replicas))
    import django

    django.setup()
    from django.test import RequestFactory

    from aistatus.db_router import ReplicaRouter
    from aistatus.read_routing import is_public_read
    from aistatus.replica_monitor import get_monitor
    from monitoring.models import AIModel
    from publishing.read_scope import public_reads

    monitor = get_monitor()
    monitor.check()
    monitor._autostart = False  # measured by hand above: no thread competing with the loop
    router = ReplicaRouter()
    request = RequestFactory().get("/api/v1/models/")

    def routed() -> None:
        if is_public_read(request):
            with public_reads():
                router.db_for_read(AIModel)
                router.db_for_read(AIModel)
                router.db_for_read(AIModel)

    def unrouted() -> None:
        router.db_for_write(AIModel)
        router.db_for_write(AIModel)
        router.db_for_write(AIModel)

    chosen = []
    with public_reads():
        chosen.append(router.db_for_read(AIModel))
    best = min(timeit.repeat(routed, number=loops, repeat=5)) / loops * 1e6
    base = min(timeit.repeat(unrouted, number=loops, repeat=5)) / loops * 1e6
    return {"routed_us": best, "baseline_us": base, "added_us": best - base, "chose": chosen[0]}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=8.0, help="seconds per hey run")
    parser.add_argument("--json", help="write the figures here")
    args = parser.parse_args(argv)
    if shutil.which("hey") is None or not pg_cluster.available():
        raise SystemExit("needs hey and PostgreSQL 15's tools (make replica-tools)")
    root = pg_cluster.make_root("bench-replicas-")
    clusters = []
    figures: dict = {}
    try:
        primary = pg_cluster.primary(root)
        clusters.append(primary)
        env = env_for(primary, "")
        for command in (["migrate", "-v", "0"], ["seed_demo"]):
            subprocess.run([PYTHON, "manage.py", *command], cwd=ROOT, env=env, check=True, capture_output=True)
        eu = pg_cluster.replica(root, primary, "eu")
        us = pg_cluster.replica(root, primary, "us")
        clusters += [eu, us]
        pg_cluster.wait_replayed(primary, [eu, us])
        configs = {
            "0 replicas": "",
            "1 replica (eu)": f"eu={eu.url()}",
            "2 replicas (eu, us)": f"eu={eu.url()},us={us.url()}",
        }
        logs = Path(root)
        for name, replicas in configs.items():
            print(f"throughput, {name} ...", flush=True)
            figures[name] = throughput(primary, replicas, args.duration, logs / f"site-{len(figures)}.log")
        print("failover ...", flush=True)
        figures["failover"] = failover(primary, eu, configs["2 replicas (eu, us)"], logs / "failover.log")
        figures["routing"] = routing_cost(primary, configs["2 replicas (eu, us)"])
    finally:
        pg_cluster.destroy(root, clusters)
    base = figures["0 replicas"]
    rows = []
    for name in configs:
        f = figures[name]
        rows.append([
            name,
            f"{f['page']['rps']:,.0f} req/s ({f['page']['rps'] / base['page']['rps']:.2f} x)",
            f"{f['api']['rps']:,.0f} req/s ({f['api']['rps'] / base['api']['rps']:.2f} x)",
            f"{f['replica_share'] * 100:.1f} %",
            ", ".join(f"{db} {n}" for db, n in sorted(f["reads"].items())),
        ])  # fmt: skip
    print_table(rows, ["configuration (region eu)", "/en/", "/api/v1/models/", "reads on replicas", "public reads"])
    f = figures["failover"]
    print(
        f"\nfailover (eu replica stopped under a client reading every 20 ms): seen down after {f['detected_s']:.2f} s,"
        f" slowest request {f['slowest_request_s'] * 1000:.0f} ms, {f['failed']} of {f['requests']} requests failed;"
        f" read again {f['back_s']:.2f} s after it restarted"
    )
    r = figures["routing"]
    print(
        f"routing per request (anonymous test, scope, 3 routed reads on {r['chose']}): {r['routed_us']:.2f} us,"
        f" against {r['baseline_us']:.2f} us for the same calls unrouted: {r['added_us']:.2f} us added (target < 50 us)"
    )
    write_figures(args.json, figures)
    return 0


if __name__ == "__main__":
    sys.exit(main())
