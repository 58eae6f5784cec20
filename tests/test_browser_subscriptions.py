"""Subscribing through the page form in a real browser (Debian's Chromium), served by uvicorn, mailed by aiosmtpd."""

from __future__ import annotations

import re
import time
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from monitoring.models import AIModel, Provider
from subscriptions.models import Subscriber
from subscriptions.sending import send_all_due
from tests.servers import serve
from tests.smtp import Capture, SMTPServer
from tests.test_browser_statuspage import CHROMIUM, browser  # noqa: F401  (the module's browser fixture)

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="Debian's chromium is not installed"),
]


@pytest.fixture
def mailed_site(transactional_db, tmp_path, settings):
    a = Provider.objects.create(name="Anthropic", slug="anthropic")
    AIModel.objects.create(provider=a, name="Claude", slug="claude", endpoint="http://127.0.0.1:9/v1", enabled=False)
    b = Provider.objects.create(name="Google", slug="google")
    AIModel.objects.create(provider=b, name="Gemini", slug="gemini", endpoint="http://127.0.0.1:9/v1", enabled=False)
    capture = Capture()
    smtp = SMTPServer(capture)
    smtp.start()
    # The test itself runs the subscriptions round (see wait_for_mail): it mails like the site would.
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", smtp.port
    try:
        with serve(tmp_path / "uvicorn.log", EMAIL_HOST="127.0.0.1", EMAIL_PORT=str(smtp.port)) as base:
            yield base, capture
    finally:
        smtp.stop()


def wait_for_mail(capture: Capture, count: int) -> None:
    deadline = time.monotonic() + 10
    while len(capture.messages) < count:
        assert time.monotonic() < deadline, "no confirmation mail"
        send_all_due()  # the subscriptions round, as the worker runs it every second
        time.sleep(0.05)


def test_a_visitor_subscribes_to_a_model_from_its_page_and_confirms(browser, mailed_site):  # noqa: F811
    base, capture = mailed_site
    context = browser.new_context(locale="ja-JP")
    page = context.new_page()
    errors = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    try:
        page.goto(base + "/ja/models/anthropic/claude/")
        page.get_by_role("link", name="購読").click()
        page.wait_for_url(re.compile(r"/ja/subscribe/\?model=anthropic/claude$"))
        assert page.get_by_label("Anthropic Claude").is_checked()
        assert not page.get_by_label("Google Gemini").is_checked()
        trap = page.locator("#id_website").bounding_box()  # the honeypot is out of sight
        assert trap is None or trap["x"] + trap["width"] <= 0
        page.get_by_label("メールアドレス").fill("visitor@example.com")
        page.get_by_role("button", name="購読").click()
        page.get_by_text("確認リンクがまもなく届きます").wait_for()

        wait_for_mail(capture, 1)
        [confirmation] = capture.messages
        text = confirmation.get_body(preferencelist=("plain",)).get_content()
        link = re.search(r"(http://\S+/ja/subscriptions/confirm/\S+/)", text).group(1)
        page.goto(base + urlsplit(link).path)
        page.get_by_role("heading", name="購読しました").wait_for()
        assert "anthropic/claude" in page.content()
        subscriber = Subscriber.objects.get()
        assert subscriber.confirmed_at and subscriber.language == "ja"
        assert subscriber.follows()["models"] == ["anthropic/claude"]
        assert errors == []
    finally:
        context.close()


def test_a_visitor_who_gives_no_valid_address_sees_why(browser, mailed_site):  # noqa: F811
    base, capture = mailed_site
    context = browser.new_context(locale="en-US")
    page = context.new_page()
    try:
        page.goto(base + "/en/")
        page.get_by_role("link", name="Subscribe").click()
        page.get_by_label("Email address").fill("not an address")
        page.get_by_role("button", name="Subscribe").click()
        page.get_by_text("Enter a valid email address.").wait_for()
        assert capture.messages == [] and not Subscriber.objects.exists()
    finally:
        context.close()


def test_the_service_worker_shows_a_pushed_update_as_a_notification(browser, mailed_site):  # noqa: F811
    # Chromium cannot reach a real push service here: the push event is dispatched to the worker itself.
    # What the handler asks Chromium to show, and Chromium's answer, are read: headless Chromium does not
    # always keep a shown notification listed by getNotifications().
    base, _capture = mailed_site
    context = browser.new_context(locale="en-US")
    context.grant_permissions(["notifications"], origin=base)
    page = context.new_page()
    try:
        context.set_default_timeout(15_000)
        page.goto(base + "/en/subscribe/")
        registered = page.evaluate(
            "navigator.serviceWorker.register('/static/subscriptions/push-worker.js')"
            ".then(registration => registration.scope, error => String(error))"
        )
        assert registered == base + "/static/subscriptions/"
        # Notifications belong to an active registration: wait until the worker has activated.
        assert (
            page.evaluate(
                "navigator.serviceWorker.getRegistration('/static/subscriptions/').then(registration =>"
                " new Promise(resolve => { const worker = registration.active || registration.waiting ||"
                " registration.installing; if (worker.state === 'activated') return resolve(worker.state);"
                " worker.addEventListener('statechange', () => worker.state === 'activated' && resolve(worker.state));"
                " setTimeout(() => resolve(worker.state), 10000); }))"
            )
            == "activated"
        )
        deadline = time.monotonic() + 10
        while not context.service_workers:
            assert time.monotonic() < deadline, "the service worker did not start"
            time.sleep(0.1)
        [worker] = context.service_workers
        # Playwright's evaluate has no timeout of its own: bound every wait inside the worker.
        shown = worker.evaluate(
            """async (payload) => {
                // What the handler asks the browser to show, and what the browser answers.
                const show = self.registration.showNotification.bind(self.registration);
                const asked = [];
                self.registration.showNotification = (title, options) => {
                    const answer = show(title, options).then(() => "shown", error => String(error));
                    asked.push(answer.then(outcome => ({title, body: options.body, tag: options.tag,
                                                        url: options.data.url, outcome})));
                    return answer;
                };
                self.dispatchEvent(new PushEvent("push", {data: JSON.stringify(payload)}));
                return await Promise.race([
                    Promise.all(asked),
                    new Promise(resolve => setTimeout(() => resolve("no answer"), 10000)),
                ]);
            }""",
            {
                "title": "Investigating: Anthropic Claude is unavailable",
                "body": "We are investigating.",
                "url": base + "/en/",
                "tag": "incident-update:7",
            },
        )
        assert shown == [
            {
                "title": "Investigating: Anthropic Claude is unavailable",
                "body": "We are investigating.",
                "tag": "incident-update:7",
                "url": base + "/en/",
                "outcome": "shown",
            }
        ]
    finally:
        context.close()
