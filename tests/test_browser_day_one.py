"""Day one in a real browser: aligned bars, nothing wider than its card, a short flapping story, a stale mark.

Widths 390 and 1280 px in ko, en and ja, on Debian's Chromium through Playwright.
"""

from datetime import timedelta

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from alerts.incidents import update_incidents
from alerts.models import EventCursor
from collectors.models import CheckRollup
from monitoring.models import AIModel, Incident
from monitoring.status import Status
from monitoring.transitions import record_status
from tests import test_browser_statuspage as statuspage_browser
from tests.test_browser_statuspage import CHROMIUM, block_push

# The same Chromium, served site and pages as the status page's browser tests.
browser, site, open_page = statuspage_browser.browser, statuspage_browser.site, statuspage_browser.open_page

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(not __import__("os").path.exists(CHROMIUM), reason="Debian's chromium is not installed"),
]

WIDTHS = [390, 1280]

# Every element of a card (a provider's models, an incident) within the card's box; bars of one width
# and one left edge in every row.
LAYOUT = """() => {
  const overflowing = [];
  for (const card of document.querySelectorAll('.provider, .incident, .banner')) {
    const box = card.getBoundingClientRect();
    for (const element of card.querySelectorAll('*')) {
      const r = element.getBoundingClientRect();
      if (!r.width || getComputedStyle(element).visibility === 'hidden') continue;
      if (r.left < box.left - 0.5 || r.right > box.right + 0.5) {
        overflowing.push(`${element.className?.baseVal ?? element.className} ${Math.round(r.right - box.right)}px`);
      }
    }
  }
  const bars = [...document.querySelectorAll('.model svg.bars')].map((svg) => svg.getBoundingClientRect());
  const sparks = [...document.querySelectorAll('.model svg.spark')].map((svg) => svg.getBoundingClientRect());
  const spread = (rects, key) => Math.max(...rects.map((r) => r[key])) - Math.min(...rects.map((r) => r[key]));
  return {
    overflowing,
    pageFits: document.documentElement.scrollWidth <= window.innerWidth,
    bars: bars.length,
    barWidths: spread(bars, 'width'),
    barLefts: spread(bars, 'left'),
    sparkLefts: spread(sparks, 'left'),
  };
}"""


def _first_day_with_figures() -> None:
    """A day-one page with the widest figures it may show: a slow model's "2806 ms", a flapping model."""
    now = timezone.now()
    slow = AIModel.objects.get(slug="o3-mini")
    hour = now.replace(minute=0, second=0, microsecond=0)
    for model in AIModel.objects.all():
        p50 = 2806.0 if model == slow else 412.0
        for back in range(3):
            bucket = hour - timedelta(hours=back)
            CheckRollup.objects.create(
                model=model, period="hour", bucket=bucket, total=60, ok=60, latency_p50_ms=p50, latency_p95_ms=p50
            )
        record_status(model.pk, Status.OPERATIONAL, reason="ok", checked=True)
    record_status(slow.pk, Status.DEGRADED_PERFORMANCE, reason="degraded: first token 2806 ms", checked=True)


def _ten_minutes_of_flapping() -> Incident:
    """The demo's flapping model, compressed: down and up every minute for ten minutes."""
    EventCursor.objects.get_or_create(name="incidents", defaults={"last_id": 0})
    model = AIModel.objects.get(slug="claude-3-5-haiku")
    start = timezone.now() - timedelta(minutes=10)
    for minute in range(0, 10, 2):
        at = start + timedelta(minutes=minute)
        record_status(model.pk, Status.MAJOR_OUTAGE, reason="failing: HTTP 500: simulated flapping.", at=at)
        update_incidents(at + timedelta(seconds=1))
        record_status(model.pk, Status.OPERATIONAL, reason="ok", at=at + timedelta(minutes=1))
        update_incidents(at + timedelta(minutes=1, seconds=1))
    record_status(model.pk, Status.MAJOR_OUTAGE, reason="failing: HTTP 500: simulated flapping.", checked=True)
    update_incidents()
    return Incident.objects.get(models_affected=model)


