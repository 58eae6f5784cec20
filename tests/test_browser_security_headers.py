"""The Content-Security-Policy in a real browser: the public page and the admin's sign-in work under it, unreported.

Chromium reports every blocked script, style or connection as a `securitypolicyviolation` event and a
console message; a page that works only because nothing was checked would pass neither assertion below.
"""

import pytest
from django.contrib.auth import get_user_model

from monitoring.models import AIModel
from tests import test_browser_day_one as day_one
from tests import test_browser_statuspage as statuspage_browser
from tests.test_browser_statuspage import CHROMIUM, set_status

browser, site, open_page = statuspage_browser.browser, statuspage_browser.site, statuspage_browser.open_page

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(not __import__("os").path.exists(CHROMIUM), reason="Debian's chromium is not installed"),
]

WATCH_VIOLATIONS = """
window.violations = [];
document.addEventListener("securitypolicyviolation", (e) =>
  window.violations.push(`${e.violatedDirective} ${e.blockedURI} ${e.sourceFile}:${e.lineNumber}`));
"""


def watched(page) -> None:
    """Before the page loads: record CSP violations and console errors and warnings."""
    page.console = []
    page.on("console", lambda m: page.console.append(f"{m.type}: {m.text}") if m.type in ("error", "warning") else None)
    page.add_init_script(WATCH_VIOLATIONS)


def csp_messages(page) -> list[str]:
    reported = [m for m in page.console if "Content Security Policy" in m or "Permissions-Policy" in m]
    return reported + page.evaluate("window.violations")


def test_the_public_page_under_its_policy_renders_charts_and_takes_live_updates(site, open_page):
    day_one._first_day_with_figures()
    page = open_page(f"{site}/en/", before=watched)
    page.wait_for_selector("#connection[data-connection='live']")
    assert page.get_attribute("#connection", "data-transport") in {"ws", "sse"}
    # Charts: bars and sparklines drawn, the tooltip script running, the "collecting" note sized by script.
    assert page.locator("svg.bars rect").count() > 0
    assert page.locator("svg.bars rect[data-f]").count() > 0  # charts.js turned the titles into figures
    note = page.locator('[data-model="openai/gpt-4o"] .collecting')
    bars = page.locator('[data-model="openai/gpt-4o"] svg.bars').bounding_box()
    share = float(note.get_attribute("data-share"))
    assert note.bounding_box()["width"] == pytest.approx(bars["width"] * share / 100, abs=2)
    # Live: a change made elsewhere arrives without a reload.
    page.evaluate("window.notReloaded = true")
    set_status("openai/gpt-4o-mini", "major_outage")
    page.wait_for_selector('[data-model="openai/gpt-4o-mini"][data-status="major_outage"]', timeout=15_000)
    assert page.evaluate("window.notReloaded") is True
    page.hover('[data-model="openai/gpt-4o"] svg.bars')
    page.wait_for_selector("#bar-tooltip:not([hidden])")
    assert csp_messages(page) == [] and page.errors == []


def test_the_subscribe_page_and_a_model_page_run_under_the_policy(site, open_page):
    model = AIModel.objects.get(provider__slug="openai", slug="gpt-4o")
    for path in ("/ja/subscribe/", f"/ko/models/openai/{model.slug}/"):
        page = open_page(f"{site}{path}", before=watched)
        page.wait_for_load_state("networkidle")
        assert csp_messages(page) == [] and page.errors == []


def test_the_admin_signs_in_under_its_own_policy(site, open_page):
    get_user_model().objects.create_user("olga", "olga@example.com", "pw-olga-4567", is_staff=True, is_superuser=True)
    page = open_page(f"{site}/admin/login/", before=watched)
    page.fill("#id_username", "olga")
    page.fill("#id_password", "pw-olga-4567")
    assert csp_messages(page) == []
    page.click("input[type=submit]")
    page.wait_for_url(f"{site}/admin/")
    # Each page's violations are counted before the next one loads (the watcher starts again per page).
    for path, ready in (("/admin/monitoring/aimodel/", "#result_list"), ("/admin/monitoring/aimodel/add/", "form")):
        page.goto(f"{site}{path}")
        page.wait_for_selector(ready)
        page.wait_for_load_state("networkidle")
        assert csp_messages(page) == [], path
    assert page.errors == []
