"""Shared plumbing for the benchmarks: their own database, Django setup, process figures and a running simulator."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
# The project code a benchmark process runs: this checkout, or another tree (a baseline to compare with).
CODE = Path(os.environ.get("BENCH_CODE_ROOT") or ROOT).resolve()
PYTHON = sys.executable

# The benchmarks truncate and refill tables, so they never read DATABASE_URL: pointing them at a
# real database takes a deliberate BENCH_DATABASE_URL.
DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/aistatus_bench"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/11"


def bench_env(code: Path | None = None) -> dict[str, str]:
    """The environment every benchmark process (and the processes it starts) runs with.

    `code` is the project tree those processes import (default: the one this process runs).
    """
    code = code or CODE
    database = os.environ.get("BENCH_DATABASE_URL", DEFAULT_DATABASE_URL)
    redis = os.environ.get("BENCH_REDIS_URL", DEFAULT_REDIS_URL)
    return {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "aistatus.settings",
        "DATABASE_URL": database,
        "BENCH_DATABASE_URL": database,
        "REDIS_URL": redis,
        "BENCH_REDIS_URL": redis,
        "CELERY_BROKER_URL": redis,
        "SECRET_KEY": os.environ.get("SECRET_KEY") or "bench-only-secret-key",
        "LOG_LEVEL": os.environ.get("LOG_LEVEL", "WARNING"),
        "PYTHONPATH": str(code),
        "BENCH_CODE_ROOT": str(code),
        # Load generators connect thousands of clients from 127.0.0.1: no per-address limits.
        "API_THROTTLE_ANON": "off",
        "API_THROTTLE_TOKEN": "off",
        "WS_CONNECTS_PER_MINUTE": "0",
    }


def setup_django(*, migrate: bool = False) -> None:
    """Configure Django for the benchmark database; create and migrate it first when asked."""
    os.environ.update(bench_env())
    if str(CODE) not in sys.path:
        sys.path.insert(0, str(CODE))
    if migrate:
        ensure_database(os.environ["DATABASE_URL"])
    import django

    django.setup()
    if migrate:
        from django.core.management import call_command

        call_command("migrate", verbosity=0, interactive=False)


def ensure_database(url: str) -> None:
    """Create the benchmark database when it does not exist yet."""
    import psycopg
    from psycopg import sql

    base, _, name = url.rpartition("/")
    with psycopg.connect(base + "/postgres", autocommit=True) as conn:
        if conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone() is None:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))


# --- Process figures -------------------------------------------------------------------------------------------------

_TICKS = os.sysconf("SC_CLK_TCK")


def peak_rss_mb() -> float:
    """This process's peak resident set (VmHWM), in MiB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time a process has used so far (0 when it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / _TICKS


def postgres_cpu_seconds() -> float:
    """CPU time used by every PostgreSQL process on this machine (other users' work included)."""
    total = 0.0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if (entry / "comm").read_text().strip() in ("postgres", "postmaster"):
                total += cpu_seconds(int(entry.name))
        except OSError:
            continue
    return total


def machine_busy_seconds() -> tuple[float, float]:
    """(busy, total) CPU seconds of the whole machine since boot, from /proc/stat."""
    values = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = values[3] + values[4]
    total = sum(values[:8])
    return (total - idle) / _TICKS, total / _TICKS


class CpuMeter:
    """CPU used by named processes, PostgreSQL and the whole machine over a stretch of wall time."""

    def __init__(self, pids: dict[str, int]) -> None:
        self.pids = pids
        self.start = self._read()
        self.started = time.monotonic()

    def _read(self) -> dict[str, float]:
        busy, total = machine_busy_seconds()
        figures = {name: cpu_seconds(pid) for name, pid in self.pids.items()}
        figures["postgres"] = postgres_cpu_seconds()
        figures["_busy"], figures["_total"] = busy, total
        return figures

    def stop(self) -> dict[str, float]:
        """Per process: percent of one core used; `machine`: percent of all cores busy."""
        end = self._read()
        wall = max(time.monotonic() - self.started, 1e-9)
        shares = {name: 100 * (end[name] - self.start[name]) / wall for name in [*self.pids, "postgres"]}
        total = end["_total"] - self.start["_total"]
        shares["machine"] = 100 * (end["_busy"] - self.start["_busy"]) / total if total else 0.0
        return shares


# --- Processes -------------------------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_port(port: int, process: subprocess.Popen, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"process {process.args!r} exited with {process.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"nothing listens on 127.0.0.1:{port} after {timeout:g} s")


def stop_process(process: subprocess.Popen, timeout: float = 15.0) -> None:
    if process.poll() is not None:
        return
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


@contextmanager
def simulator_process(scenario: dict[str, Any], workdir: Path) -> Iterator[tuple[str, subprocess.Popen]]:
    """The simulator in its own process (so it does not share the collector's core); yields its /v1 URL."""
    workdir.mkdir(parents=True, exist_ok=True)
    path = workdir / "scenario.json"
    path.write_text(json.dumps(scenario))
    port = free_port()
    log = open(workdir / "simulator.log", "w")
    command = [PYTHON, "manage.py", "simulator", "--scenario", str(path), "--port", str(port)]
    process = subprocess.Popen(command, cwd=ROOT, env=bench_env(), stdout=log, stderr=subprocess.STDOUT)
    try:
        wait_for_port(port, process)
        yield f"http://127.0.0.1:{port}/v1", process
    finally:
        stop_process(process)
        log.close()


def run_child(args: Sequence[str], timeout: float) -> dict[str, Any]:
    """Run `python <args>` in the benchmark environment; its last stdout line is a JSON object of figures."""
    completed = subprocess.run(
        [PYTHON, *args], cwd=ROOT, env=bench_env(), capture_output=True, text=True, timeout=timeout, check=False
    )
    if completed.returncode != 0:
        raise RuntimeError(f"{' '.join(args)} failed ({completed.returncode}):\n{completed.stderr[-4000:]}")
    return json.loads(completed.stdout.strip().splitlines()[-1])


# --- Output ----------------------------------------------------------------------------------------------------------


def print_table(rows: Sequence[Sequence[Any]], headers: Sequence[str]) -> None:
    cells = [[str(h) for h in headers], *[[str(c) for c in row] for row in rows]]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    for index, row in enumerate(cells):
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip())
        if index == 0:
            print("  ".join("-" * width for width in widths))
    sys.stdout.flush()


def write_figures(path: str | None, figures: dict[str, Any]) -> None:
    """Save a benchmark's figures as JSON for run_all's summary."""
    if path:
        Path(path).write_text(json.dumps(figures, indent=2, default=str))
