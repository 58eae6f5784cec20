"""Roles: the groups viewer, operator and admin decide what a user may do, in the API (tokens too) and the admin."""

import pytest
from django.contrib.auth.models import Group
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from monitoring.models import AIModel, Incident, ModelStatus
from tests.conftest import token_client, user_with_role

NEW_MODEL = {"provider": "openai", "name": "GPT-5", "slug": "gpt-5", "endpoint": "http://127.0.0.1:8900/v1"}


@pytest.fixture
def private_model(provider):
    return AIModel.objects.create(
        provider=provider, name="Internal", slug="internal", endpoint="http://127.0.0.1:8900/v1", public=False
    )


def test_the_migration_creates_the_three_roles_and_no_role_may_write_the_audit_trail(db):
    roles = {
        group.name: {f"{p.content_type.app_label}.{p.codename}" for p in group.permissions.all()}
        for group in Group.objects.all()
    }
    assert {"viewer", "operator", "admin"} <= roles.keys()
    viewer, operator, admin = roles["viewer"], roles["operator"], roles["admin"]
    assert {"monitoring.view_aimodel", "monitoring.view_incident", "alerts.view_channel"} <= viewer
    assert not {p for p in viewer if not p.split(".")[1].startswith("view_")}
    assert {"monitoring.change_modelstatus", "monitoring.add_incident", "monitoring.change_maintenance"} <= operator
    assert {"subscriptions.change_subscriber"} <= operator
    assert not {"monitoring.add_aimodel", "monitoring.change_provider", "alerts.add_channel"} & operator
    assert {"monitoring.add_aimodel", "monitoring.change_credential", "alerts.add_channel"} <= admin
    assert {"collectors.change_agent", "monitoring.delete_provider"} <= admin
    assert {"auth.add_user", "authtoken.add_token", "audit.view_auditentry"} <= admin
    for perms in roles.values():
        assert not {"audit.add_auditentry", "audit.change_auditentry", "audit.delete_auditentry"} & perms


def test_a_viewers_token_reads_private_models_and_cannot_write(model, private_model):
    viewer = token_client(user_with_role("vera", "viewer"))
    assert viewer.post("/api/v1/models/", NEW_MODEL, format="json").status_code == 403
    slugs = {m["slug"] for m in viewer.get("/api/v1/models/").json()["results"]}
    assert slugs == {"gpt-4o", "internal"}
    assert viewer.get("/api/v1/incidents/").status_code == 200
    outage = {"status": "major_outage", "reason": "x"}
    assert viewer.post("/api/v1/models/openai/gpt-4o/status/", outage, format="json").status_code == 403
    incident = {"name": "x", "models": ["openai/gpt-4o"]}
    assert viewer.post("/api/v1/incidents/", incident, format="json").status_code == 403


def test_an_operators_token_sets_a_status_and_opens_incidents_but_cannot_change_the_registry(model):
    operator_user = user_with_role("otto", "operator")
    operator = token_client(operator_user)
    response = operator.post(
        "/api/v1/models/openai/gpt-4o/status/", {"status": "major_outage", "reason": "Upstream 503s"}, format="json"
    )
    assert response.status_code == 200 and response.json()["status"] == "major_outage"
    row = ModelStatus.objects.get(model=model)
    assert (row.status, row.manual, row.set_by) == ("major_outage", True, "otto")
    opened = operator.post(
        "/api/v1/incidents/",
        {"name": "Errors", "status": "investigating", "impact": "minor", "models": ["openai/gpt-4o"], "body": "Hm"},
        format="json",
    )
    assert opened.status_code == 201 and Incident.objects.filter(pk=opened.json()["id"]).exists()
    assert operator.post("/api/v1/models/", NEW_MODEL, format="json").status_code == 403
    assert operator.post("/api/v1/providers/", {"name": "X", "slug": "x"}, format="json").status_code == 403
    assert operator.get("/api/v1/alert-channels/").status_code == 200  # reads, as a viewer does
    assert operator.post("/api/v1/alert-channels/", {"name": "x"}, format="json").status_code == 403


def test_an_admins_token_creates_a_model(provider):
    admin = token_client(user_with_role("ada", "admin"))
    response = admin.post("/api/v1/models/", NEW_MODEL, format="json")
    assert response.status_code == 201, response.content
    assert AIModel.objects.filter(provider__slug="openai", slug="gpt-5").exists()


def test_staff_without_a_role_has_no_more_rights_than_an_anonymous_visitor(model, private_model, anon_api):
    nobody = token_client(user_with_role("sam", None))
    assert nobody.get("/api/v1/models/").json() == anon_api.get("/api/v1/models/").json()
    assert nobody.get("/api/v1/incidents/").status_code == 403
    status = nobody.post("/api/v1/models/openai/gpt-4o/status/", {"status": "major_outage"}, format="json")
    assert status.status_code == 403
    assert nobody.post("/api/v1/models/", NEW_MODEL, format="json").status_code == 403


def test_a_superuser_holds_every_right(provider, django_user_model):
    root = django_user_model.objects.create_superuser("root", "root@example.com", "pw-root-12345")
    assert token_client(root).post("/api/v1/models/", NEW_MODEL, format="json").status_code == 201


def test_the_admin_follows_the_roles(client, model):
    client.force_login(user_with_role("vera", "viewer"))
    assert client.get("/admin/monitoring/aimodel/").status_code == 200
    assert client.get(f"/admin/monitoring/aimodel/{model.pk}/change/").status_code == 200  # read-only view
    assert client.get("/admin/monitoring/aimodel/add/").status_code == 403
    assert client.get("/admin/monitoring/incident/add/").status_code == 403
    listing = client.get("/admin/monitoring/aimodel/").content.decode()
    assert 'value="set_status"' not in listing and 'value="enable_models"' not in listing

    client.force_login(user_with_role("otto", "operator"))
    listing = client.get("/admin/monitoring/aimodel/").content.decode()
    assert 'value="set_status"' in listing and 'value="enable_models"' not in listing
    assert client.get("/admin/monitoring/incident/add/").status_code == 200
    assert client.get("/admin/monitoring/aimodel/add/").status_code == 403
    assert client.get("/admin/auth/user/").status_code == 403

    client.force_login(user_with_role("ada", "admin"))
    assert client.get("/admin/monitoring/aimodel/add/").status_code == 200
    assert client.get("/admin/auth/user/").status_code == 200
    assert client.get("/admin/audit/auditentry/").status_code == 200


def test_upgrading_makes_existing_staff_users_admins(db, django_user_model):
    executor = MigrationExecutor(connection)
    executor.migrate([("accounts", None)])
    earlier = django_user_model.objects.create_user("old-hand", password="pw-old-12345", is_staff=True)
    visitor = django_user_model.objects.create_user("visitor", password="pw-visitor-12345")
    executor = MigrationExecutor(connection)
    executor.migrate([("accounts", "0001_roles")])
    assert list(earlier.groups.values_list("name", flat=True)) == ["admin"]
    assert not visitor.groups.exists()
