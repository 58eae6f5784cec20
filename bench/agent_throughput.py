"""Benchmark: probes/s of one remote agent process against the simulator, beside the raw client; its memory.

Phases, each in its own process, against the simulator in a third (zero latency, 16 tokens unpaced):
  raw     make_session + run_probe in a loop at the agent's concurrency: the client's ceiling, nothing sent
  agent   `python -m collectors.agent` with N models every I seconds (more than it can do: its capacity),
          pushing to a stub site that counts the results it acknowledges (the site's own cost is
          measured by bench/agent_ingest.py)
  memory  the agent with 10,000 assigned models: resident memory once it has probed all of them

The agent runs with no database and no Django settings, as deployed.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(1, str(Path(__file__).resolve().parent.parent))

from common import PYTHON, ROOT, CpuMeter, free_port, print_table, simulator_process, stop_process, write_figures  # noqa: E402

UPSTREAM = "bench-model"
SCENARIO = {"seed": 1, "defaults": {"ttft_ms": 0, "tokens_per_s": 0, "output_tokens": 16}, "models": {UPSTREAM: {}}}


def assignment(models: int, interval: float, endpoint: str) -> dict[str, Any]:
    return {
        "region": "bench",
        "refresh_seconds": 30,
        "models": [
            {
                "id": i + 1, "name": f"bench/m{i}", "probe_kind": "openai_chat", "endpoint": endpoint,
                "upstream_model": UPSTREAM, "probe_config": {}, "interval_seconds": interval, "timeout_seconds": 10,
                "thresholds": {}, "credential": None,
            }
            for i in range(models)
        ],
    }  # fmt: skip


class StubSite:
    """The site's agent API reduced to what the agent needs: an assignment, and receipts counting results."""

    def __init__(self, document: dict[str, Any]) -> None:
        self.body = json.dumps(document).encode()
        self.results = 0
        self.port = free_port()

    def serve_in_background(self) -> None:
        from aiohttp import web

        async def get_assignment(request: web.Request) -> web.Response:
            return web.Response(body=self.body, content_type="application/json", headers={"ETag": '"1"'})

        async def post_results(request: web.Request) -> web.Response:
            body = await request.read()
            self.results += body.count(b'"seq":')
            return web.json_response({"stored": 0, "assignment_hint": "1"})

        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_get("/api/v1/agents/assignment/", get_assignment)
        app.router.add_post("/api/v1/agents/results/", post_results)

        def run() -> None:
            loop = asyncio.new_event_loop()
            runner = web.AppRunner(app, access_log=None)
            loop.run_until_complete(runner.setup())
            loop.run_until_complete(web.TCPSite(runner, "127.0.0.1", self.port).start())
            loop.run_forever()

        threading.Thread(target=run, daemon=True, name="stub-site").start()


def rss_mb(pid: int, field: str = "VmRSS:") -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field):
            return int(line.split()[1]) / 1024
    return 0.0


def run_agent(endpoint: str, models: int, interval: float, warmup: float, duration: float, workdir: Path,
              simulator_pid: int) -> dict[str, Any]:  # fmt: skip
    site = StubSite(assignment(models, interval, endpoint))
    site.serve_in_background()
    env = {
        "PATH": os.environ.get("PATH", ""), "AGENT_SERVER": f"http://127.0.0.1:{site.port}", "AGENT_TOKEN": "bench",
        "AGENT_SPOOL_DIR": str(workdir / f"spool-{models}"), "LOG_LEVEL": "WARNING",
    }  # fmt: skip
    log = open(workdir / f"agent-{models}.log", "w")
    agent = subprocess.Popen([PYTHON, "-m", "collectors.agent"], cwd=ROOT, env=env, stdout=log, stderr=log)
    try:
        time.sleep(warmup)  # the first probes are spread over the first interval
        meter = CpuMeter({"agent": agent.pid, "simulator": simulator_pid})
        before, started = site.results, time.monotonic()
        time.sleep(duration)
        counted, elapsed = site.results - before, time.monotonic() - started
        cpu = meter.stop()
        rate = counted / elapsed
        figures = {
            "models": models, "interval_s": interval, "offered": models / interval, "rate": rate,
            "cpu_ms_per_probe": 10 * cpu["agent"] / rate if rate else None,
            "rss_mb": rss_mb(agent.pid), "peak_rss_mb": rss_mb(agent.pid, "VmHWM:"), "cpu": cpu,
        }  # fmt: skip
    finally:
        stop_process(agent)
        log.close()
    return figures


