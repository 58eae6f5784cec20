"""Live connects (WebSocket and SSE) per client address and minute, counted in this process.

Fixed one-minute windows: one dictionary lookup per connect, and the whole table is dropped when the
minute turns, so it never grows past the addresses of one minute. Each web process counts its own
connects: with several processes behind a balancer an address gets up to the limit per process.
"""

from __future__ import annotations

import math
import time

from django.conf import settings

REFUSED_CLOSE_CODE = 4429  # WebSocket close code: too many connects from this address (like HTTP 429)
WINDOW_SECONDS = 60.0


class ConnectLimit:
    def __init__(self, clock=time.monotonic) -> None:
        self.clock = clock
        self.window = -1
        self.counts: dict[str, int] = {}

    def admit(self, address: str) -> float:
        """Count a connect from `address`: 0 when admitted, else the seconds until it may try again."""
        limit = settings.WS_CONNECTS_PER_MINUTE
        if limit <= 0:
            return 0.0
        now = self.clock()
        window = int(now // WINDOW_SECONDS)
        if window != self.window:
            self.window, self.counts = window, {}
        count = self.counts.get(address, 0) + 1
        self.counts[address] = count
        if count <= limit:
            return 0.0
        return max(1.0, math.ceil((window + 1) * WINDOW_SECONDS - now))


connect_limit = ConnectLimit()
