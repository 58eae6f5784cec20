"""A periodic task that cannot reach the database says so in one line and keeps going; it does not crash."""

import logging

import pytest
from django.db import connections

from collectors.tasks import run_due_probes, sweep_statuses
from monitoring import outages


@pytest.fixture
def database_away(monkeypatch):
    db = connections["default"]
    port = db.settings_dict["PORT"]
    db.close()
    db.settings_dict["PORT"] = 1  # nothing listens there
    monkeypatch.setattr(outages, "_last_report", 0.0)
    yield
    db.close()
    db.settings_dict["PORT"] = port


@pytest.mark.django_db(transaction=True)
def test_tasks_report_an_unreachable_database_once_and_return(database_away, caplog):
    with caplog.at_level(logging.WARNING, logger="monitoring.outages"):
        assert run_due_probes("default") == 0
        assert sweep_statuses() == 0
        assert run_due_probes("default") == 0
    lines = [r.getMessage() for r in caplog.records if r.name == "monitoring.outages"]
    assert len(lines) == 1
    assert lines[0].startswith("run_due_probes: database unavailable (") and "retrying" in lines[0]
