"""Knows within milliseconds what changed in the registry, its statuses and its API users: PostgreSQL says so.

Triggers (migration 0013) send a notice on channel `aistatus_registry` at the commit of every
transaction that wrote models, providers, credentials, status or region rows, tokens, users or their
permissions: the ids of the models whose rows changed, or `*` for anything else. One thread per
process LISTENs and counts the notices; an answer the API keeps (listing_cache, authentication) is
used again only while no notice touching it came after the count it was built at.

Nothing is served from memory unless the thread is listening on a connection known to work: every
KEEPALIVE_SECONDS it notifies itself on a channel of its own and must hear that back within
ALIVE_SECONDS (a half-open socket, or a pooler that does not pass notices on, never does). Before
it has started, while the database is away or the connection is not trusted, every read goes to
the database as if nothing were kept.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid

from django.conf import settings
from django.db import connections
from django.db.models.signals import m2m_changed, post_delete, post_save
from django.db.transaction import on_commit

log = logging.getLogger(__name__)

CHANNEL = "aistatus_registry"
KEEPALIVE_SECONDS = 0.5
# A connection whose own ping has not come back for this long is not trusted: the longest a kept answer
# can outlive a change whose notice was lost on a connection that died without saying so.
ALIVE_SECONDS = 1.5
RETRY_SECONDS = (0.5, 1.0, 2.0, 5.0)
# A thread that has made no progress (a connect or a ping) for this long is replaced by a new one.
STUCK_SECONDS = 10.0


class RegistryChanges:
    def __init__(self) -> None:
        self.count = 0  # notices taken in
        self.everything_changed_at = 0  # the count at the last `*` (or at (re)connecting)
        self.model_changed_at: dict[int, int] = {}
        self.local_notes = 0  # this process's own commits noted (note_committed)
        self._alive_at = 0.0
        self._progress_at = 0.0
        self._connected = False
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    # -- readers -------------------------------------------------------------------------------------

    def listening(self) -> bool:
        """Whether answers may be served from memory: on, and a connection that answered lately."""
        if not settings.API_READ_CACHE or connections["default"].vendor != "postgresql":
            return False
        self._ensure_thread()
        return self._connected and time.monotonic() - self._alive_at < ALIVE_SECONDS

    def mark(self) -> int | None:
        """The count to build an answer at, taken before reading the database; None: do not keep it."""
        return self.count if self.listening() else None

    def current(self, built_at: int, model_ids=()) -> bool:
        """Whether an answer built at `built_at` over these models is still what the database holds."""
        if not self.listening() or self.everything_changed_at > built_at:
            return False
        changed = self.model_changed_at
        return all(changed.get(model_id, 0) <= built_at for model_id in model_ids)

    # -- writers -------------------------------------------------------------------------------------

    def note(self, payload: str) -> None:
        with self._lock:
            self.count += 1
            if payload == "*" or not payload:
                self.everything_changed_at = self.count
                return
            try:
                ids = [int(part) for part in payload.split(",")]
            except ValueError:
                self.everything_changed_at = self.count
                return
            for model_id in ids:
                self.model_changed_at[model_id] = self.count

    # -- the listening thread ------------------------------------------------------------------------

    def stop(self, wait: float = 5.0) -> None:
        """Stops listening (the thread leaves within KEEPALIVE_SECONDS, closing its connection)."""
        with self._lock:
            thread, self._thread = self._thread, None
            self._connected = False
        if thread is not None:
            thread.join(wait)

    def _ensure_thread(self) -> None:
        thread = self._thread
        if thread is not None and thread.is_alive() and time.monotonic() - self._progress_at < STUCK_SECONDS:
            return
        # None yet, or one blocked on a connection that stopped answering: it is left behind (it leaves
        # when it wakes, seeing it is no longer the current thread).
        with self._lock:
            if self._thread is not thread:
                return
            self._connected = False
            self._progress_at = time.monotonic()
            self._thread = threading.Thread(target=self._run, name="registry-changes", daemon=True)
            self._thread.start()

    def _run(self) -> None:
        me = threading.current_thread()
        failures = 0
        while self._thread is me:
            try:
                self._listen(me)
                failures = 0
            except Exception as exc:  # the database away, a broken connection: try again, meanwhile no cache
                log.info("not listening for registry changes: %s", exc)
                failures += 1
            self._lost(me)
            time.sleep(RETRY_SECONDS[min(failures, len(RETRY_SECONDS) - 1)])
            if self._thread is me:
                self._progress_at = time.monotonic()  # waiting between tries is not being stuck

    def _listen(self, me: threading.Thread) -> None:
        import psycopg

        params = connections["default"].get_connection_params()
        for name in ("pool", "context", "cursor_factory", "prepare_threshold"):
            params.pop(name, None)
        params.setdefault("connect_timeout", settings.DATABASE_CONNECT_TIMEOUT or 3)
        ping = f"aistatus_ping_{uuid.uuid4().hex}"
        with psycopg.connect(**params, autocommit=True) as conn:
            conn.execute(f"LISTEN {CHANNEL}")
            conn.execute(f"LISTEN {ping}")
            with self._lock:
                if self._thread is not me:
                    return
                # Anything may have changed while no one listened.
                self.count += 1
                self.everything_changed_at = self.count
                self._connected = True
            while self._thread is me:
                conn.execute(f"NOTIFY {ping}")
                for notice in conn.notifies(timeout=KEEPALIVE_SECONDS):
                    if notice.channel == ping:
                        with self._lock:
                            if self._thread is me:
                                self._alive_at = self._progress_at = time.monotonic()
                    else:
                        self.note(notice.payload)

    def _lost(self, me: threading.Thread) -> None:
        with self._lock:
            if self._thread is me:
                self._connected = False
            self.count += 1
            self.everything_changed_at = self.count


changes = RegistryChanges()


def note_committed(model_ids) -> None:
    """This process's own write of these models' rows counts at its commit, before PostgreSQL's notice
    arrives: a client that wrote and then reads through the same process reads its write."""
    payload = ",".join(str(model_id) for model_id in set(model_ids))
    if payload:

        def noted() -> None:
            changes.local_notes += 1
            changes.note(payload)

        on_commit(noted)


def _saved(sender, instance, **_) -> None:
    model_id = getattr(instance, "model_id", None)
    note_committed([model_id] if model_id is not None else ["*"])


def _related(**_) -> None:
    note_committed(["*"])


def note_local_writes() -> None:
    """Saves and deletes through the ORM, and changed groups and permissions, noted at their commit."""
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Group
    from rest_framework.authtoken.models import Token

    from monitoring.models import AIModel, Credential, ModelStatus, Provider, RegionStatus

    user = get_user_model()
    for model in (AIModel, Provider, Credential, ModelStatus, RegionStatus, Token, user):
        for name, signal in (("saved", post_save), ("deleted", post_delete)):
            signal.connect(_saved, sender=model, dispatch_uid=f"registry_changes.{model._meta.label}.{name}")
    for through in (user.groups.through, user.user_permissions.through, Group.permissions.through):
        m2m_changed.connect(_related, sender=through, dispatch_uid=f"registry_changes.{through._meta.label}")
