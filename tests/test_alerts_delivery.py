"""Delivery end to end against receivers on loopback: signed webhooks, Slack blocks, email, Apprise, retries."""

import time
from datetime import timedelta

import pytest
from django.core import mail
from django.core.management import call_command
from django.utils import timezone, translation
from django.utils.translation import gettext
from slack_sdk.models.blocks import Block
from standardwebhooks.webhooks import Webhook

from alerts import delivery, planner
from alerts.models import Channel, DeliveryAttempt, EventCursor, Notification
from alerts.tasks import alerts_round, send_notification
from monitoring.models import StatusChange
from monitoring.status import Status
from monitoring.transitions import record_status
from tests.receiver import Receiver

pytestmark = [pytest.mark.django_db, pytest.mark.filterwarnings("ignore::DeprecationWarning:apprise.*")]


@pytest.fixture(autouse=True)
def alert_settings(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]  # fast staff users
    settings.WEBHOOK_ALLOWED_HOSTS = ["127.0.0.1"]
    settings.ALERT_TIMEOUT_SECONDS = 1.0
    settings.ALERT_RETRY_BASE_SECONDS = 10
    settings.ALERT_MAX_ATTEMPTS = 4
    settings.SITE_URL = "https://status.example.com"


@pytest.fixture(autouse=True)
def alerts_running(db):
    """The planner and incident keeper have been running since before the test began."""
    for name in ("alerts", "incidents"):
        EventCursor.objects.get_or_create(name=name, defaults={"last_id": 0})


@pytest.fixture
def receiver():
    with Receiver() as r:
        yield r


@pytest.fixture
def slack_receiver():
    with Receiver() as r:
        yield r


def webhook_channel(url: str, **fields) -> Channel:
    return Channel.objects.create(name="ops webhook", kind=Channel.Kind.WEBHOOK, url=url, **fields)


def set_status(model, status: str) -> None:
    call_command("set_status", model.public_slug, status, reason="upstream 503s", stdout=open("/dev/null", "w"))


def run_alerts(now=None) -> list[delivery.Outcome]:
    planner.plan(now)
    return delivery.deliver_due(now)


def verify(channel: Channel, request) -> dict:
    return Webhook(channel.secret).verify(request.body, request.headers)


def test_an_outage_and_its_recovery_each_yield_one_signed_webhook_and_one_slack_message(
    model, receiver, slack_receiver
):
    hook = webhook_channel(receiver.url())
    Channel.objects.create(name="ops slack", kind=Channel.Kind.SLACK, url=slack_receiver.url("/services/T/B/x"))

    set_status(model, Status.MAJOR_OUTAGE)
    run_alerts()
    run_alerts()  # a second round finds nothing new

    assert len(receiver.requests) == 1 and len(slack_receiver.requests) == 1
    event = verify(hook, receiver.requests[0])
    assert event["type"] == "model.alert"
    data = event["data"]
    assert (data["from_status"], data["to_status"]) == ("unknown", "major_outage")
    assert data["model"]["public_slug"] == "openai/gpt-4o"
    assert data["reason"] == "upstream 503s"
    assert data["url"] == "https://status.example.com/en/models/openai/gpt-4o/"
    assert receiver.requests[0].headers["webhook-id"] == Notification.objects.get(channel=hook).message_id

    blocks = slack_receiver.requests[0].json()["blocks"]
    for block in blocks:
        Block.parse(block).validate_json()
    text = str(blocks)
    assert "GPT-4o" in text and "Major outage" in text and "upstream 503s" in text

    change_at = StatusChange.objects.get(model=model, to_status=Status.MAJOR_OUTAGE).at
    record_status(model.pk, Status.OPERATIONAL, reason="answers again", at=change_at + timedelta(minutes=12))
    run_alerts()
    run_alerts()

    assert len(receiver.requests) == 2 and len(slack_receiver.requests) == 2
    recovery = verify(hook, receiver.requests[1])
    assert recovery["type"] == "model.recovery"
    assert (recovery["data"]["from_status"], recovery["data"]["to_status"]) == ("major_outage", "operational")
    assert recovery["data"]["duration_seconds"] == 12 * 60
    assert "12 min" in recovery["data"]["message"]["summary"]
    slack_blocks = slack_receiver.requests[1].json()["blocks"]
    for block in slack_blocks:
        Block.parse(block).validate_json()
    assert "recovered" in str(slack_blocks) and "12 min" in str(slack_blocks)


