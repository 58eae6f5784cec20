"""Alert channels through the API and the admin: validation, write-only secrets, defaults, the test action."""

import pytest
from standardwebhooks.webhooks import Webhook

from alerts.models import Channel, Notification
from alerts.transports.webhook import new_secret
from monitoring.models import AIModel
from tests.receiver import Receiver

pytestmark = [pytest.mark.django_db, pytest.mark.filterwarnings("ignore::DeprecationWarning:apprise.*")]
URL = "/api/v1/alert-channels/"


@pytest.fixture(autouse=True)
def alert_settings(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]  # fast staff users
    settings.WEBHOOK_ALLOWED_HOSTS = ["127.0.0.1"]
    settings.ALERT_TIMEOUT_SECONDS = 1.0


def create(api, **body):
    return api.post(URL, body, format="json")


def test_a_webhook_created_without_a_secret_gets_one_returned_once(staff_api):
    response = create(staff_api, name="ops", kind="webhook", url="https://hooks.example.com/status")

    assert response.status_code == 201, response.data
    secret = response.data["secret"]
    assert secret.startswith("whsec_")
    Webhook(secret)  # a secret receivers' libraries accept
    channel = Channel.objects.get(pk=response.data["id"])
    assert channel.secret == secret
    shown = staff_api.get(f"{URL}{channel.pk}/").data
    assert "secret" not in shown and shown["has_secret"] is True
    assert "secret" not in staff_api.get(URL).data["results"][0]


def test_a_given_secret_is_kept_and_an_invalid_one_is_refused(staff_api):
    secret = new_secret()
    response = create(staff_api, name="ops", kind="webhook", url="https://hooks.example.com/a", secret=secret)
    assert response.status_code == 201 and Channel.objects.get().secret == secret

    response = create(staff_api, name="bad", kind="webhook", url="https://hooks.example.com/b", secret="hunter2")
    assert response.status_code == 400 and "whsec_" in str(response.data["secret"])


def test_rules_default_to_every_transition_into_and_out_of_an_outage_at_once(staff_api):
    data = create(staff_api, name="ops", kind="slack", url="https://hooks.slack.com/services/T0/B0/abc").data
    assert data["events"] == ["outage", "recovery"]
    assert data["min_duration_seconds"] == 0
    assert (data["providers"], data["models"], data["model_kinds"]) == ([], [], [])
    assert data["silence_during_maintenance"] is True and data["remind_every_minutes"] == 0


def test_rules_name_providers_models_and_kinds(staff_api, model, provider):
    response = create(
        staff_api,
        name="chat only",
        kind="email",
        url="mailto:ops@example.com",
        providers=["openai"],
        models=["openai/gpt-4o"],
        model_kinds=["chat"],
        events=["outage", "degraded", "recovery", "incidents"],
        min_duration_seconds=120,
        language="ja",
    )
    assert response.status_code == 201, response.data
    channel = Channel.objects.get()
    assert list(channel.providers.all()) == [provider] and list(channel.ai_models.all()) == [model]
    assert channel.model_kinds == ["chat"] and channel.language == "ja"

    response = create(staff_api, name="x", kind="email", url="mailto:a@example.com", models=["openai/nope"])
    assert response.status_code == 400 and "openai/nope" in str(response.data["models"])


def test_slack_and_apprise_urls_carry_tokens_and_are_never_shown_whole(staff_api):
    slack = create(staff_api, name="s", kind="slack", url="https://hooks.slack.com/services/T0/B0/secret-token").data
    assert "secret-token" not in str(slack) and slack["shown_url"] == "https://hooks.slack.com/…"
    discord = create(staff_api, name="d", kind="apprise", url="discord://4174216298/JHMHI8qBe7bk2ZwO5U711o3dV").data
    assert "JHMHI8qBe7bk2ZwO5U711o3dV" not in str(discord)


@pytest.mark.parametrize(
    "kind, url, error",
    [
        ("webhook", "not a url", "Enter a full http(s) URL"),
        ("webhook", "ftp://example.com/x", "Enter a full http(s) URL"),
        ("webhook", "http://10.1.2.3/hook", "private or loopback address; list it in WEBHOOK_ALLOWED_HOSTS"),
        ("webhook", "http://[::1]:9000/hook", "private or loopback"),
        ("webhook", "http://169.254.169.254/latest/meta-data", "private or loopback"),
        ("webhook", "http://localhost:8080/hook", "local name"),
        ("slack", "http://hooks.slack.com/services/T/B/x", "https://"),
        ("apprise", "notaservice://abc", "Apprise does not recognise this URL"),
        ("apprise", "tgram://bottoken/chatid", "Apprise does not recognise this URL"),
        ("apprise", "json://192.168.1.10/hook", "private or loopback"),
        ("email", "ops@example.com", "mailto:"),
        ("email", "mailto:ops@example.com,not-an-address", "not-an-address is not an email address"),
    ],
)
def test_an_unusable_url_is_refused_when_saved_with_a_clear_error(staff_api, kind, url, error):
    response = create(staff_api, name="x", kind=kind, url=url)
    assert response.status_code == 400
    assert error in str(response.data["url"])
    assert not Channel.objects.exists()


