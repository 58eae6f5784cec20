"""Benchmark: results/s the agents' ingest takes on one web process, beside the older push ingest.

One uvicorn process (the production ASGI app, one worker) on the benchmark database. Several
agents (each sending its batches in order, as an agent does) push results for M models:
  agents   POST /api/v1/agents/results/ (exactly once per agent and sequence, statuses derived per batch)
  baseline POST /api/v1/ingest/ (collector token, DRF serializers) with the same results and senders
The figure is the results stored per second of wall time, checked against the rows in the database.
Run it on a database of its own: BENCH_DATABASE_URL (it deletes the results of its models).
"""

from __future__ import annotations

import argparse
import asyncio
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import (  # noqa: E402
    PYTHON,
    ROOT,
    CpuMeter,
    bench_env,
    free_port,
    print_table,
    setup_django,
    stop_process,
    wait_for_port,
    write_figures,
)

PROVIDER = "bench-ingest"


def register_models(count: int) -> list[tuple[int, str]]:
    from collectors.models import Agent, CheckResult, CollectorToken
    from monitoring.models import AIModel, Provider

    provider, _ = Provider.objects.get_or_create(slug=PROVIDER, defaults={"name": "Ingest benchmark"})
    existing = AIModel.objects.filter(provider=provider).count()
    AIModel.objects.bulk_create(
        [AIModel(provider=provider, name=f"m{i}", slug=f"m{i}", endpoint="http://127.0.0.1:9/v1", public=False)
         for i in range(existing, count)],
        batch_size=5000,
    )  # fmt: skip
    models = list(AIModel.objects.filter(provider=provider).order_by("pk").values_list("pk", "slug")[:count])
    AIModel.objects.filter(pk__in=[pk for pk, _ in models]).update(enabled=True, interval_seconds=60)
    CheckResult.objects.filter(model__provider=provider).delete()
    Agent.objects.filter(name__startswith="bench-").delete()
    CollectorToken.objects.filter(name__startswith="bench-").delete()
    return models


def stored_rows() -> int:
    from collectors.models import CheckResult

    return CheckResult.objects.filter(model__provider__slug=PROVIDER).count()


async def send(url: str, bodies: list[bytes], tokens: list[str], duration: float) -> tuple[int, float, list[int]]:
    """Each token's sender posts its bodies in order, one at a time, for `duration` s. (results, seconds, statuses)"""
    import aiohttp

    counted = {"results": 0}
    statuses: list[int] = []
    deadline = time.monotonic() + duration

    async def sender(index: int, token: str, session: aiohttp.ClientSession) -> None:
        headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
        for body in bodies[index]:
            if time.monotonic() >= deadline:
                return
            async with session.post(url, data=body, headers=headers) as response:
                await response.read()
                statuses.append(response.status)
                if response.status < 300:
                    counted["results"] += body.count(b'"outcome"')

    started = time.monotonic()
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=120)) as session:
        await asyncio.gather(*(sender(i, t, session) for i, t in enumerate(tokens)))
    return counted["results"], time.monotonic() - started, statuses


def agent_bodies(models: list[tuple[int, str]], batch: int, batches: int) -> list[bytes]:
    import orjson

    bodies, seq, now = [], 0, time.time()
    for b in range(batches):
        results = []
        for i in range(batch):
            seq += 1
            model_id = models[(b * batch + i) % len(models)][0]
            results.append({"seq": seq, "model": model_id, "time": now + b * 0.01, "outcome": "ok",
                            "http_status": 200, "latency_ms": 120.5, "ttft_ms": 80.25, "error": ""})  # fmt: skip
        health = {"version": "bench", "results_per_s": 0, "spool_depth": 0, "sent": seq}
        bodies.append(orjson.dumps({"agent_time": time.time(), "health": health, "results": results}))
    return bodies


def ingest_bodies(models: list[tuple[int, str]], batch: int, batches: int) -> list[bytes]:
    import orjson

    bodies = []
    for b in range(batches):
        results = [{"model": f"{PROVIDER}/{models[(b * batch + i) % len(models)][1]}", "outcome": "ok",
                    "http_status": 200, "latency_ms": 120.5, "ttft_ms": 80.25} for i in range(batch)]  # fmt: skip
        bodies.append(orjson.dumps({"results": results}))
    return bodies


