"""The cast shared by the suite: a provider, models, staff users with a role and a token."""

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from monitoring.models import AIModel, Provider


@pytest.fixture
def provider(db):
    return Provider.objects.create(name="OpenAI", slug="openai")


@pytest.fixture
def model(provider):
    return AIModel.objects.create(provider=provider, name="GPT-4o", slug="gpt-4o", endpoint="http://127.0.0.1:8900/v1")


def user_with_role(username: str, role: str | None, password: str | None = None, **extra):
    """A staff user in one role (`viewer`, `operator`, `admin`; None: no role, so no rights beyond anonymous).

    The suite's one way to make operators: rights come from the role's group, not from is_staff.
    """
    password = password or f"pw-{username}-12345"
    user = get_user_model().objects.create_user(username, f"{username}@example.com", password, is_staff=True, **extra)
    if role:
        user.groups.add(Group.objects.get(name=role))
    return user


def token_client(user) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=user).key}")
    return client


@pytest.fixture
def staff(db):
    """An administrator (the admin role): every right in the admin and the API."""
    return user_with_role("alice", "admin", password="pw-alice-123")


@pytest.fixture
def staff_api(staff):
    return token_client(staff)


@pytest.fixture
def anon_api():
    return APIClient()


@pytest.fixture(scope="session")
def simulator():
    """One simulator for the session; tests set the models they need with `sim.app.set_scenario`."""
    from demo.simulator import serve_in_background

    with serve_in_background({"seed": 1, "defaults": {"ttft_ms": 5, "tokens_per_s": 2000}, "models": {}}) as sim:
        yield sim


@pytest.fixture
def scenario(simulator):
    """Install a scenario (dict of model name -> behaviour) for one test."""

    def install(models: dict, **top) -> None:
        simulator.app.set_scenario(
            {"seed": 1, "defaults": {"ttft_ms": 5, "latency_ms": 5, "tokens_per_s": 2000}, "models": models, **top}
        )

    return install


@pytest.fixture
def asgi_server(tmp_path):
    """Start the real ASGI server (uvicorn) on the test database; returns a function taking extra env."""
    from contextlib import ExitStack
    from itertools import count

    from tests.servers import serve

    numbers = count()
    with ExitStack() as servers:

        def start(**env: str) -> str:
            return servers.enter_context(serve(tmp_path / f"uvicorn-{next(numbers)}.log", **env))

        yield start


@pytest.fixture
def renew_snapshot(monkeypatch):
    """A snapshot built from this test's data: a fresh store and no shared copy left by another test.

    Returns a function that renews it again, for tests that change data after a first read.
    """
    import contextlib

    from django.core.cache import cache

    from publishing import snapshot_store

    def renew() -> None:
        monkeypatch.setattr(snapshot_store, "store", snapshot_store.SnapshotStore())
        with contextlib.suppress(Exception):  # Redis may be down on purpose
            cache.delete(snapshot_store.CACHE_KEY)

    renew()
    return renew


@pytest.fixture(scope="session")
def replication():
    """A primary and two streaming replicas (regions us and eu), migrated and seeded, plus a stray standalone server.

    Their own PostgreSQL 15 clusters on free ports under a temporary folder (tests/pg_cluster.py),
    shared by the whole session; the shared server is never touched.
    """
    import os
    import subprocess
    import sys
    from types import SimpleNamespace

    from tests import pg_cluster
    from tests.servers import ROOT

    if not pg_cluster.available():
        pytest.fail("Debian's PostgreSQL 15 tools are needed (apt-get install postgresql-15)")
    root = pg_cluster.make_root()
    clusters = []
    try:
        primary = pg_cluster.primary(root)
        clusters.append(primary)
        env = {**os.environ, "DJANGO_SETTINGS_MODULE": "aistatus.settings", "DATABASE_URL": primary.url()}
        env.update({"REDIS_URL": "", "SECRET_KEY": "test-only-secret-key", "LOG_LEVEL": "WARNING"})
        for command in (["migrate", "-v", "0"], ["seed_demo"]):
            done = subprocess.run([sys.executable, "manage.py", *command], cwd=ROOT, env=env, capture_output=True)
            assert done.returncode == 0, done.stderr.decode()
        us = pg_cluster.replica(root, primary, "us")
        eu = pg_cluster.replica(root, primary, "eu")
        clusters += [us, eu]
        stray = pg_cluster.primary(root, name="stray")  # a server that is no standby
        clusters.append(stray)
        pg_cluster.wait_replayed(primary, [us, eu])
        yield SimpleNamespace(root=root, primary=primary, us=us, eu=eu, stray=stray)
    finally:
        pg_cluster.destroy(root, clusters)
