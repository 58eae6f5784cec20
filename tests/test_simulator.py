"""The AI-provider simulator: wire formats, injected faults, scenario validation, live control and the command."""

from __future__ import annotations

import asyncio
import json
import math
import os
import re
import socket
import subprocess
import sys
import time
import urllib.request
from contextlib import ExitStack
from pathlib import Path

import aiohttp
import pytest

import demo.simulator.app as simulator_app
from demo.simulator import (
    DEMO_SCENARIO_PATH,
    Scenario,
    ScenarioError,
    build_app,
    load_scenario,
    serve_in_background,
)
from demo.simulator.behaviour import Behaviour

PROJECT_ROOT = Path(__file__).resolve().parents[1]
MESSAGES = [{"role": "user", "content": "Reply with one word."}]


class Clock:
    """A clock the test moves by hand, so outage windows and flap cycles take no real time."""

    def __init__(self, now: float = 1_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def sse_events(text: str) -> list[tuple[str | None, str]]:
    """(event name, data) for each server-sent event in `text`."""
    events = []
    for block in text.split("\n\n"):
        if not block.strip():
            continue
        name, data = None, []
        for line in block.split("\n"):
            if line.startswith("event: "):
                name = line[len("event: ") :]
            elif line.startswith("data: "):
                data.append(line[len("data: ") :])
        events.append((name, "\n".join(data)))
    return events


async def chat(session: aiohttp.ClientSession, url: str, model: str, **extra) -> aiohttp.ClientResponse:
    response = await session.post(f"{url}/v1/chat/completions", json={"model": model, "messages": MESSAGES, **extra})
    await response.read()
    return response


# -- OpenAI wire format ---------------------------------------------------------------------------


async def test_streamed_chat_completion_ends_with_done():
    with serve_in_background({"models": {"gpt-4o": {}}}) as sim:
        async with aiohttp.ClientSession() as session:
            body = {
                "model": "gpt-4o",
                "messages": MESSAGES,
                "stream": True,
                "max_tokens": 5,
                "stream_options": {"include_usage": True},
            }
            async with session.post(f"{sim.url}/v1/chat/completions", json=body) as response:
                assert response.status == 200
                assert response.headers["content-type"].startswith("text/event-stream")
                events = sse_events(await response.text())
    assert events[-1] == (None, "[DONE]")
    chunks = [json.loads(data) for _, data in events[:-1]]
    assert {chunk["object"] for chunk in chunks} == {"chat.completion.chunk"}
    deltas = [chunk["choices"][0]["delta"] for chunk in chunks if chunk["choices"]]
    contents = [delta["content"] for delta in deltas if delta.get("content")]
    assert len(contents) == 5
    finishes = [chunk["choices"][0]["finish_reason"] for chunk in chunks if chunk["choices"]]
    assert finishes[-1] == "length"
    assert chunks[-1]["choices"] == []
    assert chunks[-1]["usage"]["completion_tokens"] == 5


async def test_non_streamed_chat_completion_has_content_and_usage():
    with serve_in_background({"models": {"gpt-4o-mini": {}}}) as sim:
        async with aiohttp.ClientSession() as session:
            body = {"model": "gpt-4o-mini", "messages": MESSAGES, "max_completion_tokens": 7}
            async with session.post(f"{sim.url}/v1/chat/completions", json=body) as response:
                assert response.status == 200
                completion = await response.json()
    assert completion["object"] == "chat.completion"
    assert completion["model"] == "gpt-4o-mini"
    assert completion["choices"][0]["message"]["role"] == "assistant"
    assert completion["choices"][0]["message"]["content"].strip()
    assert completion["usage"]["completion_tokens"] == 7
    assert completion["usage"]["total_tokens"] == completion["usage"]["prompt_tokens"] + 7


async def test_streamed_tokens_wait_for_ttft_and_are_paced_by_tokens_per_second():
    scenario = {"models": {"slow": {"ttft_ms": 200, "tokens_per_s": 50}}}
    with serve_in_background(scenario) as sim:
        async with aiohttp.ClientSession() as session:
            body = {"model": "slow", "messages": MESSAGES, "stream": True, "max_tokens": 6}
            started = time.monotonic()
            async with session.post(f"{sim.url}/v1/chat/completions", json=body) as response:
                first_line = await response.content.readline()
                first_at = time.monotonic() - started
                rest = await response.text()
            total = time.monotonic() - started
    assert first_line.startswith(b"data: ")
    assert 0.18 <= first_at < 1.0
    # Five more tokens at 50 tokens/s take about 0.1 s after the first.
    assert total >= first_at + 0.08
    assert rest.rstrip().endswith("data: [DONE]")


async def test_embeddings_are_deterministic_vectors_of_the_configured_dimension():
    scenario = {"models": {"text-embedding-3-small": {}, "wide": {"embedding_dim": 12}}}
    with serve_in_background(scenario) as sim:
        async with aiohttp.ClientSession() as session:
            url = f"{sim.url}/v1/embeddings"
            async with session.post(url, json={"model": "text-embedding-3-small", "input": ["a", "b"]}) as response:
                assert response.status == 200
                pair = await response.json()
            async with session.post(url, json={"model": "text-embedding-3-small", "input": "a"}) as response:
                single = await response.json()
            async with session.post(url, json={"model": "wide", "input": "a"}) as response:
                wide = await response.json()
    assert pair["object"] == "list"
    assert [item["index"] for item in pair["data"]] == [0, 1]
    assert len(pair["data"][0]["embedding"]) == 8
    assert pair["data"][0]["embedding"] != pair["data"][1]["embedding"]
    assert single["data"][0]["embedding"] == pair["data"][0]["embedding"]
    assert pair["usage"]["prompt_tokens"] >= 2
    assert len(wide["data"][0]["embedding"]) == 12


async def test_model_list_and_health_answer():
    with serve_in_background({"models": {"a": {}, "b": {}}}) as sim:
        async with aiohttp.ClientSession() as session:
            async with session.get(f"{sim.url}/health") as response:
                assert await response.json() == {"status": "ok"}
            async with session.get(f"{sim.url}/v1/models") as response:
                listing = await response.json()
            async with session.get(f"{sim.url}/v1/models", headers={"anthropic-version": "2023-06-01"}) as response:
                anthropic_listing = await response.json()
    assert [model["id"] for model in listing["data"]] == ["a", "b"]
    assert [model["id"] for model in anthropic_listing["data"]] == ["a", "b"]
    assert anthropic_listing["has_more"] is False


async def test_unknown_model_gets_404_in_each_wire_format():
    with serve_in_background({"models": {"known": {}}}) as sim:
        async with aiohttp.ClientSession() as session:
            async with session.post(
                f"{sim.url}/v1/chat/completions", json={"model": "gpt-9", "messages": MESSAGES}
            ) as response:
                assert response.status == 404
                openai_error = await response.json()
            async with session.post(
                f"{sim.url}/v1/messages", json={"model": "claude-9", "messages": MESSAGES, "max_tokens": 4}
            ) as response:
                assert response.status == 404
                anthropic_error = await response.json()
    assert openai_error["error"]["code"] == "model_not_found"
    assert "gpt-9" in openai_error["error"]["message"]
    assert anthropic_error["type"] == "error"
    assert anthropic_error["error"]["type"] == "not_found_error"


# -- Anthropic wire format ------------------------------------------------------------------------


async def test_anthropic_stream_sends_the_full_event_sequence():
    with serve_in_background({"models": {"claude-sonnet-4": {"tokens_per_s": 500}}}) as sim:
        async with aiohttp.ClientSession() as session:
            body = {"model": "claude-sonnet-4", "messages": MESSAGES, "max_tokens": 4, "stream": True}
            async with session.post(f"{sim.url}/v1/messages", json=body, headers={"x-api-key": "k"}) as response:
                assert response.status == 200
                events = sse_events(await response.text())
    names = [name for name, _ in events]
    assert names == [
        "message_start",
        "content_block_start",
        *["content_block_delta"] * 4,
        "content_block_stop",
        "message_delta",
        "message_stop",
    ]
    payloads = [json.loads(data) for _, data in events]
    assert all(payload["type"] == name for (name, _), payload in zip(events, payloads, strict=True))
    assert payloads[0]["message"]["model"] == "claude-sonnet-4"
    assert {payload["delta"]["type"] for payload in payloads[2:6]} == {"text_delta"}
    message_delta = payloads[-2]
    assert message_delta["usage"]["output_tokens"] == 4
    assert message_delta["delta"]["stop_reason"] == "max_tokens"


async def test_anthropic_message_without_stream_and_without_max_tokens():
    with serve_in_background({"models": {"claude-sonnet-4": {}}}) as sim:
        async with aiohttp.ClientSession() as session:
            url = f"{sim.url}/v1/messages"
            async with session.post(url, json={"model": "claude-sonnet-4", "messages": MESSAGES, "max_tokens": 3}) as r:
                message = await r.json()
            async with session.post(url, json={"model": "claude-sonnet-4", "messages": MESSAGES}) as response:
                assert response.status == 400
                missing = await response.json()
    assert message["type"] == "message"
    assert message["content"][0]["type"] == "text"
    assert message["usage"]["output_tokens"] == 3
    assert missing["error"]["type"] == "invalid_request_error"
    assert "max_tokens" in missing["error"]["message"]


# -- Faults ---------------------------------------------------------------------------------------


async def test_rate_limited_model_answers_429_with_retry_after():
    with serve_in_background({"models": {"claude-opus-4": {"rate_limit_rate": 1, "retry_after_s": 7}}}) as sim:
        async with aiohttp.ClientSession() as session:
            body = {"model": "claude-opus-4", "messages": MESSAGES, "max_tokens": 4}
            async with session.post(f"{sim.url}/v1/messages", json=body) as response:
                assert response.status == 429
                assert response.headers["retry-after"] == "7"
                anthropic_error = await response.json()
            openai_response = await chat(session, sim.url, "claude-opus-4")
            assert openai_response.status == 429
            openai_error = await openai_response.json()
    assert anthropic_error["type"] == "error"
    assert anthropic_error["error"]["type"] == "rate_limit_error"
    assert openai_error["error"]["code"] == "rate_limit_exceeded"


async def test_overloaded_and_erroring_models_answer_529_and_their_error_status():
    scenario = {"models": {"busy": {"overloaded_rate": 1}, "broken": {"error_rate": 1, "error_status": 502}}}
    with serve_in_background(scenario) as sim:
        async with aiohttp.ClientSession() as session:
            body = {"model": "busy", "messages": MESSAGES, "max_tokens": 4}
            async with session.post(f"{sim.url}/v1/messages", json=body) as response:
                assert response.status == 529
                overloaded = await response.json()
            async with session.post(f"{sim.url}/v1/messages", json={**body, "model": "broken"}) as response:
                assert response.status == 502
                anthropic_502 = await response.json()
            response = await chat(session, sim.url, "broken")
            assert response.status == 502
            openai_502 = await response.json()
    assert overloaded["error"]["type"] == "overloaded_error"
    assert anthropic_502["error"]["type"] == "api_error"
    assert openai_502["error"]["type"] == "server_error"


def test_random_faults_are_reproducible_with_a_seed():
    scenario = {"seed": 42, "models": {"m": {"error_rate": 0.3, "rate_limit_rate": 0.2}}}

    def outcomes() -> list[str]:
        behaviour = Behaviour(load_scenario(scenario).models["m"], 42)
        return [behaviour.judge(0.0).outcome for _ in range(200)]

    first = outcomes()
    assert first == outcomes()
    assert 40 < first.count("error") < 80
    assert 20 < first.count("rate_limited") < 60
    assert 80 < first.count("ok") < 140


async def test_a_hang_ends_when_the_client_times_out_and_other_requests_still_answer():
    with serve_in_background({"models": {"stuck": {"hang_rate": 1}, "fine": {}}}) as sim:
        async with aiohttp.ClientSession() as session:

            async def hung() -> float:
                started = time.monotonic()
                with pytest.raises(asyncio.TimeoutError):
                    await session.post(
                        f"{sim.url}/v1/chat/completions",
                        json={"model": "stuck", "messages": MESSAGES},
                        timeout=aiohttp.ClientTimeout(total=0.6),
                    )
                return time.monotonic() - started

            hang = asyncio.create_task(hung())
            await asyncio.sleep(0.05)
            started = time.monotonic()
            statuses = [(await chat(session, sim.url, "fine")).status for _ in range(5)]
            answered_in = time.monotonic() - started
            waited = await hang
            stats = sim.app.stats()
    assert statuses == [200] * 5
    assert answered_in < 0.5
    assert 0.55 <= waited < 2.0
    assert stats["models"]["stuck"]["hang"] == 1


async def test_a_hang_is_answered_with_504_after_hang_max_s():
    with serve_in_background({"models": {"stuck": {"hang_rate": 1, "hang_max_s": 0.2}}}) as sim:
        async with aiohttp.ClientSession() as session:
            response = await chat(session, sim.url, "stuck")
    assert response.status == 504


async def test_stopping_the_server_releases_hung_requests_promptly():
    with ExitStack() as running:
        sim = running.enter_context(serve_in_background({"models": {"stuck": {"hang_rate": 1}}}))
        async with aiohttp.ClientSession() as session:
            body = {"model": "stuck", "messages": MESSAGES}
            hang = asyncio.create_task(session.post(f"{sim.url}/v1/chat/completions", json=body))
            await asyncio.sleep(0.2)
            started = time.monotonic()
            running.close()
            stopped_in = time.monotonic() - started
            response = await hang
    assert stopped_in < 2.0
    assert response.status == 503


async def test_broken_stream_is_cut_without_the_terminating_events():
    scenario = {
        "models": {"flaky": {"broken_stream_rate": 1}, "flaky-paced": {"broken_stream_rate": 1, "tokens_per_s": 200}}
    }
    with serve_in_background(scenario) as sim:
        async with aiohttp.ClientSession() as session:
            received = {}
            for model in ("flaky", "flaky-paced"):
                data = b""
                body = {"model": model, "messages": MESSAGES, "stream": True, "max_tokens": 8}
                with pytest.raises(aiohttp.ClientPayloadError):
                    async with session.post(f"{sim.url}/v1/chat/completions", json=body) as response:
                        assert response.status == 200
                        async for chunk in response.content.iter_any():
                            data += chunk
                received[model] = data.decode()
            anthropic = b""
            body = {"model": "flaky", "messages": MESSAGES, "stream": True, "max_tokens": 8}
            with pytest.raises(aiohttp.ClientPayloadError):
                async with session.post(f"{sim.url}/v1/messages", json=body) as response:
                    async for chunk in response.content.iter_any():
                        anthropic += chunk
            with pytest.raises(aiohttp.ClientPayloadError):
                async with session.post(f"{sim.url}/v1/embeddings", json={"model": "flaky", "input": "x"}) as response:
                    await response.read()
    for text in received.values():
        assert '"content":' in text
        assert "[DONE]" not in text
        assert 'finish_reason":"' not in text
    assert "content_block_delta" in anthropic.decode()
    assert "message_stop" not in anthropic.decode()


async def test_outage_windows_fail_only_while_they_last():
    clock = Clock()
    scenario = {"models": {"m": {"outages": [{"start": 10, "end": 20}, {"start": 30, "end": 40, "status": 502}]}}}
    with serve_in_background(scenario, clock=clock) as sim:
        async with aiohttp.ClientSession() as session:
            statuses = []
            for offset in (5, 10, 19.9, 20, 35, 45):
                clock.now = 1_000_000.0 + offset
                statuses.append((await chat(session, sim.url, "m")).status)
    assert statuses == [200, 503, 503, 200, 502, 200]


def test_outage_windows_accept_iso_timestamps_and_open_ends():
    scenario = load_scenario(
        {
            "models": {
                "dated": {"outages": [{"start": "2030-01-01T00:00:00Z", "end": "2030-01-01T01:00:00+00:00"}]},
                "forever": {"outages": [{"status": 503}]},
            }
        },
        now=0.0,
    )
    dated = Behaviour(scenario.models["dated"])
    new_year = 1893456000.0  # 2030-01-01T00:00:00Z
    assert dated.judge(new_year - 1).outcome == "ok"
    assert dated.judge(new_year + 1800).status == 503
    assert dated.judge(new_year + 3600).outcome == "ok"
    forever = Behaviour(scenario.models["forever"])
    assert {forever.judge(t).status for t in (-1e9, 0.0, 1e9)} == {503}


def test_flap_alternates_up_and_down_from_load_time():
    scenario = load_scenario({"models": {"m": {"flap": {"up_s": 60, "down_s": 30, "down_status": 500}}}}, now=1000.0)
    behaviour = Behaviour(scenario.models["m"])
    timeline = {t: behaviour.judge(1000.0 + t).status for t in (0, 59.9, 60, 89.9, 90, 149.9, 150)}
    assert timeline == {0: 200, 59.9: 200, 60: 500, 89.9: 500, 90: 200, 149.9: 200, 150: 500}


async def test_flapping_model_answers_its_down_status_over_http():
    clock = Clock()
    with serve_in_background(
        {"models": {"m": {"flap": {"up_s": 60, "down_s": 60, "down_status": 500}}}}, clock=clock
    ) as sim:
        async with aiohttp.ClientSession() as session:
            up = (await chat(session, sim.url, "m")).status
            clock.now += 61
            down = (await chat(session, sim.url, "m")).status
            clock.now += 60
            back = (await chat(session, sim.url, "m")).status
    assert (up, down, back) == (200, 500, 200)


async def test_a_model_requiring_an_api_key_rejects_others_with_401():
    with serve_in_background({"models": {"locked": {"require_api_key": "sk-right"}}}) as sim:
        async with aiohttp.ClientSession() as session:
            url = f"{sim.url}/v1/chat/completions"
            body = {"model": "locked", "messages": MESSAGES}
            statuses = []
            for headers in (
                {},
                {"Authorization": "Bearer sk-wrong"},
                {"Authorization": "Bearer sk-right"},
                {"x-api-key": "sk-right"},
            ):
                async with session.post(url, json=body, headers=headers) as response:
                    statuses.append(response.status)
    assert statuses == [401, 401, 200, 200]


# -- Scenarios ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("scenario", "message"),
    [
        ({"models": {"gpt-4o": {"error_rate": 1.5}}}, "models.gpt-4o.error_rate: must be a number between 0 and 1"),
        (
            {"models": {"gpt-4o": {"eror_rate": 0.1}}},
            "models.gpt-4o.eror_rate: unknown setting (did you mean 'error_rate'?)",
        ),
        ({"models": {"m": {"ttft_ms": {"p50": 500, "p95": 100}}}}, "models.m.ttft_ms.p95: must be >= p50"),
        ({"models": {"m": {"ttft_ms": {"p50": 100, "p99": 900}}}}, "models.m.ttft_ms.p99: unknown setting"),
        ({"models": {"m": {"outages": [{"start": 0, "end": 5, "status": 200}]}}}, "models.m.outages[0].status:"),
        ({"models": {"m": {"outages": [{"start": 50, "end": 5}]}}}, "models.m.outages[0].end: must be after start"),
        ({"models": {"m": {"outages": [{"start": "yesterday"}]}}}, "models.m.outages[0].start:"),
        ({"models": {"m": {"flap": {"up_s": 10}}}}, "models.m.flap.down_s: is required"),
        ({"models": {"m": {"error_rate": 0.6, "hang_rate": 0.6}}}, "models.m: error_rate"),
        ({"models": {"m": {"embedding_dim": 0}}}, "models.m.embedding_dim: must be an integer"),
        ({"defaults": {"tokens_per_s": -1}, "models": {}}, "defaults.tokens_per_s: must be a number >= 0"),
        ({"model": {"m": {}}}, "model: unknown top-level key (did you mean 'models'?)"),
        ({"seed": "abc", "models": {}}, "seed: must be an integer"),
        ({"models": ["gpt-4o"]}, "models: must be a mapping"),
    ],
)
def test_invalid_scenario_errors_name_the_field(scenario, message):
    with pytest.raises(ScenarioError) as error:
        load_scenario(scenario)
    assert str(error.value).startswith(message)


