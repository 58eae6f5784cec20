"""Secrets at rest: provider keys and webhook secrets are encrypted in the database, readable in Python, rotatable."""

import importlib
import subprocess

import pytest
from cryptography.fernet import Fernet
from django.apps import apps
from django.core.management import call_command
from django.db import connection

from alerts.models import Channel
from collectors.models import CheckResult
from monitoring.fields import PREFIX, UndecryptableSecret, derived_key
from monitoring.models import AIModel, Credential, ModelStatus, Provider
from subscriptions.models import Subscriber

PROVIDER_KEY = "sk-live-PROVIDERKEY-4b1d9e"
CHANNEL_SECRET = "whsec_" + "QUxFUlRTRUNSRVRBTEVSVFNFQ1JFVA=="
SUBSCRIBER_SECRET = "whsec_" + "U1VCU0NSSUJFUlNFQ1JFVFNVQlNDUg=="


def stored(table: str, column: str, pk: int) -> str:
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {column} FROM {table} WHERE id = %s", [pk])
        return cursor.fetchone()[0]


@pytest.mark.django_db(transaction=True)
def test_a_dump_of_the_database_holds_no_provider_key_nor_webhook_secret_in_clear():
    credential = Credential.objects.create(name="openai", api_key=PROVIDER_KEY)
    Channel.objects.create(
        name="ops hook", kind=Channel.Kind.WEBHOOK, url="https://hooks.example.com/x", secret=CHANNEL_SECRET
    )
    Subscriber.objects.create(
        channel=Subscriber.Channel.WEBHOOK, webhook_url="https://sub.example.com/h", secret=SUBSCRIBER_SECRET
    )
    settings = connection.settings_dict
    dump = subprocess.run(
        ["pg_dump", "-h", settings["HOST"] or "127.0.0.1", "-p", str(settings["PORT"] or 5432)]
        + ["-U", settings["USER"] or "postgres", "--data-only", settings["NAME"]],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    ).stdout
    assert "openai" in dump  # the credential's row is in the dump...
    assert PROVIDER_KEY not in dump and "PROVIDERKEY" not in dump  # ...but not its key
    assert CHANNEL_SECRET not in dump and SUBSCRIBER_SECRET not in dump
    assert dump.count(PREFIX) >= 3
    # Python reads them back in clear.
    assert Credential.objects.get(pk=credential.pk).api_key == PROVIDER_KEY
    assert Channel.objects.get().secret == CHANNEL_SECRET and Subscriber.objects.get().secret == SUBSCRIBER_SECRET


@pytest.mark.django_db(transaction=True)
def test_the_collector_probes_with_the_decrypted_key(simulator, scenario):
    scenario({"keyed": {"require_api_key": PROVIDER_KEY}})
    provider = Provider.objects.create(name="Sim", slug="sim")
    credential = Credential.objects.create(name="sim", api_key=PROVIDER_KEY)
    assert stored("monitoring_credential", "api_key", credential.pk).startswith(PREFIX)
    model = AIModel.objects.create(
        provider=provider, name="keyed", slug="keyed", upstream_model="keyed", endpoint=simulator.base_url,
        credential=credential, interval_seconds=10, timeout_seconds=2,
    )  # fmt: skip
    for _ in range(2):
        call_command("collect_once", model.public_slug, stdout=open("/dev/null", "w"))
    assert set(CheckResult.objects.filter(model=model).values_list("outcome", flat=True)) == {"ok"}
    assert ModelStatus.objects.get(model=model).status == "operational"


@pytest.mark.django_db(transaction=True)
def test_a_key_named_by_an_environment_variable_still_reaches_the_probe(simulator, scenario, monkeypatch):
    scenario({"keyed": {"require_api_key": "sk-from-env"}})
    monkeypatch.setenv("SIM_KEY_FOR_TEST", "sk-from-env")
    provider = Provider.objects.create(name="Sim", slug="sim")
    credential = Credential.objects.create(name="sim", api_key_env="SIM_KEY_FOR_TEST")
    model = AIModel.objects.create(
        provider=provider, name="keyed", slug="keyed", upstream_model="keyed", endpoint=simulator.base_url,
        credential=credential, interval_seconds=10, timeout_seconds=2,
    )  # fmt: skip
    call_command("collect_once", model.public_slug, stdout=open("/dev/null", "w"))
    assert list(CheckResult.objects.filter(model=model).values_list("outcome", flat=True)) == ["ok"]


