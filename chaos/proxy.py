"""A TCP proxy that injects network faults: added latency, dropped connections, half-open sockets.

It runs its own event loop in a thread; `mode` can be changed at any time from another thread:
- "pass": bytes flow both ways untouched;
- "latency": every chunk waits `latency_s` before it is forwarded, both ways;
- "drop": open connections are reset and new ones closed at once (an RST-like failure);
- "blackhole": connections are accepted and read, but nothing is forwarded or answered, and open ones
  go silent too (a half-open socket: the peer waits until its own timeout); when the mode changes
  again, those connections are reset.
"""

from __future__ import annotations

import asyncio
import socket
import subprocess
import sys
import threading
from pathlib import Path

MODES = ("pass", "latency", "drop", "blackhole")


class FaultProxy:
    def __init__(self, target_host: str, target_port: int, latency_s: float = 1.0) -> None:
        self.target = (target_host, target_port)
        self.latency_s = latency_s
        self.mode = "pass"
        self.port = 0
        self.connections = 0
        self._writers: set[asyncio.StreamWriter] = set()
        self._server: asyncio.Server | None = None
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> FaultProxy:
        self._thread.start()
        self._ready.wait(10)
        return self

    def set_mode(self, mode: str) -> None:
        assert mode in MODES, mode
        leaving_blackhole = self.mode == "blackhole" and mode != "blackhole"
        self.mode = mode
        # Dropping resets every connection; so does the end of a blackhole, as when a partition heals
        # and a peer that lost the connection's state answers its next packet with a reset.
        if mode == "drop" or leaving_blackhole:
            self._loop.call_soon_threadsafe(self._reset_all)

    def stop(self) -> None:
        async def shut() -> None:
            if self._server is not None:
                self._server.close()  # no new connections while the open ones are ended
            self._reset_all()
            tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            self._loop.stop()

        asyncio.run_coroutine_threadsafe(shut(), self._loop)
        self._thread.join(10)

    # -- inside the loop -------------------------------------------------------------------------

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        server = self._loop.run_until_complete(asyncio.start_server(self._handle, "127.0.0.1", 0))
        self._server = server
        self.port = server.sockets[0].getsockname()[1]
        self._ready.set()
        self._loop.run_forever()

    def _reset_all(self) -> None:
        for writer in list(self._writers):
            _reset(writer)

    async def _handle(self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        if self.mode == "drop":
            _reset(client_writer)
            return
        self._writers.add(client_writer)
        upstream_writer = None
        try:
            if self.mode == "blackhole":
                await self._swallow(client_reader)
                return
            upstream_reader, upstream_writer = await asyncio.open_connection(*self.target)
            self._writers.add(upstream_writer)
            await asyncio.gather(self._pipe(client_reader, upstream_writer), self._pipe(upstream_reader, client_writer))
        except (OSError, asyncio.IncompleteReadError):
            pass
        except asyncio.CancelledError:
            pass  # stop(): ends quietly (a cancelled connection task makes asyncio's stream callback raise)
        finally:
            for writer in (client_writer, upstream_writer):
                if writer is not None:
                    self._writers.discard(writer)
                    writer.close()

    async def _swallow(self, reader: asyncio.StreamReader) -> None:
        while await reader.read(65536):
            pass

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(65536):
                if self.mode == "blackhole":
                    await self._swallow(reader)  # silence from here on: the peer hears nothing more
                    return
                if self.mode == "latency":
                    await asyncio.sleep(self.latency_s)
                writer.write(data)
                await writer.drain()
        except OSError:
            pass
        finally:
            if self.mode != "blackhole":
                writer.close()


def _reset(writer: asyncio.StreamWriter) -> None:
    """Close with RST rather than FIN: the peer sees a connection reset."""
    sock = writer.get_extra_info("socket")
    if sock is not None:
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
        except OSError:
            pass
    writer.close()


class ProxyProcess:
    """A FaultProxy in a process of its own, driven over its stdin, with FaultProxy's interface.

    The suite's scenarios use this one: once in place, a proxy carries every probe (or every query of the
    web process) for the rest of the run, and that traffic must not compete for the interpreter with the
    suite's own sampler, pulser and alert receiver, whose timings are the measures.
    """

    def __init__(self, target_host: str, target_port: int, latency_s: float = 1.0) -> None:
        self.target = (target_host, target_port)
        self._latency_s = latency_s
        self.mode = "pass"
        self.port = 0
        self.process: subprocess.Popen | None = None

    def start(self) -> ProxyProcess:
        command = [sys.executable, "-m", "chaos.proxy", self.target[0], str(self.target[1]), str(self._latency_s)]
        self.process = subprocess.Popen(
            command,
            cwd=Path(__file__).resolve().parent.parent,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        self.port = int(self.process.stdout.readline())
        return self

    def _command(self, line: str) -> None:
        """Send one command and wait for its "ok": the mode has changed once this returns."""
        self.process.stdin.write(line + "\n")
        self.process.stdin.flush()
        answer = self.process.stdout.readline().strip()
        if answer != "ok":
            raise RuntimeError(f"fault proxy: {line!r} answered {answer!r}")

    @property
    def latency_s(self) -> float:
        return self._latency_s

    @latency_s.setter
    def latency_s(self, seconds: float) -> None:
        self._command(f"latency {seconds}")
        self._latency_s = seconds

    def set_mode(self, mode: str) -> None:
        assert mode in MODES, mode
        self._command(f"mode {mode}")
        self.mode = mode

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.stdin.close()  # end of commands: the proxy resets what it holds and exits
        try:
            self.process.wait(15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def main(argv: list[str]) -> None:
    """`python -m chaos.proxy HOST PORT LATENCY_S`: prints its port, then obeys "mode M" and "latency S"
    lines on stdin (answering "ok" to each) until stdin ends."""
    host, port, latency = argv[0], int(argv[1]), float(argv[2])
    proxy = FaultProxy(host, port, latency).start()
    print(proxy.port, flush=True)
    for line in sys.stdin:
        command, _, value = line.strip().partition(" ")
        if command == "mode" and value in MODES:
            proxy.set_mode(value)
        elif command == "latency":
            proxy.latency_s = float(value)
        else:
            print(f"unknown command {line.strip()!r}", flush=True)
            continue
        print("ok", flush=True)
    proxy.stop()


if __name__ == "__main__":
    main(sys.argv[1:])
