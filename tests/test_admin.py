"""The operator registers providers and models in the admin; statuses are read-only and set by a recorded action."""

import re

import pytest

from monitoring.models import AIModel, Credential, ModelStatus, StatusChange
from monitoring.status import Status

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_client_(client, django_user_model):
    user = django_user_model.objects.create_superuser("root", "root@example.com", "pw-root-12345")
    client.force_login(user)
    return client


def _model_form(provider, **overrides) -> dict:
    data = {
        "provider": provider.pk,
        "name": "GPT-4o",
        "slug": "gpt-4o",
        "description": "",
        "kind": "chat",
        "public": "on",
        "enabled": "on",
        "display_order": 0,
        "probe_kind": "openai_chat",
        "endpoint": "https://api.openai.com/v1",
        "upstream_model": "",
        "credential": "",
        "probe_config": "{}",
        "interval_seconds": 60,
        "timeout_seconds": 30,
        "latency_threshold_ms": 10000,
        "ttft_threshold_ms": 5000,
        "failures_to_confirm": 2,
        "successes_to_recover": 2,
        "slo_availability_percent": "99.9",
        "slo_ttft_ms": "",
        "status_changes-TOTAL_FORMS": 0,
        "status_changes-INITIAL_FORMS": 0,
        "status_changes-MIN_NUM_FORMS": 0,
        "status_changes-MAX_NUM_FORMS": 0,
    }
    data.update(overrides)
    return data


def test_a_model_added_in_the_admin_gets_an_unknown_status(admin_client_, provider):
    response = admin_client_.post("/admin/monitoring/aimodel/add/", _model_form(provider))
    assert response.status_code == 302, response.context["adminform"].errors if response.context else response
    assert ModelStatus.objects.get(model__slug="gpt-4o").status == Status.UNKNOWN


def test_a_models_objectives_are_set_in_the_admin_and_refused_out_of_range(admin_client_, provider):
    page = admin_client_.get("/admin/monitoring/aimodel/add/").content.decode()
    assert 'name="slo_availability_percent"' in page and 'value="99.9"' in page and 'name="slo_ttft_ms"' in page
    form = _model_form(provider, slo_availability_percent="99.5", slo_ttft_ms="1200")
    assert admin_client_.post("/admin/monitoring/aimodel/add/", form).status_code == 302
    model = AIModel.objects.get(slug="gpt-4o")
    assert (str(model.slo_availability_percent), model.slo_ttft_ms, model.latency_objective_ms) == (
        "99.500",
        1200,
        1200,
    )
    refused = admin_client_.post(
        "/admin/monitoring/aimodel/add/", _model_form(provider, slug="other", slo_availability_percent="100")
    )
    assert refused.status_code == 200 and "slo_availability_percent" in refused.context["adminform"].form.errors


@pytest.mark.parametrize(
    ("overrides", "field", "message"),
    [
        ({"endpoint": "not a url"}, "endpoint", "Enter an http(s) URL"),
        ({"interval_seconds": 5}, "interval_seconds", "at least 10"),
        ({"interval_seconds": 30, "timeout_seconds": 60}, "timeout_seconds", "cannot be longer than the interval"),
    ],
)
def test_a_bad_probe_config_shows_a_field_error(admin_client_, provider, overrides, field, message):
    response = admin_client_.post("/admin/monitoring/aimodel/add/", _model_form(provider, **overrides))
    assert response.status_code == 200
    errors = response.context["adminform"].form.errors
    assert field in errors and message in " ".join(errors[field])
    assert not AIModel.objects.exists()


def test_the_changelist_shows_each_status_and_filters_by_it(admin_client_, model):
    response = admin_client_.get("/admin/monitoring/aimodel/")
    assert b"status-unknown" in response.content
    assert b"status-operational" not in response.content
    filtered = admin_client_.get("/admin/monitoring/aimodel/?status_row__status__exact=major_outage")
    assert b"gpt-4o" not in filtered.content.lower().split(b"<tbody>")[-1]
    search = admin_client_.get("/admin/monitoring/aimodel/?q=gpt")
    assert search.status_code == 200 and b"GPT-4o" in search.content


