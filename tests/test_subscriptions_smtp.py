"""Subscriber mail over many SMTP connections at once, against a real SMTP server (aiosmtpd).

What the fast path must keep: each subscriber's mail once, with its own Message-ID and links, in
8bit where the server takes it and base64 where it does not, through STARTTLS and AUTH as Django's
settings ask, and a connection lost mid-batch costing only a retry of the mail it carried.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import re
import ssl
import time
from datetime import timedelta

import pytest
from aiosmtpd.smtp import AuthResult
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from django.utils import timezone

from alerts.models import EventCursor
from monitoring.models import AIModel, Incident, Provider
from subscriptions.announcements import plan
from subscriptions.models import Subscriber, SubscriberMessage
from subscriptions.sending import send_all_due, send_until
from subscriptions.smtp_client import Pool, Server, data_bytes
from tests.smtp import Capture, SMTPServer

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def mail_settings(settings):
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.DEFAULT_FROM_EMAIL = "status@status.example"
    settings.SITE_URL = "http://testserver"
    settings.SUBSCRIPTIONS_SMTP_CONNECTIONS = 4
    EventCursor.objects.get_or_create(name="subscriptions", defaults={"last_id": 0})
    return settings


@pytest.fixture
def serve(settings):
    """Start an aiosmtpd server for a Capture and point Django's email settings at it."""
    servers = []

    def start(capture: Capture, **smtp_options) -> SMTPServer:
        server = SMTPServer(capture, **smtp_options)
        server.start()
        servers.append(server)
        settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", server.port
        return server

    yield start
    for server in servers:
        server.stop()


def followers(count: int, languages=("en",)) -> list[Subscriber]:
    provider = Provider.objects.create(name="Anthropic", slug="anthropic")
    model = AIModel.objects.create(provider=provider, name="Claude", slug="claude", endpoint="http://127.0.0.1:9/v1")
    made = []
    for i in range(count):
        subscriber = Subscriber.objects.create(
            email=f"reader{i}@example.com", language=languages[i % len(languages)], confirmed_at=timezone.now()
        )
        subscriber.providers.add(provider)
        made.append(subscriber)
    incident = Incident.objects.create(title="Claude is down", provider=provider, impact="critical")
    incident.models_affected.add(model)
    incident.add_update("investigating", "Requests fail. We are investigating.")
    assert plan() == count
    return made


def mail_to(capture: Capture, address: str):
    [message] = [m for m in capture.messages if m["X-Envelope-To"] == address]
    return message


@pytest.mark.parametrize("pipelining", [False, True], ids=["lock-step", "pipelined"])
def test_a_batch_goes_out_over_several_connections_each_subscriber_once_with_its_own_id_and_links(
    client, serve, pipelining
):
    capture = Capture(pipelining=pipelining)
    serve(capture)
    subscribers = followers(40)
    opened = capture.connections  # the controller's own check that the server is up

    assert send_all_due() == 40

    assert capture.count == 40 and capture.connections - opened == 4
    unsubscribe_links = set()
    for subscriber in subscribers:
        message = mail_to(capture, subscriber.email)
        stored = SubscriberMessage.objects.get(subscriber=subscriber)
        assert stored.state == "sent" and stored.attempts == 1
        assert message["Message-ID"] == f"<{stored.message_id}@status.example>"
        assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
        unsubscribe = re.fullmatch(
            r"<http://testserver(/en/subscriptions/unsubscribe/[^/]+/)>", message["List-Unsubscribe"]
        )
        assert unsubscribe, message["List-Unsubscribe"]
        unsubscribe_links.add(unsubscribe.group(1))
    assert len(unsubscribe_links) == 40

    # Each link is its own subscriber's: the one-click POST deletes that one address and no other.
    reader7 = mail_to(capture, "reader7@example.com")["List-Unsubscribe"].strip("<>").removeprefix("http://testserver")
    assert client.post(reader7, {"List-Unsubscribe": "One-Click"}).status_code == 200
    assert not Subscriber.objects.filter(email="reader7@example.com").exists()
    assert Subscriber.objects.count() == 39


