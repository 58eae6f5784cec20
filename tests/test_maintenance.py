"""Maintenance windows, one-off and recurring (cron): which models they cover, when, and what is coming up."""

from datetime import UTC, datetime

import pytest
from django.core.exceptions import ValidationError

from collectors.sweep import sweep
from monitoring.models import AIModel, Maintenance, ModelStatus, Provider
from monitoring.status import Status
from monitoring.transitions import record_status

pytestmark = pytest.mark.django_db


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def weekly(model, **fields) -> Maintenance:
    defaults = dict(
        title="Weekly upgrade",
        model=model,
        starts_at=at("2026-01-01 00:00"),
        ends_at=at("2027-01-01 00:00"),
        recurrence="0 3 * * sun",
        duration_minutes=60,
    )
    return Maintenance.objects.create(**{**defaults, **fields})


def test_a_recurring_window_covers_its_model_during_each_occurrence_only(model):
    weekly(model)
    # 2026-03-01 is a Sunday.
    assert Maintenance.active_model_ids(at("2026-03-01 03:00")) == {model.pk}
    assert Maintenance.active_model_ids(at("2026-03-01 03:59")) == {model.pk}
    assert Maintenance.active_model_ids(at("2026-03-01 04:00")) == set()
    assert Maintenance.active_model_ids(at("2026-03-01 02:59")) == set()
    assert Maintenance.active_model_ids(at("2026-03-02 03:30")) == set()  # a Monday
    assert Maintenance.active_model_ids(at("2026-03-01 03:30"), [model.pk + 1]) == set()


def test_the_recurrence_is_read_in_the_windows_time_zone(model):
    weekly(model, recurrence="0 3 * * *", time_zone="Asia/Seoul")  # 03:00 in Seoul is 18:00 UTC the day before
    assert Maintenance.active_model_ids(at("2026-03-01 18:30")) == {model.pk}
    assert Maintenance.active_model_ids(at("2026-03-01 03:30")) == set()


def test_the_series_is_bounded_by_its_start_and_end(model):
    weekly(model, starts_at=at("2026-03-02 00:00"), ends_at=at("2026-03-09 03:30"))
    assert Maintenance.active_model_ids(at("2026-03-01 03:30")) == set()  # before the series
    assert Maintenance.active_model_ids(at("2026-03-08 03:30")) == {model.pk}
    assert Maintenance.active_model_ids(at("2026-03-15 03:30")) == set()  # after it


def test_a_window_that_began_before_the_end_of_its_series_runs_its_full_length(model):
    weekly(model, ends_at=at("2026-03-01 03:10"))
    assert Maintenance.active_model_ids(at("2026-03-01 03:50")) == {model.pk}


def test_a_provider_wide_recurring_window_covers_every_model_of_the_provider(model, provider):
    other = AIModel.objects.create(provider=provider, name="Mini", slug="mini", endpoint="http://x.test/v1")
    elsewhere = AIModel.objects.create(
        provider=Provider.objects.create(name="B", slug="b"), name="C", slug="c", endpoint="http://x.test/v1"
    )
    weekly(None, provider=provider)
    assert Maintenance.active_model_ids(at("2026-03-01 03:15")) == {model.pk, other.pk}
    assert elsewhere.pk not in Maintenance.active_model_ids(at("2026-03-01 03:15"))


def test_one_off_windows_keep_working_as_before(model):
    Maintenance.objects.create(
        title="Move", model=model, starts_at=at("2026-03-01 10:00"), ends_at=at("2026-03-01 11:00")
    )
    assert Maintenance.active_model_ids(at("2026-03-01 10:30")) == {model.pk}
    assert Maintenance.active_model_ids(at("2026-03-01 11:00")) == set()


