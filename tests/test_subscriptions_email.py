"""Email subscriptions end to end, against a real SMTP server (aiosmtpd) receiving real MIME."""

from __future__ import annotations

import re
from datetime import timedelta
from urllib.parse import urlsplit

import pytest
from django.core import mail as django_mail
from django.core.cache import cache
from django.core.management import call_command
from django.utils import timezone

from alerts.models import EventCursor
from alerts.tasks import alerts_round
from monitoring.models import AIModel, Incident, Maintenance, Provider
from subscriptions.announcements import plan
from subscriptions.models import Announcement, Subscriber, SubscriberMessage
from subscriptions.sending import send_all_due
from subscriptions.signup import purge_unconfirmed
from subscriptions.tasks import subscriptions_round
from tests.smtp import Capture, SMTPServer, free_port

pytestmark = pytest.mark.django_db

API = "/api/v1/subscriptions/"


@pytest.fixture
def smtp(settings):
    capture = Capture()
    server = SMTPServer(capture)
    server.start()
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", server.port
    settings.DEFAULT_FROM_EMAIL = "status@status.example"
    settings.SITE_URL = "http://testserver"
    settings.LANGUAGE_CODE = "en"
    yield capture
    server.stop()


@pytest.fixture(autouse=True)
def rounds_from_the_start(db):
    for name in ("alerts", "incidents", "subscriptions"):
        EventCursor.objects.get_or_create(name=name, defaults={"last_id": 0})


@pytest.fixture(autouse=True)
def fresh_rate_limits():
    # Sign-up counts per IP address live in the cache (this run's own Redis database).
    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def cast(db):
    """Two providers with a model each."""
    a = Provider.objects.create(name="Anthropic", slug="anthropic")
    b = Provider.objects.create(name="Google", slug="google")
    claude = AIModel.objects.create(provider=a, name="Claude", slug="claude", endpoint="http://127.0.0.1:8900/v1")
    gemini = AIModel.objects.create(provider=b, name="Gemini", slug="gemini", endpoint="http://127.0.0.1:8900/v1")
    return a, b, claude, gemini


def text_of(message) -> str:
    return message.get_body(preferencelist=("plain",)).get_content()


def html_of(message) -> str:
    return message.get_body(preferencelist=("html",)).get_content()


def link_in(message, name: str) -> str:
    found = re.search(rf"http://testserver(/\w\w/subscriptions/{name}/[^/\s]+/)", text_of(message))
    assert found, text_of(message)
    return found.group(1)


def subscribe(client, smtp, address: str, **choice) -> None:
    """Sign up through the API and follow the confirmation link in the mail that arrives."""
    before = len(smtp.to(address))
    answer = client.post(API, {"email": address, **choice}, content_type="application/json")
    assert answer.status_code == 202
    send_all_due()  # what the subscriptions round does every second
    confirmations = smtp.to(address)[before:]
    assert len(confirmations) == 1
    assert client.get(link_in(confirmations[0], "confirm")).status_code == 200


def quiet() -> dict:
    return {"reason": "test", "stdout": open("/dev/null", "w")}


def test_signing_up_sends_one_confirmation_and_its_link_confirms(client, smtp, cast):
    answer = client.post(
        API, {"email": "Ann@Example.com", "models": ["anthropic/claude"]}, content_type="application/json"
    )

    assert answer.status_code == 202
    assert "email" not in answer.json() and "known" not in str(answer.json())
    assert smtp.messages == []  # queued, never sent while the visitor waits
    send_all_due()
    [confirmation] = smtp.messages
    assert confirmation["To"] == "ann@example.com"
    assert confirmation.get_body(preferencelist=("html",)) is not None
    assert "Confirm" in confirmation["Subject"]
    subscriber = Subscriber.objects.get(email="ann@example.com")
    assert subscriber.confirmed_at is None

    page = client.get(link_in(confirmation, "confirm"))

    assert page.status_code == 200
    assert "anthropic/claude" in page.content.decode()
    subscriber.refresh_from_db()
    assert subscriber.confirmed_at is not None
    assert subscriber.follows() == {"whole_page": False, "providers": [], "models": ["anthropic/claude"]}