@pytest.mark.parametrize("width", WIDTHS)
@pytest.mark.parametrize("language", ["ko", "en", "ja"])
def test_nothing_is_wider_than_its_card_and_every_row_s_bars_line_up(site, open_page, language, width):
    _first_day_with_figures()
    _ten_minutes_of_flapping()
    page = open_page(f"{site}/{language}/", viewport={"width": width, "height": 900}, is_mobile=width < 500)
    page.wait_for_selector("#connection[data-connection='live']")
    layout = page.evaluate(LAYOUT)
    assert layout["overflowing"] == [], layout["overflowing"][:10]
    assert layout["pageFits"]
    assert layout["bars"] == 12
    assert layout["barWidths"] < 1 and layout["barLefts"] < 1, layout
    assert layout["sparkLefts"] < 1, layout
    assert "2806 ms" in page.text_content('[data-model="openai/o3-mini"] .model-latency')


@pytest.mark.parametrize("width", WIDTHS)
def test_after_ten_minutes_of_flapping_the_incident_takes_at_most_three_updates_height(site, open_page, width):
    incident = _ten_minutes_of_flapping()
    assert incident.updates.count() <= 3
    page = open_page(f"{site}/en/", viewport={"width": width, "height": 900}, is_mobile=width < 500)
    article = page.locator(f"#incident-{incident.pk}")
    # A page served while the last flip was being written shows it once the live update re-renders it.
    expect(article).to_contain_text("is flapping: down 6 times in 10 min", timeout=15_000)
    assert page.locator(f"#incident-{incident.pk} .incident-updates li:visible").count() == 1
    assert article.locator("details > summary").text_content() == "2 earlier updates"
    update = article.locator(".incident-updates li").first.bounding_box()["height"]
    top = article.bounding_box()["y"]
    first_update = article.locator(".incident-updates").first.bounding_box()["y"]
    bottom = article.bounding_box()["y"] + article.bounding_box()["height"]
    # The updates part (the latest and the disclosure) is at most three updates tall.
    assert bottom - first_update <= 3 * update, (top, first_update, bottom, update)
    # Opened, the earlier ones are there.
    article.locator("details > summary").click()
    assert page.locator(f"#incident-{incident.pk} .incident-updates li:visible").count() == 3


def test_lost_longer_than_a_probe_interval_the_page_greys_its_statuses_and_clears_the_mark_on_catch_up(site, open_page):
    def cut_off(page) -> None:
        page.clock.install()
        block_push(page)
        page.route("**/api/v1/snapshot/", lambda route: route.abort())

    page = open_page(f"{site}/en/", before=cut_off)
    assert page.get_attribute("html", "data-probe-interval") == "10"  # the demo models' interval
    page.wait_for_selector("#connection[data-connection='reconnecting']")
    assert page.get_attribute("html", "data-stale") is None
    page.clock.fast_forward("00:15")
    page.wait_for_selector("html[data-stale]")
    assert page.text_content("#connection").startswith("Last updated ")
    assert page.text_content("#connection").endswith(" ago")
    grey = page.eval_on_selector('[data-model="openai/gpt-4o"] .status', "e => getComputedStyle(e).filter")
    assert "grayscale" in grey

    # Back: the snapshot answers again, the page catches up and the mark goes.
    page.unroute("**/api/v1/snapshot/")
    record_status(AIModel.objects.get(slug="gpt-4o").pk, Status.MAJOR_OUTAGE, reason="x", checked=True)
    page.clock.fast_forward("00:30")
    page.wait_for_selector('[data-model="openai/gpt-4o"][data-status="major_outage"]', timeout=15_000)
    page.wait_for_selector("html:not([data-stale])")


def test_a_new_model_shows_collecting_since_instead_of_ninety_empty_days(site, open_page):
    _first_day_with_figures()
    page = open_page(f"{site}/ja/", viewport={"width": 390, "height": 900}, is_mobile=True)
    note = page.locator('[data-model="openai/gpt-4o"] .collecting')
    assert "から収集中" in note.text_content()
    bars = page.locator('[data-model="openai/gpt-4o"] svg.bars').bounding_box()
    assert note.bounding_box()["x"] >= bars["x"] - 0.5
    assert note.bounding_box()["x"] + note.bounding_box()["width"] <= bars["x"] + bars["width"] + 0.5
