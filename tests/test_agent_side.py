"""The agent's own parts, without Django: the probe path's imports, its assignment reading, spool and token faults."""

import logging
import os
import subprocess
import sys
import time

import pytest

from collectors.agent.service import targets_of
from collectors.agent.spool import Spool
from collectors.probes.base import Outcome as ProbeOutcome
from demo.simulator.app import build_app
from monitoring.outcomes import Outcome
from tests.servers import ROOT


def test_the_probe_side_outcomes_mirror_the_stored_vocabulary():
    assert {o.value for o in ProbeOutcome} == set(Outcome.values)
    assert ProbeOutcome.OK == Outcome.OK == "ok"


def test_the_agent_and_the_probes_import_without_django():
    code = (
        "import sys, collectors.agent.__main__, collectors.probes;"
        "print(sorted({m.split('.')[0] for m in sys.modules} & {'django', 'celery', 'redis', 'psycopg'}))"
    )
    env = {"PATH": os.environ.get("PATH", "")}
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def entry(model_id: int, kind: str = "openai_chat", **extra) -> dict:
    return {
        "id": model_id, "name": f"p/m{model_id}", "probe_kind": kind, "endpoint": "http://127.0.0.1:1/v1",
        "upstream_model": f"m{model_id}", "probe_config": {}, "interval_seconds": 10, "timeout_seconds": 5,
        "credential": None, **extra,
    }  # fmt: skip


def test_an_unknown_probe_kind_skips_that_model_with_one_warning(caplog):
    warned: set = set()
    document = {"region": "eu", "models": [entry(1), entry(2, "quantum_probe"), entry(3)]}
    with caplog.at_level(logging.WARNING, logger="collectors.agent"):
        assert sorted(targets_of(document, "eu", warned)) == [1, 3]
        assert sorted(targets_of(document, "eu", warned)) == [1, 3]  # the next refresh does not warn again
    assert [r.getMessage() for r in caplog.records] == [
        "skipping model p/m2: this agent has no probe for the kind 'quantum_probe'"
    ]


def test_a_credential_comes_from_the_agents_environment_unless_shared(monkeypatch):
    monkeypatch.setenv("EU_OPENAI_KEY", "sk-from-env")
    document = {
        "models": [
            entry(1, credential={"env": "EU_OPENAI_KEY"}),
            entry(2, credential={"env": "EU_OPENAI_KEY", "api_key": "sk-shared"}),
        ]
    }
    targets = targets_of(document, "eu", set())
    assert targets[1].target.api_key == "sk-from-env" and targets[2].target.api_key == "sk-shared"
    assert targets[1].target.region == "eu"


def test_the_spool_keeps_batches_in_order_and_drops_the_oldest_past_its_bound(tmp_path):
    spool = Spool(tmp_path, max_results=5)
    spool.append(b"[1,2]", 1, 2)
    spool.append(b"[3,4]", 3, 2)
    assert (spool.depth, spool.oldest()) == (4, b"[1,2]")
    spool.append(b"[5,6]", 5, 2)  # 6 > 5: the oldest batch goes, and is counted
    assert (spool.depth, spool.dropped, spool.oldest()) == (4, 2, b"[3,4]")
    reopened = Spool(tmp_path, max_results=5)  # a restarted agent finds them, in order
    assert (reopened.depth, reopened.dropped, reopened.oldest()) == (4, 2, b"[3,4]")
    reopened.remove_oldest()
    assert reopened.oldest() == b"[5,6]"


def test_the_sequence_goes_on_after_a_restart(tmp_path):
    spool = Spool(tmp_path, max_results=10)
    spool.reserve(41)
    assert Spool(tmp_path, max_results=10).seq_reserved > 41


def test_a_lost_counter_still_goes_on_past_the_spooled_batches(tmp_path):
    spool = Spool(tmp_path, max_results=100)
    spool.append(b"[]", 70_001, 50)  # sequences 70,001 to 70,050 wait on disk
    (tmp_path / "state.json").unlink()
    assert Spool(tmp_path, max_results=100).seq_reserved >= 70_050


def test_the_simulator_fails_a_model_for_one_region_only():
    app = build_app({"models": {"m": {}}})
    app.patch_model("m", {"regions": {"eu": {"error_rate": 1.0}}})
    behaviour = app._behaviours["m"]
    assert behaviour.for_region(b"eu").judge(0).status == 500
    assert behaviour.for_region(b"us").judge(0).action == "answer"
    assert behaviour.for_region(None).judge(0).action == "answer"


@pytest.mark.django_db(transaction=True)
def test_an_agent_with_a_wrong_token_logs_one_clear_line_and_backs_off(asgi_server, tmp_path):
    url = asgi_server()
    env = {
        "PATH": os.environ.get("PATH", ""), "AGENT_SERVER": url, "AGENT_TOKEN": "agt_not-a-token",
        "AGENT_SPOOL_DIR": str(tmp_path / "spool"), "AGENT_MAX_BACKOFF_SECONDS": "2",
    }  # fmt: skip
    log = tmp_path / "agent.log"
    with open(log, "w") as out:
        agent = subprocess.Popen([sys.executable, "-m", "collectors.agent"], cwd=ROOT, env=env, stdout=out, stderr=out)
    try:
        time.sleep(6)  # several attempts with backoff
        assert agent.poll() is None, log.read_text()  # still running
    finally:
        agent.terminate()
        agent.wait(timeout=10)
    lines = [line for line in log.read_text().splitlines() if "refused this agent's token" in line]
    assert len(lines) == 1, log.read_text()
    assert "401" in lines[0] and "AGENT_TOKEN" in lines[0]