def test_an_outage_reaches_the_followers_of_its_provider_once_and_nobody_after_unsubscribing(client, smtp, cast):
    _a, _b, claude, _gemini = cast
    subscribe(client, smtp, "ann@example.com", models=["anthropic/claude"])
    subscribe(client, smtp, "bob@example.com", providers=["google"])
    confirmations = len(smtp.messages)

    call_command("set_status", "anthropic/claude", "major_outage", **quiet())
    alerts_round()  # opens the automatic incident
    subscriptions_round()
    subscriptions_round()  # a second round sends nothing twice

    assert Incident.objects.get().models_affected.get() == claude
    news = smtp.messages[confirmations:]
    assert [m["X-Envelope-To"] for m in news] == ["ann@example.com"]
    [outage] = news
    assert outage["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    unsubscribe_url = outage["List-Unsubscribe"].strip().strip("<>")
    assert unsubscribe_url.startswith("http://testserver/en/subscriptions/unsubscribe/")
    assert "Claude" in outage["Subject"] and "Investigating" in outage["Subject"]
    assert "/subscriptions/manage/" in text_of(outage) and "/subscriptions/manage/" in html_of(outage)
    assert outage["Message-ID"].endswith("@status.example>")

    # One-click (RFC 8058): a POST without any CSRF token, as a mail client sends it.
    client.handler.enforce_csrf_checks = True
    answer = client.post(urlsplit(unsubscribe_url).path, {"List-Unsubscribe": "One-Click"})
    assert answer.status_code == 200
    assert not Subscriber.objects.filter(email="ann@example.com").exists()

    call_command("set_status", "anthropic/claude", "operational", **quiet())
    alerts_round()  # the incident moves to monitoring: an update subscribers would hear of
    subscriptions_round()

    assert Incident.objects.get().state == Incident.State.MONITORING
    assert smtp.messages[confirmations + 1 :] == []


def test_the_answer_is_the_same_for_new_pending_and_subscribed_addresses(client, smtp, cast):
    subscribe(client, smtp, "known@example.com")
    answers = []
    for address in ("known@example.com", "new@example.com", "new@example.com"):
        answer = client.post(API, {"email": address}, content_type="application/json")
        answers.append((answer.status_code, answer.json()))
    assert answers[0] == answers[1] == answers[2]
    send_all_due()
    # A subscribed address is asked again (its link would replace the choice); nothing changes until then.
    assert len(smtp.to("known@example.com")) == 2
    assert Subscriber.objects.get(email="known@example.com").whole_page


def test_an_address_gets_at_most_a_few_confirmations_a_day(client, smtp, settings, cast):
    settings.SUBSCRIPTIONS_CONFIRMATIONS_PER_ADDRESS_PER_DAY = 3
    for _ in range(5):
        assert client.post(API, {"email": "c@example.com"}, content_type="application/json").status_code == 202
    send_all_due()
    assert len(smtp.to("c@example.com")) == 3


def test_one_ip_address_is_limited_per_hour(client, smtp, settings, cast):
    settings.SUBSCRIPTIONS_SIGNUPS_PER_IP_PER_HOUR = 2
    codes = [
        client.post(
            API, {"email": f"r{i}@example.com"}, content_type="application/json", REMOTE_ADDR="10.1.2.3"
        ).status_code
        for i in range(3)
    ]
    other = client.post(API, {"email": "s@example.com"}, content_type="application/json", REMOTE_ADDR="10.9.9.9")
    assert codes == [202, 202, 429] and other.status_code == 202


@pytest.mark.parametrize(
    "body, field",
    [
        ({"email": "not-an-address"}, "email"),
        ({"email": ""}, "email"),
        ({}, "email"),
        ({"email": "a@example.com", "providers": ["nobody"]}, "providers"),
        ({"email": "a@example.com", "models": ["anthropic/none"]}, "models"),
        ({"email": "a@example.com", "models": "anthropic/claude"}, "models"),
        ({"email": "a@example.com", "language": "fr"}, "language"),
    ],
)
def test_bad_input_is_refused_naming_the_field(client, smtp, cast, body, field):
    answer = client.post(API, body, content_type="application/json")
    assert answer.status_code == 400 and field in answer.json()
    assert smtp.messages == []


def test_addresses_are_never_listed_by_the_api(client, smtp, cast):
    subscribe(client, smtp, "hidden@example.com")
    assert client.get(API).status_code == 405
    for path in ("/api/v1/snapshot/", "/api/v2/summary.json", "/en/"):
        assert b"hidden@example.com" not in client.get(path).content


def test_a_tampered_or_expired_link_shows_a_friendly_page(client, smtp, settings, cast):
    client.post(API, {"email": "t@example.com"}, content_type="application/json")
    send_all_due()
    confirm = link_in(smtp.messages[0], "confirm")

    tampered = client.get(confirm[:-6] + "AAAAA/")
    assert tampered.status_code == 400 and "does not work" in tampered.content.decode()
    assert client.get("/en/subscriptions/unsubscribe/nonsense/").status_code == 400
    assert client.get("/en/subscriptions/manage/x.y.z/").status_code == 400

    settings.SUBSCRIPTIONS_CONFIRM_HOURS = 0
    expired = client.get(confirm)
    assert expired.status_code == 400 and "expired" in expired.content.decode()
    assert Subscriber.objects.get().confirmed_at is None


def test_unconfirmed_sign_ups_expire_after_a_day_and_confirmed_ones_stay(client, smtp, cast):
    subscribe(client, smtp, "kept@example.com")
    client.post(API, {"email": "gone@example.com"}, content_type="application/json")

    assert purge_unconfirmed(timezone.now() + timedelta(hours=23)) == 0
    assert purge_unconfirmed(timezone.now() + timedelta(hours=25)) == 1
    assert list(Subscriber.objects.values_list("email", flat=True)) == ["kept@example.com"]


def test_messages_are_in_the_subscribers_language(client, smtp, cast):
    subscribe(client, smtp, "ko@example.com", language="ko", providers=["anthropic"])
    assert "구독" in smtp.messages[0]["Subject"]

    call_command("set_status", "anthropic/claude", "major_outage", **quiet())
    alerts_round()
    subscriptions_round()

    outage = smtp.messages[-1]
    assert outage["List-Unsubscribe"].strip().startswith("<http://testserver/ko/subscriptions/unsubscribe/")
    assert "조사 중" in outage["Subject"]
    assert "구독 관리" in text_of(outage)


def test_maintenance_is_announced_when_scheduled_started_and_ended(client, smtp, cast):
    a, _b, _claude, _gemini = cast
    subscribe(client, smtp, "m@example.com", models=["anthropic/claude"])
    subscribe(client, smtp, "other@example.com", providers=["google"])
    now = timezone.now()
    window = Maintenance.objects.create(
        title="Database upgrade", provider=a, starts_at=now + timedelta(minutes=10), ends_at=now + timedelta(minutes=40)
    )
    before = len(smtp.messages)

    for moment in (now, now + timedelta(minutes=11), now + timedelta(minutes=12), now + timedelta(minutes=41)):
        plan(moment)
        send_all_due(moment)

    subjects = [m["Subject"] for m in smtp.messages[before:]]
    assert [m["X-Envelope-To"] for m in smtp.messages[before:]] == ["m@example.com"] * 3
    assert ["scheduled" in subjects[0], "started" in subjects[1], "ended" in subjects[2]] == [True, True, True]
    assert all(window.title in s for s in subjects)


def test_status_flips_reach_subscribers_only_when_the_operator_turns_them_on(client, smtp, settings, cast):
    subscribe(client, smtp, "flips@example.com", models=["anthropic/claude"])
    before = len(smtp.messages)

    call_command("set_status", "anthropic/claude", "degraded_performance", **quiet())
    subscriptions_round()
    assert len(smtp.messages) == before

    settings.SUBSCRIPTIONS_STATUS_CHANGES = True
    call_command("set_status", "anthropic/claude", "operational", **quiet())
    subscriptions_round()
    [flip] = smtp.messages[before:]
    assert "Operational" in flip["Subject"]
    assert Announcement.objects.filter(kind="status").count() == 1


def test_mails_wait_while_the_mail_server_is_down_and_go_out_once_when_it_returns(client, settings, cast):
    capture = Capture()
    port = free_port()
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT, settings.SITE_URL = "127.0.0.1", port, "http://testserver"

    answer = client.post(API, {"email": "w@example.com"}, content_type="application/json")
    assert answer.status_code == 202  # the visitor is not told about our mail server
    send_all_due()
    waiting = SubscriberMessage.objects.get()
    assert waiting.state == "pending" and waiting.attempts == 1 and "refused" in waiting.last_error.lower()

    server = SMTPServer(capture, port=port)
    server.start()
    try:
        later = timezone.now() + timedelta(hours=1)
        send_all_due(later)
        send_all_due(later + timedelta(hours=1))
    finally:
        server.stop()
    assert capture.count == 1
    waiting.refresh_from_db()
    assert waiting.state == "sent" and waiting.attempts == 2


def test_an_address_refused_again_and_again_is_paused_and_shown_in_the_admin(
    client, admin_client, smtp, settings, cast
):
    settings.SUBSCRIPTIONS_PAUSE_AFTER = 2
    subscribe(client, smtp, "bounce@example.com", providers=["anthropic"])
    smtp.refuse.add("bounce@example.com")

    for status in ("major_outage", "operational", "major_outage"):
        call_command("set_status", "anthropic/claude", status, **quiet())
        alerts_round()
        subscriptions_round()
        # retries are due later; each new incident update is a new failure
    subscriber = Subscriber.objects.get()
    assert subscriber.paused_at is not None and "refused" in subscriber.paused_reason
    assert not SubscriberMessage.objects.filter(state="pending").exists()

    listing = admin_client.get("/admin/subscriptions/subscriber/?paused=yes")
    assert b"bounce@example.com" in listing.content


def test_the_admin_counts_per_target_and_exports_or_erases_one_subscriber(client, admin_client, smtp, cast):
    subscribe(client, smtp, "x@example.com", providers=["anthropic"])
    subscribe(client, smtp, "y@example.com", providers=["anthropic"])
    subscribe(client, smtp, "z@example.com")

    counts = admin_client.get("/admin/subscriptions/subscriber/counts/").content.decode()
    assert re.search(r"Anthropic</td><td>2<", counts) and 'count-whole-page">1<' in counts

    x = Subscriber.objects.get(email="x@example.com")
    export = admin_client.post(
        "/admin/subscriptions/subscriber/", {"action": "export_subscriber", "_selected_action": [x.pk]}
    )
    assert export["Content-Type"] == "application/json"
    assert export.json()["email"] == "x@example.com" and export.json()["follows"]["providers"] == ["anthropic"]

    admin_client.post("/admin/subscriptions/subscriber/", {"action": "erase", "_selected_action": [x.pk]})
    assert not Subscriber.objects.filter(email="x@example.com").exists()
    assert not SubscriberMessage.objects.filter(subscriber_id=x.pk).exists()


def test_the_test_backend_is_not_what_these_tests_use(smtp):
    # pytest-django swaps in the locmem backend; every test here must reach the real SMTP peer instead.
    assert django_mail.get_connection().__class__.__module__ == "django.core.mail.backends.smtp"
