"""The one snapshot: every public model, statuses as shown, Statuspage-weighted uptime, versioning and coalescing."""

from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection, connections
from django.test.utils import CaptureQueriesContext

from monitoring.models import AIModel, StatusChange
from monitoring.status import page_indicator
from monitoring.transitions import record_status
from monitoring.uptime import daily_uptime, midnight
from publishing.snapshot import aged_snapshot, build_snapshot
from publishing.snapshot_store import SnapshotStore

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
MIDNIGHT = datetime(2026, 11, 26, tzinfo=UTC)


def change(model, at, to, frm="unknown"):
    return StatusChange.objects.create(model=model, from_status=frm, to_status=to, at=at)


def test_every_public_model_appears_and_none_is_operational_without_evidence(provider):
    AIModel.objects.bulk_create([AIModel(provider=provider, name=f"m{i}", slug=f"m{i}") for i in range(5)])
    AIModel.objects.create(provider=provider, name="hidden", slug="hidden", public=False)
    data = build_snapshot().data
    assert [m["slug"] for m in data["models"]] == [f"openai/m{i}" for i in range(5)]
    assert {m["status"] for m in data["models"]} == {"unknown"}
    assert data["page"]["unknown_count"] == 5 and data["page"]["model_count"] == 5
    assert data["providers"][0]["status"] == "unknown"


def test_statuses_are_shown_as_of_the_build_and_stale_ones_are_unknown(model, provider):
    fresh = AIModel.objects.create(provider=provider, name="f", slug="f")
    record_status(fresh.pk, "operational", checked=True)
    record_status(model.pk, "major_outage", checked=True, at=datetime.now(UTC) - timedelta(minutes=10))
    snapshot = build_snapshot()
    statuses = {m["slug"]: m["status"] for m in snapshot.data["models"]}
    assert statuses == {"openai/gpt-4o": "unknown", "openai/f": "operational"}
    stale = next(m for m in snapshot.data["models"] if m["slug"] == "openai/gpt-4o")
    assert "no result in the last 180 s" in stale["message"]
    # The snapshot must be rebuilt by the time the fresh one would go stale.
    assert snapshot.valid_until <= fresh.status_row.last_checked_at + timedelta(seconds=180) + timedelta(seconds=1)


def test_the_version_is_the_latest_sequence_and_the_build_time(model):
    first = build_snapshot()
    recorded = record_status(model.pk, "major_outage", manual=True, source="operator")
    second = build_snapshot()
    assert second.sequence == recorded.pk > first.sequence
    assert second.version.startswith(f"{recorded.pk}.") and second.etag == f'"{second.version}"'


@pytest.mark.parametrize(
    ("counts", "indicator"),
    [
        ({"operational": 3}, "none"),
        ({"operational": 3, "unknown": 2}, "none"),
        ({"operational": 2, "degraded_performance": 1}, "minor"),
        ({"operational": 2, "partial_outage": 1}, "minor"),
        ({"operational": 3, "major_outage": 1}, "major"),
        ({"operational": 1, "major_outage": 1}, "critical"),
        ({"operational": 2, "under_maintenance": 1}, "maintenance"),
    ],
)
def test_the_page_indicator_uses_statuspage_words(counts, indicator):
    assert page_indicator(counts) == indicator


def test_uptime_weights_major_outage_fully_and_partial_outage_at_thirty_percent(model):
    model.created_at = MIDNIGHT - timedelta(days=5)
    model.save()
    day = MIDNIGHT - timedelta(days=2)
    change(model, day - timedelta(days=1), "operational")
    change(model, day + timedelta(hours=6), "major_outage", "operational")  # 6 h down
    change(model, day + timedelta(hours=12), "partial_outage", "major_outage")  # 6 h partial
    change(model, day + timedelta(hours=18), "degraded_performance", "partial_outage")  # 6 h degraded: not down
    change(model, day + timedelta(hours=24), "operational", "degraded_performance")
    days = daily_uptime([model.pk], MIDNIGHT - timedelta(days=3), MIDNIGHT)[model.pk]
    by_date = {d["date"]: d for d in days}
    target = by_date[day.date().isoformat()]
    assert target["major_outage_s"] == 6 * 3600 and target["partial_outage_s"] == 6 * 3600
    assert target["uptime"] == pytest.approx(100 * (1 - (6 + 0.3 * 6) / 24), abs=0.01)
    assert by_date[(day + timedelta(days=1)).date().isoformat()]["uptime"] == 100.0