def child_raw(endpoint: str, concurrency: int, duration: float) -> dict[str, Any]:
    from collectors.probes import make_session, run_probe
    from collectors.probes.base import ProbeTarget

    targets = [ProbeTarget(i, "openai_chat", endpoint, UPSTREAM, timeout_s=10) for i in range(concurrency)]
    counted = {"n": 0}
    meter: list[CpuMeter] = []

    async def run() -> float:
        async with make_session(limit=concurrency) as session:
            await asyncio.gather(*(run_probe(t, session) for t in targets))  # warm the pool
            meter.append(CpuMeter({"raw": os.getpid()}))
            deadline = time.monotonic() + duration
            started = time.monotonic()

            async def worker(target) -> None:
                while time.monotonic() < deadline:
                    await run_probe(target, session)
                    counted["n"] += 1

            await asyncio.gather(*(worker(t) for t in targets))
            return time.monotonic() - started

    elapsed = asyncio.run(run())
    cpu = meter[0].stop()["raw"]
    return {"rate": counted["n"] / elapsed, "cpu": cpu, "cpu_ms_per_probe": 10 * cpu / (counted["n"] / elapsed)}


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", type=int, default=40_000, help="models for the capacity phase")
    parser.add_argument("--interval", type=float, default=10, help="their interval (s): offered = models/interval")
    parser.add_argument("--memory-models", type=int, default=10_000)
    parser.add_argument("--duration", type=float, default=20)
    parser.add_argument("--concurrency", type=int, default=500, help="the agent's default AGENT_CONCURRENCY")
    parser.add_argument("--json", help="write the figures here")
    parser.add_argument("--child-raw", metavar="ENDPOINT", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child_raw:
        print(json.dumps(child_raw(args.child_raw, args.concurrency, args.duration)))
        return {}

    figures: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="bench-agent-") as tmp, simulator_process(SCENARIO, Path(tmp)) as sim:
        endpoint, simulator = sim
        command = [PYTHON, __file__, "--child-raw", endpoint, "--duration", str(args.duration),
                   "--concurrency", str(args.concurrency)]  # fmt: skip
        out = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, check=True)
        figures["raw"] = json.loads(out.stdout.strip().splitlines()[-1])
        warmup = args.interval + 5
        figures["agent"] = run_agent(endpoint, args.models, args.interval, warmup, args.duration, Path(tmp),
                                     simulator.pid)  # fmt: skip
        figures["memory"] = run_agent(endpoint, args.memory_models, args.interval, warmup, 10, Path(tmp),
                                      simulator.pid)  # fmt: skip
    raw, agent, memory = figures["raw"], figures["agent"], figures["memory"]
    print_table(
        [
            ["raw client (make_session + run_probe), nothing sent",
             f"{raw['rate']:,.0f} probes/s, {raw['cpu_ms_per_probe']:.2f} ms CPU each", "", "", ""],
            [f"agent: {agent['models']:,} models every {agent['interval_s']:g} s ({agent['offered']:,.0f}/s offered)",
             f"{agent['rate']:,.0f} probes/s, {agent['cpu_ms_per_probe']:.2f} ms CPU each",
             f"{agent['rate'] / raw['rate']:.2f} x raw", ">= 2,000/s", "met" if agent["rate"] >= 2000 else "NOT met"],
            ["  one core's worth at that CPU cost", f"{1000 / agent['cpu_ms_per_probe']:,.0f} probes/s",
             f"raw: {1000 / raw['cpu_ms_per_probe']:,.0f}/s", "", ""],
            ["  agent CPU / simulator CPU (% of one core)",
             f"{agent['cpu']['agent']:.0f} % / {agent['cpu']['simulator']:.0f} %", "", "", ""],
            [f"agent memory, {memory['models']:,} models ({memory['rate']:,.0f} probes/s)",
             f"{memory['rss_mb']:.0f} MB RSS (peak {memory['peak_rss_mb']:.0f} MB)", "", "", ""],
        ],
        ["benchmark", "measured", "against", "target", ""],
    )  # fmt: skip
    write_figures(args.json, figures)
    return figures


if __name__ == "__main__":
    main()
