"""Live-update fan-out: many WebSocket or SSE clients on one server process; latency from change to receipt.

Starts one uvicorn process on its own database, opens N clients from this process, makes status
changes and measures, for every client, the time from the start of the change's transaction to the
event's arrival (p50, p99, max), and the server's memory per connection. The baseline in the same
run is one client alone.

    .venv/bin/python bench/live_fanout.py --transport ws --clients 1 2000 5000 10000 15000 --changes 8
"""

from __future__ import annotations

import argparse
import asyncio
import base64
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
sys.path.insert(0, str(Path(__file__).resolve().parent))
# Its own database and Redis database: it seeds the demo models and flips their statuses.
os.environ.setdefault("BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/aistatus_live_bench")
os.environ.setdefault("BENCH_REDIS_URL", "redis://127.0.0.1:6379/9")

from common import bench_env, setup_django  # noqa: E402


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
    env = {**bench_env(), "REALTIME_MAX_CONNECTIONS": "100000"}
    process = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "aistatus.asgi:application", "--port", str(port),
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


class RawWebSocket(asyncio.Protocol):
    """A minimal WebSocket client for the load generator: handshake, then unmasked server frames.

    The `websockets` client parses and queues every frame in Python, and at 10,000 connections on the
    same two cores its own work shows up in the figures as server latency. This one only timestamps
    the frames that carry a status change and parses them after the run.
    """

    KEY = base64.b64encode(b"aistatus-bench-k").decode()

    def __init__(self, host: str, origin: str, clients: Clients) -> None:
        self.host, self.origin, self.clients = host, origin, clients
        self.buffer = b""
        self.open = False
        self.opened = asyncio.get_running_loop().create_future()

    def connection_made(self, transport) -> None:
        self.transport = transport
        transport.write(
            (f"GET /ws/status/ HTTP/1.1\r\nHost: {self.host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
             f"Sec-WebSocket-Key: {self.KEY}\r\nSec-WebSocket-Version: 13\r\nOrigin: {self.origin}\r\n\r\n").encode()
        )  # fmt: skip

    def data_received(self, data: bytes) -> None:
        now = time.time()
        buffer = self.buffer + data
        if not self.open:
            head, sep, buffer = buffer.partition(b"\r\n\r\n")
            if not sep:
                self.buffer = head
                return
            if not head.startswith(b"HTTP/1.1 101"):
                self.opened.set_exception(ConnectionError(head.split(b"\r\n", 1)[0].decode()))
                return
            self.open = True
            self.opened.set_result(None)
        while len(buffer) >= 2:
            length, start = buffer[1] & 0x7F, 2
            if length == 126:
                if len(buffer) < 4:
                    break
                length, start = int.from_bytes(buffer[2:4], "big"), 4
            elif length == 127:
                if len(buffer) < 10:
                    break
                length, start = int.from_bytes(buffer[2:10], "big"), 10
            if len(buffer) < start + length:
                break
            payload = buffer[start : start + length]
            buffer = buffer[start + length :]
            if b'"status_change"' in payload:
                self.clients.raw_arrivals.append((now, payload))
        self.buffer = buffer

    def connection_lost(self, exc) -> None:
        if not self.opened.done():
            self.opened.set_exception(exc or ConnectionError("closed during the handshake"))