def test_private_hosts_listed_in_webhook_allowed_hosts_are_accepted(staff_api, settings):
    settings.WEBHOOK_ALLOWED_HOSTS = ["127.0.0.1", "hooks.internal"]
    assert create(staff_api, name="a", kind="webhook", url="http://127.0.0.1:9000/hook").status_code == 201
    assert create(staff_api, name="b", kind="webhook", url="http://hooks.internal/x").status_code == 201
    assert create(staff_api, name="c", kind="webhook", url="http://127.0.0.2:9000/hook").status_code == 400


def test_only_staff_may_see_or_change_channels(anon_api, db):
    from django.contrib.auth import get_user_model
    from rest_framework.test import APIClient

    assert anon_api.get(URL).status_code == 401
    user = get_user_model().objects.create_user("bob", "bob@example.com", "pw-bob-12345")
    client = APIClient()
    client.force_authenticate(user)
    assert client.get(URL).status_code == 403
    assert client.post(URL, {"name": "x", "kind": "webhook", "url": "https://a.example.com"}).status_code == 403


def test_a_secret_can_be_replaced_but_an_update_without_one_keeps_it(staff_api):
    data = create(staff_api, name="ops", kind="webhook", url="https://hooks.example.com/a").data
    channel = Channel.objects.get()
    staff_api.patch(f"{URL}{channel.pk}/", {"name": "renamed"}, format="json")
    channel.refresh_from_db()
    assert channel.secret == data["secret"] and channel.name == "renamed"
    replacement = new_secret()
    staff_api.patch(f"{URL}{channel.pk}/", {"secret": replacement}, format="json")
    channel.refresh_from_db()
    assert channel.secret == replacement


def test_send_a_test_through_the_api(staff_api):
    with Receiver(statuses=[500]) as receiver:
        channel_id = create(staff_api, name="ops", kind="webhook", url=receiver.url()).data["id"]
        failed = staff_api.post(f"{URL}{channel_id}/test/")
        sent = staff_api.post(f"{URL}{channel_id}/test/")

    assert failed.status_code == 502 and failed.data["ok"] is False and "HTTP 500" in failed.data["error"]
    assert sent.status_code == 200 and sent.data["ok"] is True and sent.data["status_code"] == 200
    channel = Channel.objects.get()
    body = Webhook(channel.secret).verify(receiver.requests[1].body, receiver.requests[1].headers)
    assert body["type"] == "channel.test"
    # A failed test is not a failing channel.
    assert channel.consecutive_failures == 0 and channel.enabled
    assert Notification.objects.filter(kind="test").count() == 2


def test_the_admin_keeps_secrets_write_only_and_sends_tests(admin_client):
    assert admin_client.get("/admin/alerts/channel/add/").status_code == 200
    with Receiver() as receiver:
        response = admin_client.post(
            "/admin/alerts/channel/add/",
            {
                "name": "ops",
                "kind": "webhook",
                "url": receiver.url(),
                "secret": "",
                "language": "ko",
                "enabled": "on",
                "events": ["outage", "recovery"],
                "min_duration_seconds": "0",
                "silence_during_maintenance": "on",
                "remind_every_minutes": "0",
            },
            follow=True,
        )
        channel = Channel.objects.get()
        assert channel.secret in response.content.decode()  # shown once, on creation
        page = admin_client.get(f"/admin/alerts/channel/{channel.pk}/change/").content.decode()
        assert channel.secret not in page

        response = admin_client.post(
            "/admin/alerts/channel/",
            {"action": "send_test_message", "_selected_action": [channel.pk]},
            follow=True,
        )
    assert "test sent" in response.content.decode()
    assert len(receiver.requests) == 1
    assert "테스트" in receiver.requests[0].json()["data"]["message"]["title"]


def test_the_admin_keeps_a_stored_slack_url_when_the_field_is_left_empty(admin_client):
    channel = Channel.objects.create(name="s", kind="slack", url="https://hooks.slack.com/services/T/B/tok3n")
    page = admin_client.get(f"/admin/alerts/channel/{channel.pk}/change/").content.decode()
    assert "tok3n" not in page
    admin_client.post(
        f"/admin/alerts/channel/{channel.pk}/change/",
        {
            "name": "renamed",
            "kind": "slack",
            "url": "",
            "language": "en",
            "enabled": "on",
            "events": ["outage"],
            "min_duration_seconds": "0",
            "remind_every_minutes": "0",
        },
    )
    channel.refresh_from_db()
    assert (channel.name, channel.url) == ("renamed", "https://hooks.slack.com/services/T/B/tok3n")


def test_the_delivery_log_is_in_the_admin(admin_client, model):
    channel = Channel.objects.create(name="ops", kind="email", url="mailto:ops@example.com")
    notification = Notification.objects.create(
        channel=channel, kind="test", payload={"channel": "ops"}, dedupe_key="test:1", last_error="HTTP 500: boom"
    )
    listing = admin_client.get("/admin/alerts/notification/").content.decode()
    assert "HTTP 500: boom" in listing
    assert admin_client.get(f"/admin/alerts/notification/{notification.pk}/change/").status_code == 200
    assert AIModel.objects.count() == 1
