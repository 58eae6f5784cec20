"""Collectors end to end against the simulator: probing, storage, derivation, staleness, schedule, faults."""

import asyncio
import time
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.db import connection, connections
from django.utils import timezone

from collectors.evaluate import evaluate
from collectors.models import CheckResult, ProbeSlot
from collectors.probes.base import ProbeResult
from collectors.runner import probe_all
from collectors.schedule import claim_due, ensure_slots
from collectors.storage import Observation, ResultStore
from collectors.sweep import sweep
from collectors.targets import target_of
from monitoring.models import AIModel, Maintenance, ModelStatus, ProbeKind, Provider, StatusChange
from monitoring.status import Status
from monitoring.transitions import record_status


@pytest.fixture
def registry(db, simulator):
    provider = Provider.objects.create(name="Sim", slug="sim")

    def make(name: str, **fields) -> AIModel:
        defaults = dict(
            provider=provider,
            name=name,
            slug=name.replace(".", "-"),
            upstream_model=name,
            endpoint=simulator.base_url,
            interval_seconds=10,
            timeout_seconds=2,
            ttft_threshold_ms=1500,
            latency_threshold_ms=4000,
        )
        return AIModel.objects.create(**{**defaults, **fields})

    return make


def status_of(model: AIModel) -> str:
    return ModelStatus.objects.get(model=model).status


def collect(*models: AIModel) -> None:
    call_command("collect_once", *[m.public_slug for m in models], stdout=open("/dev/null", "w"))


@pytest.mark.django_db(transaction=True)
def test_collect_once_prints_each_result_and_the_status_it_leads_to(registry, scenario, capsys):
    scenario({"good": {}, "down": {"error_rate": 1.0, "error_status": 503}})
    good, down = registry("good"), registry("down")
    call_command("collect_once", good.public_slug, down.public_slug)
    out = capsys.readouterr().out
    assert "sim/good" in out and "-> operational" in out
    assert "sim/down" in out and "provider_fault" in out and "HTTP 503" in out
    # One failure is not yet an outage: it awaits confirmation.
    assert status_of(down) == Status.UNKNOWN
    call_command("collect_once", down.public_slug)
    assert status_of(down) == Status.MAJOR_OUTAGE
    assert CheckResult.objects.filter(model=down).count() == 2


@pytest.mark.django_db(transaction=True)
def test_statuses_follow_the_simulator_scenarios(registry, scenario):
    scenario(
        {
            "healthy": {},
            "slow": {"ttft_ms": 1800},
            "limited": {"rate_limit_rate": 1.0},
            "overloaded": {"overloaded_rate": 1.0},
            "keyed": {"require_api_key": "sk-right"},
        }
    )
    models = {name: registry(name) for name in ["healthy", "slow", "limited", "overloaded", "keyed"]}
    for _ in range(2):
        collect(*models.values())
    assert status_of(models["healthy"]) == Status.OPERATIONAL
    assert status_of(models["slow"]) == Status.DEGRADED_PERFORMANCE
    assert status_of(models["limited"]) == Status.DEGRADED_PERFORMANCE
    assert status_of(models["overloaded"]) == Status.MAJOR_OUTAGE
    # Our own key is wrong: that says nothing about the provider.
    assert status_of(models["keyed"]) == Status.UNKNOWN
    assert "probe or account fault" in ModelStatus.objects.get(model=models["keyed"]).message


@pytest.mark.django_db(transaction=True)
def test_a_recovery_needs_two_successes_and_each_transition_is_one_status_change(registry, scenario):
    scenario({"m": {"error_rate": 1.0}})
    model = registry("m")
    collect(model)
    collect(model)
    assert status_of(model) == Status.MAJOR_OUTAGE
    scenario({"m": {}})
    collect(model)
    assert status_of(model) == Status.MAJOR_OUTAGE
    collect(model)
    assert status_of(model) == Status.OPERATIONAL
    transitions = list(StatusChange.objects.filter(model=model).values_list("from_status", "to_status"))
    assert transitions == [("unknown", "major_outage"), ("major_outage", "operational")]