def phase(name: str, url: str, bodies: list[list[bytes]], tokens: list[str], duration: float, pid: int) -> dict:
    before = stored_rows()
    meter = CpuMeter({"web": pid})
    sent, elapsed, statuses = asyncio.run(send(url, bodies, tokens, duration))
    cpu = meter.stop()
    stored = stored_rows() - before
    bad = sorted({s for s in statuses if s >= 300})
    print(f"{name}: {sent:,} results acknowledged, {stored:,} rows stored in {elapsed:.1f} s; errors {bad or 'none'}")
    return {"acknowledged": sent, "stored": stored, "elapsed_s": elapsed, "rate": stored / elapsed, "cpu": cpu,
            "errors": bad}  # fmt: skip


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", type=int, default=1000)
    parser.add_argument("--batch", type=int, default=2000, help="results per batch (the agent's default)")
    parser.add_argument("--agents", type=int, default=4, help="concurrent senders, each in order")
    parser.add_argument("--duration", type=float, default=15)
    parser.add_argument("--json", help="write the figures here")
    args = parser.parse_args(argv)
    setup_django(migrate=True)
    from collectors.models import Agent, CollectorToken

    models = register_models(args.models)
    batches = 200  # per sender: more than a phase can send
    agent_tokens = [Agent.issue(f"bench-{i}", f"r{i}")[1] for i in range(args.agents)]
    collector_tokens = [CollectorToken.issue(f"bench-{i}", f"r{i}")[1] for i in range(args.agents)]
    print(f"preparing {args.agents} x {batches} batches of {args.batch} results for {len(models):,} models")
    agent_sets = [agent_bodies(models, args.batch, batches) for _ in range(args.agents)]
    ingest_set = ingest_bodies(models, args.batch, batches)
    port = free_port()
    figures: dict[str, Any] = {"models": len(models), "batch": args.batch, "senders": args.agents}
    with tempfile.TemporaryDirectory(prefix="bench-ingest-") as tmp:
        log = open(Path(tmp) / "web.log", "w")
        command = [PYTHON, "-m", "uvicorn", "aistatus.asgi:application", "--host", "127.0.0.1", "--port", str(port),
                   "--no-access-log", "--log-level", "warning"]  # fmt: skip
        web = subprocess.Popen(command, cwd=ROOT, env=bench_env(), stdout=log, stderr=subprocess.STDOUT)
        try:
            wait_for_port(port, web)
            base = f"http://127.0.0.1:{port}/api/v1"
            figures["agents"] = phase("agents", f"{base}/agents/results/", agent_sets, agent_tokens, args.duration,
                                      web.pid)  # fmt: skip
            figures["baseline"] = phase("ingest", f"{base}/ingest/", [ingest_set] * args.agents, collector_tokens,
                                        args.duration, web.pid)  # fmt: skip
            counted = {a.name: (a.sent, a.stored) for a in Agent.objects.filter(name__startswith="bench-")}
            figures["agent_counts"] = counted
        finally:
            stop_process(web)
            log.close()
    a, b = figures["agents"], figures["baseline"]
    print_table(
        [
            [f"agent ingest: {args.agents} agents, batches of {args.batch:,}, {len(models):,} models",
             f"{a['rate']:,.0f} results/s", f"{a['rate'] / b['rate']:.2f} x /api/v1/ingest/", ">= 10,000/s",
             "met" if a["rate"] >= 10_000 else "NOT met"],
            ["  baseline: POST /api/v1/ingest/ (DRF serializers), same results", f"{b['rate']:,.0f} results/s", "",
             "", ""],
            ["  web process CPU during the agent phase", f"{a['cpu']['web']:.0f} % of one core", "", "", ""],
        ],
        ["benchmark", "measured", "against", "target", ""],
    )  # fmt: skip
    print("agents' own count vs stored:", figures["agent_counts"])
    write_figures(args.json, figures)
    return figures


if __name__ == "__main__":
    main()
