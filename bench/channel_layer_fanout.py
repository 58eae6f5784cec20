"""Why live events fan out in memory: channels-redis group_send to N per-client channels, beside the hub.

For N receivers, one message is sent to everyone, R rounds; reported: time until every receiver has
it (p50 over rounds) and how many deliveries were lost. The in-memory hub (one subscription per
process, bounded queues) does the same job in the same run as the baseline.

    .venv/bin/python bench/channel_layer_fanout.py --receivers 100 1000 5000
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "aistatus.settings")
os.environ.setdefault("SECRET_KEY", "bench")
REDIS = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/8")


async def channel_layer_round(layer, group: str, names: list[str]) -> tuple[float, int]:
    started = time.perf_counter()
    await layer.group_send(group, {"type": "status.change", "seq": 1})
    received = 0
    for name in names:
        try:
            await asyncio.wait_for(layer.receive(name), timeout=2)
            received += 1
        except TimeoutError:
            pass
    return time.perf_counter() - started, len(names) - received


async def measure_channel_layer(receivers: int, rounds: int) -> tuple[float, int]:
    from channels_redis.core import RedisChannelLayer

    layer = RedisChannelLayer(hosts=[REDIS], capacity=100)
    group = f"bench{receivers}"
    names = [await layer.new_channel() for _ in range(receivers)]
    for name in names:
        await layer.group_add(group, name)
    times, lost = [], 0
    for _ in range(rounds):
        elapsed, missing = await channel_layer_round(layer, group, names)
        times.append(elapsed)
        lost += missing
    for name in names:
        await layer.group_discard(group, name)
    await layer.flush()
    return statistics.median(times), lost


async def measure_hub(receivers: int, rounds: int) -> tuple[float, int]:
    import django

    django.setup()
    from publishing.realtime.clients import QueueClient
    from publishing.realtime.hub import Hub

    hub = Hub()
    hub._schedule_snapshot_event = lambda: None
    clients = [hub.register(QueueClient()) for _ in range(receivers)]
    times = []
    for seq in range(1, rounds + 1):
        started = time.perf_counter()
        hub._emit([{"type": "status_change", "seq": seq}])
        for client in clients:
            await client.queue.get()
        times.append(time.perf_counter() - started)
    return statistics.median(times), hub.dropped


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--receivers", type=int, nargs="+", default=[100, 1000, 5000])
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    print("fan-out of one event to N receivers (median of rounds)")
    print(f"{'N':>7} {'channels-redis ms':>18} {'lost':>6} {'in-memory hub ms':>17} {'lost':>6} {'ratio':>7}")
    for n in args.receivers:
        layer_s, layer_lost = asyncio.run(measure_channel_layer(n, args.rounds))
        hub_s, hub_lost = asyncio.run(measure_hub(n, args.rounds))
        print(
            f"{n:>7} {layer_s * 1000:>18.1f} {layer_lost:>6} {hub_s * 1000:>17.2f} {hub_lost:>6}"
            f" {layer_s / hub_s:>6.0f}x",
            flush=True,
        )


if __name__ == "__main__":
    main()
