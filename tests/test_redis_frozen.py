"""A frozen Redis (SIGSTOP: connections open, nothing answers) must not hold the page: the snapshot's
shared cache fails fast and is left alone for a while, and the database stays the source of truth."""

import base64
import json
import os
import selectors
import signal
import socket
import subprocess
import threading
import time
import urllib.error
import urllib.request

import pytest
import redis
import websockets.sync.client

from monitoring.events import encode, status_change_event
from monitoring.models import AIModel
from monitoring.transitions import StatusUpdate, record_status, record_statuses
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


def quiet_websocket(url: str) -> socket.socket:
    """A live client that takes every frame and reads none of them (a drain thread empties its socket):
    hundreds of them cost the test process next to nothing, unlike clients that parse each frame."""
    host, port = url.removeprefix("http://").split(":")
    sock = socket.create_connection((host, int(port)), timeout=10)
    key = base64.b64encode(os.urandom(16)).decode()
    sock.sendall(
        f"GET /ws/status/ HTTP/1.1\r\nHost: {host}:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\nOrigin: {url}\r\n\r\n".encode()
    )
    head = b""
    while b"\r\n\r\n" not in head:
        head += sock.recv(4096)
    assert head.startswith(b"HTTP/1.1 101"), head
    sock.setblocking(False)
    return sock


def drain(sockets: list[socket.socket], stop: threading.Event) -> None:
    with selectors.DefaultSelector() as selector:
        for sock in sockets:
            selector.register(sock, selectors.EVENT_READ)
        while not stop.is_set():
            for key, _ in selector.select(0.1):
                try:
                    if not key.fileobj.recv(1 << 16):
                        selector.unregister(key.fileobj)
                except BlockingIOError:
                    pass


def test_pages_answer_while_the_events_held_by_a_frozen_redis_reach_the_live_clients(
    asgi_server, redis_server, provider, settings
):
    """Redis frozen while hundreds of models change (a provider going down): when it resumes, every message
    published meanwhile reaches each web process's subscription at once. Fanning them out to hundreds of
    live clients takes seconds; pages and APIs must keep answering throughout, not after it."""
    process, redis_url = redis_server
    models = [
        AIModel(provider=provider, name=f"M{i}", slug=f"m{i}", endpoint="http://127.0.0.1:1/v1") for i in range(400)
    ]
    AIModel.objects.bulk_create(models)
    models = list(AIModel.objects.filter(provider=provider).select_related("provider"))
    # Subscribed at once and never polling the event log during the test: the burst comes through Redis.
    url = asgi_server(REDIS_URL=redis_url, WS_CONNECTS_PER_MINUTE="0", REALTIME_POLL_SECONDS="600")
    clients = [quiet_websocket(url) for _ in range(300)]
    stop = threading.Event()
    drainer = threading.Thread(target=drain, args=(clients, stop), daemon=True)
    drainer.start()
    reads: list[tuple[float, int, float]] = []  # (asked at, status, seconds)

    def keep_reading() -> None:
        while not stop.is_set():
            for path in ("/en/", "/api/v2/summary.json"):
                asked = time.monotonic()
                try:
                    status = read(url + path)
                except urllib.error.HTTPError as error:
                    status = error.code
                except OSError:  # refused, reset, or no answer within read()'s 15 s
                    status = 0
                reads.append((asked, status, time.monotonic() - asked))
                time.sleep(0.02)

    try:
        with websockets.sync.client.connect(url.replace("http://", "ws://") + "/ws/status/", origin=url) as watcher:
            assert json.loads(watcher.recv(10))["type"] == "hello"
            time.sleep(2)  # the hub's subscription is up (and its first look at the event log done)
            settings.REDIS_URL = ""  # this process publishes nothing itself: the frozen Redis gets the events below
            changes = record_statuses([StatusUpdate(m.pk, "major_outage", reason="provider down") for m in models])
            by_id = {m.pk: m for m in models}
            events = [encode(status_change_event(c, by_id[c.model_id])) for c in changes]
            os.kill(process.pid, signal.SIGSTOP)
            publisher = redis.Redis.from_url(redis_url)  # no timeout: its commands wait in the frozen server
            pipeline = publisher.pipeline(transaction=False)
            for text in events:
                pipeline.publish("aistatus:events:0", text)
            publishing = threading.Thread(target=pipeline.execute, daemon=True)
            publishing.start()
            time.sleep(1)
            reader = threading.Thread(target=keep_reading, daemon=True)
            reader.start()
            time.sleep(0.5)
            resumed = time.monotonic()
            os.kill(process.pid, signal.SIGCONT)
            last = changes[-1].pk
            while (event := json.loads(watcher.recv(60)))["type"] != "status_change" or event["seq"] < last:
                pass
            fanned_out = time.monotonic() - resumed
            time.sleep(0.5)
    finally:
        stop.set()
        drainer.join(10)
        for sock in clients:
            sock.close()
    reader.join(30)
    publishing.join(10)
    during = [(round(asked - resumed, 2), status, round(seconds, 2)) for asked, status, seconds in reads]
    assert {status for _, status, _ in during} == {200}, during
    # Reads asked from the moment Redis resumed until the last event reached the watching client.
    longest = max(seconds for asked, _, seconds in during if 0 <= asked < fanned_out)
    print(f"\n{len(events)} events to {len(clients) + 1} clients in {fanned_out:.2f} s; longest read {longest:.2f} s")
    # Without a turn of the event loop between events, a read asked as the burst arrived waited for all of it.
    assert longest < max(fanned_out / 4, 0.25), (fanned_out, during)