def test_a_receiver_that_answers_500_twice_then_200_gets_the_message_once_with_backoff(model):
    with Receiver(statuses=[500, 500]) as receiver:
        channel = webhook_channel(receiver.url())
        t0 = timezone.now()
        record_status(model.pk, Status.MAJOR_OUTAGE, reason="down", at=t0)
        planner.plan(t0)

        assert [o.ok for o in delivery.deliver_due(t0)] == [False]
        assert delivery.deliver_due(t0 + timedelta(seconds=9)) == []  # waiting 10 s
        assert [o.ok for o in delivery.deliver_due(t0 + timedelta(seconds=10))] == [False]
        assert delivery.deliver_due(t0 + timedelta(seconds=29)) == []  # then 20 s
        assert [o.ok for o in delivery.deliver_due(t0 + timedelta(seconds=30))] == [True]
        assert delivery.deliver_due(t0 + timedelta(hours=1)) == []

    assert receiver.answered == [500, 500, 200]
    # Every try carries the same id, so the receiver can tell it is one message.
    assert len({r.headers["webhook-id"] for r in receiver.requests}) == 1
    for request in receiver.requests:
        verify(channel, request)
    notification = Notification.objects.get(channel=channel)
    assert (notification.state, notification.attempts) == (Notification.State.SENT, 3)
    log = list(DeliveryAttempt.objects.filter(notification=notification).order_by("number"))
    assert [(a.number, a.ok, a.status_code) for a in log] == [(1, False, 500), (2, False, 500), (3, True, 200)]
    assert "HTTP 500" in log[0].error


def test_a_receiver_that_times_out_is_retried_then_given_up_without_holding_up_other_deliveries(model, settings):
    settings.ALERT_TIMEOUT_SECONDS = 0.3
    with Receiver(delay=1.0) as slow, Receiver() as fast:
        slow_channel = webhook_channel(slow.url())
        fast_channel = Channel.objects.create(name="fast", kind=Channel.Kind.WEBHOOK, url=fast.url())
        t0 = timezone.now()
        record_status(model.pk, Status.MAJOR_OUTAGE, reason="down", at=t0)
        planner.plan(t0)
        first = {o.notification_id: o for o in delivery.deliver_due(t0)}
        assert len(fast.requests) == 1
        for seconds in (10, 30, 70):
            delivery.deliver_due(t0 + timedelta(seconds=seconds))

    slow_notification = Notification.objects.get(channel=slow_channel)
    assert not first[slow_notification.pk].ok and "no answer within 0.3 s" in first[slow_notification.pk].error
    assert (slow_notification.state, slow_notification.attempts) == (Notification.State.FAILED, 4)
    assert Notification.objects.get(channel=fast_channel).state == Notification.State.SENT
    assert len(fast.requests) == 1


def test_a_channel_that_keeps_failing_is_disabled_and_flagged_in_the_admin(model, settings, admin_client):
    settings.ALERT_CHANNEL_DISABLE_AFTER = 3
    with Receiver(statuses=[500] * 10) as receiver:
        channel = webhook_channel(receiver.url())
        t0 = timezone.now()
        record_status(model.pk, Status.MAJOR_OUTAGE, reason="down", at=t0)
        planner.plan(t0)
        for seconds in (0, 10, 30, 70, 150):
            delivery.deliver_due(t0 + timedelta(seconds=seconds))

    assert len(receiver.requests) == 3
    channel.refresh_from_db()
    assert not channel.enabled and channel.consecutive_failures == 3
    assert "3 failed attempts" in channel.disabled_reason and "HTTP 500" in channel.disabled_reason
    assert Notification.objects.get(channel=channel).state == Notification.State.CANCELLED
    page = admin_client.get("/admin/alerts/channel/").content.decode()
    assert "disabled: failing" in page
    # Re-enabled, it starts afresh: a new outage is announced again.
    channel.enable()
    assert Channel.objects.get(pk=channel.pk).consecutive_failures == 0


