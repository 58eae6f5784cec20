"""An operator's manual status is recorded like any other change and marked as manual."""

import pytest
from django.core.management import CommandError, call_command

from monitoring.models import ModelStatus, StatusChange
from monitoring.status import Status

pytestmark = pytest.mark.django_db


def test_set_status_records_a_manual_status_change(model, capsys):
    call_command("set_status", "openai/gpt-4o", "major_outage", reason="Upstream incident #42")

    row = ModelStatus.objects.get(model=model)
    assert (row.status, row.manual, row.message) == (Status.MAJOR_OUTAGE, True, "Upstream incident #42")
    change = StatusChange.objects.get(model=model)
    assert (change.from_status, change.to_status, change.manual, change.source) == (
        "unknown",
        "major_outage",
        True,
        "operator",
    )
    assert change.reason == "Upstream incident #42"
    assert f"change #{change.pk}" in capsys.readouterr().out


def test_setting_the_same_status_twice_writes_one_change(model):
    call_command("set_status", "openai/gpt-4o", "partial_outage", reason="a")
    call_command("set_status", "openai/gpt-4o", "partial_outage", reason="b")
    assert StatusChange.objects.filter(model=model).count() == 1


def test_changes_are_numbered_in_increasing_order(model):
    for status in ("major_outage", "partial_outage", "operational"):
        call_command("set_status", "openai/gpt-4o", status, reason="x")
    ids = list(StatusChange.objects.filter(model=model).values_list("id", "to_status"))
    assert [s for _, s in ids] == ["major_outage", "partial_outage", "operational"]
    assert [i for i, _ in ids] == sorted(i for i, _ in ids)


def test_auto_returns_the_model_to_the_collectors_as_unknown(model):
    call_command("set_status", "openai/gpt-4o", "operational", reason="verified by hand")
    call_command("set_status", "openai/gpt-4o", "auto", reason="back to probes")
    row = ModelStatus.objects.get(model=model)
    assert (row.status, row.manual) == (Status.UNKNOWN, False)


def test_an_unknown_model_is_a_clear_error(model):
    with pytest.raises(CommandError, match="No model 'openai/nope'"):
        call_command("set_status", "openai/nope", "major_outage", reason="x")


def test_an_unknown_status_is_refused(model):
    with pytest.raises(CommandError):
        call_command("set_status", "openai/gpt-4o", "fine", reason="x")


def test_a_reason_is_required(model):
    with pytest.raises(CommandError):
        call_command("set_status", "openai/gpt-4o", "major_outage")
