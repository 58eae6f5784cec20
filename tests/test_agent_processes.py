"""Agents as real processes (no database or Redis settings) against the real server and the simulator.

Three agents (us, eu, ap) probe two models; the simulator fails one model for eu only; the eu agent
is killed; the web process stops for 20 s. The page must tell the truth across regions throughout,
and every result an agent sent must be stored exactly once.
"""

import io
import json
import os
import signal
import subprocess
import sys
import time
import urllib.request

import pytest
from django.core.management import call_command
from django.utils import timezone

from collectors.models import Agent, CheckResult
from monitoring.models import AIModel, ModelStatus, Provider
from tests.servers import ROOT, free_port, serve

pytestmark = pytest.mark.django_db(transaction=True)

INTERVAL = 10  # MIN_INTERVAL_SECONDS
STALE_AFTER_INTERVALS = 2  # the server's staleness window, lowered so the test is shorter


def create_agent(name: str, region: str) -> str:
    out = io.StringIO()
    call_command("create_agent", name, "--region", region, stdout=out)
    return out.getvalue().strip().splitlines()[-1]


def start_agent(server: str, token: str, spool_dir, log_path) -> subprocess.Popen:
    # Only what an agent host would have: no DATABASE_URL, REDIS_URL or Django settings.
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "AGENT_SERVER": server,
        "AGENT_TOKEN": token,
        "AGENT_SPOOL_DIR": str(spool_dir),
        "AGENT_MAX_BACKOFF_SECONDS": "2",
        "LOG_LEVEL": "INFO",
    }
    log = open(log_path, "w")
    return subprocess.Popen(
        [sys.executable, "-m", "collectors.agent"], cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT
    )


def status_of(model: AIModel) -> ModelStatus:
    return ModelStatus.objects.get(model=model)


def wait_for(predicate, timeout: float, what: str, poll: float = 0.5):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(poll)
    raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")


def patch_simulator(base_url: str, name: str, settings: dict) -> None:
    request = urllib.request.Request(
        f"{base_url.removesuffix('/v1')}/_control/models/{name}", data=json.dumps(settings).encode(), method="PATCH"
    )
    request.add_header("Content-Type", "application/json")
    with urllib.request.urlopen(request, timeout=5) as response:
        assert response.status == 200


def get_json(url: str):
    with urllib.request.urlopen(url, timeout=10) as response:
        return json.loads(response.read())


