"""Writes check results in bulk; when the database is away, spools them to disk and writes them when it returns."""

from __future__ import annotations

import json
import logging
import os
import time
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path

from django.conf import settings
from django.db import DatabaseError, InterfaceError, connection, transaction
from django.utils.dateparse import parse_datetime

from collectors.models import CheckResult, RollupCursor
from collectors.probes.base import ProbeResult

log = logging.getLogger(__name__)

COLUMNS = ["time", "model_id", "region", "outcome", "http_status", "latency_ms", "ttft_ms", "tokens_per_s", "error"]
# PostgreSQL types of COLUMNS, for a binary COPY: about twice the rows per second of a text COPY, because
# the server neither parses timestamps and floats from text nor does Python format them.
COPY_TYPES = ["timestamptz", "bigint", "varchar", "varchar", "smallint", "float8", "float8", "float8", "text"]


@dataclass(slots=True)
class Observation:
    """A probe result with where and when it was taken."""

    model_id: int
    region: str
    time: datetime
    result: ProbeResult

    def row(self) -> tuple:
        r = self.result
        return (
            self.time,
            self.model_id,
            self.region,
            r.outcome,
            r.http_status,
            r.latency_ms,
            r.ttft_ms,
            r.tokens_per_s,
            r.error[:2000],
        )

    def to_json(self) -> str:
        return json.dumps(
            {
                "model_id": self.model_id,
                "region": self.region,
                "time": self.time.isoformat(),
                "result": asdict(self.result),
            }
        )

    @classmethod
    def from_json(cls, line: str) -> Observation:
        data = json.loads(line)
        return cls(data["model_id"], data["region"], parse_datetime(data["time"]), ProbeResult(**data["result"]))


def insert_rows(observations: Sequence[Observation]) -> None:
    """One bulk insert: COPY on PostgreSQL (several times faster than INSERT), bulk_create elsewhere."""
    if not observations:
        return
    if connection.vendor == "postgresql":
        table = CheckResult._meta.db_table
        with connection.cursor() as cursor:
            with cursor.copy(f"COPY {table} ({', '.join(COLUMNS)}) FROM STDIN (FORMAT BINARY)") as copy:
                copy.set_types(COPY_TYPES)
                for observation in observations:
                    copy.write_row(observation.row())
    else:
        CheckResult.objects.bulk_create(
            [CheckResult(**dict(zip(COLUMNS, o.row(), strict=True))) for o in observations], batch_size=2000
        )
    oldest = min(o.time for o in observations)
    # Late results (pushed, or spooled during an outage) reopen the rollups they fall into.
    RollupCursor.objects.filter(complete_until__gt=oldest).update(complete_until=oldest)


class ResultStore:
    """Saves observations; never loses them to a database outage.

    Results that cannot be written are appended to a spool file under `COLLECTOR_SPOOL_DIR`; every
    later save first drains the spool, so they land as soon as the database answers again.
    """

    def __init__(self, spool_dir: Path | None = None) -> None:
        self.spool_dir = Path(spool_dir or settings.COLLECTOR_SPOOL_DIR)

    def save(self, observations: Sequence[Observation]) -> bool:
        """True when everything (spool included) is in the database; False when it was spooled."""
        try:
            self._drain()
            with transaction.atomic():
                insert_rows(observations)
            return True
        except (DatabaseError, InterfaceError) as exc:
            self._spool(observations)
            log.warning("database unavailable (%s); %d result(s) spooled to %s", exc, len(observations), self.spool_dir)
            _discard_broken_connection()
            return False

    def pending(self) -> int:
        return sum(1 for f in self.spool_dir.glob("*.jsonl") for _ in f.open()) if self.spool_dir.exists() else 0

    def _spool(self, observations: Iterable[Observation]) -> None:
        self.spool_dir.mkdir(parents=True, exist_ok=True)
        lines = "".join(o.to_json() + "\n" for o in observations)
        if not lines:
            return
        path = self.spool_dir / f"{time.time_ns()}-{os.getpid()}-{uuid.uuid4().hex[:8]}.jsonl"
        with open(path, "w", encoding="utf-8") as f:
            f.write(lines)
            f.flush()
            os.fsync(f.fileno())

    def _drain(self) -> None:
        if not self.spool_dir.exists():
            return
        for path in sorted(self.spool_dir.glob("*.jsonl")):
            claimed = path.with_suffix(".draining")
            try:
                os.replace(path, claimed)  # only one drainer gets each file
            except FileNotFoundError:
                continue
            try:
                observations = [Observation.from_json(line) for line in open(claimed, encoding="utf-8") if line.strip()]
                with transaction.atomic():
                    insert_rows(observations)
            except BaseException:
                os.replace(claimed, path)  # put it back for the next attempt
                raise
            claimed.unlink()
            log.info("wrote %d spooled result(s) from %s", len(observations), path.name)


def _discard_broken_connection() -> None:
    # A connection that died mid-use stays broken; drop it so the next attempt reconnects.
    try:
        connection.close()
    except Exception:  # closing a dead connection can fail too; nothing to keep
        pass
