"""Every model has exactly one status, starting unknown, whichever way it was created."""

import json

import pytest
from django.core.management import call_command
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from monitoring.models import AIModel, ModelStatus, Provider
from monitoring.status import Status

pytestmark = pytest.mark.django_db


def _assert_one_unknown_status(model: AIModel) -> None:
    rows = ModelStatus.objects.filter(model=model)
    assert rows.count() == 1
    assert rows.get().status == Status.UNKNOWN
    assert rows.get().manual is False


def test_objects_create_gives_an_unknown_status(provider):
    model = AIModel.objects.create(provider=provider, name="GPT-4o", slug="gpt-4o")
    _assert_one_unknown_status(model)


def test_save_gives_an_unknown_status(provider):
    model = AIModel(provider=provider, name="GPT-4o", slug="gpt-4o")
    model.save()
    _assert_one_unknown_status(model)
    model.name = "GPT-4o (renamed)"
    model.save()
    _assert_one_unknown_status(model)


def test_bulk_create_gives_every_model_an_unknown_status(provider):
    AIModel.objects.bulk_create([AIModel(provider=provider, name=f"m{i}", slug=f"m{i}") for i in range(50)])
    assert ModelStatus.objects.filter(status=Status.UNKNOWN).count() == 50
    for model in AIModel.objects.all():
        _assert_one_unknown_status(model)


def test_get_or_create_and_update_or_create_give_an_unknown_status(provider):
    a, _ = AIModel.objects.get_or_create(provider=provider, slug="a", defaults={"name": "A"})
    b, _ = AIModel.objects.update_or_create(provider=provider, slug="b", defaults={"name": "B"})
    _assert_one_unknown_status(a)
    _assert_one_unknown_status(b)


def test_loaddata_raw_saves_give_an_unknown_status(tmp_path, provider):
    fixture = tmp_path / "models.json"
    fixture.write_text(
        json.dumps(
            [
                {
                    "model": "monitoring.aimodel",
                    "pk": 901,
                    "fields": {"provider": provider.pk, "name": "X", "slug": "x"},
                },
                {
                    "model": "monitoring.aimodel",
                    "pk": 902,
                    "fields": {"provider": provider.pk, "name": "Y", "slug": "y"},
                },
            ]
        )
    )
    call_command("loaddata", str(fixture), verbosity=0)
    for pk in (901, 902):
        _assert_one_unknown_status(AIModel.objects.get(pk=pk))


def test_a_data_migration_using_historical_models_gives_an_unknown_status(provider):
    # Historical models know neither custom save() nor signals: exactly what a data migration uses.
    state = MigrationExecutor(connection).loader.project_state(("monitoring", "0002_status_row_trigger"))
    HistoricalModel = state.apps.get_model("monitoring", "AIModel")
    HistoricalModel.objects.create(provider_id=provider.pk, name="Historic", slug="historic")
    HistoricalModel.objects.bulk_create([HistoricalModel(provider_id=provider.pk, name="H2", slug="h2")])
    for slug in ("historic", "h2"):
        _assert_one_unknown_status(AIModel.objects.get(slug=slug))


def test_raw_sql_inserts_give_an_unknown_status(provider):
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO monitoring_aimodel (provider_id, name, slug, description, kind, probe_kind, endpoint,"
            " upstream_model, probe_config, interval_seconds, timeout_seconds, latency_threshold_ms,"
            " ttft_threshold_ms, failures_to_confirm, successes_to_recover, public, enabled, display_order,"
            " created_at, updated_at) VALUES (%s, 'Raw', 'raw', '', 'chat', 'openai_chat', '', '', '{}', 60, 30,"
            " 10000, 5000, 2, 2, true, true, 0, now(), now())",
            [provider.pk],
        )
    _assert_one_unknown_status(AIModel.objects.get(slug="raw"))


def test_no_status_is_operational_without_evidence(provider):
    AIModel.objects.bulk_create([AIModel(provider=provider, name=f"m{i}", slug=f"m{i}") for i in range(5)])
    assert not ModelStatus.objects.exclude(status=Status.UNKNOWN).exists()


def test_reconcile_restores_rows_deleted_by_raw_sql_and_is_idempotent(provider, capsys):
    AIModel.objects.bulk_create([AIModel(provider=provider, name=f"m{i}", slug=f"m{i}") for i in range(4)])
    with connection.cursor() as cursor:
        cursor.execute(
            "DELETE FROM monitoring_modelstatus WHERE model_id IN (SELECT id FROM monitoring_aimodel LIMIT 3)"
        )
    assert ModelStatus.objects.count() == 1

    call_command("reconcile_statuses")
    assert "Created 3 status row(s). Models: 4, statuses: 4." in capsys.readouterr().out
    for model in AIModel.objects.all():
        _assert_one_unknown_status(model)

    call_command("reconcile_statuses")
    assert "Created 0 status row(s). Models: 4, statuses: 4." in capsys.readouterr().out


def test_the_system_check_warns_about_a_model_without_status(provider):
    from django.core.checks import run_checks

    model = AIModel.objects.create(provider=provider, name="A", slug="a")
    assert not [m for m in run_checks(databases=["default"]) if m.id == "monitoring.W001"]
    ModelStatus.objects.filter(model=model).delete()
    warnings = [m for m in run_checks(databases=["default"]) if m.id == "monitoring.W001"]
    assert len(warnings) == 1
    assert "reconcile_statuses" in warnings[0].hint


def test_a_second_status_row_for_a_model_is_refused(model):
    from django.db import IntegrityError, transaction

    with pytest.raises(IntegrityError), transaction.atomic():
        ModelStatus.objects.create(model=model)


def test_providers_are_protected_while_they_have_models(model):
    from django.db.models import ProtectedError

    with pytest.raises(ProtectedError):
        Provider.objects.get(pk=model.provider_id).delete()


@pytest.fixture
def without_trigger():
    """The status-row trigger switched off inside this test's transaction, to see the receiver on its own."""
    with connection.cursor() as cursor:
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
        cursor.execute("ALTER TABLE monitoring_aimodel DISABLE TRIGGER monitoring_aimodel_status_row")
    yield
    with connection.cursor() as cursor:
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")  # no pending foreign-key checks may hold the table
        cursor.execute("ALTER TABLE monitoring_aimodel ENABLE TRIGGER monitoring_aimodel_status_row")


def test_the_post_save_receiver_alone_gives_saves_and_raw_saves_their_status(provider, without_trigger, tmp_path):
    saved = AIModel.objects.create(provider=provider, name="Saved", slug="saved")
    fixture = tmp_path / "raw.json"
    fixture.write_text(json.dumps([{"model": "monitoring.aimodel", "pk": 951, "fields": {"provider": provider.pk}}]))
    call_command("loaddata", str(fixture), verbosity=0)
    _assert_one_unknown_status(saved)
    _assert_one_unknown_status(AIModel.objects.get(pk=951))
    # bulk_create sends no signal: that path is the trigger's to guard (see the test above with it on).
    AIModel.objects.bulk_create([AIModel(provider=provider, name="Bulk", slug="bulk")])
    assert not ModelStatus.objects.filter(model__slug="bulk").exists()
