"""The audit trail: who did what, when, from where, with before and after (secrets masked); read-only for all."""

import csv
import io
import json

import pytest
from django.core.management import call_command
from rest_framework.authtoken.models import Token

from audit.models import AuditEntry
from monitoring.models import Credential, ModelStatus
from tests.conftest import token_client, user_with_role


def entries(**filters) -> list[AuditEntry]:
    return list(AuditEntry.objects.filter(**filters).order_by("id"))


@pytest.mark.django_db(transaction=True)
def test_after_an_operator_sets_a_status_the_admins_audit_api_shows_who_what_and_when(model):
    admin = token_client(user_with_role("ada", "admin"))
    operator = token_client(user_with_role("otto", "operator"))
    set_status = operator.post(
        "/api/v1/models/openai/gpt-4o/status/", {"status": "major_outage", "reason": "Upstream 503s"}, format="json"
    )
    assert set_status.status_code == 200

    listing = admin.get("/api/v1/audit/")
    assert listing.status_code == 200
    results = listing.json()["results"]
    newest = results[0]
    assert newest["actor"] == "otto" and newest["action"] == "status_set"
    assert newest["target"] == "model openai/gpt-4o" and newest["at"]
    assert newest["address"] == "127.0.0.1"
    assert newest["changes"]["status"] == ["unknown", "major_outage"]
    assert newest["changes"]["reason"] == [None, "Upstream 503s"]
    # Newest first, by cursor like the other lists that grow: the tokens were made before.
    assert [entry["action"] for entry in results[1:]] == ["token_created", "token_created"]
    assert {"next", "previous", "results"} <= listing.json().keys()


def test_only_the_admin_role_reads_the_audit_trail(db, anon_api):
    assert anon_api.get("/api/v1/audit/").status_code in (401, 403)
    assert token_client(user_with_role("vera", "viewer")).get("/api/v1/audit/").status_code == 403
    assert token_client(user_with_role("otto", "operator")).get("/api/v1/audit/").status_code == 403
    assert token_client(user_with_role("ada", "admin")).get("/api/v1/audit/").status_code == 200


@pytest.mark.django_db(transaction=True)
def test_the_set_status_command_is_recorded_under_the_operating_system_user(model):
    call_command("set_status", "openai/gpt-4o", "partial_outage", reason="EU failing")
    (entry,) = entries(action="status_set")
    assert entry.actor is None and entry.actor_name.endswith("(manage.py)")
    assert entry.changes["status"] == ["unknown", "partial_outage"]
    assert ModelStatus.objects.get(model=model).set_by == entry.actor_name


@pytest.mark.django_db(transaction=True)
def test_the_operator_is_named_in_the_admin_and_the_public_is_told_only_the_team_set_it(model, client, anon_api):
    operator = token_client(user_with_role("otto", "operator"))
    operator.post("/api/v1/models/openai/gpt-4o/status/", {"status": "major_outage", "reason": "503s"}, format="json")
    client.force_login(user_with_role("ada", "admin"))
    assert "set by otto" in client.get("/admin/monitoring/aimodel/").content.decode()
    assert "otto" in client.get("/admin/monitoring/modelstatus/").content.decode()
    client.logout()

    page = client.get("/en/models/openai/gpt-4o/").content.decode()
    assert "set by the team" in page and "otto" not in page
    assert "otto" not in anon_api.get("/api/v1/models/openai/gpt-4o/status/").content.decode()
    assert "otto" not in anon_api.get("/api/v1/models/openai/gpt-4o/history/").content.decode()


def test_admin_edits_record_before_and_after_with_secrets_masked(client, model):
    client.force_login(user_with_role("ada", "admin"))
    client.post(
        "/admin/monitoring/credential/add/", {"name": "openai", "api_key": "sk-live-123456789", "api_key_env": ""}
    )
    credential = Credential.objects.get(name="openai")
    client.post(
        f"/admin/monitoring/credential/{credential.pk}/change/",
        {"name": "openai", "api_key": "sk-live-987654321", "api_key_env": ""},
    )
    created, changed = entries(target="credential openai")
    assert (created.action, created.actor_name, created.address) == ("created", "ada", "127.0.0.1")
    assert created.changes["api_key"] == [None, "••••"]
    assert changed.action == "changed" and changed.changes == {"api_key": ["••••", "••••"]}
    assert "sk-live" not in json.dumps([e.changes for e in AuditEntry.objects.all()])

    client.post("/admin/monitoring/aimodel/", {"action": "disable_models", "_selected_action": [model.pk]})
    (disabled,) = entries(target="model openai/gpt-4o", action="changed")
    assert disabled.changes == {"enabled": [True, False]}


