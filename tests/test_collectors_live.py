"""The whole collector chain as it runs in production: simulator, Celery worker and beat over Redis, PostgreSQL."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import redis
from django.conf import settings
from rest_framework.test import APIClient

from demo.registry import seed_demo
from monitoring.models import ModelStatus
from tests.servers import ROOT, database_url, free_port

HEALTHY = ["gpt-4o", "gpt-4o-mini", "claude-sonnet-4", "gemini-2-5-pro", "mistral-large-latest", "mistral-embed"]


def _statuses() -> dict[str, str]:
    return dict(ModelStatus.objects.values_list("model__slug", "status"))


def _wait_for(condition, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(1)
    return condition()


@pytest.fixture
def processes(tmp_path):
    """Start the simulator, a worker and beat; stop whichever are still running at the end."""
    broker = settings.REDIS_URL.rsplit("/", 1)[0] + "/14"
    redis.Redis.from_url(broker).flushdb()
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "aistatus.settings",
        "DATABASE_URL": database_url(),
        "REDIS_URL": broker,
        "CELERY_BROKER_URL": broker,
        "COLLECTOR_SPOOL_DIR": str(tmp_path / "spool"),
        "SECRET_KEY": "test",
    }
    started: dict[str, subprocess.Popen] = {}
    logs = tmp_path

    def start(name: str, *args: str) -> subprocess.Popen:
        log = open(logs / f"{name}.log", "w")
        started[name] = subprocess.Popen(args, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
        return started[name]

    def stop(name: str) -> None:
        process = started.pop(name)
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

    yield start, stop, env
    for name in list(started):
        stop(name)
    for log in logs.glob("*.log"):
        sys.stdout.write(f"--- {log.name}\n{log.read_text()[-3000:]}\n")


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_worker_and_beat_derive_the_demo_statuses_and_stopping_them_turns_every_model_unknown(processes):
    start, stop, env = processes
    port = free_port()
    seed_demo(f"http://127.0.0.1:{port}")
    celery = [sys.executable, "-m", "celery", "-A", "aistatus"]
    start("simulator", sys.executable, "manage.py", "simulator", "--port", str(port))
    start("worker", *celery, "worker", "-Q", "celery,probes.default", "--pool", "threads", "-c", "8", "-l", "WARNING")
    start("beat", *celery, "beat", "-l", "WARNING", "-s", str(Path(env["COLLECTOR_SPOOL_DIR"]).parent / "beat"))

    def demo_statuses_reached() -> bool:
        s = _statuses()
        return (
            s["gemini-2-5-flash"] == "major_outage"
            and s["o3-mini"] == "degraded_performance"
            and s["claude-opus-4"] == "degraded_performance"
            and all(s[name] == "operational" for name in HEALTHY)
        )

    assert _wait_for(demo_statuses_reached, timeout=60), _statuses()
    assert all(s != "operational" for s in (_statuses()["gemini-2-5-flash"], _statuses()["o3-mini"]))

    stop("worker")
    stop("beat")
    api = APIClient()

    def everything_unknown() -> bool:
        items = api.get("/api/v1/models/").json()["results"]
        return len(items) == 12 and all(item["status"]["status"] == "unknown" for item in items)

    # Three 10 s intervals without a result: no evidence, so unknown, even with no process left to sweep.
    assert _wait_for(everything_unknown, timeout=45), api.get("/api/v1/models/").json()
