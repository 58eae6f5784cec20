"""The whole product as processes of its own: PostgreSQL, Redis, simulator, web, workers, beat.

Everything listens on free ports and lives under one temporary folder; the shared services on 5432 and
6379 are never touched. Each piece can be killed, frozen (SIGSTOP) and brought back by name.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from chaos.truth import simulator_scenario
from tests import pg_cluster
from tests.receiver import Receiver

ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port: int, timeout: float = 60, process: subprocess.Popen | None = None) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            if process is not None and process.poll() is not None:
                raise RuntimeError(f"{process.args!r} exited with {process.returncode}") from None
            if time.monotonic() > deadline:
                raise RuntimeError(f"nothing listens on 127.0.0.1:{port} after {timeout:g} s") from None
            time.sleep(0.1)


def children(pid: int) -> list[int]:
    """Direct children of a process, from /proc."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1]) == pid:
                    found.append(int(entry.name))
            except (OSError, IndexError, ValueError):
                continue
    return found


class Stack:
    """Starts and stops the pieces; `env` is what every product process runs with."""

    def __init__(self, models: int, seed: int, workers: int = 2, keep: bool = False) -> None:
        self.models = models
        self.seed = seed
        self.worker_count = workers
        self.keep = keep
        self.root = pg_cluster.make_root("aistatus-chaos-")
        self.processes: dict[str, subprocess.Popen] = {}
        self.receiver = Receiver()
        self.redis_port = free_port()
        self.simulator_port = free_port()
        self.web_port = free_port()
        self.pg: pg_cluster.Cluster | None = None
        self.database_url_for_web: str | None = None  # through a proxy, when a scenario asks
        self.token = ""

    # -- addresses -------------------------------------------------------------------------------

    @property
    def web(self) -> str:
        return f"http://127.0.0.1:{self.web_port}"

    @property
    def simulator(self) -> str:
        return f"http://127.0.0.1:{self.simulator_port}"

    @property
    def redis_url(self) -> str:
        return f"redis://127.0.0.1:{self.redis_port}/0"

    def env(self, **overrides: str) -> dict[str, str]:
        return {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "aistatus.settings",
            "PYTHONPATH": str(ROOT),
            "ENV_FILE": "",
            "DATABASE_URL": self.pg.url(),
            "REDIS_URL": self.redis_url,
            "CELERY_BROKER_URL": self.redis_url,
            "SECRET_KEY": "chaos-only-secret-key",
            "LOG_LEVEL": "WARNING",
            "SITE_URL": self.web,
            "SIMULATOR_URL": self.simulator,
            "WEBHOOK_ALLOWED_HOSTS": "127.0.0.1",
            "COLLECTOR_SPOOL_DIR": str(self.root / "spool"),
            # Settings other parts of the product read (unknown ones are harmless): no connection or
            # request limits against the suite's own clients, no second factor for its operator.
            "WS_CONNECTS_PER_MINUTE": "0",
            "API_THROTTLE_ANON": "off",
            "API_THROTTLE_TOKEN": "off",
            "REQUIRE_2FA": "0",
            "REALTIME_MAX_CONNECTIONS": "20000",
            **overrides,
        }

    # -- life ------------------------------------------------------------------------------------

    def start(self) -> None:
        self.receiver.__enter__()
        self.pg = pg_cluster.primary(self.root)
        self.start_redis()
        scenario = self.root / "scenario.json"
        scenario.write_text(json.dumps(simulator_scenario(self.models, self.seed)))
        simulator = [PYTHON, "manage.py", "simulator", "--port", str(self.simulator_port), "--scenario", str(scenario)]
        self.spawn("simulator", *simulator)
        self.run("migrate", PYTHON, "manage.py", "migrate", "--noinput", "-v", "0")
        wait_port(self.simulator_port, process=self.processes["simulator"])
        seeded = self.run(
            "seed",
            *(PYTHON, "-m", "chaos.seed", "--models", str(self.models)),
            *("--simulator", self.simulator + "/v1", "--webhook", self.receiver.url()),
        )
        self.token = json.loads(seeded.strip().splitlines()[-1])["token"]
        self.start_web()
        for i in range(1, self.worker_count + 1):
            self.start_worker(f"worker{i}")
        self.start_beat()

    def spawn(self, name: str, *command: str, env: dict[str, str] | None = None) -> subprocess.Popen:
        log = open(self.root / f"{name}.log", "a")
        process = subprocess.Popen(
            command, cwd=ROOT, env=env or self.env(), stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        log.close()
        self.processes[name] = process
        return process

    def run(self, name: str, *command: str) -> str:
        done = subprocess.run(command, cwd=ROOT, env=self.env(), capture_output=True, text=True, timeout=300)
        if done.returncode:
            raise RuntimeError(f"{name} failed:\n{done.stdout}\n{done.stderr}")
        return done.stdout

    def start_redis(self) -> None:
        command = ["redis-server", "--port", str(self.redis_port), "--bind", "127.0.0.1", "--save", ""]
        command += ["--appendonly", "no", "--dir", str(self.root), "--loglevel", "warning"]
        self.spawn("redis", *command)
        wait_port(self.redis_port, process=self.processes["redis"])

    def start_web(self) -> None:
        env = self.env(DATABASE_URL=self.database_url_for_web) if self.database_url_for_web else self.env()
        command = [PYTHON, "-m", "uvicorn", "aistatus.asgi:application", "--host", "127.0.0.1"]
        command += ["--port", str(self.web_port), "--no-access-log", "--log-level", "warning"]
        command += ["--ws-per-message-deflate", "false"]
        process = self.spawn("web", *command, env=env)
        deadline = time.monotonic() + 60
        while True:
            try:
                urllib.request.urlopen(self.web + "/healthz", timeout=1).read()
                return
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("the web process did not start:\n" + self.log_tail("web")) from None
                time.sleep(0.1)

    def start_worker(self, name: str) -> None:
        command = [PYTHON, "-m", "celery", "-A", "aistatus", "worker", "-Q", "celery,probes.default"]
        command += ["--pool", "threads", "--concurrency", "8", "-n", f"{name}@chaos", "--loglevel", "WARNING"]
        self.spawn(name, *command)

    def start_beat(self) -> None:
        schedule = str(self.root / "beat-schedule")
        self.spawn("beat", PYTHON, "-m", "celery", "-A", "aistatus", "beat", "-s", schedule, "--loglevel", "WARNING")

    def workers(self) -> list[str]:
        return [name for name in self.processes if name.startswith("worker")]

    def signal(self, name: str, sig: int) -> None:
        os.kill(self.processes[name].pid, sig)

    def kill(self, name: str) -> None:
        process = self.processes.pop(name)
        process.kill()
        process.wait()

    def stop(self, name: str, timeout: float = 30) -> None:
        process = self.processes.pop(name)
        process.terminate()
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

    # -- PostgreSQL ------------------------------------------------------------------------------

    def postmaster(self) -> int:
        return int((self.pg.datadir / "postmaster.pid").read_text().splitlines()[0])

    def pg_freeze(self) -> list[int]:
        """SIGSTOP the postmaster and every backend: connections hang instead of failing."""
        pids = [self.postmaster(), *children(self.postmaster())]
        for pid in pids:
            os.kill(pid, signal.SIGSTOP)
        return pids

    @staticmethod
    def pg_thaw(pids: list[int]) -> None:
        for pid in pids:
            try:
                os.kill(pid, signal.SIGCONT)
            except ProcessLookupError:
                pass

    def sql(self, query: str) -> list[tuple]:
        return self.pg.execute(query)

    # -- the end ---------------------------------------------------------------------------------

    def log_tail(self, name: str, chars: int = 3000) -> str:
        try:
            return (self.root / f"{name}.log").read_text()[-chars:]
        except OSError:
            return ""

    def close(self) -> None:
        # The product first, then what it depends on: a worker outliving Redis only logs tracebacks.
        order = sorted(self.processes, key=lambda name: name in ("redis", "simulator"))
        for name in order:
            process = self.processes[name]
            if process.poll() is None:
                try:
                    os.kill(process.pid, signal.SIGCONT)  # a frozen process cannot stop
                except ProcessLookupError:
                    pass
            # Nothing is measured any more: no need to wait for a worker's round to finish.
            self.kill(name)
        if self.pg is not None:
            for pid in [self.postmaster(), *children(self.postmaster())] if self.pg.running() else []:
                try:
                    os.kill(pid, signal.SIGCONT)
                except (ProcessLookupError, OSError):
                    pass
        self.receiver.__exit__()
        if self.keep:
            print(f"chaos: logs kept in {self.root}", file=sys.stderr)
            if self.pg is not None and self.pg.running():
                self.pg.stop("immediate")
        else:
            pg_cluster.destroy(self.root, [self.pg] if self.pg else [])
            shutil.rmtree(self.root, ignore_errors=True)