class Clients:
    def __init__(self, transport: str, url: str, client: str = "raw") -> None:
        self.transport, self.url, self.client = transport, url, client
        self.arrivals: dict[int, list[float]] = {}
        self.raw_arrivals: list[tuple[float, bytes]] = []
        self.connected = 0
        self.tasks: list[asyncio.Task] = []
        self.ready = asyncio.Event()

    def _record(self, event: dict, arrived: float | None = None) -> None:
        if event.get("type") == "status_change":
            self.arrivals.setdefault(event["seq"], []).append(arrived or time.time())

    async def _ws(self) -> None:
        if self.client == "websockets":
            return await self._ws_library()
        host, port = self.url.removeprefix("http://").split(":")
        transport, protocol = await asyncio.get_running_loop().create_connection(
            lambda: RawWebSocket(f"{host}:{port}", self.url, self), host, int(port)
        )
        try:
            await protocol.opened
            self.connected += 1
            await asyncio.Event().wait()
        finally:
            transport.close()

    async def _ws_library(self) -> None:
        import websockets

        ws_url = self.url.replace("http://", "ws://") + "/ws/status/"
        async with websockets.connect(ws_url, origin=self.url, open_timeout=120, ping_interval=None,
                                      max_queue=None) as ws:  # fmt: skip
            self.connected += 1
            async for message in ws:
                self._record(json.loads(message))

    def collect(self) -> None:
        for arrived, payload in self.raw_arrivals:
            self._record(json.loads(payload), arrived)
        self.raw_arrivals.clear()

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


async def measure(transport: str, url: str, count: int, changes: int, server_pid: int, client: str) -> dict:
    from asgiref.sync import sync_to_async

    from monitoring.models import AIModel
    from monitoring.transitions import record_status

    model_ids = await sync_to_async(lambda: list(AIModel.objects.values_list("pk", flat=True)[:changes]))()
    rss_before = rss_kb(server_pid)
    clients = Clients(transport, url, client)
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
        # Timed from just before the change's transaction (so its own time counts too): the event is
        # published at commit, and a client may have it before record_status has returned.
        started = time.time()
        return record_status(model_id, target, reason="bench", source="operator", manual=True), started

    for i in range(changes):
        change, started = await sync_to_async(flip)(model_ids[i % len(model_ids)])
        commits[change.pk] = started
        await asyncio.sleep(1.0)
    await asyncio.sleep(3)
    clients.collect()
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
        "kb_per_connection": round((rss_after - rss_before) / count, 1) if count >= 100 else "",
    }


def prepare_database() -> None:
    setup_django(migrate=True)
    from django.core.management import call_command

    call_command("seed_demo", verbosity=0)


def loop_runner(coro):
    """uvloop where installed, as the server runs: the load generator should not be the slow side."""
    try:
        import uvloop
    except ImportError:
        return asyncio.run(coro)
    return uvloop.run(coro)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--transport", choices=["ws", "sse"], default="ws")
    parser.add_argument("--clients", type=int, nargs="+", default=[1, 1000, 10000])
    parser.add_argument("--changes", type=int, default=5)
    parser.add_argument("--client", choices=["raw", "websockets"], default="raw",
                        help="WebSocket load generator: a minimal frame reader, or the websockets library")  # fmt: skip
    parser.add_argument("--ws", default="auto", help="uvicorn's WebSocket implementation (auto, wsproto, ...)")
    args = parser.parse_args()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    prepare_database()
    client = f", {args.client} client" if args.transport == "ws" else ""
    print(f"live fan-out over {args.transport} (uvicorn --ws {args.ws}{client}): one process, "
          f"{args.changes} changes 1 s apart")  # fmt: skip
    print(f"{'clients':>8} {'connect s':>9} {'received':>17} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>8} "
          f"{'server MB':>9} {'KB/conn':>8}")  # fmt: skip
    for count in args.clients:
        port = free_port()
        server = start_server(port, args.ws)
        try:
            result = loop_runner(measure(args.transport, f"http://127.0.0.1:{port}", count, args.changes, server.pid,
                                         args.client))  # fmt: skip
        finally:
            server.terminate()
            server.wait(timeout=20)
        print(f"{result['clients']:>8} {result['connect_s']:>9} {result['received']:>8}/{result['expected']:<8} "
              f"{result['p50_ms']:>8} {result['p99_ms']:>8} {result['max_ms']!s:>8} {result['server_rss_mb']:>9} "
              f"{result['kb_per_connection']:>8}", flush=True)  # fmt: skip


if __name__ == "__main__":
    main()
