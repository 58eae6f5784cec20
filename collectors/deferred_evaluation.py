"""Derives the statuses that pushed results touch on one thread per process, coalescing batches that arrive together.

Deriving costs more than storing (it reads each model's recent results per region): done once per
batch, it would cap the ingest at a few thousand results per second. Here a batch only names its
models; one thread evaluates everything named during the last AGENT_EVALUATION_DELAY_S at once, so a
burst of batches for the same models costs one evaluation. The results are already stored, so a
failed evaluation loses nothing: the next batch (or the periodic sweep) derives again.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterable

from django.conf import settings
from django.db import DatabaseError, connection

from collectors.evaluate import evaluate

log = logging.getLogger(__name__)


class DeferredEvaluation:
    def __init__(self) -> None:
        self._pending: set[int] = set()
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self.rounds = 0

    def add(self, model_ids: Iterable[int]) -> None:
        """Evaluate these models soon (at once, on this thread, when AGENT_EVALUATION_DELAY_S is 0)."""
        ids = set(model_ids)
        if not ids:
            return
        if settings.AGENT_EVALUATION_DELAY_S <= 0:
            evaluate(ids)
            return
        with self._lock:
            self._pending |= ids
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="agent-evaluation", daemon=True)
                self._thread.start()
        self._wake.set()

    def _run(self) -> None:
        while True:
            self._wake.wait()
            time.sleep(settings.AGENT_EVALUATION_DELAY_S)  # let the batches arriving meanwhile join this round
            with self._lock:
                ids, self._pending = self._pending, set()
                self._wake.clear()
            try:
                evaluate(ids)
                self.rounds += 1
            except DatabaseError as exc:
                log.warning("status derivation deferred (%d models): %s", len(ids), exc)
            except Exception:
                log.exception("status derivation failed for %d models", len(ids))
            finally:
                connection.close()  # idle between rounds: hold no connection (a broken one is replaced too)


deferred = DeferredEvaluation()
