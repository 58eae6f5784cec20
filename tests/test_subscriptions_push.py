"""Web Push subscribers: a local push service that checks the VAPID signature and decrypts the payload (http_ece)."""

from __future__ import annotations

import base64
import json
import os

import http_ece
import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from django.core.cache import cache
from django.core.management import call_command

from alerts.models import EventCursor
from alerts.tasks import alerts_round
from monitoring.models import AIModel, Provider
from subscriptions.models import Subscriber
from subscriptions.tasks import subscriptions_round
from tests.receiver import Receiver

pytestmark = pytest.mark.django_db

API = "/api/v1/subscriptions/"
VAPID_PRIVATE_KEY = "kx1qaOvzuUKRuCiiRKLcJ34ek2qd0oBsnsQHIdEIcTI"


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unb64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class Browser:
    """What a browser holds for one push subscription: its key pair and auth secret."""

    def __init__(self) -> None:
        self.key = ec.generate_private_key(ec.SECP256R1())
        self.auth = os.urandom(16)

    def subscription(self, endpoint: str) -> dict:
        public = self.key.public_key().public_bytes(
            serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
        )
        return {"endpoint": endpoint, "keys": {"p256dh": b64url(public), "auth": b64url(self.auth)}}

    def decrypt(self, body: bytes) -> dict:
        return json.loads(http_ece.decrypt(body, private_key=self.key, auth_secret=self.auth, version="aes128gcm"))


def vapid_claims(authorization: str) -> dict:
    """Check a `vapid t=<JWT>,k=<key>` header's ES256 signature with its key; return the claims."""
    scheme, _, rest = authorization.partition(" ")
    assert scheme == "vapid"
    fields = dict(part.split("=", 1) for part in rest.split(","))
    header, claims, signature = fields["t"].split(".")
    key = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), unb64url(fields["k"]))
    raw = unb64url(signature)
    der = encode_dss_signature(int.from_bytes(raw[:32], "big"), int.from_bytes(raw[32:], "big"))
    key.verify(der, f"{header}.{claims}".encode(), ec.ECDSA(hashes.SHA256()))  # raises InvalidSignature
    assert json.loads(unb64url(header))["alg"] == "ES256"
    return json.loads(unb64url(claims))


@pytest.fixture(autouse=True)
def setup(db, settings):
    settings.VAPID_PRIVATE_KEY = VAPID_PRIVATE_KEY
    settings.VAPID_SUBJECT = "mailto:status@status.example"
    settings.WEBHOOK_ALLOWED_HOSTS = ["127.0.0.1"]
    settings.SITE_URL = "http://testserver"
    for name in ("alerts", "incidents", "subscriptions"):
        EventCursor.objects.get_or_create(name=name, defaults={"last_id": 0})
    a = Provider.objects.create(name="Anthropic", slug="anthropic")
    AIModel.objects.create(provider=a, name="Claude", slug="claude", endpoint="http://127.0.0.1:9/v1")
    cache.clear()
    yield
    cache.clear()


def outage() -> None:
    call_command("set_status", "anthropic/claude", "major_outage", reason="test", stdout=open("/dev/null", "w"))
    alerts_round()
    subscriptions_round()


def test_a_pushed_update_is_encrypted_to_the_browser_and_signed_with_the_sites_vapid_key(client):
    browser = Browser()
    with Receiver(statuses=[201]) as push_service:
        body = {
            "push": browser.subscription(push_service.url("/push/abc")),
            "providers": ["anthropic"],
            "language": "ko",
        }
        assert client.post(API, body, content_type="application/json").status_code == 202
        assert Subscriber.objects.get().active
        outage()

    [pushed] = push_service.requests
    assert pushed.path == "/push/abc"
    assert pushed.headers["Content-Encoding"] == "aes128gcm" and int(pushed.headers["TTL"]) > 0
    claims = vapid_claims(pushed.headers["Authorization"])
    assert claims["aud"] == push_service.url("").rstrip("/")
    assert claims["sub"] == "mailto:status@status.example"
    assert b"Claude" not in pushed.body  # only the browser can read it
    message = browser.decrypt(pushed.body)
    assert "Claude" in message["title"] and "조사 중" in message["title"]
    assert message["url"] == "http://testserver/ko/" and message["tag"].startswith("incident-update:")


def test_a_payload_tampered_with_or_signed_by_another_key_does_not_pass(client):
    browser = Browser()
    with Receiver() as push_service:
        client.post(API, {"push": browser.subscription(push_service.url())}, content_type="application/json")
        outage()
    [pushed] = push_service.requests
    forged = pushed.headers["Authorization"].replace(",k=", ",k=" + "A" * 3, 1)
    with pytest.raises((InvalidSignature, ValueError)):
        vapid_claims(forged)
    with pytest.raises(Exception):  # noqa: B017  (http_ece raises its own or cryptography's error)
        Browser().decrypt(pushed.body)


def test_a_subscription_the_push_service_calls_gone_is_deleted(client):
    with Receiver(statuses=[410]) as push_service:
        client.post(API, {"push": Browser().subscription(push_service.url())}, content_type="application/json")
        outage()
    assert push_service.answered == [410]
    assert not Subscriber.objects.exists()


@pytest.mark.parametrize(
    "push",
    [
        {"endpoint": "https://push.example/x"},
        {"endpoint": "https://push.example/x", "keys": {"p256dh": "short", "auth": "x"}},
        {"endpoint": "not a url", "keys": {}},
        {"endpoint": "http://10.0.0.1/x", "keys": {"p256dh": "a", "auth": "b"}},
        "nonsense",
    ],
)
def test_an_invalid_push_subscription_is_refused(client, push):
    answer = client.post(API, {"push": push}, content_type="application/json")
    assert answer.status_code == 400 and answer.json()["push"]


def test_push_is_refused_where_no_vapid_key_is_set(client, settings):
    settings.VAPID_PRIVATE_KEY = ""
    answer = client.post(
        API, {"push": Browser().subscription("https://push.example/x")}, content_type="application/json"
    )
    assert answer.status_code == 400
    assert 'id="push-subscribe"' not in client.get("/en/subscribe/").content.decode()
