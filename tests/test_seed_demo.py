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