def test_time_without_evidence_is_left_out_of_uptime_and_a_day_without_any_is_none(model):
    model.created_at = MIDNIGHT - timedelta(days=5)
    model.save()
    change(model, MIDNIGHT - timedelta(days=1) + timedelta(hours=12), "major_outage")
    days = daily_uptime([model.pk], MIDNIGHT - timedelta(days=2), MIDNIGHT)[model.pk]
    assert days[0]["uptime"] is None  # all day unknown
    assert days[1]["uptime"] == 0.0 and days[1]["unknown_s"] == 12 * 3600


def test_the_snapshot_carries_ninety_days_in_compact_form(model):
    record_status(model.pk, "operational", checked=True)
    uptime = build_snapshot().data["models"][0]["uptime"]
    assert len(uptime["days"]) == 90
    assert uptime["days"][:89] == [None] * 89  # before the model existed: no evidence
    assert uptime["days"][-1] == 100.0 and uptime["percent_90d"] == 100.0


def test_a_rebuild_reuses_closed_days_and_stays_cheap(provider):
    AIModel.objects.bulk_create([AIModel(provider=provider, name=f"m{i}", slug=f"m{i}") for i in range(20)])
    build_snapshot()
    with CaptureQueriesContext(connection) as queries:
        build_snapshot()
    assert len(queries) <= 12


def test_a_burst_of_changes_costs_a_few_builds_not_one_each(provider, monkeypatch, renew_snapshot):
    import time

    import publishing.snapshot_store as store_module

    monkeypatch.setattr(store_module, "POLL_INTERVAL", 0.2)
    models = AIModel.objects.bulk_create([AIModel(provider=provider, name=f"m{i}", slug=f"m{i}") for i in range(100)])
    store = SnapshotStore()
    store.get()
    started = time.monotonic()
    for model in models:
        record_status(model.pk, "major_outage", manual=True, source="operator")
        store.get()  # readers keep reading during the burst
    elapsed = time.monotonic() - started

    time.sleep(0.25)
    final = store.get()
    assert final.sequence == StatusChange.objects.latest("id").pk
    # At most one build per look at the log (POLL_INTERVAL), however many changes fell in between
    # (a busy machine stretches the burst, so the bound follows its duration): the opening build, one
    # per interval the burst spans (both ends counted), and the final read's.
    # Only this bound holds on any machine: one saturated enough to spend 0.2 s per change would
    # rightly build once per change.
    assert store.builds <= 3 + elapsed / 0.2


def test_uptime_is_never_negative_even_for_fractions_of_a_second(model):
    now = datetime.now(UTC)
    model.created_at = now - timedelta(seconds=1)
    model.save()
    change(model, now - timedelta(seconds=0.9), "operational")
    change(model, now - timedelta(seconds=0.4), "major_outage", "operational")
    today = daily_uptime([model.pk], midnight(now), now)[model.pk][-1]
    assert 0.0 <= today["uptime"] <= 100.0
    assert 0.0 <= build_snapshot().data["models"][0]["uptime"]["percent_90d"] <= 100.0


def test_a_snapshot_past_its_validity_shows_evidence_gone_stale_since_as_unknown(provider):
    gone_quiet, down, maintained = AIModel.objects.bulk_create(
        [AIModel(provider=provider, name=n, slug=n) for n in ("quiet", "down", "maintained")]
    )
    record_status(gone_quiet.pk, "operational", checked=True, at=datetime.now(UTC) - timedelta(seconds=150))
    record_status(down.pk, "major_outage", checked=True, at=datetime.now(UTC) - timedelta(seconds=100))
    record_status(maintained.pk, "under_maintenance", manual=True, source="operator")
    snapshot = build_snapshot()
    assert snapshot.data["page"]["counts"]["operational"] == 1
    later = snapshot.valid_until + timedelta(seconds=1)  # "quiet" has had no result for 3 intervals by then

    aged = aged_snapshot(snapshot, now=later)
    statuses = {m["model"]: (m["status"], m["message"]) for m in aged.data["models"]}
    assert statuses["quiet"] == ("unknown", "no result in the last 180 s")
    assert statuses["down"][0] == "major_outage" and statuses["maintained"][0] == "under_maintenance"
    assert aged.data["page"]["counts"]["operational"] == 0 and aged.data["page"]["unknown_count"] == 1
    assert aged.data["page"]["indicator"] == "critical" and aged.data["providers"][0]["unknown_count"] == 1
    # A new version (readers' copies are behind), due again when the next shown status goes stale.
    assert aged.version != snapshot.version and aged.sequence == snapshot.sequence
    assert aged.valid_until == down.status_row.last_checked_at + timedelta(seconds=180)
    assert aged.body != snapshot.body and snapshot.data["models"][0]["status"] == "major_outage"
    assert aged_snapshot(snapshot, now=snapshot.valid_until - timedelta(seconds=1)) is snapshot


