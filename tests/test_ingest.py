"""Remote collectors push results with a per-collector token; results are stored and statuses derived."""

import pytest
from django.core.management import call_command
from rest_framework.test import APIClient

from collectors.models import CheckResult, CollectorToken
from monitoring.models import ModelStatus
from monitoring.status import Status

pytestmark = pytest.mark.django_db


@pytest.fixture
def collector():
    _, token = CollectorToken.issue("eu-collector", region="eu")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    return client


def test_pushed_results_are_stored_under_the_tokens_region_and_derive_a_status(model, collector):
    body = {"results": [{"model": "openai/gpt-4o", "outcome": "provider_fault", "http_status": 503}] * 2}
    response = collector.post("/api/v1/ingest/", body, format="json")
    assert response.status_code == 202, response.json()
    assert response.json()["accepted"] == 2
    assert set(CheckResult.objects.values_list("region", flat=True)) == {"eu"}
    assert ModelStatus.objects.get(model=model).status == Status.MAJOR_OUTAGE


def test_a_result_may_name_its_region_and_time(model, collector):
    body = {"results": [{"model": "openai/gpt-4o", "outcome": "ok", "region": "us", "time": "2026-01-01T00:00:00Z"}]}
    assert collector.post("/api/v1/ingest/", body, format="json").status_code == 202
    result = CheckResult.objects.get()
    assert result.region == "us" and result.time.year == 2026 and result.time.month == 1


def test_a_missing_or_wrong_token_is_refused(model):
    body = {"results": [{"model": "openai/gpt-4o", "outcome": "ok"}]}
    assert APIClient().post("/api/v1/ingest/", body, format="json").status_code == 401
    wrong = APIClient()
    wrong.credentials(HTTP_AUTHORIZATION="Bearer col_not-a-token")
    assert wrong.post("/api/v1/ingest/", body, format="json").status_code == 401
    assert not CheckResult.objects.exists()


def test_a_revoked_token_is_refused(model, collector):
    CollectorToken.objects.update(active=False)
    body = {"results": [{"model": "openai/gpt-4o", "outcome": "ok"}]}
    assert collector.post("/api/v1/ingest/", body, format="json").status_code == 401


@pytest.mark.parametrize(
    ("item", "field"),
    [
        ({"model": "openai/nope", "outcome": "ok"}, "Unknown model(s): openai/nope"),
        ({"model": "openai/gpt-4o", "outcome": "fine"}, "outcome"),
        ({"model": "openai/gpt-4o", "outcome": "ok", "latency_ms": -1}, "latency_ms"),
        ({"model": "openai/gpt-4o", "outcome": "ok", "time": "2999-01-01T00:00:00Z"}, "future"),
    ],
)
def test_bad_results_are_refused_whole_with_a_clear_error(model, collector, item, field):
    body = {"results": [{"model": "openai/gpt-4o", "outcome": "ok"}, item]}
    response = collector.post("/api/v1/ingest/", body, format="json")
    assert response.status_code == 400
    assert field in str(response.json())
    assert not CheckResult.objects.exists()


def test_create_collector_token_prints_a_token_once_and_stores_only_its_hash(capsys):
    call_command("create_collector_token", "ap-collector", "--region", "ap")
    token = capsys.readouterr().out.strip()
    stored = CollectorToken.objects.get(name="ap-collector")
    assert token.startswith("col_") and token not in stored.token_hash
    assert CollectorToken.authenticate(token) == stored