def test_bulk_disable_and_enable(admin_client_, model):
    admin_client_.post("/admin/monitoring/aimodel/", {"action": "disable_models", "_selected_action": [model.pk]})
    model.refresh_from_db()
    assert model.enabled is False
    admin_client_.post("/admin/monitoring/aimodel/", {"action": "enable_models", "_selected_action": [model.pk]})
    model.refresh_from_db()
    assert model.enabled is True


def test_the_set_status_action_records_a_manual_change_with_the_operator(admin_client_, model):
    form = admin_client_.post("/admin/monitoring/aimodel/", {"action": "set_status", "_selected_action": [model.pk]})
    assert form.status_code == 200 and b"Set status" in form.content

    admin_client_.post(
        "/admin/monitoring/aimodel/",
        {
            "action": "set_status",
            "_selected_action": [model.pk],
            "apply": "1",
            "status": "partial_outage",
            "reason": "EU region failing",
        },
    )
    row = ModelStatus.objects.get(model=model)
    assert (row.status, row.manual, row.set_by) == (Status.PARTIAL_OUTAGE, True, "root")
    change = StatusChange.objects.get(model=model)
    # The reason is public: the operator is named in the admin (and the audit trail), not in it.
    assert change.manual and change.source == "operator" and change.reason == "EU region failing"
    assert "set by root" in admin_client_.get("/admin/monitoring/aimodel/").content.decode()


def test_credentials_are_write_only_and_masked(admin_client_):
    admin_client_.post(
        "/admin/monitoring/credential/add/", {"name": "openai-key", "api_key": "sk-secret-123456789", "api_key_env": ""}
    )
    credential = Credential.objects.get(name="openai-key")
    assert credential.api_key == "sk-secret-123456789"
    change_page = admin_client_.get(f"/admin/monitoring/credential/{credential.pk}/change/")
    assert b"sk-secret-123456789" not in change_page.content
    listing = admin_client_.get("/admin/monitoring/credential/")
    assert b"sk-secret" not in listing.content and b"6789" in listing.content

    # Saving without typing the key keeps it.
    keep = {"name": "openai-key", "api_key": "", "api_key_env": ""}
    admin_client_.post(f"/admin/monitoring/credential/{credential.pk}/change/", keep)
    credential.refresh_from_db()
    assert credential.api_key == "sk-secret-123456789"


def test_the_status_history_is_append_only_in_the_admin(admin_client_, model):
    assert admin_client_.get("/admin/monitoring/statuschange/add/").status_code == 403


def test_the_changelist_says_when_a_model_was_last_checked_briefly_with_the_moment_on_hover(admin_client_, model):
    from monitoring.transitions import record_status

    assert b">never<" in admin_client_.get("/admin/monitoring/aimodel/").content
    record_status(model.pk, Status.OPERATIONAL, reason="ok", checked=True)
    html = admin_client_.get("/admin/monitoring/aimodel/").content.decode()
    cell = html.split('class="field-last_checked_ago">')[1].split("</td>")[0]
    assert re.search(r">\d+ s ago</time>", cell)  # "3 s ago": short enough for any width
    assert 'title="' in cell and " UTC" in cell


def test_the_model_list_s_row_checkboxes_are_django_s_own(admin_client, model):
    """The quick checkbox writes what Django's widget would, so the actions keep working."""
    from django.contrib import admin as django_admin
    from django.contrib.admin import ModelAdmin

    quick = django_admin.site._registry[AIModel].action_checkbox(model)
    assert quick == ModelAdmin.action_checkbox(django_admin.site._registry[AIModel], model)
    assert quick in admin_client.get("/admin/monitoring/aimodel/").content.decode()