@pytest.mark.django_db(transaction=True)
def test_without_the_database_the_store_turns_a_due_snapshots_stale_statuses_unknown(provider):
    import time

    model = AIModel.objects.create(provider=provider, name="m", slug="m", interval_seconds=10)
    # Its evidence goes stale (3 intervals) two seconds from now.
    record_status(model.pk, "operational", checked=True, at=datetime.now(UTC) - timedelta(seconds=28))
    store = SnapshotStore()
    assert store.get().data["models"][0]["status"] == "operational"
    db = connections["default"]
    port = db.settings_dict["PORT"]
    db.close()
    db.settings_dict["PORT"] = 1  # nothing listens there: the database is away
    try:
        time.sleep(2.2)
        shown = store.get()
    finally:
        db.close()
        db.settings_dict["PORT"] = port
    assert shown.data["models"][0]["status"] == "unknown"
    assert shown.data["page"]["unknown_count"] == 1


@pytest.mark.django_db(transaction=True)
def test_a_reader_does_not_wait_on_a_refresh_stuck_on_a_database_that_does_not_answer(provider):
    import threading
    import time

    from chaos.proxy import FaultProxy
    from publishing.snapshot_store import REFRESH_WAIT_SECONDS

    model = AIModel.objects.create(provider=provider, name="m", slug="m", interval_seconds=10)
    record_status(model.pk, "operational", checked=True, at=datetime.now(UTC) - timedelta(seconds=28))
    store = SnapshotStore()
    assert store.get().data["models"][0]["status"] == "operational"
    db = connections["default"]
    host, port = db.settings_dict["HOST"], db.settings_dict["PORT"]
    # The database frozen: connections are accepted and never answered (a SIGSTOPped server, a half-open socket).
    proxy = FaultProxy(host or "127.0.0.1", int(port or 5432)).start()
    proxy.set_mode("blackhole")
    db.close()
    db.settings_dict.update(HOST="127.0.0.1", PORT=proxy.port)
    stuck = threading.Thread(target=store.get)
    try:
        time.sleep(2.2)  # the snapshot is due: its model's evidence is stale
        stuck.start()  # this refresh hangs on the database, holding the store's lock
        time.sleep(0.2)
        started = time.monotonic()
        shown = store.get()
        waited = time.monotonic() - started
        started = time.monotonic()
        store.get()
        again = time.monotonic() - started
    finally:
        proxy.set_mode("pass")  # resets the hanging connection: the stuck refresh ends
        stuck.join(10)
        proxy.stop()
        db.close()
        db.settings_dict.update(HOST=host, PORT=port)
    assert waited < REFRESH_WAIT_SECONDS + 1
    assert shown.data["models"][0]["status"] == "unknown" and shown.data["page"]["unknown_count"] == 1
    # A second read (the page's view after the edge waited once) does not wait the whole time again.
    assert again < 0.5, again


def test_statuses_going_stale_within_a_second_turn_unknown_in_one_snapshot(provider):
    now = datetime.now(UTC)
    models = AIModel.objects.bulk_create(
        [AIModel(provider=provider, name=f"m{i}", slug=f"m{i}", interval_seconds=10) for i in range(4)]
    )
    # Stale (3 intervals without a result) 0.2, 0.5 and 0.8 s from the build, and 5 s from it.
    for model, quiet_for in zip(models, (29.8, 29.5, 29.2, 25.0), strict=True):
        record_status(model.pk, "operational", checked=True, at=now - timedelta(seconds=quiet_for))
    snapshot = build_snapshot(now=now)
    statuses = [m["status"] for m in snapshot.data["models"]]
    assert statuses == ["unknown", "unknown", "unknown", "operational"]  # one snapshot for the three, not three
    assert all(datetime.fromisoformat(m["since"]) <= now for m in snapshot.data["models"])
    assert snapshot.valid_until == models[3].status_row.last_checked_at + timedelta(seconds=30)
