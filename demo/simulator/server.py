"""Serve the simulator with uvicorn: in the foreground for the command, in a thread for tests and benchmarks."""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from types import FrameType
from typing import Any

import uvicorn

from .app import SimulatorApp, build_app
from .scenario import Scenario

STARTUP_TIMEOUT_S = 10.0
# Requests still pausing when the server stops are released at once; this only bounds a stubborn stream.
GRACEFUL_SHUTDOWN_S = 3


class _QuietDeliberateCuts(logging.Filter):
    """Broken streams end by returning mid-response, which uvicorn reports as an error; here it is on purpose."""

    def filter(self, record: logging.LogRecord) -> bool:
        return record.msg != "ASGI callable returned without completing response."


_QUIET_CUTS = _QuietDeliberateCuts()


class _Server(uvicorn.Server):
    """A uvicorn server that releases hung requests as soon as it is asked to stop."""

    def __init__(self, config: uvicorn.Config, app: SimulatorApp) -> None:
        super().__init__(config)
        self.simulator = app

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        self.simulator.release_waiting()
        super().handle_exit(sig, frame)


def _config(app: SimulatorApp, **options: Any) -> uvicorn.Config:
    config = uvicorn.Config(
        app,
        interface="asgi3",
        lifespan="off",
        access_log=False,
        proxy_headers=False,
        log_level="warning",
        timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_S,
        **options,
    )
    logging.getLogger("uvicorn.error").addFilter(_QUIET_CUTS)
    return config


def bind(host: str = "127.0.0.1", port: int = 8900) -> socket.socket:
    """A listening socket on host:port; OSError (address in use) when it cannot be had."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
        sock.listen(2048)  # connections wait in the backlog until uvicorn takes the socket over
    except OSError:
        sock.close()
        raise
    return sock


def serve(app: SimulatorApp, host: str = "127.0.0.1", port: int = 8900, sock: socket.socket | None = None) -> None:
    """Serve in the foreground until interrupted, on `sock` when given (already bound), else on host:port."""
    if sock is None:
        _Server(_config(app, host=host, port=port), app).run()
    else:
        _Server(_config(app), app).run(sockets=[sock])


@dataclass(frozen=True, slots=True)
class RunningSimulator:
    """A simulator serving in the background: `url` has no path, `base_url` is the OpenAI-style `/v1` root."""

    url: str
    app: SimulatorApp
    host: str
    port: int

    @property
    def base_url(self) -> str:
        return f"{self.url}/v1"


@contextmanager
def serve_in_background(
    scenario: Scenario | Mapping[str, Any] | str | os.PathLike[str] | None = None,
    host: str = "127.0.0.1",
    port: int = 0,
    *,
    clock: Callable[[], float] | None = None,
) -> Iterator[RunningSimulator]:
    """Serve `scenario` (the demo scenario when None) from a background thread; port 0 picks a free port."""
    app = build_app(scenario, clock=clock)
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = bind(host, port)
    port = sock.getsockname()[1]
    # log_config=None leaves the host process's logging alone (pytest, benchmarks).
    server = _Server(_config(app, log_config=None), app)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, name=f"simulator:{port}", daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + STARTUP_TIMEOUT_S
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError(f"the simulator did not start on {host}:{port}")
            time.sleep(0.005)
        with socket.create_connection((host, port), timeout=STARTUP_TIMEOUT_S):
            pass
        shown = f"[{host}]" if family == socket.AF_INET6 else host
        yield RunningSimulator(url=f"http://{shown}:{port}", app=app, host=host, port=port)
    finally:
        app.release_waiting()
        server.should_exit = True
        thread.join(timeout=GRACEFUL_SHUTDOWN_S + 5)
        sock.close()
