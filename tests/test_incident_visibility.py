"""Incidents show publicly only the public models they affect; one left with none leaves the page and the JSON."""

import json
import time
from datetime import timedelta

import pytest
from django.utils import timezone

from alerts.incidents import update_incidents
from alerts.models import EventCursor
from demo.registry import seed_demo
from monitoring.incident_data import public_incidents
from monitoring.models import AIModel, Incident
from monitoring.status import Status
from monitoring.transitions import record_status
from tests.servers import serve
from tests.test_statuspage_served import fetch


def _outage_with_incident(slug: str) -> tuple[AIModel, Incident]:
    EventCursor.objects.get_or_create(name="incidents", defaults={"last_id": 0})
    model = AIModel.objects.select_related("provider").get(slug=slug)
    record_status(model.pk, Status.MAJOR_OUTAGE, reason="failing: HTTP 503: outage.", checked=True)
    update_incidents()
    return model, Incident.objects.get(models_affected=model)


@pytest.mark.django_db
def test_an_incident_naming_only_private_models_is_not_public_but_one_naming_none_is(provider):
    hidden = AIModel.objects.create(provider=provider, name="H", slug="h", public=False, endpoint="http://x.test/v1")
    shown = AIModel.objects.create(provider=provider, name="S", slug="s", endpoint="http://x.test/v1")
    private_only = Incident.objects.create(title="private")
    private_only.models_affected.add(hidden)
    mixed = Incident.objects.create(title="mixed")
    mixed.models_affected.add(hidden, shown)
    Incident.objects.create(title="site-wide")
    assert set(public_incidents(Incident.objects.all()).values_list("title", flat=True)) == {"mixed", "site-wide"}


@pytest.mark.django_db(transaction=True)
def test_a_model_made_private_loses_its_incident_from_the_page_and_incidents_json_within_a_second(tmp_path):
    seed_demo()
    with serve(tmp_path / "uvicorn.log") as site:
        model, incident = _outage_with_incident("gemini-2-5-flash")
        title = incident.title_in("en")
        deadline = time.monotonic() + 5
        while title.encode() not in fetch(f"{site}/en/")[2]:
            assert time.monotonic() < deadline, "the incident never showed"
            time.sleep(0.05)
        assert any(i["name"] == title for i in json.loads(fetch(f"{site}/api/v2/incidents.json")[2])["incidents"])

        model.public = False
        model.save()
        started = time.monotonic()
        while True:
            page = fetch(f"{site}/en/")[2]
            listed = json.loads(fetch(f"{site}/api/v2/incidents.json")[2])["incidents"]
            if title.encode() not in page and not any(i["name"] == title for i in listed):
                break
            assert time.monotonic() - started < 5, "the incident stayed public"
            time.sleep(0.02)
        elapsed = time.monotonic() - started
        assert elapsed < 1.0, f"{elapsed:.2f} s"
        # It stays in the admin's data, and the next round resolves it: nobody watches the model now.
        update_incidents(timezone.now() + timedelta(seconds=1))
        assert Incident.objects.get(pk=incident.pk).state == Incident.State.RESOLVED