def test_upcoming_lists_occurrences_in_progress_and_ahead_soonest_first(model, provider):
    weekly(model)
    Maintenance.objects.create(
        title="Database move", provider=provider, starts_at=at("2026-03-03 10:00"), ends_at=at("2026-03-03 12:00")
    )
    Maintenance.objects.create(
        title="Far away", model=model, starts_at=at("2026-05-01 10:00"), ends_at=at("2026-05-01 11:00")
    )
    now = at("2026-03-01 03:20")
    found = Maintenance.upcoming(now, days=10)

    assert [(o.maintenance.title, o.starts_at, o.ends_at) for o in found] == [
        ("Weekly upgrade", at("2026-03-01 03:00"), at("2026-03-01 04:00")),
        ("Database move", at("2026-03-03 10:00"), at("2026-03-03 12:00")),
        ("Weekly upgrade", at("2026-03-08 03:00"), at("2026-03-08 04:00")),
    ]
    assert [o.status(now) for o in found] == ["in_progress", "scheduled", "scheduled"]
    assert found[0].status(at("2026-03-01 05:00")) == "completed"


@pytest.mark.parametrize(
    "fields, field, message",
    [
        ({"recurrence": "every sunday"}, "recurrence", "Not a valid cron expression"),
        ({"recurrence": "0 25 * * *"}, "recurrence", "Not a valid cron expression"),
        ({"recurrence": "0 3 * * sun", "duration_minutes": None}, "duration_minutes", "needs a duration"),
        ({"time_zone": "Mars/Olympus"}, "time_zone", "Unknown time zone"),
        ({"ends_at": at("2025-01-01 00:00")}, "ends_at", "after the start"),
    ],
)
def test_a_window_that_makes_no_sense_is_refused_with_a_clear_error(model, fields, field, message):
    window = Maintenance(
        title="x", model=model, starts_at=at("2026-01-01 00:00"), ends_at=at("2026-02-01 00:00"), duration_minutes=30
    )
    for name, value in fields.items():
        setattr(window, name, value)
    with pytest.raises(ValidationError) as error:
        window.full_clean()
    assert message in " ".join(error.value.message_dict[field])


def test_cron_accepts_lists_ranges_steps_and_seven_for_sunday(model):
    window = weekly(model, recurrence="*/30 9-10 1,15 * 7", duration_minutes=10)
    window.full_clean()
    starts = [o.starts_at for o in window.occurrences(at("2026-03-01 00:00"), at("2026-03-02 00:00"))]
    # 2026-03-01 is the first of the month and a Sunday: either day field matches, as in cron.
    assert starts == [at("2026-03-01 09:00"), at("2026-03-01 09:30"), at("2026-03-01 10:00"), at("2026-03-01 10:30")]
    sundays = window.occurrences(at("2026-03-08 00:00"), at("2026-03-09 00:00"))
    assert len(sundays) == 4


def test_the_sweep_puts_models_under_maintenance_during_a_recurring_window_and_back_after(model):
    weekly(model)
    record_status(model.pk, Status.OPERATIONAL, checked=True, at=at("2026-03-01 02:55"))
    sweep(at("2026-03-01 03:00:05"))
    assert ModelStatus.objects.get(model=model).status == Status.UNDER_MAINTENANCE
    sweep(at("2026-03-01 04:00:05"))
    assert ModelStatus.objects.get(model=model).status != Status.UNDER_MAINTENANCE


def test_recurring_windows_are_edited_in_the_admin(admin_client, model, settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    weekly(model, ends_at=at("2099-01-01 00:00"))
    page = admin_client.get("/admin/monitoring/maintenance/").content.decode()
    assert "0 3 * * sun" in page and "Weekly upgrade" in page
    assert admin_client.get("/admin/monitoring/maintenance/add/").status_code == 200


def test_a_broken_recurring_row_saved_around_validation_does_not_stop_the_others(model):
    weekly(model, recurrence="not cron", title="broken")
    Maintenance.objects.create(
        title="Move", model=model, starts_at=at("2026-03-01 10:00"), ends_at=at("2026-03-01 11:00")
    )
    assert Maintenance.active_model_ids(at("2026-03-01 10:30")) == {model.pk}
