"""Live-update fan-out: many WebSocket or SSE clients on one server process; latency from commit to receipt.

Starts one uvicorn process on its own database, opens N clients from this process, commits status
changes and measures, for every client, the time from the commit to the event's arrival (p50, p99,
max), and the server's memory per connection. The baseline in the same run is one client alone.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/aistatus_bench .venv/bin/python bench/live_fanout.py \
        --transport ws --clients 10000
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import socket
import statistics
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "monitoring.settings")
os.environ.setdefault("SECRET_KEY", "bench")
os.environ.setdefault("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/aistatus_bench")
os.environ.setdefault("REDIS_URL", "redis://127.0.0.1:6379/9")


def rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(port: int, ws: str) -> subprocess.Popen:
    env = {**os.environ, "REALTIME_MAX_CONNECTIONS": "100000"}
    process = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "monitoring.asgi:application", "--port", str(port),
         "--no-access-log", "--log-level", "warning", "--backlog", "16384", "--ws-ping-interval", "0",
         "--ws", ws, "--ws-per-message-deflate", "false"],
        cwd=ROOT, env=env,
    )  # fmt: skip
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1)
            return process
        except OSError:
            time.sleep(0.2)
    raise SystemExit("server did not start")


class Clients:
    def __init__(self, transport: str, url: str) -> None:
        self.transport, self.url = transport, url
        self.arrivals: dict[int, list[float]] = {}
        self.connected = 0
        self.tasks: list[asyncio.Task] = []
        self.ready = asyncio.Event()

    def _record(self, event: dict) -> None:
        if event.get("type") == "status_change":
            self.arrivals.setdefault(event["seq"], []).append(time.time())

    async def _ws(self) -> None:
        import websockets

        ws_url = self.url.replace("http://", "ws://") + "/ws/status/"
        async with websockets.connect(ws_url, origin=self.url, open_timeout=120, ping_interval=None,
                                      max_queue=None) as ws:  # fmt: skip
            self.connected += 1
            async for message in ws:
                self._record(json.loads(message))

    async def _sse(self, session) -> None:
        async with session.get(self.url + "/api/v1/events/") as response:
            self.connected += 1
            buffer = b""
            async for chunk in response.content.iter_any():
                buffer += chunk
                while b"\n\n" in buffer:
                    frame, buffer = buffer.split(b"\n\n", 1)
                    for line in frame.split(b"\n"):
                        if line.startswith(b"data: "):
                            self._record(json.loads(line[6:]))

    async def open(self, count: int) -> None:
        import aiohttp

        session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0), timeout=aiohttp.ClientTimeout())
        self.session = session
        batch = 200  # connect in waves so the accept queue keeps up
        for start in range(0, count, batch):
            for _ in range(min(batch, count - start)):
                coro = self._ws() if self.transport == "ws" else self._sse(session)
                self.tasks.append(asyncio.create_task(coro))
            target = start + min(batch, count - start)
            deadline = time.monotonic() + 60
            while self.connected < target and time.monotonic() < deadline:
                await asyncio.sleep(0.02)
                failed = [t for t in self.tasks if t.done() and t.exception()]
                if failed:
                    raise SystemExit(f"client failed: {failed[0].exception()!r}")

    async def close(self) -> None:
        for task in self.tasks:
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)
        await self.session.close()


async def measure(transport: str, url: str, count: int, changes: int, server_pid: int) -> dict:
    import django
    from asgiref.sync import sync_to_async

    django.setup()
    from monitoring.models import AIModel
    from monitoring.transitions import record_status

    model_ids = await sync_to_async(lambda: list(AIModel.objects.values_list("pk", flat=True)[:changes]))()
    rss_before = rss_kb(server_pid)
    clients = Clients(transport, url)
    opened = time.monotonic()
    await clients.open(count)
    open_s = time.monotonic() - opened
    await asyncio.sleep(2)
    rss_after = rss_kb(server_pid)
    commits: dict[int, float] = {}

    def flip(model_id: int):
        from monitoring.models import ModelStatus

        current = ModelStatus.objects.get(model_id=model_id).status
        target = "operational" if current == "major_outage" else "major_outage"
        return record_status(model_id, target, reason="bench", source="operator", manual=True)

    for i in range(changes):
        change = await sync_to_async(flip)(model_ids[i % len(model_ids)])
        commits[change.pk] = time.time()
        await asyncio.sleep(1.0)
    await asyncio.sleep(3)
    latencies = [
        arrival - commits[seq] for seq, arrivals in clients.arrivals.items() if seq in commits for arrival in arrivals
    ]
    received = sum(len(clients.arrivals.get(seq, [])) for seq in commits)
    await clients.close()
    latencies.sort()
    pick = lambda q: latencies[min(len(latencies) - 1, int(q * len(latencies)))] * 1000 if latencies else float("nan")  # noqa: E731
    return {
        "clients": count,
        "connect_s": round(open_s, 1),
        "expected": count * changes,
        "received": received,
        "p50_ms": round(pick(0.5), 1),
        "p99_ms": round(pick(0.99), 1),
        "max_ms": round(latencies[-1] * 1000, 1) if latencies else None,
        "mean_ms": round(statistics.fmean(latencies) * 1000, 1) if latencies else None,
        "server_rss_mb": round(rss_after / 1024, 1),
        "kb_per_connection": round((rss_after - rss_before) / max(count, 1), 1),
    }


def prepare_database() -> None:
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    call_command("seed_demo", verbosity=0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--transport", choices=["ws", "sse"], default="ws")
    parser.add_argument("--clients", type=int, nargs="+", default=[1, 1000, 10000])
    parser.add_argument("--changes", type=int, default=5)
    parser.add_argument("--ws", default="auto", help="uvicorn's WebSocket implementation (auto, wsproto, ...)")
    args = parser.parse_args()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    prepare_database()
    print(f"live fan-out over {args.transport} (uvicorn --ws {args.ws}): one process, {args.changes} changes 1 s apart")
    print(f"{'clients':>8} {'connect s':>9} {'received':>17} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>8} "
          f"{'server MB':>9} {'KB/conn':>8}")  # fmt: skip
    for count in args.clients:
        port = free_port()
        server = start_server(port, args.ws)
        try:
            result = asyncio.run(measure(args.transport, f"http://127.0.0.1:{port}", count, args.changes, server.pid))
        finally:
            server.terminate()
            server.wait(timeout=20)
        print(f"{result['clients']:>8} {result['connect_s']:>9} {result['received']:>8}/{result['expected']:<8} "
              f"{result['p50_ms']:>8} {result['p99_ms']:>8} {result['max_ms']!s:>8} {result['server_rss_mb']:>9} "
              f"{result['kb_per_connection']:>8}", flush=True)  # fmt: skip


if __name__ == "__main__":
    main()
