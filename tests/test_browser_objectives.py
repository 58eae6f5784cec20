"""The model page's forecast and error budget in a real browser: on a phone, in Japanese, nothing spills over."""

import time
from datetime import timedelta

import pytest
from django.utils import timezone

from anomalies.latency_forecasts import make_forecasts
from anomalies.slo import run_slos
from monitoring.models import AIModel
from monitoring.outcomes import Outcome

# The browser, the served site (the demo registry) and pages that keep screenshots on failure.
from tests.test_browser_statuspage import CHROMIUM, browser, open_page, site  # noqa: F401
from tests.test_latency_forecast import seed_hours
from tests.test_slo import write

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(not __import__("pathlib").Path(CHROMIUM).exists(), reason="Debian's chromium is not installed"),
]


def test_the_forecast_and_the_budget_fit_a_phone_and_name_the_open_burn_alert(site, open_page):  # noqa: F811
    model = AIModel.objects.get(provider__slug="openai", slug="gpt-4o")
    now = timezone.now()
    seed_hours(model, now, 300.0, 900.0)
    make_forecasts(now)
    write(model, now - timedelta(minutes=20), [Outcome.PROVIDER_FAULT] * 120)  # up to now: the 5 minutes burn too
    run_slos(now)
    phone = open_page(f"{site}/ja/models/openai/gpt-4o/", viewport={"width": 360, "height": 740}, is_mobile=True)
    # The served snapshot notices the new content mark within its poll interval (0.5 s); it may have been
    # built between the writes above. A loaded machine can take far longer: the loop ends at the first success.
    deadline = time.monotonic() + 30
    while phone.locator(".objectives").count() == 0 or "UTC" not in phone.locator(".latency-forecast").inner_text():
        assert time.monotonic() < deadline, "the page never showed the forecast and the budget"
        time.sleep(0.25)
        phone.reload()
    assert phone.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    assert "UTC" in phone.locator(".latency-forecast").inner_text()
    burning = phone.locator('.objectives [data-sli="availability"] td').nth(1)
    assert burning.is_visible() and "高速消費" in burning.inner_text()
