"""Measures each read replica (recovery state, replay lag in bytes and time, round trip) and orders them for reads.

One background thread per web process checks every REPLICA_CHECK_INTERVAL seconds, on its own
connections (application_name `aistatus-replica-check`), never per request:
- the primary: `pg_current_wal_lsn()`; failing, it is down (public reads go on from the replicas
  and the read side is told the time, for the page's "updates paused" banner);
- each replica: `pg_is_in_recovery()` (a server that is not a standby is never read, and logged
  once), `pg_last_wal_replay_lsn()` against the primary's position (byte lag), the time since the
  primary was last at that position (lag in seconds), `pg_last_xact_replay_timestamp()` (replay
  age), the newest StatusChange id it holds (the consistency token) and the round trip.
A replica behind by more than REPLICA_MAX_LAG is `lagging` and skipped until it catches up; one that
does not answer is `down` and retried with backoff (0.5 s doubling to 8 s). The router reads
`order`: the same region first, then the other regions by round trip.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from datetime import datetime

from django.conf import settings
from django.utils import timezone

from publishing import read_scope, snapshot_store

log = logging.getLogger(__name__)

CHECK_APPLICATION_NAME = "aistatus-replica-check"
BACKOFF_FIRST = 0.5
BACKOFF_MAX = 8.0
# Primary positions kept to tell how long ago the primary was where a replica is now.
HISTORY = 4000

OK, LAGGING, DOWN, NOT_IN_RECOVERY, UNCHECKED = "ok", "lagging", "down", "not_in_recovery", "unchecked"
STATES = (OK, LAGGING, DOWN, NOT_IN_RECOVERY, UNCHECKED)


@dataclass(slots=True)
class ReplicaHealth:
    alias: str
    region: str
    state: str = UNCHECKED
    lag_bytes: int | None = None
    lag_seconds: float | None = None
    replay_age_seconds: float | None = None
    round_trip_ms: float | None = None
    sequence: int = 0
    reads: int = 0
    error: str = ""
    failures: int = 0
    retry_at: float = 0.0
    warned_not_in_recovery: bool = False
    unreachable: bool = False  # the check itself could not reach it (not only a failed read)
    checked_at: datetime | None = None

    @property
    def usable(self) -> bool:
        return self.state == OK

    def as_dict(self) -> dict:
        return {
            "alias": self.alias,
            "region": self.region,
            "state": self.state,
            "lag_bytes": self.lag_bytes,
            "lag_seconds": None if self.lag_seconds is None else round(self.lag_seconds, 3),
            "replay_age_seconds": None if self.replay_age_seconds is None else round(self.replay_age_seconds, 3),
            "round_trip_ms": None if self.round_trip_ms is None else round(self.round_trip_ms, 2),
            "sequence": self.sequence,
            "reads": self.reads,
            "error": self.error,
        }


@dataclass(slots=True)
class PrimaryHealth:
    up: bool | None = None  # None: not checked yet
    down_since: datetime | None = None
    error: str = ""
    reads: int = 0
    lsn: int | None = None
    history: deque = field(default_factory=lambda: deque(maxlen=HISTORY))


def _lsn(text: str | None) -> int | None:
    if not text:
        return None
    high, _, low = str(text).partition("/")
    return (int(high, 16) << 32) + int(low, 16)


def _connect_kwargs(alias: str) -> dict:
    db = settings.DATABASES[alias]
    return {
        "host": db.get("HOST") or "127.0.0.1",
        "port": int(db.get("PORT") or 5432),
        "dbname": db["NAME"],
        "user": db.get("USER") or None,
        "password": db.get("PASSWORD") or None,
        "connect_timeout": max(1, settings.REPLICA_CONNECT_TIMEOUT),
        "application_name": CHECK_APPLICATION_NAME,
        "options": f"-c statement_timeout={max(500, settings.REPLICA_STATEMENT_TIMEOUT_MS // 2)}",
        "autocommit": True,
    }


def _event_table() -> str:
    from monitoring.models import StatusChange

    return StatusChange._meta.db_table


def _renew_pool(alias: str) -> None:
    """A fresh connection pool for a database that is back: the old one may be deep in its reconnection backoff."""
    from django.db import connections

    if not settings.DATABASES[alias].get("OPTIONS", {}).get("pool"):
        return
    try:
        connections[alias].close_pool()
    except Exception as exc:  # the next request makes a new pool anyway
        log.debug("closing the pool of %s: %s", alias, exc)


def _error_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]


class ReplicaMonitor:
    def __init__(self, replicas: list, region: str, max_lag, autostart: bool = True) -> None:
        self.replicas = [ReplicaHealth(r.alias, r.region) for r in replicas]
        self.by_alias = {r.alias: r for r in self.replicas}
        self.region = region
        self.max_lag = max_lag
        self.primary = PrimaryHealth()
        self.order: tuple[ReplicaHealth, ...] = ()
        self._connections: dict[str, object] = {}
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._autostart = autostart

    # -- reads (the router's side) -------------------------------------------------------------

    def choose(self, excluded: frozenset[str], sequence: int) -> str:
        """The first usable replica, in order, that is not excluded and holds `sequence`; else the primary."""
        if self._thread is None and self._autostart:
            self.start()
        for replica in self.order:
            if replica.state == OK and replica.sequence >= sequence and replica.alias not in excluded:
                with self._lock:
                    replica.reads += 1
                return replica.alias
        with self._lock:
            self.primary.reads += 1
        return read_scope.PRIMARY

    def report_failure(self, alias: str) -> None:
        """A query on `alias` failed: out of the order now; the next check retries it after a backoff."""
        replica = self.by_alias.get(alias)
        if replica is None or replica.state == DOWN:
            return
        self._mark_down(replica, "a read failed")
        self._reorder()

    # -- the periodic check ----------------------------------------------------------------------

    def start(self, first_check: bool = False) -> None:
        """Start the periodic check (once); with `first_check`, measure everything before returning."""
        with self._lock:
            if self._thread is not None:
                return
            self._thread = threading.Thread(target=self._run, name="replica-monitor", daemon=True)
        read_scope.replica_failed.connect(self._on_failure, dispatch_uid="replica-monitor")
        if first_check:
            self.check()
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()

    def _on_failure(self, sender, alias: str, **kwargs) -> None:
        self.report_failure(alias)

    def _run(self) -> None:
        while not self._stop.is_set():
            started = time.monotonic()
            try:
                self.check()
            except Exception:  # the monitor must outlive anything a database does
                log.exception("replica check failed")
            self._wake.wait(max(0.05, settings.REPLICA_CHECK_INTERVAL - (time.monotonic() - started)))
            self._wake.clear()

    def check(self) -> None:
        """One round: the primary's position, then each replica due for a check."""
        self._check_primary()
        for replica in self.replicas:
            if replica.state == DOWN and time.monotonic() < replica.retry_at:
                continue
            self._check_replica(replica)
        self._reorder()

    def _query(self, alias: str, sql: str) -> tuple:
        import psycopg

        conn = self._connections.get(alias)
        if conn is None or conn.closed:
            conn = psycopg.connect(**_connect_kwargs(alias))
            self._connections[alias] = conn
        try:
            with conn.cursor() as cursor:
                cursor.execute(sql)
                return cursor.fetchone()
        except Exception:
            self._connections.pop(alias, None)
            try:
                conn.close()
            except Exception:  # already broken
                pass
            raise

    def _check_primary(self) -> None:
        primary = self.primary
        try:
            lsn, sequence = self._query(
                read_scope.PRIMARY, f"SELECT pg_current_wal_lsn(), (SELECT max(id) FROM {_event_table()})"
            )
        except Exception as exc:  # any driver error: the primary is away
            if primary.up is not False:
                log.warning("primary database down (%s): public reads go on from the replicas", _error_line(exc))
                primary.down_since = timezone.now()
            primary.up, primary.error = False, _error_line(exc)
            read_scope.state.primary_down_since = primary.down_since
            return
        if primary.up is False:
            log.warning("primary database back")
            _renew_pool(read_scope.PRIMARY)
        primary.up, primary.error, primary.down_since = True, "", None
        read_scope.state.primary_down_since = None
        primary.lsn = _lsn(lsn)
        # The newest sequence is known within one check even without live events: a replica
        # holding less is not read from, and the snapshot moves on.
        snapshot_store.store.note_sequence(sequence or 0)
        if not primary.history or primary.history[-1][1] != primary.lsn:
            primary.history.append((time.monotonic(), primary.lsn))

    def _check_replica(self, replica: ReplicaHealth) -> None:
        table = _event_table()
        started = time.perf_counter()
        try:
            in_recovery, replay, age = self._query(
                replica.alias,
                "SELECT pg_is_in_recovery(), pg_last_wal_replay_lsn(),"
                " EXTRACT(EPOCH FROM now() - pg_last_xact_replay_timestamp())",
            )
            replica.round_trip_ms = (time.perf_counter() - started) * 1000
            (sequence,) = self._query(replica.alias, f"SELECT max(id) FROM {table}") if in_recovery else (0,)
        except Exception as exc:  # refused, timed out, broken: skipped until a retry succeeds
            self._mark_down(replica, _error_line(exc))
            replica.unreachable = True
            return
        replica.checked_at = timezone.now()
        if replica.unreachable:
            log.warning("replica %s answers again", replica.alias)
            _renew_pool(replica.alias)
            replica.unreachable = False
        replica.failures, replica.error = 0, ""
        if not in_recovery:
            if not replica.warned_not_in_recovery:
                log.error(
                    "replica %s (%s) is not in recovery (a promoted or wrong server): never used for reads",
                    replica.alias,
                    replica.region or "no region",
                )
                replica.warned_not_in_recovery = True
            replica.state, replica.lag_bytes, replica.lag_seconds = NOT_IN_RECOVERY, None, None
            replica.error = "pg_is_in_recovery() is false"
            return
        replica.sequence = sequence or 0
        replica.replay_age_seconds = float(age) if age is not None else None
        replay_lsn = _lsn(replay)
        if not self.primary.up or self.primary.lsn is None or replay_lsn is None:
            # Nothing to compare with: with the primary away, a standby's data is the newest there is.
            replica.lag_bytes, replica.lag_seconds = None, None
            replica.state = OK if replay_lsn is not None else LAGGING
            return
        replica.lag_bytes = max(0, self.primary.lsn - replay_lsn)
        replica.lag_seconds = self._behind_for(replay_lsn)
        too_far = (self.max_lag.bytes and replica.lag_bytes > self.max_lag.bytes) or (
            self.max_lag.seconds and replica.lag_seconds > self.max_lag.seconds
        )
        if too_far and replica.state != LAGGING:
            log.warning(
                "replica %s lags (%d bytes, %.1f s): skipped until it catches up",
                replica.alias,
                replica.lag_bytes,
                replica.lag_seconds,
            )
        elif not too_far and replica.state == LAGGING:
            log.info("replica %s caught up", replica.alias)
        replica.state = LAGGING if too_far else OK

    def _behind_for(self, replay_lsn: int) -> float:
        """Seconds since the primary first stood past `replay_lsn` (0 when the replica has it all)."""
        history = self.primary.history
        if not history or replay_lsn >= history[-1][1]:
            return 0.0
        first_past = history[-1][0]
        for at, lsn in reversed(history):
            if lsn <= replay_lsn:
                break
            first_past = at
        return time.monotonic() - first_past

    def _mark_down(self, replica: ReplicaHealth, error: str) -> None:
        if replica.state != DOWN:
            log.warning("replica %s skipped: %s", replica.alias, error)
        replica.failures += 1
        replica.state, replica.error = DOWN, error
        replica.retry_at = time.monotonic() + min(BACKOFF_MAX, BACKOFF_FIRST * 2 ** (replica.failures - 1))

    def _reorder(self) -> None:
        def key(replica: ReplicaHealth) -> tuple:
            elsewhere = bool(self.region) and replica.region != self.region
            return (elsewhere, replica.round_trip_ms if replica.round_trip_ms is not None else float("inf"))

        self.order = tuple(sorted((r for r in self.replicas if r.usable), key=key))

    # -- what operators see ----------------------------------------------------------------------

    def summary(self) -> dict:
        """Region, state, lag, replay age and share of public reads of each replica, and the primary's state."""
        total = self.primary.reads + sum(r.reads for r in self.replicas)
        replicas = []
        for replica in self.replicas:
            item = replica.as_dict()
            item["read_share"] = round(replica.reads / total, 4) if total else 0.0
            replicas.append(item)
        return {
            "region": self.region,
            "primary": {
                "state": {None: UNCHECKED, True: "up", False: "down"}[self.primary.up],
                "down_since": self.primary.down_since,
                "error": self.primary.error,
                "reads": self.primary.reads,
                "read_share": round(self.primary.reads / total, 4) if total else 0.0,
            },
            "replicas": replicas,
        }


_monitor: ReplicaMonitor | None = None


def get_monitor() -> ReplicaMonitor | None:
    """This process's monitor; None when no replica is configured."""
    global _monitor
    if _monitor is None and settings.REPLICAS:
        _monitor = ReplicaMonitor(settings.REPLICAS, settings.REGION, settings.REPLICA_MAX_LAG)
    return _monitor
