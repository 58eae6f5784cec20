"""The status page in a real browser (Debian's Chromium through Playwright), served by uvicorn from the test database.

Screenshots of failed tests are kept under test-artifacts/.
"""

import colorsys
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

from demo.registry import seed_demo
from monitoring.models import AIModel, Incident, IncidentUpdate
from tests.servers import ROOT, serve, server_env

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
ARTIFACTS = ROOT / "test-artifacts"
LOCALES = ["ko", "en", "ja"]

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(
        not Path(CHROMIUM).exists(), reason="Debian's chromium is not installed (apt-get install chromium)"
    ),
]


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    # Playwright's sync API leaves its event loop marked as running in this thread between calls, which
    # Django's guard against async contexts mistakes for one. No browser call runs while these tests use
    # the database, so the guard is lifted for this module only, and Playwright stops before others run.
    previous = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    try:
        with sync_playwright() as playwright:
            chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            yield chromium
            chromium.close()
    finally:
        if previous is None:
            os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
        else:
            os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = previous


@pytest.fixture
def site(transactional_db, tmp_path):
    seed_demo()
    with serve(tmp_path / "uvicorn.log") as base:
        yield base


@pytest.fixture
def open_page(browser, request):
    """New pages (each in its own context); a screenshot of each is kept when the test fails."""
    failed_before = request.session.testsfailed
    opened = []

    def open_(url: str, before=None, **context_options):
        context = browser.new_context(**context_options)
        page = context.new_page()
        page.errors = []
        page.on("pageerror", lambda error: page.errors.append(str(error)))
        opened.append(page)
        if before is not None:
            before(page)  # routes and scripts that must be in place before the page loads
        page.goto(url)
        return page

    yield open_
    if request.session.testsfailed > failed_before:
        ARTIFACTS.mkdir(exist_ok=True)
        name = re.sub(r"[^\w.-]+", "_", request.node.nodeid)
        for index, page in enumerate(opened):
            page.screenshot(path=str(ARTIFACTS / f"{name}-{index}.png"), full_page=True)
    for page in opened:
        page.context.close()


def set_status(model: str, status: str) -> None:
    """As an operator would: the management command, in its own process."""
    command = [sys.executable, "manage.py", "set_status", model, status, "--reason", "browser test"]
    subprocess.run(command, cwd=ROOT, env=server_env(), check=True, capture_output=True)


def model_rows(page) -> dict[str, str]:
    return page.eval_on_selector_all(
        ".provider .model[data-model]", "rows => Object.fromEntries(rows.map(r => [r.dataset.model, r.dataset.status]))"
    )


def is_green(css_colour: str) -> bool:
    red, green, blue = (int(v) / 255 for v in re.findall(r"\d+", css_colour)[:3])
    hue, lightness, saturation = colorsys.rgb_to_hls(red, green, blue)
    return saturation > 0.25 and 80 <= hue * 360 <= 170


def block_push(page) -> None:
    """No WebSocket, no event stream: the page must fall back to polling the snapshot."""
    page.route("**/api/v1/events/**", lambda route: route.fulfill(status=404, body="not here"))
    page.route_web_socket("**/ws/status/**", lambda ws: ws.close())


def test_each_locale_loads_the_same_version_with_the_registry_s_models(site, open_page):
    registry = AIModel.objects.filter(public=True).count()
    versions = set()
    for lang in LOCALES:
        page = open_page(f"{site}/{lang}/")
        page.wait_for_selector("#connection[data-connection='live']")
        assert page.get_attribute("html", "lang") == lang
        assert len(model_rows(page)) == registry == 12
        versions.add(page.get_attribute("html", "data-snapshot-version"))
        assert page.errors == []
    assert len(versions) == 1