@pytest.mark.django_db(transaction=True)
def test_a_hanging_model_times_out_without_delaying_the_others(registry, scenario):
    scenario({"fast": {}, "hangs": {"hang_rate": 1.0}})
    fast, hangs = registry("fast"), registry("hangs", timeout_seconds=3)
    stored_at: dict[int, float] = {}
    started = time.monotonic()

    async def run():
        return await probe_all(
            [target_of(fast), target_of(hangs)],
            flush_every=0.1,
            on_result=lambda o: stored_at.setdefault(o.model_id, time.monotonic() - started),
            keep_observations=True,
        )

    connections.close_all()
    summary = asyncio.run(run())
    outcomes = {o.model_id: o.result.outcome for o in summary.observations}
    assert outcomes == {fast.pk: "ok", hangs.pk: "timeout"}
    assert stored_at[fast.pk] < 1.0
    assert 2.9 < stored_at[hangs.pk] < 4.5
    # The fast model's result was written at a flush long before the hanging one gave up.
    assert CheckResult.objects.filter(model=fast).exists()
    assert "no answer within 3 s" in CheckResult.objects.get(model=hangs).error


@pytest.mark.django_db(transaction=True)
def test_results_produced_while_the_database_is_away_are_spooled_and_written_when_it_returns(model, tmp_path):
    store = ResultStore(spool_dir=tmp_path)
    observations = [
        Observation(model.pk, "default", timezone.now() - timedelta(seconds=i), ProbeResult("ok", 200, 100.0 + i))
        for i in range(5)
    ]
    db = connections["default"]
    real_port = db.settings_dict["PORT"]
    db.close()
    db.settings_dict["PORT"] = 1  # nothing listens there: the database is unreachable
    try:
        assert store.save(observations[:3]) is False
        assert store.save(observations[3:]) is False
    finally:
        db.close()
        db.settings_dict["PORT"] = real_port
    assert store.pending() == 5
    assert CheckResult.objects.count() == 0

    assert store.save([]) is True
    assert store.pending() == 0
    assert sorted(CheckResult.objects.values_list("latency_ms", flat=True)) == [100.0, 101.0, 102.0, 103.0, 104.0]


@pytest.mark.django_db
def test_a_manual_status_stays_until_an_operator_changes_it(model):
    record_status(model.pk, Status.MAJOR_OUTAGE, manual=True, reason="declared", source="operator")
    CheckResult.objects.bulk_create(
        [
            CheckResult(model=model, outcome="ok", latency_ms=100, time=timezone.now() - timedelta(seconds=i))
            for i in (1, 2)
        ]
    )
    evaluate([model.pk])
    row = ModelStatus.objects.get(model=model)
    assert (row.status, row.manual) == (Status.MAJOR_OUTAGE, True)
    assert row.last_checked_at is not None  # the evidence is still recorded


@pytest.mark.django_db
def test_the_sweep_makes_a_model_without_fresh_results_unknown(model):
    long_ago = timezone.now() - timedelta(seconds=model.interval_seconds * 3 + 5)
    record_status(model.pk, Status.OPERATIONAL, checked=True, at=long_ago)
    changes = sweep()
    assert [(c.from_status, c.to_status, c.source) for c in changes] == [("operational", "unknown", "staleness")]
    assert status_of(model) == Status.UNKNOWN
    assert sweep() == []


@pytest.mark.django_db
def test_the_sweep_leaves_fresh_and_manual_statuses_alone(model, provider):
    other = AIModel.objects.create(provider=provider, name="o", slug="o")
    record_status(model.pk, Status.OPERATIONAL, checked=True)
    record_status(other.pk, Status.MAJOR_OUTAGE, manual=True, source="operator")
    assert sweep() == []