def test_scenarios_load_from_yaml_and_json_files_and_round_trip(tmp_path):
    yaml_file = tmp_path / "scenario.yaml"
    yaml_file.write_text(
        "seed: 3\ndefaults:\n  ttft_ms: {p50: 100, p95: 300}\nmodels:\n  a: {error_rate: 0.1}\n  b:\n"
        "    outages:\n      - {start: 2030-01-01T00:00:00Z, end: 2030-01-02T00:00:00Z}\n"
    )
    json_file = tmp_path / "scenario.json"
    json_file.write_text(json.dumps({"models": {"c": {"tokens_per_s": 20}}}))
    from_yaml = load_scenario(yaml_file)
    from_json = load_scenario(str(json_file))
    assert set(from_yaml.models) == {"a", "b"}
    assert from_yaml.models["a"].ttft_ms.p95_ms == 300
    assert from_json.models["c"].tokens_per_s == 20
    round_trip = Scenario.from_dict(json.loads(json.dumps(from_yaml.to_dict())))
    assert round_trip.to_dict() == from_yaml.to_dict()
    with pytest.raises(ScenarioError, match="cannot read"):
        load_scenario(tmp_path / "missing.yaml")


def test_demo_scenario_contains_the_seeded_models_with_their_behaviour():
    demo = load_scenario(DEMO_SCENARIO_PATH, now=0.0)
    healthy = [
        "gpt-4o",
        "gpt-4o-mini",
        "text-embedding-3-small",
        "claude-sonnet-4",
        "gemini-2.5-pro",
        "text-embedding-004",
        "mistral-large-latest",
        "mistral-embed",
    ]
    assert set(demo.models) == {*healthy, "o3-mini", "gemini-2.5-flash", "claude-3-5-haiku", "claude-opus-4"}
    for name in healthy:
        spec = demo.models[name]
        assert 150 <= spec.ttft_ms.p50_ms <= 400 and spec.ttft_ms.p95_ms < 900, name
        assert 50 <= spec.tokens_per_s <= 120, name
        assert Behaviour(spec).judge(12345.0).outcome == "ok", name
        assert spec.error_rate == spec.rate_limit_rate == spec.overloaded_rate == spec.hang_rate == 0, name
    slow = demo.models["o3-mini"]
    assert slow.ttft_ms.p50_ms > 1500 and slow.ttft_ms.max_ms + 16_000 / slow.tokens_per_s < 8000
    assert {Behaviour(demo.models["gemini-2.5-flash"]).judge(t).status for t in (0.0, 1e6, 1e9)} == {503}
    flap = demo.models["claude-3-5-haiku"].flap
    assert (flap.up_s, flap.down_s, flap.down_status) == (60, 60, 500)
    assert Behaviour(demo.models["claude-opus-4"]).judge(0.0).status == 429