def test_incident_edits_through_the_api_and_token_creation_and_revocation_are_recorded(model, client):
    operator = user_with_role("otto", "operator")
    api = token_client(operator)  # made outside any request: recorded all the same
    (issued,) = entries(action="token_created")
    assert issued.target == "API token of otto" and issued.changes["key"] == [None, "••••"]
    opened = api.post(
        "/api/v1/incidents/",
        {"name": "Errors", "status": "investigating", "impact": "minor", "models": ["openai/gpt-4o"], "body": "Hm"},
        format="json",
    ).json()
    api.patch(f"/api/v1/incidents/{opened['id']}/", {"impact": "major"}, format="json")
    incident_entries = entries(target__startswith="incident Errors")
    assert [e.action for e in incident_entries][0] == "created"
    assert any(e.changes.get("impact") == ["minor", "major"] for e in incident_entries)
    assert all(e.actor_name == "otto" for e in incident_entries)

    client.force_login(user_with_role("ada", "admin"))
    client.post(f"/admin/authtoken/tokenproxy/{operator.pk}/delete/", {"post": "yes"})
    assert not Token.objects.filter(user=operator).exists()
    (revoked,) = entries(action="token_revoked")
    assert revoked.actor_name == "ada" and revoked.target == "API token of otto"


def test_sign_ins_that_succeed_or_fail_are_recorded_without_the_password(db, client):
    user_with_role("ada", "admin", password="pw-ada-correct-1")
    client.post("/admin/login/", {"username": "ada", "password": "wrong-password-1"}, REMOTE_ADDR="10.1.2.3")
    client.post("/admin/login/", {"username": "nobody", "password": "wrong-password-2"})
    client.post("/admin/login/", {"username": "ada", "password": "pw-ada-correct-1"})
    failed = entries(action="sign_in_failed")
    assert [(e.actor_name, e.address, e.actor) for e in failed] == [
        ("ada", "10.1.2.3", None),
        ("nobody", "127.0.0.1", None),
    ]
    (signed_in,) = entries(action="signed_in")
    assert signed_in.actor.username == "ada" and signed_in.target == "user ada"
    assert "wrong-password" not in json.dumps([[e.target, e.changes] for e in AuditEntry.objects.all()])


def test_the_trail_is_read_only_for_everyone_and_exports_as_csv_and_json(client, django_user_model, model):
    root = django_user_model.objects.create_superuser("root", "root@example.com", "pw-root-12345")
    client.force_login(root)
    entry = AuditEntry.objects.get(action="signed_in")
    assert client.get("/admin/audit/auditentry/add/").status_code == 403
    assert client.get(f"/admin/audit/auditentry/{entry.pk}/delete/").status_code == 403
    assert client.post(f"/admin/audit/auditentry/{entry.pk}/change/", {"actor_name": "x"}).status_code == 403
    listing = client.get("/admin/audit/auditentry/").content.decode()
    assert 'value="delete_selected"' not in listing and 'value="export_csv"' in listing

    selected = {"_selected_action": [entry.pk]}
    exported_csv = client.post("/admin/audit/auditentry/", {"action": "export_csv", **selected})
    assert exported_csv["Content-Type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(exported_csv.content.decode())))
    assert [(r["actor"], r["action"], r["target"]) for r in rows] == [("root", "signed_in", "user root")]
    exported_json = client.post("/admin/audit/auditentry/", {"action": "export_json", **selected})
    (document,) = json.loads(exported_json.content)
    assert document["actor"] == "root" and document["at"] and document["action"] == "signed_in"
    AuditEntry.objects.get(pk=entry.pk)  # still there


def test_the_audit_endpoint_is_in_the_openapi_schema(anon_api):
    schema = anon_api.get("/api/schema/", HTTP_ACCEPT="application/json").json()
    assert "/api/v1/audit/" in schema["paths"]
    entry = schema["components"]["schemas"]["AuditEntry"]["properties"]
    assert {"actor", "action", "at", "target", "address", "changes"} <= entry.keys()


@pytest.mark.django_db(transaction=True)
def test_under_the_asgi_server_the_trail_names_the_operator_of_each_request(model, tmp_path):
    """The production path (uvicorn, the ASGI edges, Django's request path on a worker thread)."""
    import urllib.request

    from tests.servers import serve

    operator_key = Token.objects.create(user=user_with_role("otto", "operator")).key
    admin_key = Token.objects.create(user=user_with_role("ada", "admin")).key

    def call(base: str, path: str, key: str, body: dict | None = None) -> dict:
        request = urllib.request.Request(
            base + path,
            data=json.dumps(body).encode() if body is not None else None,
            headers={"Authorization": f"Token {key}", "Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            return json.loads(response.read())

    with serve(tmp_path / "uvicorn.log") as base:
        call(base, "/api/v1/models/openai/gpt-4o/status/", operator_key, {"status": "degraded_performance"})
        newest = call(base, "/api/v1/audit/", admin_key)["results"][0]
    assert (newest["actor"], newest["action"], newest["target"]) == ("otto", "status_set", "model openai/gpt-4o")
    assert newest["address"] == "127.0.0.1"