@pytest.mark.django_db
def test_maintenance_windows_start_and_end_on_time(model):
    now = timezone.now()
    record_status(model.pk, Status.OPERATIONAL, checked=True, at=now)
    window = Maintenance.objects.create(
        title="Upgrade", model=model, starts_at=now - timedelta(minutes=1), ends_at=now + timedelta(minutes=5)
    )
    sweep(now)
    assert status_of(model) == Status.UNDER_MAINTENANCE
    # Provider-wide windows cover every model of the provider.
    window.model, window.provider = None, model.provider
    window.save()
    assert Maintenance.active_model_ids(now) == {model.pk}
    sweep(now + timedelta(minutes=10))
    assert status_of(model) == Status.UNKNOWN  # after the window: no fresh evidence yet


@pytest.mark.django_db
def test_claims_spread_models_over_their_interval_and_never_hand_out_a_slot_twice(provider):
    AIModel.objects.bulk_create(
        [AIModel(provider=provider, name=f"m{i}", slug=f"m{i}", endpoint="http://x.test/v1") for i in range(200)]
        + [AIModel(provider=provider, name="p", slug="p", probe_kind=ProbeKind.PUSH)]
        + [AIModel(provider=provider, name="off", slug="off", endpoint="http://x.test/v1", enabled=False)]
    )
    now = timezone.now()
    assert ensure_slots("default", now) == 200
    assert ensure_slots("default", now) == 0
    due = [s.next_due_at for s in ProbeSlot.objects.all()]
    assert max(due) - min(due) > timedelta(seconds=30)  # spread over the 60 s interval, not bunched

    later = now + timedelta(seconds=61)
    first = claim_due("default", 150, later)
    second = claim_due("default", 150, later)
    assert len(first) == 150 and len(second) == 50
    assert not {m.pk for m in first} & {m.pk for m in second}
    assert claim_due("default", 150, later) == []
    next_runs = [s.next_due_at - later for s in ProbeSlot.objects.all()]
    assert all(timedelta(seconds=56) <= d <= timedelta(seconds=64) for d in next_runs)


@pytest.mark.django_db
def test_each_region_has_its_own_schedule(model):
    ensure_slots("eu")
    ensure_slots("us")
    assert set(ProbeSlot.objects.values_list("region", flat=True)) == {"eu", "us"}


@pytest.mark.django_db
def test_results_of_several_regions_combine(model):
    now = timezone.now()
    rows = []
    for region, outcome in [("eu", "provider_fault"), ("us", "ok"), ("ap", "ok")]:
        rows += [
            CheckResult(model=model, region=region, outcome=outcome, latency_ms=100, time=now - timedelta(seconds=s))
            for s in (1, 2)
        ]
    CheckResult.objects.bulk_create(rows)
    evaluate([model.pk], now)
    assert status_of(model) == Status.PARTIAL_OUTAGE
    CheckResult.objects.filter(region="us").update(outcome="timeout")
    evaluate([model.pk], now)
    assert status_of(model) == Status.MAJOR_OUTAGE


@pytest.mark.django_db
def test_old_results_are_no_evidence(model):
    old = timezone.now() - timedelta(seconds=model.interval_seconds * 3 + 1)
    CheckResult.objects.bulk_create([CheckResult(model=model, outcome="ok", latency_ms=1, time=old)])
    evaluate([model.pk])
    assert status_of(model) == Status.UNKNOWN


@pytest.mark.django_db
def test_an_invalid_probe_config_is_refused_naming_the_option(model):
    from django.core.exceptions import ValidationError

    model.probe_config = {"max_tokenz": 16}
    with pytest.raises(ValidationError) as error:
        model.full_clean()
    assert "probe_config" in error.value.message_dict
    assert "max_tokenz" in str(error.value.message_dict["probe_config"])


def test_the_suite_uses_postgresql_for_collector_storage(db):
    assert connection.vendor == "postgresql"
