"""`/metrics`: well-formed Prometheus text with per-model status, latency and uptime, and collector counts."""

import re
from datetime import timedelta

import pytest
from django.utils import timezone

from collectors.models import CheckRollup
from monitoring.status import Status
from monitoring.transitions import record_status

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("renew_snapshot")]

SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(?:[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\]|\\.)*",?)*\})? (\S+)$')


def scrape(client) -> dict[str, dict[str, float]]:
    """Parse the exposition strictly: HELP and TYPE before each family's samples, every line well-formed."""
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response["Content-Type"] == "text/plain; version=0.0.4; charset=utf-8"
    assert "X-Snapshot-Version" not in response
    text = response.content.decode()
    assert text.endswith("\n")
    families: dict[str, dict[str, float]] = {}
    typed: set[str] = set()
    for line in text.splitlines():
        if line.startswith("# HELP "):
            continue
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split(" ")
            assert kind in {"gauge", "counter"} and name not in typed
            typed.add(name)
            families[name] = {}
            continue
        match = SAMPLE.match(line)
        assert match, line
        name, labels, value = match.groups()
        assert name in typed, f"{name} has no TYPE line"
        assert (labels or "") not in families[name], f"{line} repeats a series"
        families[name][labels or ""] = float(value)
    return families


def test_each_model_has_exactly_one_status_and_unknown_without_evidence(model, client):
    status = scrape(client)["aistatus_model_status"]
    assert len(status) == len(Status.values)
    assert status['{provider="openai",model="openai/gpt-4o",status="unknown"}'] == 1
    assert status['{provider="openai",model="openai/gpt-4o",status="operational"}'] == 0
    assert sum(status.values()) == 1


def test_status_counts_and_the_event_sequence_follow_changes(model, client, renew_snapshot):
    change = record_status(model.pk, Status.MAJOR_OUTAGE, checked=True, reason="HTTP 503")
    renew_snapshot()
    families = scrape(client)
    assert families["aistatus_models"]['{status="major_outage"}'] == 1
    assert families["aistatus_models"]['{status="unknown"}'] == 0
    assert families["aistatus_page_indicator"]['{indicator="critical"}'] == 1
    assert families["aistatus_status_changes_total"][""] == change.pk
    assert families["aistatus_snapshot_age_seconds"][""] >= 0


def test_latency_and_uptime_are_absent_without_data_and_in_seconds_and_ratios_with_it(model, client, renew_snapshot):
    families = scrape(client)
    assert families["aistatus_model_latency_p50_seconds"] == {}
    assert families["aistatus_model_uptime_ratio"] == {}
    hour = timezone.now().replace(minute=0, second=0, microsecond=0)
    CheckRollup.objects.create(
        model=model, period="hour", bucket=hour, total=10, ok=10, latency_p50_ms=250, latency_p95_ms=900
    )
    type(model).objects.filter(pk=model.pk).update(created_at=timezone.now() - timedelta(hours=1))
    record_status(model.pk, Status.OPERATIONAL, checked=True, at=timezone.now() - timedelta(minutes=30))
    record_status(model.pk, Status.OPERATIONAL, checked=True)
    renew_snapshot()
    families = scrape(client)
    labels = '{provider="openai",model="openai/gpt-4o"}'
    assert families["aistatus_model_latency_p50_seconds"][labels] == 0.25
    assert families["aistatus_model_latency_p95_seconds"][labels] == 0.9
    assert families["aistatus_model_uptime_ratio"]['{provider="openai",model="openai/gpt-4o",window="90d"}'] == 1.0


def test_recent_check_results_come_from_minute_rollups(model, client):
    minute = timezone.now().replace(second=0, microsecond=0)
    CheckRollup.objects.create(
        model=model, period="minute", bucket=minute - timedelta(minutes=1), total=6, ok=4, timeout=2
    )
    CheckRollup.objects.create(model=model, period="minute", bucket=minute - timedelta(minutes=30), total=9, ok=9)
    families = scrape(client)
    recent = families["aistatus_check_results_recent"]
    assert (
        recent['{outcome="ok"}'] == 4 and recent['{outcome="timeout"}'] == 2 and recent['{outcome="probe_fault"}'] == 0
    )
    assert families["aistatus_metrics_source_up"]['{source="checks"}'] == 1


def test_label_values_are_escaped(provider, client):
    from monitoring.models import AIModel

    AIModel.objects.create(provider=provider, name='Quote "q"', slug="q")
    scrape(client)  # every line still parses


def test_the_alerts_backlog_is_read_and_empty_without_notifications(model, client):
    families = scrape(client)
    assert families["aistatus_metrics_source_up"]['{source="alerts"}'] == 1
    assert families["aistatus_notifications"] == {}


def test_each_active_agent_reports_its_age_its_counts_and_its_spool(model, client):
    from collectors.models import Agent

    eu, _token = Agent.issue("eu-1", "eu")
    Agent.objects.filter(pk=eu.pk).update(
        last_seen_at=timezone.now() - timedelta(seconds=30), sent=120, stored=118, dropped=2, spool_depth=5
    )
    revoked, _token = Agent.issue("old", "us")
    Agent.objects.filter(pk=revoked.pk).update(active=False)
    Agent.issue("ap-1", "ap")  # never seen: no age

    families = scrape(client)

    assert families["aistatus_metrics_source_up"]['{source="agents"}'] == 1
    ages = families["aistatus_agent_last_seen_age_seconds"]
    assert list(ages) == ['{agent="eu-1",region="eu"}'] and 30 <= ages['{agent="eu-1",region="eu"}'] < 60
    results = families["aistatus_agent_results_total"]
    assert results['{agent="eu-1",region="eu",kind="sent"}'] == 120
    assert results['{agent="eu-1",region="eu",kind="stored"}'] == 118
    assert results['{agent="eu-1",region="eu",kind="dropped"}'] == 2
    assert not any('agent="old"' in labels for labels in results)
    assert families["aistatus_agent_spool_depth"]['{agent="eu-1",region="eu"}'] == 5
