"""Test settings: the suite runs against real PostgreSQL and Redis, never a silent SQLite."""

import os

os.environ.setdefault("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/aistatus")
os.environ.setdefault("REDIS_URL", "redis://127.0.0.1:6379/15")
os.environ.setdefault("SECRET_KEY", "test-only-secret-key")
# The suite never reads the var/.env that `make run` writes for this machine.
os.environ.setdefault("ENV_FILE", "")
# Tests run alerts rounds themselves; the one test of the wake-up turns it on.
os.environ.setdefault("ALERTS_WAKE_ON_CHANGE", "0")
# Tests and the servers they start (which inherit this environment) connect hundreds of clients from
# 127.0.0.1: no API throttles, no live connect limit. The tests of the throttles turn them on.
os.environ.setdefault("API_THROTTLE_ANON", "off")
os.environ.setdefault("API_THROTTLE_TOKEN", "off")
os.environ.setdefault("WS_CONNECTS_PER_MINUTE", "0")
# Two-factor sign-in is off for the suite and its servers, so that signing in takes a password; its own
# tests turn it on.
os.environ.setdefault("REQUIRE_2FA", "0")
# Kept API reads are dropped on PostgreSQL's notices, sent only at commit: most tests write inside a
# transaction that is rolled back, never committed. The tests of the kept reads commit and turn them on.
os.environ.setdefault("API_READ_CACHE", "0")

if not os.environ["DATABASE_URL"].startswith(("postgres", "timescale")) and not os.environ.get("TEST_ALLOW_SQLITE"):
    raise SystemExit(
        f"Tests run on PostgreSQL; DATABASE_URL is {os.environ['DATABASE_URL']!r}. "
        "Set TEST_ALLOW_SQLITE=1 to run them on SQLite deliberately."
    )

from aistatus.settings import *  # noqa: E402,F403