def test_build_app_serves_the_demo_scenario_by_default():
    assert "gpt-4o" in build_app().scenario.models


# -- Live control ---------------------------------------------------------------------------------


async def test_control_put_replaces_the_scenario_and_rejects_an_invalid_one_with_400():
    with serve_in_background({"models": {"old": {}}}) as sim:
        async with aiohttp.ClientSession() as session:
            control = f"{sim.url}/_control/scenario"
            async with session.put(control, json={"models": {"new": {"error_rate": 1}}}) as response:
                assert response.status == 200
            assert (await chat(session, sim.url, "old")).status == 404
            assert (await chat(session, sim.url, "new")).status == 500
            async with session.put(control, json={"models": {"new": {"error_rate": 7}}}) as response:
                assert response.status == 400
                rejected = await response.json()
            async with session.get(control) as response:
                current = await response.json()
            still = (await chat(session, sim.url, "new")).status
    assert rejected["error"] == "models.new.error_rate: must be a number between 0 and 1"
    assert current["models"] == {"new": {"error_rate": 1}}
    assert still == 500


async def test_control_patch_changes_one_model_live_and_keeps_it_on_bad_input():
    with serve_in_background({"models": {"gpt-4o": {}}}) as sim:
        async with aiohttp.ClientSession() as session:
            control = f"{sim.url}/_control/models"
            before = (await chat(session, sim.url, "gpt-4o")).status
            async with session.patch(f"{control}/gpt-4o", json={"overloaded_rate": 1}) as response:
                assert response.status == 200
            during = (await chat(session, sim.url, "gpt-4o")).status
            async with session.patch(f"{control}/gpt-4o", json={"overloaded_rate": "yes"}) as response:
                assert response.status == 400
                rejected = await response.json()
            kept = (await chat(session, sim.url, "gpt-4o")).status
            async with session.patch(f"{control}/gpt-4o", json={"overloaded_rate": 0}) as response:
                assert response.status == 200
            after = (await chat(session, sim.url, "gpt-4o")).status
            async with session.patch(f"{control}/brand-new", json={"rate_limit_rate": 1}) as response:
                assert response.status == 200
            created = (await chat(session, sim.url, "brand-new")).status
    assert (before, during, kept, after, created) == (200, 529, 529, 200, 429)
    assert rejected["error"].startswith("models.gpt-4o.overloaded_rate:")