def test_parts_go_as_8bit_where_the_server_offers_8bitmime_and_as_base64_where_it_does_not(serve, settings):
    settings.DEFAULT_FROM_EMAIL = "AI status <status@status.example>"  # a display name: the envelope has none
    offered, withheld = Capture(), Capture(eight_bit=False)
    serve(offered)
    followers(3, languages=("ja", "ko", "en"))
    send_all_due()
    serve(withheld)
    SubscriberMessage.objects.update(state="pending", attempts=0)
    send_all_due()

    for capture, encoding, options in ((offered, "8bit", ["BODY=8BITMIME"]), (withheld, "base64", [])):
        assert capture.count == 3
        assert all(sent == options for sent in capture.mail_options)
        assert capture.senders == ["status@status.example"] * 3
        for body in capture.bodies:
            assert all(len(line) <= 998 for line in body.split(b"\r\n"))
        for message in capture.messages:
            parts = [part for part in message.walk() if not part.is_multipart()]
            assert [part.get_content_type() for part in parts] == ["text/plain", "text/html"]
            assert {part["Content-Transfer-Encoding"] for part in parts} == {encoding}
    # The same words either way, in the subscriber's language.
    for capture in (offered, withheld):
        japanese = mail_to(capture, "reader0@example.com")
        text = japanese.get_body(preferencelist=("plain",)).get_content()
        html = japanese.get_body(preferencelist=("html",)).get_content()
        assert "調査中" in text and "調査中" in html and "Claude is down" in text
        assert japanese["From"] == "AI status <status@status.example>"
        assert "/ja/subscriptions/manage/" in text and "/ja/subscriptions/unsubscribe/" in html


