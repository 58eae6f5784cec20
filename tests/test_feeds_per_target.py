"""Feeds to follow one provider or one model (Atom), and the maintenance calendar (iCalendar)."""

import xml.etree.ElementTree as ET
from datetime import timedelta

import pytest
from django.utils import timezone

from monitoring.models import AIModel, Incident, IncidentUpdate, Maintenance, Provider

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("renew_snapshot")]

ATOM = "{http://www.w3.org/2005/Atom}"


@pytest.fixture
def cast(db):
    a = Provider.objects.create(name="Anthropic", slug="anthropic")
    b = Provider.objects.create(name="Google", slug="google")
    claude = AIModel.objects.create(provider=a, name="Claude", slug="claude", endpoint="http://127.0.0.1:9/v1")
    haiku = AIModel.objects.create(provider=a, name="Haiku", slug="haiku", endpoint="http://127.0.0.1:9/v1")
    gemini = AIModel.objects.create(provider=b, name="Gemini", slug="gemini", endpoint="http://127.0.0.1:9/v1")
    for title, model in (("Claude errors", claude), ("Haiku slow", haiku), ("Gemini down", gemini)):
        incident = Incident.objects.create(title=title, provider=model.provider)
        incident.models_affected.add(model)
        IncidentUpdate.objects.create(incident=incident, state="investigating", body=f"{title}, looking.")
    return a, b, claude, gemini


def titles(client, path: str) -> list[str]:
    response = client.get(path)
    assert response.status_code == 200 and response["Content-Type"].startswith("application/atom+xml")
    root = ET.fromstring(response.content)
    assert root.find(f"{ATOM}link[@rel='self']").get("href").endswith(path)
    return sorted(e.find(f"{ATOM}title").text for e in root.findall(f"{ATOM}entry"))


def test_a_provider_feed_has_its_incidents_only(client, cast):
    assert titles(client, "/feeds/providers/anthropic.atom") == [
        "[Investigating] Claude errors",
        "[Investigating] Haiku slow",
    ]
    assert titles(client, "/feeds/providers/google.atom") == ["[Investigating] Gemini down"]


def test_a_model_feed_has_its_incidents_only(client, cast):
    assert titles(client, "/feeds/models/anthropic/claude.atom") == ["[Investigating] Claude errors"]


def test_a_feed_of_an_unknown_or_private_target_is_not_found(client, cast):
    AIModel.objects.filter(slug="gemini").update(public=False)
    assert client.get("/feeds/providers/nobody.atom").status_code == 404
    assert client.get("/feeds/models/anthropic/none.atom").status_code == 404


def unfolded(body: bytes) -> list[str]:
    text = body.decode()
    assert "\r\n" in text and all(len(line.encode()) <= 75 for line in text.split("\r\n"))
    return text.replace("\r\n ", "").split("\r\n")


def test_the_maintenance_calendar_lists_each_window_as_an_event(client, cast):
    a, b, claude, _gemini = cast
    start = timezone.now().replace(microsecond=0) + timedelta(days=1)
    Maintenance.objects.create(
        title="Database upgrade; part 1, of 2",
        description="Writes pause.\nReads go on." + " Long text" * 10,
        provider=a,
        starts_at=start,
        ends_at=start + timedelta(hours=1),
    )
    Maintenance.objects.create(title="Gemini window", provider=b, starts_at=start, ends_at=start + timedelta(hours=2))

    response = client.get("/feeds/maintenance.ics")
    assert response["Content-Type"].startswith("text/calendar")
    lines = unfolded(response.content)
    assert lines[0] == "BEGIN:VCALENDAR" and lines[-2] == "END:VCALENDAR"
    assert lines.count("BEGIN:VEVENT") == 2
    assert "SUMMARY:Database upgrade\\; part 1\\, of 2" in lines
    assert f"DTSTART:{start.strftime('%Y%m%dT%H%M%SZ')}" in lines
    assert any(line.startswith("DESCRIPTION:Writes pause.\\nReads go on.") for line in lines)

    only_a = unfolded(client.get("/feeds/maintenance.ics?provider=anthropic").content)
    assert only_a.count("BEGIN:VEVENT") == 1
    only_claude = unfolded(client.get("/feeds/maintenance.ics?model=anthropic/claude").content)
    assert only_claude.count("BEGIN:VEVENT") == 1 and "SUMMARY:Gemini window" not in only_claude
