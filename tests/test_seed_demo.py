"""The demo registry: a dozen models over four providers, all unknown until probed, seeded idempotently."""

import pytest
from django.core.management import call_command

from monitoring.models import AIModel, ModelStatus, Provider
from monitoring.status import Status

pytestmark = pytest.mark.django_db


def test_seed_demo_creates_a_dozen_models_over_four_providers_all_unknown(capsys):
    call_command("seed_demo")
    assert Provider.objects.count() == 4
    assert AIModel.objects.count() == 12
    assert ModelStatus.objects.filter(status=Status.UNKNOWN).count() == 12
    assert "12 created" in capsys.readouterr().out
    assert set(AIModel.objects.values_list("interval_seconds", flat=True)) == {10}
    assert set(AIModel.objects.values_list("endpoint", flat=True)) == {"http://127.0.0.1:8900/v1"}


def test_seed_demo_is_idempotent(capsys):
    call_command("seed_demo")
    call_command("seed_demo")
    assert AIModel.objects.count() == 12 and ModelStatus.objects.count() == 12
    assert "0 created, 12 already present" in capsys.readouterr().out


def test_every_demo_model_passes_the_admins_validation():
    call_command("seed_demo")
    for model in AIModel.objects.all():
        model.full_clean()


def test_a_compressed_history_is_written_once_and_the_anomaly_detectors_learn_from_it(capsys):
    from anomalies.detection import run_detection
    from anomalies.models import SeriesState
    from collectors.models import CheckResult

    call_command("seed_demo", "--history-hours", "3")
    assert "History: 2160 results over the last 3 hours" in capsys.readouterr().out
    call_command("seed_demo", "--history-hours", "3")
    assert "History: 0 results" in capsys.readouterr().out
    assert CheckResult.objects.count() == 12 * 180
    # The history decides no status: only live probes do.
    assert ModelStatus.objects.filter(status=Status.UNKNOWN).count() == 12
    down = CheckResult.objects.filter(model__slug="gemini-2-5-flash").values_list("outcome", flat=True).distinct()
    assert list(down) == ["provider_fault"]
    run_detection()
    learned = SeriesState.objects.filter(metric="latency", learning=False)
    healthy = {"gpt-4o", "gpt-4o-mini", "claude-sonnet-4", "gemini-2-5-pro", "mistral-large-latest", "mistral-embed"}
    assert healthy <= set(learned.values_list("model__slug", flat=True))
