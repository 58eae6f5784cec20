"""The web process's start and stop (ASGI lifespan): follow the event log from the first moment.

Without this the hub starts with the first live client, and until then a process notices status
changes only by its half-second look at the event log: pages served to readers without a live
connection would lag by that much. Started here, a live event moves the snapshot at once.
"""

from __future__ import annotations

import logging

log = logging.getLogger(__name__)


async def lifespan(scope, receive, send) -> None:
    from publishing.realtime.hub import hub

    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            try:
                await hub.ensure_started()
            except Exception as exc:  # the database is away: the first live client starts it later
                log.warning("event log not followed yet: %s", str(exc).strip().splitlines()[0])
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await hub.stop()
            await send({"type": "lifespan.shutdown.complete"})
            return
