"""The agent's bounded disk spool: batches the site did not take, kept in order until it takes them.

One file per batch, named by its first sequence number, so the oldest is sent first. Past the bound
the oldest batches are dropped, and counted. The spool also keeps the agent's counters (the next
sequence number and how many results the site acknowledged), so a restarted agent goes on from there.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

# Sequence numbers are reserved this many at a time, so the counter is written once per block, not per result.
SEQ_BLOCK = 10_000


class Spool:
    def __init__(self, directory: Path, max_results: int) -> None:
        self.directory = directory
        self.max_results = max_results
        directory.mkdir(parents=True, exist_ok=True)
        for stale in directory.glob("*.tmp"):
            stale.unlink()
        self._files: list[tuple[Path, int]] = sorted(
            ((path, int(path.stem.split("-")[1])) for path in directory.glob("*.batch")), key=lambda f: f[0].name
        )
        self.depth = sum(count for _, count in self._files)
        self.dropped = 0
        state = self._read_state()
        # Spooled batches count too (named first sequence-count; a batch's sequences are consecutive).
        spooled = max((int(p.stem.split("-")[0]) + n for p, n in self._files), default=0)
        self.seq_reserved: int = max(state.get("seq_reserved", 0), spooled)
        self.acknowledged: int = state.get("acknowledged", 0)
        self.dropped = state.get("dropped", 0)

    # -- counters --------------------------------------------------------------------------------

    def _read_state(self) -> dict[str, Any]:
        try:
            return json.loads((self.directory / "state.json").read_text())
        except (OSError, ValueError):
            return {}

    def save_state(self) -> None:
        # Not synced to disk (it is written with every acknowledged batch): should a crash lose it, the
        # site's highest stored sequence, sent with the assignment, puts the counter back past it.
        state = {"seq_reserved": self.seq_reserved, "acknowledged": self.acknowledged, "dropped": self.dropped}
        self._write(self.directory / "state.json", json.dumps(state).encode(), sync=False)

    def reserve(self, upto: int) -> None:
        """Record that sequence numbers up to `upto` (plus a block) may be in use."""
        self.seq_reserved = upto + SEQ_BLOCK
        self.save_state()

    # -- batches ---------------------------------------------------------------------------------

    def append(self, body: bytes, first_seq: int, count: int) -> None:
        """Keep one batch (its JSON results) until the site takes it; drop the oldest past the bound."""
        path = self.directory / f"{first_seq:020d}-{count}.batch"
        self._write(path, body)
        self._files.append((path, count))
        self.depth += count
        while self.depth > self.max_results and len(self._files) > 1:
            oldest, dropped = self._files.pop(0)
            oldest.unlink(missing_ok=True)
            self.depth -= dropped
            self.dropped += dropped
            log.warning("spool full (%d results): dropped the oldest %d results", self.max_results, dropped)
        self.save_state()

    def oldest(self) -> bytes | None:
        return self._files[0][0].read_bytes() if self._files else None

    def remove_oldest(self) -> None:
        path, count = self._files.pop(0)
        path.unlink(missing_ok=True)
        self.depth -= count

    def __len__(self) -> int:
        return len(self._files)

    @staticmethod
    def _write(path: Path, data: bytes, sync: bool = True) -> None:
        temporary = path.with_suffix(".tmp")
        with open(temporary, "wb") as f:
            f.write(data)
            if sync:
                f.flush()
                os.fsync(f.fileno())
        os.replace(temporary, path)