def test_a_model_without_evidence_shows_no_green(site, open_page):
    page = open_page(f"{site}/en/")
    rows = model_rows(page)
    assert set(rows.values()) == {"unknown"}
    colours = page.eval_on_selector_all(".model .status", "els => els.map(e => getComputedStyle(e).color)")
    assert colours and not any(is_green(c) for c in colours), colours
    assert page.locator(".model .status-label").all_inner_texts() == ["Unknown"] * 12
    assert page.locator(".model .bar-up").count() == 0
    banner = page.eval_on_selector("#banner", "e => getComputedStyle(e).borderLeftColor")
    assert not is_green(banner) and page.text_content("#banner-headline") == "No recent evidence for any model"


def test_a_status_change_appears_on_an_open_page_without_reload_by_polling(site, open_page):
    page = open_page(f"{site}/en/", before=block_push)
    page.wait_for_selector("#connection[data-transport='poll'][data-connection='live']")
    page.evaluate("window.notReloaded = true")
    set_status("openai/gpt-4o", "major_outage")
    page.wait_for_selector('[data-model="openai/gpt-4o"][data-status="major_outage"]', timeout=25_000)
    assert page.evaluate("window.notReloaded") is True
    assert page.text_content('[data-model="openai/gpt-4o"] .status-label') == "Major outage"
    assert page.get_attribute('[data-model="openai/gpt-4o"] .status use', "href") == "#i-major_outage"
    assert page.text_content("#banner-headline") == "Major outage"
    assert page.text_content('[data-count-status="major_outage"] .count') == "1"
    assert page.text_content('[data-count-status="unknown"] .count') == "11"
    assert page.errors == []


def test_a_status_change_arrives_over_push_within_seconds(site, open_page):
    page = open_page(f"{site}/ja/")
    page.wait_for_selector("#connection[data-connection='live']")
    assert page.get_attribute("#connection", "data-transport") in {"ws", "sse"}
    page.evaluate("window.notReloaded = true")
    started = time.monotonic()
    set_status("google/gemini-2-5-flash", "partial_outage")
    page.wait_for_selector('[data-model="google/gemini-2-5-flash"][data-status="partial_outage"]', timeout=10_000)
    assert time.monotonic() - started < 10
    assert page.evaluate("window.notReloaded") is True
    assert page.text_content('[data-model="google/gemini-2-5-flash"] .status-label') == "部分的な障害"


def test_a_change_recorded_by_an_operator_reaches_an_open_page_within_a_second(site, open_page):
    from monitoring.transitions import record_status

    page = open_page(f"{site}/en/")
    page.wait_for_selector("#connection[data-transport='ws'][data-connection='live']")
    model = AIModel.objects.get(provider__slug="openai", slug="gpt-4o-mini")
    started = time.monotonic()
    record_status(model.pk, "major_outage", reason="declared", source="operator", manual=True)
    page.wait_for_selector('[data-model="openai/gpt-4o-mini"][data-status="major_outage"]', timeout=5_000)
    assert time.monotonic() - started < 1.0


def test_a_new_incident_and_a_new_model_appear_without_reload(site, open_page):
    page = open_page(f"{site}/en/")
    page.wait_for_selector("#connection[data-connection='live']")
    page.evaluate("window.notReloaded = true")
    provider = AIModel.objects.get(slug="gpt-4o").provider
    AIModel.objects.create(provider=provider, name="GPT-5", slug="gpt-5", endpoint="http://127.0.0.1:9/v1")
    incident = Incident.objects.create(title="Elevated latency on GPT-4o", impact=Incident.Impact.MINOR)
    IncidentUpdate.objects.create(incident=incident, state="investigating", body="Looking into it.")
    set_status("openai/gpt-4o", "degraded_performance")  # a new version, which carries both
    page.wait_for_selector('[data-model="openai/gpt-5"][data-status="unknown"]', timeout=25_000)
    page.wait_for_selector(f"#incident-{incident.pk}")
    assert page.evaluate("window.notReloaded") is True
    assert len(model_rows(page)) == 13
    assert page.text_content('[data-count-status="unknown"] .count') == "12"