def _certificate(tmp_path) -> tuple[str, str]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(hours=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost")]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return str(cert_file), str(key_file)


def test_starttls_and_credentials_from_djangos_email_settings_are_used(serve, settings, tmp_path, monkeypatch):
    cert_file, key_file = _certificate(tmp_path)
    server_tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_tls.load_cert_chain(cert_file, key_file)
    logins = []

    def authenticator(server, session, envelope, mechanism, auth_data):
        logins.append((mechanism, auth_data.login, auth_data.password, session.ssl is not None))
        # handled=False: aiosmtpd answers a failure with its own 535
        return AuthResult(success=auth_data.login == b"mailer" and auth_data.password == b"s3cret", handled=False)

    capture = Capture()
    serve(capture, tls_context=server_tls, require_starttls=True, authenticator=authenticator, auth_require_tls=True)
    # The client trusts this test's certificate as it would a real one: through the default CA store.
    monkeypatch.setenv("SSL_CERT_FILE", cert_file)
    settings.EMAIL_HOST, settings.EMAIL_USE_TLS = "localhost", True
    settings.EMAIL_HOST_USER, settings.EMAIL_HOST_PASSWORD = "mailer", "s3cret"
    followers(6)

    assert send_all_due() == 6
    assert capture.count == 6
    # One login per connection, after STARTTLS.
    assert logins == [("PLAIN", b"mailer", b"s3cret", True)] * 4

    # A wrong password sends nothing; the mails wait for a later attempt.
    settings.EMAIL_HOST_PASSWORD = "wrong"
    SubscriberMessage.objects.update(state="pending", attempts=0)
    send_all_due()
    assert capture.count == 6
    assert set(SubscriberMessage.objects.values_list("state", "attempts")) == {("pending", 1)}
    assert "535" in SubscriberMessage.objects.first().last_error


def test_a_connection_lost_mid_batch_costs_only_a_retry_of_the_mail_it_carried(serve):
    capture = Capture(pipelining=True)
    capture.drop.add("reader5@example.com")
    serve(capture)
    followers(30)

    send_all_due()

    assert capture.count == 29  # every other mail went out, over the connections still open
    lost = SubscriberMessage.objects.get(subscriber__email="reader5@example.com")
    assert lost.state == "pending" and lost.attempts == 1 and lost.next_attempt_at > timezone.now()
    assert SubscriberMessage.objects.filter(state="sent").count() == 29

    send_all_due(timezone.now() + timedelta(hours=1))
    assert capture.count == 30
    addresses = sorted(m["X-Envelope-To"] for m in capture.messages)
    assert addresses == sorted(f"reader{i}@example.com" for i in range(30))  # each once
    lost.refresh_from_db()
    assert lost.state == "sent" and lost.attempts == 2


@pytest.mark.django_db(transaction=True)
def test_the_round_sends_batch_after_batch_claiming_the_next_while_one_goes_out(serve, settings):
    # Committed rows, as in a worker: the second thread's claims see them (inside a test's
    # transaction the round claims in turn instead).
    settings.SUBSCRIPTIONS_BATCH, settings.SUBSCRIPTIONS_PAUSE_AFTER = 7, 1
    capture = Capture(pipelining=True)
    capture.refuse.add("reader3@example.com")
    serve(capture)
    followers(30)

    assert send_until(time.monotonic() + 60) == 30

    assert capture.count == 29
    assert sorted(m["X-Envelope-To"] for m in capture.messages) == sorted(
        f"reader{i}@example.com" for i in range(30) if i != 3
    )
    assert SubscriberMessage.objects.filter(state="sent", attempts=1).count() == 29
    refused = Subscriber.objects.get(email="reader3@example.com")
    assert refused.paused_at is not None  # counted when its batch was recorded, in the second thread
    assert SubscriberMessage.objects.get(subscriber=refused).state == "cancelled"


@pytest.mark.django_db(transaction=True)
def test_the_rounds_batches_share_its_connections_which_close_when_it_ends(serve, settings):
    settings.SUBSCRIPTIONS_BATCH = 7
    capture = Capture(pipelining=True)
    serve(capture)
    followers(30)
    opened = capture.connections

    assert send_until(time.monotonic() + 60) == 30  # five batches

    assert capture.count == 30 and SubscriberMessage.objects.filter(state="sent").count() == 30
    assert capture.connections - opened == 4  # SUBSCRIPTIONS_SMTP_CONNECTIONS, not four per batch
    deadline = time.monotonic() + 5
    while capture.quits < 4 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert capture.quits == 4  # each said QUIT at the round's end


def test_a_connection_the_server_closed_while_idle_is_replaced_before_the_next_batch(serve):
    capture = Capture(pipelining=True)
    port = serve(capture, timeout=0.5).port  # aiosmtpd hangs up on a client idle this long
    opened = capture.connections

    def batch(keys):
        def build(eight_bit):
            return iter(
                [
                    (k, "status@example.com", f"reader{k}@example.com", data_bytes(b"Subject: hi\r\n\r\nhi\r\n"))
                    for k in keys
                ]
            )

        return build

    async def three_batches():
        pool, outcomes = Pool(Server("127.0.0.1", port, 10.0), 3), []
        try:
            outcomes.append(await pool.send(batch(range(0, 10)), 10))
            outcomes.append(await pool.send(batch(range(10, 20)), 10))
            kept = capture.connections - opened
            await asyncio.sleep(1.5)  # the server closes all three
            outcomes.append(await pool.send(batch(range(20, 30)), 10))
        finally:
            await pool.close()
        return outcomes, kept

    outcomes, kept = asyncio.run(three_batches())

    assert kept == 3 and capture.connections - opened == 6  # three more, only after the server closed the first
    assert [failed for _sent, failed in outcomes] == [{}, {}, {}]
    assert sorted(key for sent, _failed in outcomes for key in sent) == list(range(30))
    assert capture.count == 30


@pytest.mark.django_db(transaction=True)
def test_a_round_over_starttls_logs_in_once_per_connection_not_once_per_batch(serve, settings, tmp_path, monkeypatch):
    cert_file, key_file = _certificate(tmp_path)
    server_tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_tls.load_cert_chain(cert_file, key_file)
    logins = []

    def authenticator(server, session, envelope, mechanism, auth_data):
        logins.append(auth_data.login)
        return AuthResult(success=True)

    capture = Capture(pipelining=True)
    serve(capture, tls_context=server_tls, require_starttls=True, authenticator=authenticator, auth_require_tls=True)
    monkeypatch.setenv("SSL_CERT_FILE", cert_file)
    settings.EMAIL_HOST, settings.EMAIL_USE_TLS = "localhost", True
    settings.EMAIL_HOST_USER, settings.EMAIL_HOST_PASSWORD = "mailer", "s3cret"
    settings.SUBSCRIPTIONS_BATCH = 5
    followers(20)

    assert send_until(time.monotonic() + 60) == 20  # four batches

    assert capture.count == 20
    assert logins == [b"mailer"] * 4
