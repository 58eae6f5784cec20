"""The incident feed: valid Atom with one entry per open or recent incident, absolute links."""

import xml.etree.ElementTree as ET

import pytest

from monitoring.models import Incident, IncidentUpdate
from publishing.snapshot_store import current_snapshot

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("renew_snapshot")]

ATOM = "{http://www.w3.org/2005/Atom}"


def feed(client) -> ET.Element:
    response = client.get("/feeds/incidents.atom")
    assert response.status_code == 200 and response["Content-Type"].startswith("application/atom+xml")
    root = ET.fromstring(response.content)
    assert root.tag == f"{ATOM}feed"
    return root


def test_an_empty_feed_is_still_valid_atom(db, client):
    root = feed(client)
    assert root.find(f"{ATOM}title").text == "AI model status: incidents"
    assert root.find(f"{ATOM}updated") is not None and root.findall(f"{ATOM}entry") == []


def test_each_incident_is_an_entry_with_its_timeline(model, client):
    incident = Incident.objects.create(title="Elevated errors", impact=Incident.Impact.MAJOR)
    incident.models_affected.add(model)
    IncidentUpdate.objects.create(incident=incident, state="investigating", body="Looking into <503>s.")
    root = feed(client)
    (entry,) = root.findall(f"{ATOM}entry")
    assert entry.find(f"{ATOM}title").text == "[Investigating] Elevated errors"
    link = entry.find(f"{ATOM}link").get("href")
    assert link.startswith("http") and link.endswith(f"/en/incidents/#incident-{incident.pk}")
    assert entry.find(f"{ATOM}id").text == link
    summary = entry.find(f"{ATOM}summary").text
    assert "Looking into &lt;503&gt;s." in summary and "openai/gpt-4o" in summary
    assert {c.get("term") for c in entry.findall(f"{ATOM}category")} == {"major", "openai/gpt-4o"}


def test_the_feed_is_versioned_like_the_other_public_reads(db, client):
    response = client.get("/feeds/incidents.atom")
    assert response["X-Snapshot-Version"] == current_snapshot().version
    assert client.get("/feeds/incidents.atom", HTTP_IF_NONE_MATCH=response["ETag"]).status_code == 304
