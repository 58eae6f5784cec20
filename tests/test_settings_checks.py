"""SQLite is refused where it would lose data; the settings come from the environment."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def _check(tmp_path, **env) -> subprocess.CompletedProcess:
    base = {k: v for k, v in os.environ.items() if k not in ("DJANGO_SETTINGS_MODULE", "DATABASE_URL", "DEBUG")}
    base.update({"SECRET_KEY": "x", "DJANGO_SETTINGS_MODULE": "aistatus.settings"}, **env)
    for marker in ("VERCEL", "AWS_LAMBDA_FUNCTION_NAME", "K_SERVICE", "ALLOW_SQLITE"):
        if marker not in env:
            base.pop(marker, None)
    return subprocess.run(
        [sys.executable, "manage.py", "check"], cwd=ROOT, env=base, capture_output=True, text=True, timeout=60
    )


@pytest.mark.parametrize("marker", ["VERCEL", "AWS_LAMBDA_FUNCTION_NAME", "K_SERVICE"])
def test_sqlite_on_a_serverless_platform_fails_the_check_and_names_the_fix(tmp_path, marker):
    result = _check(tmp_path, DATABASE_URL=f"sqlite:///{tmp_path}/x.db", DEBUG="1", **{marker: "1"})
    assert result.returncode != 0
    assert "monitoring.E001" in result.stderr
    assert marker in result.stderr
    assert "DATABASE_URL" in result.stderr


def test_sqlite_with_debug_off_fails_unless_explicitly_allowed(tmp_path):
    refused = _check(tmp_path, DATABASE_URL=f"sqlite:///{tmp_path}/x.db", DEBUG="0")
    assert refused.returncode != 0
    assert "monitoring.E002" in refused.stderr
    assert "ALLOW_SQLITE=1" in refused.stderr

    allowed = _check(tmp_path, DATABASE_URL=f"sqlite:///{tmp_path}/x.db", DEBUG="0", ALLOW_SQLITE="1")
    assert allowed.returncode == 0, allowed.stderr


def test_sqlite_for_local_development_passes(tmp_path):
    result = _check(tmp_path, DATABASE_URL=f"sqlite:///{tmp_path}/x.db", DEBUG="1")
    assert result.returncode == 0, result.stderr


def test_postgres_on_a_serverless_platform_passes(tmp_path):
    result = _check(tmp_path, DATABASE_URL="postgres://postgres@127.0.0.1:5432/postgres", VERCEL="1")
    assert result.returncode == 0, result.stderr


def test_a_timescale_url_selects_the_timescaledb_engine():
    from aistatus.settings import _database

    config = _database("timescale://u:p@db.example.com:5433/status")
    assert config["ENGINE"] == "collectors.timescale_backend"
    assert (config["HOST"], config["PORT"], config["NAME"], config["USER"]) == ("db.example.com", 5433, "status", "u")


def test_the_suite_itself_runs_on_postgresql():
    from django.db import connection

    assert connection.vendor == "postgresql"
