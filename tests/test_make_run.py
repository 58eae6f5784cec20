"""`make run` checks its ports first, announces only what listens, runs with DEBUG off and leaves a var/.env behind."""

import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from tests.servers import ROOT, free_port, server_env

PY = sys.executable


def _occupied() -> socket.socket:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(1)
    return sock


def _run_all(env: dict[str, str], log: Path) -> subprocess.Popen:
    # A session of its own, so the whole stack can be stopped as one group.
    return subprocess.Popen(
        ["bash", "scripts/run-all.sh"],
        cwd=ROOT,
        env={**env, "PY": PY},
        stdout=log.open("w"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


def _stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def test_the_port_check_names_a_taken_simulator_port_and_how_to_choose_another():
    with _occupied() as taken:
        port = taken.getsockname()[1]
        result = subprocess.run(
            [PY, "scripts/ports.py"],
            cwd=ROOT,
            env={**os.environ, "PORT": str(free_port()), "SIMULATOR_PORT": str(port)},
            capture_output=True,
            text=True,
            timeout=30,
        )
    assert result.returncode == 1
    assert f"Port {port} on 127.0.0.1 is already in use" in result.stderr
    assert "the AI-provider simulator" in result.stderr
    suggested = re.search(r"make run SIMULATOR_PORT=(\d+)", result.stderr)
    assert suggested and int(suggested.group(1)) != port


def test_the_port_check_passes_when_every_port_is_free():
    result = subprocess.run(
        [PY, "scripts/ports.py"],
        cwd=ROOT,
        env={**os.environ, "PORT": str(free_port()), "SIMULATOR_PORT": str(free_port())},
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert (result.returncode, result.stderr) == (0, "")


def test_run_all_with_the_simulator_port_taken_exits_at_once_and_says_which(tmp_path):
    with _occupied() as taken:
        port = taken.getsockname()[1]
        env = server_env(PORT=str(free_port()), SIMULATOR_PORT=str(port), ENV_FILE="")
        started = time.monotonic()
        process = _run_all(env, tmp_path / "run.log")
        try:
            process.wait(timeout=20)
        finally:
            _stop(process)
        elapsed = time.monotonic() - started
    log = (tmp_path / "run.log").read_text()
    assert process.returncode != 0
    assert elapsed < 10, log
    assert f"Port {port}" in log and "SIMULATOR_PORT" in log
    assert "listening" not in log.lower()


@pytest.mark.django_db(transaction=True)
def test_run_all_starts_fully_with_the_simulator_elsewhere_and_debug_off(tmp_path):
    web, simulator = free_port(), free_port()
    env_file = tmp_path / ".env"
    env_file.write_text("SECRET_KEY=from-the-env-file\nALLOW_SQLITE=1\n")
    env = server_env(PORT=str(web), SIMULATOR_PORT=str(simulator), ENV_FILE=str(env_file))
    for name in ("SECRET_KEY", "DEBUG"):
        env.pop(name, None)
    env["CELERY_BROKER_URL"] = env["REDIS_URL"]
    process = _run_all(env, tmp_path / "run.log")
    try:
        deadline = time.monotonic() + 90
        announced = ["Status page listening", f"Simulator listening on http://127.0.0.1:{simulator}/v1"]
        # Each server says so once bound, in whichever order they get there.
        while not all(line in (tmp_path / "run.log").read_text() for line in announced):
            assert process.poll() is None, (tmp_path / "run.log").read_text()
            assert time.monotonic() < deadline, (tmp_path / "run.log").read_text()
            time.sleep(0.2)
        # Both announced servers answer.
        with urllib.request.urlopen(f"http://127.0.0.1:{simulator}/_control/scenario", timeout=5) as reply:
            assert reply.status == 200
        with urllib.request.urlopen(f"http://127.0.0.1:{web}/en/", timeout=10) as reply:
            assert reply.status == 200
        # DEBUG is off: a missing page is the site's own 404, not Django's debug page.
        with pytest.raises(urllib.error.HTTPError) as missing:
            urllib.request.urlopen(f"http://127.0.0.1:{web}/en/models/no-such/page/", timeout=10)
        body = missing.value.read().decode()
        assert missing.value.code == 404
        assert "URLconf" not in body and "DEBUG = True" not in body
    finally:
        _stop(process)


def test_make_writes_var_env_once_and_manage_py_then_needs_no_extra_variables(tmp_path):
    made = subprocess.run(
        ["make", "-s", "-f", str(ROOT / "Makefile"), "-C", str(tmp_path), "var/.env", f"PYTHON={PY}"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert made.returncode == 0, made.stderr
    env_file = tmp_path / "var" / ".env"
    first = env_file.read_text()
    assert "ALLOW_SQLITE=1" in first
    secret = next(line for line in first.splitlines() if line.startswith("SECRET_KEY="))
    assert len(secret) > len("SECRET_KEY=") + 40
    assert oct(env_file.stat().st_mode & 0o777) == "0o600"

    # Written once: a second make keeps the same key (sessions and tokens survive restarts).
    subprocess.run(["make", "-s", "-f", str(ROOT / "Makefile"), "-C", str(tmp_path), "var/.env"], timeout=30)
    assert env_file.read_text() == first

    # A manage.py command with nothing but the file: no SECRET_KEY, no DEBUG, SQLite allowed.
    env = {k: v for k, v in os.environ.items() if k not in ("SECRET_KEY", "DEBUG", "ALLOW_SQLITE")}
    env.update(DJANGO_SETTINGS_MODULE="aistatus.settings", ENV_FILE=str(env_file))
    env["DATABASE_URL"] = f"sqlite:///{tmp_path}/db.sqlite3"
    migrated = subprocess.run(
        [PY, "manage.py", "migrate", "-v", "0"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=180
    )
    assert migrated.returncode == 0, migrated.stderr
    seeded = subprocess.run(
        [PY, "manage.py", "seed_demo"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )
    assert seeded.returncode == 0, seeded.stderr
    result = subprocess.run(
        [PY, "manage.py", "set_status", "openai/gpt-4o", "major_outage", "--reason", "upstream incident"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr


def test_without_the_file_or_a_key_settings_say_how_to_get_one(tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in ("SECRET_KEY", "DEBUG")}
    env.update(DJANGO_SETTINGS_MODULE="aistatus.settings", ENV_FILE=str(tmp_path / "missing.env"))
    result = subprocess.run([PY, "manage.py", "check"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode != 0
    assert "make run" in result.stderr and "var/.env" in result.stderr


def test_make_run_checks_ports_first_and_points_the_demo_models_at_the_simulator_port_chosen():
    plan = subprocess.run(
        ["make", "-n", "-f", str(ROOT / "Makefile"), "-C", str(ROOT), "run", "SIMULATOR_PORT=8901", f"PYTHON={PY}"],
        capture_output=True,
        text=True,
        timeout=30,
    ).stdout.splitlines()
    ports = next(i for i, line in enumerate(plan) if "scripts/ports.py" in line)
    migrate = next(i for i, line in enumerate(plan) if "manage.py migrate" in line)
    seed = next(line for line in plan if "manage.py seed_demo" in line)
    assert ports < migrate  # a taken port stops make run before anything else happens
    assert "SIMULATOR_PORT=8901" in plan[ports]
    assert seed.startswith("SIMULATOR_URL=http://127.0.0.1:8901 ")
    assert "DEBUG=1" not in "\n".join(line for line in plan if "manage.py" in line and "compilemessages" not in line)
