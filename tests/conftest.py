"""The cast shared by the suite: a provider, models, a staff user with a token."""

import pytest
from django.contrib.auth import get_user_model
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from monitoring.models import AIModel, Provider


@pytest.fixture
def provider(db):
    return Provider.objects.create(name="OpenAI", slug="openai")


@pytest.fixture
def model(provider):
    return AIModel.objects.create(provider=provider, name="GPT-4o", slug="gpt-4o", endpoint="http://127.0.0.1:8900/v1")


@pytest.fixture
def staff(db):
    return get_user_model().objects.create_user("alice", "alice@example.com", "pw-alice-123", is_staff=True)


@pytest.fixture
def staff_api(staff):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=staff).key}")
    return client


@pytest.fixture
def anon_api():
    return APIClient()


@pytest.fixture(scope="session")
def simulator():
    """One simulator for the session; tests set the models they need with `sim.app.set_scenario`."""
    from collectors.simulator import serve_in_background

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
    import os
    import socket
    import subprocess
    import sys
    import time
    import urllib.request
    from pathlib import Path

    from django.db import connection

    servers = []

    def start(**env_overrides) -> str:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        db = connection.settings_dict
        env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "monitoring.settings",
            "DATABASE_URL": f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}",
            "SECRET_KEY": "test",
            **env_overrides,
        }
        log = open(tmp_path / f"uvicorn-{port}.log", "w")
        process = subprocess.Popen(
            [sys.executable, "-m", "uvicorn", "monitoring.asgi:application", "--port", str(port), "--no-access-log"],
            cwd=Path(__file__).resolve().parent.parent,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        servers.append(process)
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        while True:
            try:
                urllib.request.urlopen(url + "/healthz", timeout=1)
                return url
            except OSError:
                if time.monotonic() > deadline or process.poll() is not None:
                    raise RuntimeError((tmp_path / f"uvicorn-{port}.log").read_text()) from None
                time.sleep(0.1)

    yield start
    for process in servers:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()


@pytest.fixture
def renew_snapshot(monkeypatch):
    """A snapshot built from this test's data: a fresh store and no shared copy left by another test.

    Returns a function that renews it again, for tests that change data after a first read.
    """
    import contextlib

    from django.core.cache import cache

    from monitoring import snapshot_store

    def renew() -> None:
        monkeypatch.setattr(snapshot_store, "store", snapshot_store.SnapshotStore())
        with contextlib.suppress(Exception):  # Redis may be down on purpose
            cache.delete(snapshot_store.CACHE_KEY)

    renew()
    return renew
