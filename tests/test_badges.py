"""Badges: valid SVG for a model's status, uptime and latency; grey and saying so without evidence."""

import xml.etree.ElementTree as ET

import pytest

from monitoring.models import AIModel
from monitoring.status import Status
from monitoring.transitions import record_status
from publishing.snapshot_store import current_snapshot
from statuspage.badges import GREY, render_badge

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("renew_snapshot")]

SVG_NS = "{http://www.w3.org/2000/svg}"
GREEN = "#4c1"


def parse(response) -> ET.Element:
    assert response["Content-Type"].startswith("image/svg+xml")
    root = ET.fromstring(response.content)
    assert root.tag == f"{SVG_NS}svg"
    return root


def texts(root: ET.Element) -> list[str]:
    return [t.text for t in root.iter(f"{SVG_NS}text")]


def fills(root: ET.Element) -> set[str]:
    return {r.get("fill") for r in root.iter(f"{SVG_NS}rect")}


def test_a_model_without_evidence_gets_a_grey_unknown_badge(model, client):
    root = parse(client.get("/badge/openai/gpt-4o.svg"))
    assert "unknown" in texts(root) and "GPT-4o" in texts(root)
    assert GREY in fills(root) and GREEN not in fills(root)
    assert root.find(f"{SVG_NS}title").text == "GPT-4o: unknown"
    assert root.get("role") == "img" and root.get("aria-label") == "GPT-4o: unknown"


@pytest.mark.parametrize(
    ("status", "message", "colour"),
    [
        (Status.OPERATIONAL, "operational", GREEN),
        (Status.DEGRADED_PERFORMANCE, "degraded performance", "#dfb317"),
        (Status.PARTIAL_OUTAGE, "partial outage", "#fe7d37"),
        (Status.MAJOR_OUTAGE, "major outage", "#e05d44"),
        (Status.UNDER_MAINTENANCE, "under maintenance", "#007ec6"),
    ],
)
def test_the_status_badge_names_and_colours_each_status(model, client, status, message, colour):
    record_status(model.pk, status, checked=True)
    root = parse(client.get("/badge/openai/gpt-4o.svg"))
    assert message in texts(root) and colour in fills(root)


def test_uptime_and_latency_badges_say_no_data_without_evidence(model, client):
    for kind in ("uptime", "latency"):
        root = parse(client.get(f"/badge/openai/gpt-4o/{kind}.svg"))
        assert "no data" in texts(root) and GREY in fills(root)


def test_uptime_and_latency_badges_show_the_snapshot_s_figures(model, client, monkeypatch):
    snapshot = current_snapshot()
    item = snapshot.data["models"][0]
    item["uptime"]["percent_90d"] = 99.953
    item["latency"]["p50_ms"] = 412.4
    uptime = parse(client.get("/badge/openai/gpt-4o/uptime.svg"))
    latency = parse(client.get("/badge/openai/gpt-4o/latency.svg"))
    assert "99.95%" in texts(uptime) and GREEN in fills(uptime)
    assert "412 ms" in texts(latency)


def test_an_unknown_model_is_a_404_that_is_still_an_image(db, client):
    response = client.get("/badge/openai/nope.svg")
    assert response.status_code == 404
    assert "not found" in texts(parse(response))


def test_badges_are_versioned_and_answer_if_none_match(model, client):
    response = client.get("/badge/openai/gpt-4o.svg")
    assert response["X-Snapshot-Version"] == current_snapshot().version
    assert client.get("/badge/openai/gpt-4o.svg", HTTP_IF_NONE_MATCH=response["ETag"]).status_code == 304


def test_badge_text_is_escaped_and_widths_grow_with_it():
    narrow = ET.fromstring(render_badge("a", "b", GREY))
    wide = ET.fromstring(render_badge("a <b> & c", "a much longer message", GREY))
    assert int(wide.get("width")) > int(narrow.get("width"))
    assert "a <b> & c" in [t.text for t in wide.iter(f"{SVG_NS}text")]


def test_private_models_have_no_badge(provider, client):
    AIModel.objects.create(provider=provider, name="Internal", slug="internal", public=False)
    assert client.get("/badge/openai/internal.svg").status_code == 404


def test_a_very_long_unknown_name_gets_a_normal_sized_not_found_badge(db, client):
    short = parse(client.get("/badge/openai/nope.svg"))
    long = client.get(f"/badge/openai/{'x' * 3000}.svg")
    assert long.status_code == 404
    assert long.get("Content-Type", "").startswith("image/svg")
    assert int(parse(long).get("width")) == int(short.get("width")) < 200
