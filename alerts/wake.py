"""Runs an alerts round as soon as status changes commit, rather than at the next periodic tick.

Connected to monitoring.signals.statuses_changed. The round reads the event log through its
cursor, so a wake-up that is lost (no broker, a crash) only waits for the next periodic round:
this makes alerts faster, never more or fewer. The broker is asked from a thread of its own, so a
broker that hangs (Redis frozen) never holds up whoever wrote the changes.
"""

from __future__ import annotations

import logging
import threading
import time

from django.conf import settings
from django.db import connections

log = logging.getLogger(__name__)

# A burst of batches (a collector round, a sweep) asks for one round, not one each.
MIN_GAP_SECONDS = 0.5


class Waker:
    def __init__(self) -> None:
        self._wanted = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self.sent = 0

    def on_changes(self, sender, changes, **kwargs) -> None:
        if not changes or not settings.ALERTS_WAKE_ON_CHANGE:
            return
        self._wanted.set()
        with self._lock:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="alerts-wake", daemon=True)
                self._thread.start()

    def _run(self) -> None:
        from alerts.tasks import process_alerts

        while True:
            self._wanted.wait()
            self._wanted.clear()
            try:
                process_alerts.apply_async(expires=5, retry=False)
                self.sent += 1
            except Exception as exc:  # the broker is away: the periodic round still comes
                log.debug("alerts round not queued: %s", exc)
            finally:
                connections.close_all()  # an eager round (tests) used this thread's connection
            time.sleep(MIN_GAP_SECONDS)


waker = Waker()
