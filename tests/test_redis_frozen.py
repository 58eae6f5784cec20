"""A frozen Redis (SIGSTOP: connections open, nothing answers) must not hold the page: the snapshot's
shared cache fails fast and is left alone for a while, and the database stays the source of truth."""

import os
import signal
import subprocess
import time
import urllib.request

import pytest

from monitoring.transitions import record_status
from tests.servers import free_port

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def redis_server(tmp_path):
    port = free_port()
    command = ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
    process = subprocess.Popen([*command, "--dir", str(tmp_path)], stdout=subprocess.DEVNULL)
    deadline = time.monotonic() + 10
    while subprocess.run(["redis-cli", "-p", str(port), "ping"], capture_output=True).stdout.strip() != b"PONG":
        assert time.monotonic() < deadline, "redis-server did not start"
        time.sleep(0.1)
    yield process, f"redis://127.0.0.1:{port}/0"
    os.kill(process.pid, signal.SIGCONT)
    process.kill()
    process.wait()


def read(url: str) -> int:
    # Far above what a healthy read takes: without a cache timeout a read waits for good.
    with urllib.request.urlopen(url, timeout=15) as response:
        response.read()
        return response.status


def test_pages_and_the_statuspage_json_answer_while_redis_is_frozen(asgi_server, redis_server, model):
    process, redis_url = redis_server
    record_status(model.pk, "operational", reason="answered", source="collector")
    url = asgi_server(REDIS_URL=redis_url)
    assert read(url + "/en/") == 200
    os.kill(process.pid, signal.SIGSTOP)
    # A newer change makes the next read refresh the snapshot, which asks the (frozen) shared cache.
    record_status(model.pk, "major_outage", reason="failing", source="collector")
    timings = []
    for path in ["/en/", "/api/v2/summary.json", "/ko/", "/api/v1/models/"] * 3:
        time.sleep(0.6)  # past the snapshot's poll interval: each read may refresh it
        started = time.monotonic()
        timings.append((path, read(url + path), round(time.monotonic() - started, 2)))
    assert [status for _, status, _ in timings] == [200] * 12
