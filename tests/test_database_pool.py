"""The web process's connection pool comes back within seconds of its database, whatever the network did before.

psycopg_pool retries a failed connect with a doubling delay; left alone, a pool that failed for 10 s
waits up to 8 s more after the database is reachable again. The pool as configured for the web
(aistatus.settings._database with DATABASE_POOL_SIZE) gives up a retry after
DATABASE_POOL_RECONNECT_TIMEOUT, so the next request tries at once.
"""

import time

import pytest
from django.db import DatabaseError, connection
from django.db.utils import ConnectionHandler

from aistatus import settings as project_settings
from chaos.proxy import FaultProxy


def _query(handler: ConnectionHandler) -> bool:
    db = handler["pooled"]
    try:
        with db.cursor() as cursor:
            cursor.execute("SELECT 1")
        return True
    except DatabaseError:
        return False
    finally:
        db.close()  # back to the pool (or dropped, when broken), as at the end of a request


@pytest.mark.django_db
def test_the_web_pool_answers_within_seconds_once_the_network_to_the_database_heals(monkeypatch):
    monkeypatch.setattr(project_settings, "DATABASE_POOL_SIZE", 4)
    monkeypatch.setattr(project_settings, "DATABASE_POOL_TIMEOUT", 1.0)
    params = connection.settings_dict
    proxy = FaultProxy(params["HOST"] or "127.0.0.1", int(params["PORT"] or 5432)).start()
    config = project_settings._database(f"postgres://{params['USER']}@127.0.0.1:{proxy.port}/{params['NAME']}")
    assert config["OPTIONS"]["pool"]["reconnect_timeout"] <= 2.0
    handler = ConnectionHandler({"default": dict(params), "pooled": config})
    try:
        assert _query(handler)
        proxy.set_mode("drop")  # every connection reset, new ones refused: 10 s of failed reconnects
        failing_until = time.monotonic() + 10
        while time.monotonic() < failing_until:
            assert not _query(handler)
            time.sleep(0.2)
        proxy.set_mode("pass")
        healed = time.monotonic()
        while not _query(handler) and time.monotonic() - healed < 20:
            time.sleep(0.1)
        recovered_after = time.monotonic() - healed
    finally:
        handler["pooled"].close_pool()
        proxy.stop()
    # A request waiting for a connection (1 s here), a connect, a retry's first delay (1 s).
    assert recovered_after < 3.0, recovered_after