async def test_control_stats_count_requests_per_model_and_outcome():
    with serve_in_background({"models": {"ok": {}, "limited": {"rate_limit_rate": 1}}}) as sim:
        async with aiohttp.ClientSession() as session:
            for model in ("ok", "ok", "limited", "nobody"):
                await chat(session, sim.url, model)
            async with session.get(f"{sim.url}/_control/stats") as response:
                stats = await response.json()
            async with session.delete(f"{sim.url}/_control/stats") as response:
                cleared = await response.json()
    assert stats["models"]["ok"] == {"total": 2, "ok": 2}
    assert stats["models"]["limited"] == {"total": 1, "rate_limited": 1}
    assert stats["outcomes"]["unknown_model"] == 1
    assert stats["total"] == 4
    assert cleared["total"] == 0


async def test_control_requests_list_each_judged_request_with_its_time_and_outcome_since_a_moment():
    clock = Clock()
    with serve_in_background({"models": {"ok": {}, "down": {"error_rate": 1}}}, clock=clock) as sim:
        async with aiohttp.ClientSession() as session:
            await chat(session, sim.url, "ok")
            clock.now += 10
            await chat(session, sim.url, "ok")
            await chat(session, sim.url, "down")
            async with session.get(f"{sim.url}/_control/requests?since={clock.now}") as response:
                recent = (await response.json())["models"]
            async with session.get(f"{sim.url}/_control/requests") as response:
                everything = (await response.json())["models"]
            async with session.get(f"{sim.url}/_control/requests?since=soon") as response:
                refused = response.status
    assert recent == {"ok": [[clock.now, "ok"]], "down": [[clock.now, "error"]]}
    assert everything["ok"] == [[clock.now - 10, "ok"], [clock.now, "ok"]]
    assert refused == 400