def test_a_redelivered_task_or_a_second_worker_never_sends_a_notification_twice(model, receiver):
    webhook_channel(receiver.url())
    set_status(model, Status.MAJOR_OUTAGE)
    planner.plan()
    [(notification_id, token)] = delivery.claim_due()
    assert delivery.claim(notification_id, timezone.now()) is None  # held: nobody else takes it

    assert send_notification(notification_id, token) is True
    assert send_notification(notification_id, token) is None  # the same task, delivered again
    assert delivery.claim_due() == []
    # A restarted planner finds nothing new to say.
    planner.plan()
    assert Notification.objects.count() == 1
    assert len(receiver.requests) == 1


def test_the_periodic_round_plans_and_hands_each_send_to_a_celery_worker(model, receiver):
    from aistatus.celery import app

    webhook_channel(receiver.url())
    set_status(model, Status.PARTIAL_OUTAGE)
    app.conf.task_always_eager = True
    try:
        summary = alerts_round()
    finally:
        app.conf.task_always_eager = False
    assert summary["planned"] == 1 and summary["dispatched"] == 1
    assert len(receiver.requests) == 1
    assert receiver.requests[0].json()["data"]["to_status"] == "partial_outage"


def test_email_channels_get_a_subject_a_text_part_and_an_html_part(model):
    Channel.objects.create(name="ops mail", kind=Channel.Kind.EMAIL, url="mailto:ops@example.com,oncall@example.com")
    set_status(model, Status.MAJOR_OUTAGE)
    run_alerts()

    [email] = mail.outbox
    assert email.to == ["ops@example.com", "oncall@example.com"]
    assert email.subject == "OpenAI GPT-4o: Major outage"
    assert "went from Unknown to Major outage" in email.body and "upstream 503s" in email.body
    assert "https://status.example.com/en/models/openai/gpt-4o/" in email.body
    html, mimetype = email.alternatives[0]
    assert mimetype == "text/html" and "<table" in html and "upstream 503s" in html
    assert email.extra_headers["Message-ID"].startswith("<msg_")


@pytest.mark.parametrize(
    "language, summary_words",
    [("ja", "になりました"), ("ko", "바뀌었습니다"), ("en", "went from")],
)
def test_a_channel_gets_messages_in_its_own_language(model, receiver, language, summary_words):
    webhook_channel(receiver.url(), language=language)
    set_status(model, Status.MAJOR_OUTAGE)
    run_alerts()

    data = receiver.requests[0].json()["data"]
    with translation.override(language):
        major, unknown = gettext("Major outage"), gettext("Unknown")
    assert data["message"]["title"] == f"OpenAI GPT-4o: {major}"
    assert summary_words in data["message"]["summary"] and unknown in data["message"]["summary"]
    assert data["url"] == f"https://status.example.com/{language}/models/openai/gpt-4o/"
    if language != "en":
        assert major != "Major outage"


def test_a_recovery_in_japanese_states_the_downtime_in_japanese(model, receiver):
    webhook_channel(receiver.url(), language="ja")
    t0 = timezone.now() - timedelta(hours=2)
    record_status(model.pk, Status.MAJOR_OUTAGE, reason="down", at=t0)
    record_status(model.pk, Status.OPERATIONAL, reason="up", at=t0 + timedelta(hours=1, minutes=5))
    run_alerts()

    recovery = receiver.requests[1].json()["data"]["message"]
    assert "復旧" in recovery["title"] and "1時間 5分" in recovery["summary"]