def test_three_regional_agents_tell_the_truth_and_lose_nothing_while_the_site_is_away(simulator, tmp_path):
    simulator.app.set_scenario({"seed": 1, "defaults": {"ttft_ms": 5, "tokens_per_s": 2000}, "models": {}})
    for name in ("sim-flaky", "sim-steady"):
        patch_simulator(simulator.base_url, name, {})
    provider = Provider.objects.create(name="Sim", slug="sim")
    flaky, steady = (
        AIModel.objects.create(
            provider=provider, name=name, slug=name, upstream_model=f"sim-{name}", interval_seconds=INTERVAL,
            timeout_seconds=5, endpoint=simulator.base_url,
        )
        for name in ("flaky", "steady")
    )  # fmt: skip
    tokens = {region: create_agent(f"{region}-agent", region) for region in ("us", "eu", "ap")}
    port = free_port()
    server_env = {"STALE_AFTER_INTERVALS": str(STALE_AFTER_INTERVALS)}
    agents: dict[str, subprocess.Popen] = {}
    try:
        with serve(tmp_path / "web-1.log", port=port, **server_env) as url:
            for region, token in tokens.items():
                agents[region] = start_agent(url, token, tmp_path / f"spool-{region}", tmp_path / f"agent-{region}.log")

            # Every region sees both models up.
            def all_up():
                rows = {(s.model_id, s.status) for s in ModelStatus.objects.filter(model__provider=provider)}
                return rows == {(flaky.pk, "operational"), (steady.pk, "operational")} and all(
                    set(m.region_statuses.values_list("region", flat=True)) == {"us", "eu", "ap"}
                    for m in (flaky, steady)
                )

            wait_for(all_up, 3 * INTERVAL, "both models operational from us, eu and ap")

            # The simulator fails one model for eu only: partial outage naming eu within three intervals.
            patch_simulator(simulator.base_url, "sim-flaky", {"regions": {"eu": {"error_rate": 1.0}}})
            started = time.monotonic()
            wait_for(
                lambda: status_of(flaky).status == "partial_outage" and "eu" in status_of(flaky).message,
                3 * INTERVAL,
                "a partial outage naming eu",
            )
            assert time.monotonic() - started <= 3 * INTERVAL
            assert "us" not in status_of(flaky).message.split(":")[0]
            assert status_of(steady).status == "operational"
            regions = {r["region"]: r["status"] for r in get_json(f"{url}/api/v1/models/{flaky.pk}/")["regions"]}
            assert regions == {"us": "operational", "eu": "major_outage", "ap": "operational"}
            with urllib.request.urlopen(f"{url}/en/models/sim/flaky/", timeout=10) as response:
                page = response.read().decode()
            assert 'data-region="eu" data-status="major_outage"' in page
            assert 'data-region="us" data-status="operational"' in page

            # The eu agent dies: once its evidence is stale, us and ap say operational (never unknown nor major).
            agents["eu"].kill()
            agents["eu"].wait()
            seen = set()

            def recovered():
                seen.add(status_of(flaky).status)
                return status_of(flaky).status == "operational"

            window = STALE_AFTER_INTERVALS * INTERVAL
            wait_for(recovered, window + 2 * INTERVAL, "operational again from us and ap")
            assert seen <= {"partial_outage", "operational"}, seen
            shown = get_json(f"{url}/api/v1/models/{flaky.pk}/")
            assert shown["status"]["status"] == "operational"
            assert {r["region"]: r["status"] for r in shown["regions"]}["eu"] == "unknown"

        # The web process is away for 20 s while us and ap keep probing; they spool to disk.
        time.sleep(20)
        for region in ("us", "ap"):
            assert agents[region].poll() is None, (tmp_path / f"agent-{region}.log").read_text()
        back = timezone.now()
        with serve(tmp_path / "web-2.log", port=port, **server_env):
            wait_for(
                lambda: all(
                    a.last_seen_at >= back and a.spool_depth == 0 for a in Agent.objects.filter(region__in=["us", "ap"])
                ),
                30,
                "the spools drained",
            )
            time.sleep(2)
            for region in ("us", "ap"):
                agents[region].send_signal(signal.SIGTERM)  # an agent sends what it holds before it exits
            for region in ("us", "ap"):
                assert agents[region].wait(timeout=30) == 0
    finally:
        for process in agents.values():
            if process.poll() is None:
                process.kill()
                process.wait()

    for region in ("us", "ap"):
        log = (tmp_path / f"agent-{region}.log").read_text()
        assert "is unavailable" in log and "spooling" in log, log  # it really spooled
    for agent in Agent.objects.all():
        stored_rows = CheckResult.objects.filter(region=agent.region).count()
        # None lost, none twice: what the agent says it sent is what the site stored, row for row.
        assert agent.sent == agent.stored == stored_rows, (agent.region, agent.sent, agent.stored, stored_rows)
        assert agent.sent > 0 and agent.spool_depth == 0


def test_a_model_added_on_the_site_reaches_a_running_agent_before_its_next_refresh(simulator, tmp_path):
    patch_simulator(simulator.base_url, "sim-first", {})
    patch_simulator(simulator.base_url, "sim-second", {})
    provider = Provider.objects.create(name="Sim", slug="sim")
    settings = {"interval_seconds": INTERVAL, "timeout_seconds": 5, "endpoint": simulator.base_url}
    first = AIModel.objects.create(
        provider=provider, name="first", slug="first", upstream_model="sim-first", **settings
    )
    token = create_agent("us-agent", "us")
    # The periodic refresh is far off: only the hint riding on a batch's answer can bring the change.
    with serve(tmp_path / "web.log", AGENT_ASSIGNMENT_REFRESH_S="600") as url:
        agent = start_agent(url, token, tmp_path / "spool", tmp_path / "agent.log")
        try:
            wait_for(lambda: CheckResult.objects.filter(model=first).exists(), 2 * INTERVAL, "the first model probed")
            second = AIModel.objects.create(
                provider=provider, name="second", slug="second", upstream_model="sim-second", **settings
            )
            started = time.monotonic()
            wait_for(lambda: CheckResult.objects.filter(model=second).exists(), 3 * INTERVAL, "the new model probed")
            # The next batch's answer (within an interval: the first model's next result) hints at the
            # change; the new model's first probe comes within one more interval. Far from 600 s.
            assert time.monotonic() - started < 2 * INTERVAL + 5
        finally:
            agent.terminate()
            agent.wait(timeout=15)
    assert (tmp_path / "agent.log").read_text().count("assignment: 2 model(s)") == 1