def test_rotation_re_encrypts_every_value_with_the_first_key(db, settings):
    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    settings.FIELD_ENCRYPTION_KEYS = [old]
    credential = Credential.objects.create(name="openai", api_key=PROVIDER_KEY)
    channel = Channel.objects.create(
        name="hook", kind=Channel.Kind.WEBHOOK, url="https://h.example.com/", secret=CHANNEL_SECRET
    )
    before = stored("monitoring_credential", "api_key", credential.pk)
    assert Fernet(old.encode()).decrypt(before.removeprefix(PREFIX).encode()).decode() == PROVIDER_KEY

    settings.FIELD_ENCRYPTION_KEYS = [new, old]
    assert Credential.objects.get().api_key == PROVIDER_KEY  # the old key still reads
    call_command("rotate_encryption_key", stdout=open("/dev/null", "w"))

    settings.FIELD_ENCRYPTION_KEYS = [new]
    after = stored("monitoring_credential", "api_key", credential.pk)
    assert after != before
    assert Fernet(new.encode()).decrypt(after.removeprefix(PREFIX).encode()).decode() == PROVIDER_KEY
    assert Credential.objects.get().api_key == PROVIDER_KEY
    assert Channel.objects.get(pk=channel.pk).secret == CHANNEL_SECRET

    settings.FIELD_ENCRYPTION_KEYS = [old]  # the retired key alone no longer opens anything
    with pytest.raises(UndecryptableSecret):
        Credential.objects.get()


def test_the_rotation_command_says_what_it_did(db, capsys):
    Credential.objects.create(name="openai", api_key=PROVIDER_KEY)
    Credential.objects.create(name="by-env", api_key_env="OPENAI_KEY")
    call_command("rotate_encryption_key")
    out = capsys.readouterr().out
    assert "monitoring.Credential.api_key: 1 value(s) re-encrypted." in out
    assert "alerts.Channel.secret: 0 value(s)" in out and "subscriptions.Subscriber.secret: 0 value(s)" in out


def test_the_migration_encrypts_values_stored_in_clear_before_it(db):
    credential = Credential.objects.create(name="legacy", api_key="placeholder")
    with connection.cursor() as cursor:  # as a row written before encryption existed
        cursor.execute("UPDATE monitoring_credential SET api_key = %s WHERE id = %s", [PROVIDER_KEY, credential.pk])
    assert Credential.objects.get().api_key == PROVIDER_KEY  # a clear value still reads
    migration = importlib.import_module("monitoring.migrations.0009_encrypt_credential_api_keys")
    migration.encrypt_clear_values(apps, None)
    assert stored("monitoring_credential", "api_key", credential.pk).startswith(PREFIX)
    assert Credential.objects.get().api_key == PROVIDER_KEY


def test_without_keys_the_key_is_derived_from_secret_key_and_a_check_warns_when_debug_is_off(db, settings):
    from monitoring.checks import secrets_have_their_own_key

    settings.FIELD_ENCRYPTION_KEYS = []
    credential = Credential.objects.create(name="openai", api_key=PROVIDER_KEY)
    token = stored("monitoring_credential", "api_key", credential.pk).removeprefix(PREFIX)
    assert Fernet(derived_key(settings.SECRET_KEY).encode()).decrypt(token.encode()).decode() == PROVIDER_KEY
    settings.DEBUG = False
    assert [w.id for w in secrets_have_their_own_key()] == ["monitoring.W002"]
    settings.FIELD_ENCRYPTION_KEYS = [Fernet.generate_key().decode()]
    assert secrets_have_their_own_key() == []
    settings.FIELD_ENCRYPTION_KEYS = ["not-a-key"]
    assert [e.id for e in secrets_have_their_own_key()] == ["monitoring.E004"]