def test_apprise_urls_deliver_through_apprise(model, receiver):
    Channel.objects.create(name="json", kind=Channel.Kind.APPRISE, url=receiver.url("/apprise").replace("http", "json"))
    set_status(model, Status.MAJOR_OUTAGE)
    [outcome] = run_alerts()

    assert outcome.ok
    body = receiver.requests[0].json()
    assert body["title"] == "OpenAI GPT-4o: Major outage"
    assert "upstream 503s" in body["message"] and body["type"] == "failure"


def test_a_webhook_to_a_private_address_not_allowed_is_refused_when_sending(model, settings, receiver):
    settings.WEBHOOK_ALLOWED_HOSTS = []
    # Saved around the validation (as a fixture or an old row would be): sending still refuses it.
    channel = webhook_channel(receiver.url())
    set_status(model, Status.MAJOR_OUTAGE)
    [outcome] = run_alerts()

    assert not outcome.ok and "private or loopback" in outcome.error
    assert receiver.requests == []
    assert Notification.objects.get(channel=channel).state == Notification.State.PENDING  # retried later


@pytest.mark.django_db(transaction=True)
def test_an_outage_found_by_the_collectors_yields_exactly_one_alert(simulator, scenario, provider, receiver):
    from monitoring.models import AIModel

    model = AIModel.objects.create(
        provider=provider, name="Sim chat", slug="sim-chat", upstream_model="sim-chat",
        endpoint=simulator.base_url, interval_seconds=10, timeout_seconds=2,
    )  # fmt: skip
    webhook_channel(receiver.url())
    scenario({"sim-chat": {"error_rate": 1.0, "error_status": 503}})
    for _ in range(3):
        call_command("collect_once", model.public_slug, stdout=open("/dev/null", "w"))
        run_alerts()

    assert len(receiver.requests) == 1
    data = receiver.requests[0].json()["data"]
    assert data["to_status"] == Status.MAJOR_OUTAGE and "503" in data["reason"]


def test_a_recovery_waits_for_the_alert_before_it_but_other_models_do_not(model, provider):
    from monitoring.models import AIModel

    other = AIModel.objects.create(provider=provider, name="Other", slug="other", endpoint="http://x.test/v1")
    with Receiver(statuses=[500]) as receiver:
        webhook_channel(receiver.url())
        t0 = timezone.now()
        record_status(model.pk, Status.MAJOR_OUTAGE, reason="down", at=t0)
        record_status(model.pk, Status.OPERATIONAL, reason="up", at=t0 + timedelta(seconds=1))
        record_status(other.pk, Status.MAJOR_OUTAGE, reason="down", at=t0 + timedelta(seconds=2))
        planner.plan(t0 + timedelta(seconds=3))
        delivery.deliver_due(t0 + timedelta(seconds=3))  # the first alert fails; the other model's goes out
        delivery.deliver_due(t0 + timedelta(seconds=13))  # the retry, then the recovery after it

    sent = [(r.json()["type"], r.json()["data"]["model"]["slug"]) for r in receiver.requests]
    assert sent == [
        ("model.alert", "gpt-4o"),
        ("model.alert", "other"),
        ("model.alert", "gpt-4o"),
        ("model.recovery", "gpt-4o"),
    ]
    assert receiver.answered == [500, 200, 200, 200]


@pytest.mark.django_db(transaction=True)
def test_committed_status_changes_wake_an_alerts_round_without_waiting_for_the_periodic_one(model, receiver, settings):
    from aistatus.celery import app

    for name in ("alerts", "incidents"):
        EventCursor.objects.get_or_create(name=name, defaults={"last_id": 0})
    settings.ALERTS_WAKE_ON_CHANGE = True
    webhook_channel(receiver.url())
    eager = app.conf.task_always_eager
    app.conf.task_always_eager = True  # the round runs in the waking thread rather than on a worker
    try:
        record_status(model.pk, Status.MAJOR_OUTAGE, reason="upstream 503s")  # nobody calls plan() here
        deadline = time.monotonic() + 5
        while not receiver.requests and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        app.conf.task_always_eager = eager
    assert len(receiver.requests) == 1
    assert receiver.requests[0].json()["data"]["to_status"] == "major_outage"