def test_a_hidden_tab_holds_no_connection_and_catches_up_when_shown(site, open_page):
    page = open_page(f"{site}/en/")
    page.wait_for_selector("#connection[data-connection='live']")
    visibility = (
        "hidden => { Object.defineProperty(document, 'hidden', {configurable: true, get: () => hidden});"
        " document.dispatchEvent(new Event('visibilitychange')); }"
    )
    page.evaluate(visibility, True)
    assert page.get_attribute("#connection", "data-connection") != "live"
    set_status("anthropic/claude-opus-4", "major_outage")
    page.wait_for_timeout(3000)
    assert page.get_attribute('[data-model="anthropic/claude-opus-4"]', "data-status") == "unknown"
    page.evaluate(visibility, False)
    page.wait_for_selector('[data-model="anthropic/claude-opus-4"][data-status="major_outage"]', timeout=10_000)
    page.wait_for_selector("#connection[data-connection='live']")


def test_without_any_way_to_the_server_the_page_says_reconnecting_then_stale_since(site, open_page):
    def cut_off(page) -> None:
        page.clock.install()
        block_push(page)
        page.route("**/api/v1/snapshot/", lambda route: route.abort())

    page = open_page(f"{site}/en/", before=cut_off)
    page.wait_for_selector("#connection[data-connection='reconnecting']")
    assert page.text_content("#connection") == "Reconnecting…"
    page.clock.fast_forward("00:45")
    page.wait_for_selector("#connection[data-connection='stale']")
    assert page.text_content("#connection").startswith("Last updated ")
    assert len(model_rows(page)) == 12  # what the page was served stays on it


def test_without_websocket_the_page_falls_back_to_server_sent_events(site, open_page):
    def no_websocket(page) -> None:
        page.route_web_socket("**/ws/status/**", lambda ws: ws.close())

    page = open_page(f"{site}/en/", before=no_websocket)
    page.wait_for_selector("#connection[data-transport='sse'][data-connection='live']")
    set_status("mistral/mistral-embed", "under_maintenance")
    page.wait_for_selector('[data-model="mistral/mistral-embed"][data-status="under_maintenance"]', timeout=10_000)
    assert page.text_content('[data-count-status="under_maintenance"] .count') == "1"


def test_changes_pushed_together_in_one_batch_frame_all_reach_the_page_in_order(site, open_page):
    asked = []

    def server_with_a_burst(ws) -> None:
        # Stands in for the server: the page asks for batches and gets three changes in one frame.
        asked.append(ws.url)
        ws.send(json.dumps({"type": "hello", "seq": 1_000_000, "snapshot_version": None}))
        changes = [
            ("openai/gpt-4o", "major_outage"),
            ("google/gemini-2-5-flash", "partial_outage"),
            ("openai/gpt-4o", "degraded_performance"),
        ]
        events = [
            {"type": "status_change", "seq": 1_000_001 + i, "model": model, "to": status}
            for i, (model, status) in enumerate(changes)
        ]
        ws.send(json.dumps({"type": "batch", "seq": events[-1]["seq"], "events": events}))

    page = open_page(f"{site}/en/", before=lambda page: page.route_web_socket("**/ws/status/**", server_with_a_burst))
    page.wait_for_selector('[data-model="google/gemini-2-5-flash"][data-status="partial_outage"]', timeout=10_000)
    page.wait_for_selector('[data-model="openai/gpt-4o"][data-status="degraded_performance"]', timeout=10_000)
    assert "batch=1" in asked[0]
    assert page.text_content('[data-count-status="partial_outage"] .count') == "1"
    assert page.errors == []


def test_the_page_works_with_javascript_off(site, open_page):
    page = open_page(f"{site}/ko/", java_script_enabled=False)
    assert len(model_rows(page)) == 12
    assert page.get_attribute("#connection", "data-connection") == "static"
    assert page.locator(".model svg.bars").count() == 12
    assert "알 수 없음" in page.text_content(".model .status-label")