async def test_a_changed_scenario_file_is_reloaded_and_a_broken_edit_is_ignored(tmp_path, monkeypatch):
    monkeypatch.setattr(simulator_app, "RELOAD_CHECK_INTERVAL_S", 0.05)
    path = tmp_path / "live.yaml"
    path.write_text("models:\n  m: {}\n")

    def rewrite(text: str, bump: int) -> None:
        path.write_text(text)
        mtime = path.stat().st_mtime + bump
        os.utime(path, (mtime, mtime))

    with serve_in_background(path) as sim:
        async with aiohttp.ClientSession() as session:
            first = (await chat(session, sim.url, "m")).status
            rewrite("models:\n  m: {error_rate: 1, error_status: 503}\n", 1)
            await asyncio.sleep(0.1)
            reloaded = (await chat(session, sim.url, "m")).status
            rewrite("models:\n  m: {error_rate: nope}\n", 2)
            await asyncio.sleep(0.1)
            kept = (await chat(session, sim.url, "m")).status
    assert (first, reloaded, kept) == (200, 503, 503)


# -- The management command -----------------------------------------------------------------------


def test_simulator_command_exits_non_zero_on_an_invalid_scenario_file(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("models:\n  gpt-4o:\n    error_rate: 2\n")
    result = subprocess.run(
        [sys.executable, "manage.py", "simulator", "--scenario", str(bad)],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode != 0
    assert "models.gpt-4o.error_rate: must be a number between 0 and 1" in result.stderr
    assert "Traceback" not in result.stderr


def test_simulator_command_serves_the_demo_scenario():
    with socket.socket() as free:
        free.bind(("127.0.0.1", 0))
        port = free.getsockname()[1]
    process = subprocess.Popen(
        [sys.executable, "manage.py", "simulator", "--port", str(port)],
        cwd=PROJECT_ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    listing = None
    try:
        banner = process.stdout.readline()
        deadline = time.monotonic() + 20
        while listing is None and process.poll() is None and time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/v1/models", timeout=2) as response:
                    listing = json.load(response)
            except OSError:
                time.sleep(0.05)
    finally:
        process.terminate()
        _, errors = process.communicate(timeout=10)
    assert listing is not None, errors
    assert f"127.0.0.1:{port}" in banner and "demo.yaml" in banner and "(12 models)" in banner
    assert "claude-opus-4" in {model["id"] for model in listing["data"]}


# -- shapes over time (for anomaly detection) ------------------------------------------------------


def test_a_shape_moves_latency_by_time_of_day_slow_drift_and_a_level_shift():
    shape = {
        "daily": {"amplitude": 0.5, "peak_hour": 12},
        "drift": {"per_hour": 0.1},
        "level_shift": {"after_s": 7200, "factor": 3},
    }
    spec = load_scenario({"models": {"m": {"shape": shape}}}, now=0.0).models["m"].shape
    noon, midnight = 12 * 3600.0, 24 * 3600.0
    # At noon: the daily peak (×1.5) and 12 hours of drift (×2.2), and the shift since 2 h (×3).
    assert spec.latency_factor(noon) == pytest.approx(1.5 * 2.2 * 3)
    assert spec.latency_factor(midnight) == pytest.approx(0.5 * 3.4 * 3)
    assert spec.latency_factor(3600.0) == pytest.approx((1 + 0.5 * math.cos(2 * math.pi * -11 / 24)) * 1.1)


def test_an_error_burst_fails_every_nth_request_while_it_lasts_never_two_in_a_row():
    burst = {"error_burst": {"after_s": 100, "duration_s": 60, "every": 3, "status": 502}}
    behaviour = Behaviour(load_scenario({"models": {"m": {"shape": burst}}}, now=0.0).models["m"])
    before = [behaviour.judge(50.0 + i).status for i in range(10)]
    during = [behaviour.judge(100.0 + i).status for i in range(30)]
    after = [behaviour.judge(170.0 + i).status for i in range(10)]
    assert set(before) == set(after) == {200}
    assert during.count(502) == 10 and "502, 502" not in ", ".join(map(str, during))


@pytest.mark.parametrize(
    ("shape", "message"),
    [
        ({"weekly": {}}, "models.m.shape.weekly: unknown setting"),
        ({"daily": {"amplitude": 1.5}}, "models.m.shape.daily.amplitude:"),
        ({"level_shift": {"factor": 0}}, "models.m.shape.level_shift.factor:"),
        ({"error_burst": {"every": 1}}, "models.m.shape.error_burst.every:"),
    ],
)
def test_invalid_shapes_are_refused_naming_the_field(shape, message):
    with pytest.raises(ScenarioError, match=re.escape(message)):
        load_scenario({"models": {"m": {"shape": shape}}})


async def test_a_level_shift_set_through_the_control_api_slows_the_model_from_then_on():
    with serve_in_background({"models": {"m": {"ttft_ms": 40}}}) as sim:
        async with aiohttp.ClientSession() as session:
            started = time.monotonic()
            await chat(session, sim.url, "m", stream=True)
            before = time.monotonic() - started
            shape = {"shape": {"level_shift": {"after_s": 0, "factor": 6}}}
            async with session.patch(f"{sim.url}/_control/models/m", json=shape) as response:
                assert response.status == 200
            started = time.monotonic()
            await chat(session, sim.url, "m", stream=True)
            after = time.monotonic() - started
    assert after >= 0.24  # six times the 40 ms first token: a lower bound, whatever the machine's speed
    assert before >= 0.04
