"""Hostile JSON (deeply nested, huge) is refused cleanly: an error frame, or a 4xx naming the limit."""

import asyncio
import json
import logging

import pytest
import websockets
from asgiref.sync import sync_to_async
from django.conf import settings
from django.db import connections
from rest_framework.test import APIClient

from collectors.models import CollectorToken
from monitoring.json_limits import JSONLimitError, loads, nesting_depth
from monitoring.models import AIModel
from monitoring.transitions import record_status

NESTED = "[" * 5000


def test_nesting_is_counted_outside_strings_only():
    assert nesting_depth('{"a": [[1], {"b": "[[[[[[[["}]}', stop_after=2) == 3
    assert nesting_depth('"\\"[[[[["', stop_after=1) == 0
    assert nesting_depth(NESTED, stop_after=32) == 33  # stops counting past the limit


def test_loads_refuses_deep_and_large_json_naming_the_limit():
    with pytest.raises(JSONLimitError, match="nested too deeply: more than 32 levels"):
        loads(NESTED, max_depth=32)
    with pytest.raises(JSONLimitError, match="too large: more than 10 bytes"):
        loads('{"a": "0123456789"}', max_bytes=10)
    assert loads('{"a": [[1]]}', max_depth=3) == {"a": [[1]]}


@pytest.mark.django_db
def test_a_deeply_nested_body_to_the_models_api_gets_a_400_naming_the_problem(staff_api, caplog):
    with caplog.at_level(logging.WARNING):
        response = staff_api.post("/api/v1/models/", data=NESTED, content_type="application/json")
    assert response.status_code == 400
    assert "nested too deeply" in response.json()["detail"]
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


@pytest.mark.django_db
def test_a_body_over_the_size_limit_gets_a_413_naming_the_limit(staff_api, settings):
    settings.JSON_MAX_BYTES = 1000
    response = staff_api.post("/api/v1/models/", data=json.dumps({"name": "x" * 2000}), content_type="application/json")
    assert response.status_code == 413
    assert "more than 1000 bytes" in response.json()["detail"]


@pytest.mark.django_db
def test_ordinary_json_still_reaches_the_api(provider, staff_api):
    body = {"provider": "openai", "name": "GPT", "slug": "gpt", "endpoint": "http://127.0.0.1:8900/v1"}
    response = staff_api.post("/api/v1/models/", body, format="json")
    assert response.status_code == 201, response.json()


@pytest.mark.django_db
def test_a_deeply_nested_body_to_ingest_gets_a_400(caplog):
    _, token = CollectorToken.issue("eu", region="eu")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    with caplog.at_level(logging.WARNING):
        response = client.post("/api/v1/ingest/", data='{"results": ' + NESTED, content_type="application/json")
    assert response.status_code == 400
    assert "nested too deeply" in response.json()["detail"]
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


async def next_frame(ws) -> dict:
    """The next frame that answers or reports something (heartbeats and snapshot news may come between)."""
    while True:
        frame = json.loads(await asyncio.wait_for(ws.recv(), 5))
        if frame["type"] not in ("heartbeat", "snapshot"):
            return frame


@pytest.mark.django_db(transaction=True)
async def test_5000_nested_brackets_over_the_websocket_get_an_error_frame_and_the_connection_stays_open(
    asgi_server, provider, tmp_path
):
    model = await sync_to_async(AIModel.objects.create)(
        provider=provider, name="M", slug="m", endpoint="http://127.0.0.1:1/v1"
    )
    url = asgi_server(REDIS_URL=settings.REDIS_URL, LOG_LEVEL="INFO")
    try:
        async with websockets.connect(url.replace("http://", "ws://") + "/ws/status/", origin=url) as ws:
            assert (await next_frame(ws))["type"] == "hello"
            await ws.send(NESTED)
            error = await next_frame(ws)
            assert error["type"] == "error"
            assert "nested too deeply" in error["message"]
            # Still open: a ping is answered and live events keep coming.
            await ws.send(json.dumps({"type": "ping"}))
            assert (await next_frame(ws))["type"] == "pong"
            await sync_to_async(record_status)(model.pk, "major_outage", reason="t", source="operator", manual=True)
            assert (await next_frame(ws))["type"] == "status_change"
            # Too large is refused the same way.
            await ws.send(json.dumps({"type": "ping", "pad": "x" * 20000}))
            reply = await next_frame(ws)
            assert reply["type"] == "error" and "too large" in reply["message"]
    finally:
        await sync_to_async(connections.close_all)()
    log = "".join(path.read_text() for path in tmp_path.glob("uvicorn-*.log"))
    assert "Traceback" not in log and "RecursionError" not in log and " ERROR " not in log


def test_a_provider_answering_deeply_nested_json_is_a_malformed_answer_not_a_crash():
    from collectors.probes.base import error_text, parse_json
    from collectors.probes.conditions import evaluate, parse_all

    assert error_text(503, '{"error": ' + NESTED) == "HTTP 503: " + ('{"error": ' + NESTED)[:300]
    with pytest.raises(ValueError, match="nested too deeply"):
        parse_json(NESTED.encode())
    failures = evaluate(parse_all(["[BODY].a == 1"]), 200, 5.0, NESTED)
    assert failures
