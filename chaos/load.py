"""Live clients held open for the whole run: N WebSocket (asking for batch frames, as the page does) and M SSE
connections in a process of their own.

`python -m chaos.load URL WS SSE REPORT` keeps them connected (reconnecting, resuming from the last
sequence) until SIGTERM, then writes what they saw to REPORT as JSON.
"""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import aiohttp
import websockets

from chaos.sampler import unbatched


class Counts:
    def __init__(self) -> None:
        self.events = {"ws": 0, "sse": 0}
        self.connects = {"ws": 0, "sse": 0}
        self.open = {"ws": 0, "sse": 0}


async def websocket_client(url: str, origin: str, counts: Counts) -> None:
    last_seq = None
    while True:
        try:
            query = f"&last_seq={last_seq}" if last_seq is not None else ""
            async with websockets.connect(url + query, origin=origin, open_timeout=20, max_queue=None) as ws:
                counts.connects["ws"] += 1
                counts.open["ws"] += 1
                try:
                    async for message in ws:
                        for event in unbatched(json.loads(message)):
                            counts.events["ws"] += event.get("type") == "status_change"
                            if "seq" in event:
                                last_seq = max(last_seq or 0, event["seq"])
                finally:
                    counts.open["ws"] -= 1
        except (TimeoutError, OSError, websockets.WebSocketException, ValueError):
            pass
        await asyncio.sleep(1)


async def sse_client(session: aiohttp.ClientSession, url: str, counts: Counts) -> None:
    last_id = None
    while True:
        try:
            headers = {"Last-Event-ID": last_id} if last_id else {}
            async with session.get(url, headers=headers) as response:
                counts.connects["sse"] += 1
                counts.open["sse"] += 1
                try:
                    async for raw in response.content:
                        if raw.startswith(b"id:"):
                            last_id = raw[3:].strip().decode()
                        elif raw.startswith(b"event: status_change"):
                            counts.events["sse"] += 1
                finally:
                    counts.open["sse"] -= 1
        except (TimeoutError, OSError, aiohttp.ClientError):
            pass
        await asyncio.sleep(1)


async def main(web: str, ws: int, sse: int, report: Path) -> None:
    counts = Counts()
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    timeout = aiohttp.ClientTimeout(total=None, sock_connect=20, sock_read=60)
    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(timeout=timeout, connector=connector) as session:
        tasks = []
        for _ in range(ws):
            # As the page's own client does (static/statuspage/live.js): a burst comes in batch frames.
            url = web.replace("http", "ws", 1) + "/ws/status/?batch=1"
            tasks.append(asyncio.create_task(websocket_client(url, web, counts)))
            await asyncio.sleep(0.005)  # a ramp, not a thundering herd at start
        for _ in range(sse):
            tasks.append(asyncio.create_task(sse_client(session, web + "/api/v1/events/", counts)))
            await asyncio.sleep(0.005)
        started = time.monotonic()
        low = {"ws": ws, "sse": sse}
        while not stop.is_set():
            await asyncio.sleep(1)
            if time.monotonic() - started > 30:  # after the ramp: the fewest held open at once
                low = {k: min(low[k], counts.open[k]) for k in low}
        report.write_text(
            json.dumps(
                {"events": counts.events, "connects": counts.connects, "open_at_end": counts.open, "fewest_open": low}
            )
        )
        for task in tasks:
            task.cancel()


class Load:
    """The load process, started and stopped by the runner."""

    def __init__(self, stack, ws: int, sse: int) -> None:
        self.report_path = stack.root / "load.json"
        self.process = stack.spawn(
            "load", sys.executable, "-m", "chaos.load", stack.web, str(ws), str(sse), str(self.report_path)
        )
        self.result: dict | None = None

    def report(self) -> dict | None:
        self.close()
        return self.result

    def close(self) -> None:
        if self.result is not None or self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(30)
        except subprocess.TimeoutExpired:
            self.process.kill()
        try:
            self.result = json.loads(self.report_path.read_text())
        except (OSError, ValueError):
            self.result = {"error": "no report"}


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), Path(sys.argv[4])))
