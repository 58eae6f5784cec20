"""Webhook subscribers: the challenge, Statuspage's subscriber payloads, Standard Webhooks signatures, pausing."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from django.core.cache import cache
from django.core.management import call_command
from django.utils import timezone
from standardwebhooks.webhooks import Webhook

from alerts.models import EventCursor
from alerts.tasks import alerts_round
from monitoring.models import AIModel, Maintenance, Provider
from subscriptions.announcements import plan
from subscriptions.models import Subscriber, SubscriberMessage
from subscriptions.sending import send_all_due
from subscriptions.tasks import subscriptions_round
from tests.receiver import Receiver

pytestmark = pytest.mark.django_db

API = "/api/v1/subscriptions/"


@pytest.fixture(autouse=True)
def setup(db, settings):
    settings.WEBHOOK_ALLOWED_HOSTS = ["127.0.0.1"]
    settings.SITE_URL = "http://testserver"
    settings.LANGUAGE_CODE = "en"
    for name in ("alerts", "incidents", "subscriptions"):
        EventCursor.objects.get_or_create(name=name, defaults={"last_id": 0})
    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def cast(db):
    a = Provider.objects.create(name="Anthropic", slug="anthropic")
    b = Provider.objects.create(name="Google", slug="google")
    AIModel.objects.create(provider=a, name="Claude", slug="claude", endpoint="http://127.0.0.1:9/v1")
    AIModel.objects.create(provider=b, name="Gemini", slug="gemini", endpoint="http://127.0.0.1:9/v1")
    return a, b


def echo(received) -> bytes:
    document = received.json()
    if document.get("type") == "subscription.challenge":
        return json.dumps({"challenge": document["challenge"]}).encode()
    return b"ok"


@pytest.fixture
def endpoint():
    with Receiver(reply=echo) as receiver:
        yield receiver


def quiet() -> dict:
    return {"reason": "test", "stdout": open("/dev/null", "w")}


def verified(received, secret: str) -> dict:
    return Webhook(secret).verify(received.body, received.headers)


def subscribe_hook(client, url: str, **choice) -> tuple[int, dict]:
    answer = client.post(API, {"webhook": url, **choice}, content_type="application/json")
    return answer.status_code, answer.json()


def test_an_endpoint_that_answers_the_challenge_is_active_and_gets_signed_statuspage_payloads(client, cast, endpoint):
    status, _body = subscribe_hook(client, endpoint.url(), providers=["anthropic"])

    assert status == 202
    [challenge] = endpoint.requests
    secret = challenge.json()["secret"]
    assert verified(challenge, secret)["type"] == "subscription.challenge"  # signed with the secret it hands over
    subscriber = Subscriber.objects.get()
    assert subscriber.active and subscriber.channel == "webhook" and subscriber.secret == secret

    call_command("set_status", "anthropic/claude", "major_outage", **quiet())
    alerts_round()
    subscriptions_round()
    subscriptions_round()

    [news] = endpoint.requests[1:]
    document = verified(news, secret)
    assert set(document) == {"meta", "page", "incident"}
    # The page's overall status as Statuspage's subscribers read it, unknown models counted apart.
    assert document["page"]["status_indicator"] == "critical"
    assert document["page"]["status_description"].startswith("Major Service Outage; status unknown for")
    assert document["meta"]["unsubscribe"].startswith("http://testserver/en/subscriptions/unsubscribe/")
    incident = document["incident"]
    assert incident["status"] == "investigating" and incident["impact"] == "critical"
    assert incident["components"] == [{"id": "anthropic/claude", "name": "anthropic/claude"}]
    assert incident["incident_updates"][0]["status"] == "investigating"
    assert news.headers["webhook-id"] == SubscriberMessage.objects.get(kind="announcement").message_id


def test_an_endpoint_that_does_not_echo_the_challenge_is_not_subscribed(client, cast):
    with Receiver() as silent:  # answers "ok"
        status, body = subscribe_hook(client, silent.url())
    assert status == 400 and "challenge" in body["webhook"][0]
    assert not Subscriber.objects.exists()


def test_a_private_address_is_refused_unless_its_host_is_allowed(client, settings, cast, endpoint):
    settings.WEBHOOK_ALLOWED_HOSTS = []
    for url in (endpoint.url(), "http://10.0.0.7/hook", "http://localhost:8000/hook"):
        status, body = subscribe_hook(client, url)
        assert status == 400 and "WEBHOOK_ALLOWED_HOSTS" in body["webhook"][0]
    assert endpoint.requests == []
    settings.WEBHOOK_ALLOWED_HOSTS = ["127.0.0.1"]
    assert subscribe_hook(client, endpoint.url())[0] == 202


@pytest.mark.parametrize("url", ["not a url", "ftp://example.com/x", "", 7])
def test_an_invalid_webhook_url_gets_a_clear_error(client, cast, url):
    status, body = subscribe_hook(client, url)
    assert status == 400 and body["webhook"]


def test_status_flips_arrive_as_component_updates_when_turned_on(client, settings, cast, endpoint):
    settings.SUBSCRIPTIONS_STATUS_CHANGES = True
    subscribe_hook(client, endpoint.url(), models=["google/gemini"])
    secret = Subscriber.objects.get().secret

    call_command("set_status", "google/gemini", "degraded_performance", **quiet())
    call_command("set_status", "anthropic/claude", "degraded_performance", **quiet())
    subscriptions_round()

    [flip] = endpoint.requests[1:]
    document = verified(flip, secret)
    assert set(document) == {"meta", "page", "component_update", "component"}
    assert document["component_update"]["component_id"] == "google/gemini"
    assert document["component_update"]["new_status"] == "degraded_performance"


def test_maintenance_arrives_as_a_maintenance_incident(client, cast, endpoint):
    a, _b = cast
    subscribe_hook(client, endpoint.url(), providers=["anthropic"])
    now = timezone.now()
    Maintenance.objects.create(
        title="Upgrade", provider=a, starts_at=now + timedelta(hours=1), ends_at=now + timedelta(hours=2)
    )

    plan(now)
    send_all_due(now)

    document = endpoint.requests[-1].json()
    assert document["incident"]["impact"] == "maintenance" and document["incident"]["status"] == "scheduled"


def test_an_endpoint_that_keeps_failing_is_paused(client, settings, cast, endpoint):
    settings.SUBSCRIPTIONS_PAUSE_AFTER = 3
    subscribe_hook(client, endpoint.url(), providers=["anthropic"])
    endpoint.statuses = [500] * 10

    call_command("set_status", "anthropic/claude", "major_outage", **quiet())
    alerts_round()
    now = timezone.now()
    plan(now)
    for hours in range(4):
        send_all_due(now + timedelta(hours=hours))

    subscriber = Subscriber.objects.get()
    assert subscriber.paused_at is not None and "3" in subscriber.paused_reason
    assert endpoint.answered[1:] == [500, 500, 500]
    assert SubscriberMessage.objects.get().state == "cancelled"
