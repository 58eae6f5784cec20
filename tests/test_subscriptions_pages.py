"""The Subscribe control and the subscription pages: on every page, in ko, en and ja, CSRF and a honeypot."""

from __future__ import annotations

import re

import pytest
from django.core.cache import cache
from django.test import Client

from monitoring.models import AIModel, Provider
from subscriptions.models import Subscriber
from subscriptions.sending import send_all_due
from tests.smtp import Capture, SMTPServer

pytestmark = pytest.mark.django_db


@pytest.fixture
def smtp(settings):
    capture = Capture()
    server = SMTPServer(capture)
    server.start()
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT, settings.SITE_URL = "127.0.0.1", server.port, "http://testserver"
    cache.clear()
    yield capture
    server.stop()
    cache.clear()


@pytest.fixture
def cast(db):
    a = Provider.objects.create(name="Anthropic", slug="anthropic")
    claude = AIModel.objects.create(provider=a, name="Claude", slug="claude", endpoint="http://127.0.0.1:9/v1")
    AIModel.objects.create(provider=a, name="Secret", slug="secret", endpoint="http://127.0.0.1:9/v1", public=False)
    return a, claude


def csrf_client() -> tuple[Client, str]:
    client = Client(enforce_csrf_checks=True)
    page = client.get("/en/subscribe/").content.decode()
    return client, re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page).group(1)


@pytest.mark.parametrize(
    "language, word", [("en", "Subscribe"), ("ko", "구독"), ("ja", "購読")], ids=["en", "ko", "ja"]
)
def test_every_page_has_a_subscribe_control_in_its_language(client, cast, renew_snapshot, language, word):
    renew_snapshot()
    for path in (f"/{language}/", f"/{language}/incidents/"):
        page = client.get(path).content.decode()
        assert f'href="/{language}/subscribe/"' in page and f">{word}</a>" in page
    detail = client.get(f"/{language}/models/anthropic/claude/").content.decode()
    assert f'href="/{language}/subscribe/?model=anthropic/claude"' in detail


def test_the_model_page_control_opens_the_form_with_that_model_ticked(client, cast):
    page = client.get("/en/subscribe/?model=anthropic/claude").content.decode()
    assert re.search(r'value="anthropic/claude"[^>]*checked', page)
    assert "anthropic/secret" not in page  # private models are not offered
    assert 'href="/feeds/models/anthropic/claude.atom"' in page and 'href="/feeds/maintenance.ics"' in page


def test_the_form_signs_up_with_a_csrf_token(smtp, cast):
    client, token = csrf_client()
    answer = client.post(
        "/en/subscribe/", {"csrfmiddlewaretoken": token, "email": "f@example.com", "models": ["anthropic/claude"]}
    )
    assert answer.status_code == 200 and "Check your inbox" in answer.content.decode()
    send_all_due()
    [confirmation] = smtp.messages
    assert confirmation["To"] == "f@example.com"


def test_the_form_refuses_a_post_without_its_csrf_token(smtp, cast):
    answer = Client(enforce_csrf_checks=True).post("/en/subscribe/", {"email": "f@example.com"})
    assert answer.status_code == 403 and smtp.messages == []


def test_a_filled_honeypot_gets_the_same_answer_and_no_mail(smtp, cast):
    client, token = csrf_client()
    answer = client.post(
        "/en/subscribe/", {"csrfmiddlewaretoken": token, "email": "bot@example.com", "website": "http://spam"}
    )
    assert answer.status_code == 200 and "Check your inbox" in answer.content.decode()
    assert smtp.messages == [] and not Subscriber.objects.exists()


def test_an_invalid_address_gets_a_clear_form_error_in_the_page_language(smtp, cast):
    client, token = csrf_client()
    answer = client.post("/ko/subscribe/", {"csrfmiddlewaretoken": token, "email": "nope"})
    assert answer.status_code == 400
    assert "aria-invalid" in answer.content.decode() and "이메일" in answer.content.decode()
    assert smtp.messages == []


def test_the_form_signs_up_in_the_page_language(smtp, cast):
    client, token = csrf_client()
    client.post("/ja/subscribe/", {"csrfmiddlewaretoken": token, "email": "j@example.com"})
    send_all_due()
    assert Subscriber.objects.get().language == "ja"
    assert "購読" in smtp.messages[0]["Subject"]
    assert "/ja/subscriptions/confirm/" in smtp.messages[0].get_body(preferencelist=("plain",)).get_content()


def test_the_manage_page_shows_what_is_followed_and_unsubscribes(client, smtp, cast):
    from subscriptions.tokens import manage_token

    client.post("/api/v1/subscriptions/", {"email": "m@example.com"}, content_type="application/json")
    send_all_due()
    text = smtp.messages[0].get_body(preferencelist=("plain",)).get_content()
    client.get(re.search(r"http://testserver(/en/subscriptions/confirm/\S+/)", text).group(1))
    subscriber = Subscriber.objects.get()
    token = manage_token(subscriber.pk, subscriber.key)

    page = client.get(f"/en/subscriptions/manage/{token}/").content.decode()
    assert "Every model on the page" in page and "m@example.com" not in page
    confirm_page = client.get(f"/en/subscriptions/unsubscribe/{token}/")
    assert confirm_page.status_code == 200 and Subscriber.objects.exists()  # a GET (a link scanner) changes nothing
    assert client.post(f"/en/subscriptions/unsubscribe/{token}/").status_code == 200
    assert not Subscriber.objects.exists()
    # The same link again: already done, said kindly.
    assert client.post(f"/en/subscriptions/unsubscribe/{token}/").status_code == 200
    assert client.get(f"/en/subscriptions/manage/{token}/").status_code == 400
