"""The "unusual" mark in a real browser: on first paint, live when an anomaly opens, gone when it closes."""

from datetime import timedelta

import pytest
from django.utils import timezone

from anomalies.detection import run_detection
from anomalies.models import Anomaly
from collectors.models import CheckResult
from monitoring.models import AIModel
from monitoring.outcomes import Outcome

# The browser, the served site (the demo registry) and pages that keep screenshots on failure.
from tests.test_browser_statuspage import CHROMIUM, browser, open_page, site  # noqa: F401

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(not __import__("pathlib").Path(CHROMIUM).exists(), reason="Debian's chromium is not installed"),
]

ROW = '[data-model="openai/gpt-4o"] .model-status .unusual'


def shift_latency(model: AIModel) -> None:
    """A steady 300 ms for 200 probes, then one at 2,500 ms; the detection run opens an anomaly."""
    start = timezone.now() - 201 * timedelta(seconds=10)  # the shift is the latest point
    CheckResult.objects.bulk_create(
        CheckResult(model=model, time=start + i * timedelta(seconds=10), outcome=Outcome.OK, latency_ms=value)
        for i, value in enumerate([300.0] * 200 + [2500.0])
    )
    run_detection()


def test_an_anomaly_opening_marks_the_model_unusual_on_an_open_page_and_on_first_paint(  # noqa: F811
    site,  # noqa: F811
    open_page,  # noqa: F811
    settings,
):
    model = AIModel.objects.get(provider__slug="openai", slug="gpt-4o")
    page = open_page(f"{site}/ko/")
    page.wait_for_selector("#connection[data-connection='live']")
    page.evaluate("window.notReloaded = true")
    assert page.is_hidden(ROW)
    shift_latency(model)
    assert Anomaly.objects.filter(model=model, ended_at__isnull=True).exists()
    page.wait_for_selector(ROW, state="visible", timeout=10_000)
    assert page.evaluate("window.notReloaded") is True
    assert page.text_content(f"{ROW} .unusual-label") == "평소와 다름"
    assert page.get_attribute(f"{ROW} use", "href") == "#i-unusual"
    # Only the affected model, and the status itself is untouched.
    assert page.locator(".model-status .unusual:visible").count() == 1
    assert page.get_attribute('[data-model="openai/gpt-4o"]', "data-status") == "unknown"
    fresh = open_page(f"{site}/ja/")  # first paint, before any live event
    assert fresh.is_visible(ROW) and fresh.text_content(f"{ROW} .unusual-label") == "いつもと違う"
    # The quiet period passes: the anomaly closes and the mark goes, without a reload.
    settings.ANOMALY_QUIET_SECONDS = 0
    run_detection()
    page.wait_for_selector(ROW, state="hidden", timeout=10_000)
    assert page.evaluate("window.notReloaded") is True
    assert page.errors == [] and fresh.errors == []
