"""Redis killed and started again: each web process's live subscription comes back within seconds of Redis,
however long it was away (its tries to subscribe again are at most RESUBSCRIBE_MAX_SECONDS apart)."""

import asyncio
import subprocess
import time

from publishing.realtime import hub as hub_module
from publishing.realtime.hub import RESUBSCRIBE_MAX_SECONDS, Hub
from tests.servers import free_port


def start_redis(port: int, folder) -> subprocess.Popen:
    command = ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
    process = subprocess.Popen([*command, "--dir", str(folder)], stdout=subprocess.DEVNULL)
    deadline = time.monotonic() + 10
    while subprocess.run(["redis-cli", "-p", str(port), "ping"], capture_output=True).stdout.strip() != b"PONG":
        assert time.monotonic() < deadline, "redis-server did not start"
        time.sleep(0.1)
    return process


async def until(condition, timeout: float) -> float:
    started = time.monotonic()
    while not condition():
        assert time.monotonic() - started < timeout, "timed out"
        await asyncio.sleep(0.05)
    return time.monotonic() - started


async def test_the_live_subscription_is_back_within_seconds_after_a_long_redis_outage(settings, tmp_path, monkeypatch):
    port = free_port()
    settings.REDIS_URL = f"redis://127.0.0.1:{port}/0"
    hub = Hub()

    async def nothing_missed() -> None:  # the event log is not what this test is about
        return None

    monkeypatch.setattr(hub, "_catch_up", nothing_missed)
    redis = start_redis(port, tmp_path)
    following = asyncio.create_task(hub._follow_redis())
    try:
        await until(lambda: hub.redis_connected, 10)
        redis.kill()
        redis.wait()
        killed = time.monotonic()
        await until(lambda: not hub.redis_connected, 20)
        # Away for 10 s: with tries 0.5, 1, 2, 4, 8 s apart (plus up to 20 %), the next came 5.5-8.6 s after Redis.
        await asyncio.sleep(max(0.0, killed + 10 - time.monotonic()))
        redis = start_redis(port, tmp_path)
        back_after = await until(lambda: hub.redis_connected, 20)
    finally:
        following.cancel()
        await asyncio.gather(following, return_exceptions=True)
        redis.kill()
        redis.wait()
    assert back_after < RESUBSCRIBE_MAX_SECONDS * 1.2 + 1.0, back_after
    assert hub_module.RESUBSCRIBE_MAX_SECONDS <= 2.0