def test_the_language_switcher_keeps_the_page_and_remembers_the_choice(site, open_page):
    page = open_page(f"{site}/en/models/openai/gpt-4o/", extra_http_headers={"Accept-Language": "en"})
    page.click("nav.languages a[data-language='ja']")
    page.wait_for_url(f"{site}/ja/models/openai/gpt-4o/")
    assert page.get_attribute("html", "lang") == "ja"
    page.goto(f"{site}/")
    page.wait_for_url(f"{site}/ja/")


def test_hovering_or_tapping_a_day_shows_its_figures(site, open_page):
    page = open_page(f"{site}/en/", has_touch=True)
    bars = page.locator('[data-model="openai/gpt-4o"] svg.bars')
    box = bars.bounding_box()
    page.mouse.move(box["x"] + box["width"] - 2, box["y"] + box["height"] / 2)
    tooltip = page.locator("#bar-tooltip")
    tooltip.wait_for(state="visible")
    assert re.fullmatch(r"\d{4}-\d\d-\d\d: No data", tooltip.text_content())
    page.mouse.click(10, 10)
    page.tap('[data-model="openai/o3-mini"] svg.bars', position={"x": 3, "y": 5})
    assert tooltip.is_visible() and tooltip.text_content().endswith("No data")
    bars.focus()
    page.keyboard.press("Home")
    first_day = page.get_attribute('[data-model="openai/gpt-4o"] svg.bars', "data-first-day")
    assert tooltip.text_content() == f"{first_day}: No data"


def test_mobile_layout_and_dark_mode(site, open_page):
    phone = open_page(f"{site}/ja/", viewport={"width": 360, "height": 740}, is_mobile=True, has_touch=True)
    assert phone.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    name = phone.locator('[data-model="openai/gpt-4o"] .model-name').bounding_box()
    bars = phone.locator('[data-model="openai/gpt-4o"] .model-uptime').bounding_box()
    assert bars["y"] > name["y"] and bars["width"] > 250  # stacked, bars across the row
    dark = open_page(f"{site}/en/", color_scheme="dark")
    background = dark.evaluate("getComputedStyle(document.body).backgroundColor")
    assert sum(int(v) for v in re.findall(r"\d+", background)[:3]) < 120, background


def test_a_status_change_animates_unless_the_reader_asks_for_less_motion(site, open_page):
    script = "row => { row.classList.add('changed'); return getComputedStyle(row).animationName; }"
    moving = open_page(f"{site}/en/")
    assert moving.eval_on_selector('[data-model="openai/gpt-4o"]', script) == "status-changed"
    still = open_page(f"{site}/en/", reduced_motion="reduce")
    assert still.eval_on_selector('[data-model="openai/gpt-4o"]', script) == "none"


def test_an_old_page_shows_placeholders_until_the_current_snapshot_arrives(site, open_page):
    held = []

    def restored_from_a_cache(page) -> None:
        block_push(page)
        page.route("**/api/v1/snapshot/", lambda route: held.append(route))  # held until placeholders are seen
        # An hour-old page, as a tab restored from a cache would be (set before the page's scripts run).
        page.add_init_script(
            "document.addEventListener('readystatechange', () => { if (document.readyState === 'interactive')"
            " document.documentElement.dataset.builtAt = new Date(Date.now() - 3600e3).toISOString(); });"
        )

    page = open_page(f"{site}/en/", before=restored_from_a_cache)
    # Predicates as functions: a bare expression would be eval()ed in the page, which its CSP forbids.
    page.wait_for_function("() => document.documentElement.classList.contains('is-refreshing')")
    skeleton = page.eval_on_selector('[data-model="openai/gpt-4o"] .status', "e => getComputedStyle(e).color")
    assert skeleton == "rgba(0, 0, 0, 0)"  # the text is hidden behind the placeholder
    deadline = time.monotonic() + 10
    while not held and time.monotonic() < deadline:
        page.wait_for_timeout(50)
    assert held, "the page did not ask for the current snapshot"
    for route in held:
        route.continue_()
    page.wait_for_function("() => !document.documentElement.classList.contains('is-refreshing')")
    assert page.text_content('[data-model="openai/gpt-4o"] .status-label') == "Unknown"
