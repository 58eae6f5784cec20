"""The web process's start and stop (ASGI lifespan): follow the event log from the first moment.

Without this the hub starts with the first live client, and until then a process notices status
changes only by its half-second look at the event log: pages served to readers without a live
connection would lag by that much. Started here, a live event moves the snapshot at once.
"""

from __future__ import annotations

import asyncio
import logging

from aistatus.replica_monitor import get_monitor

log = logging.getLogger(__name__)


async def lifespan(scope, receive, send) -> None:
    from publishing.realtime.hub import hub

    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            monitor = get_monitor()
            if monitor is not None:
                # Measured before the first request: reads go to a replica known to be healthy.
                await asyncio.get_running_loop().run_in_executor(None, monitor.start, True)
            try:
                await hub.ensure_started()
            except Exception as exc:  # the database is away: the first live client starts it later
                log.warning("event log not followed yet: %s", str(exc).strip().splitlines()[0])
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await hub.stop()
            if get_monitor() is not None:
                get_monitor().stop()
            await send({"type": "lifespan.shutdown.complete"})
            return
