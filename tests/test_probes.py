"""The probe kinds: config validation, the HTTP condition language, and probes run against the provider simulator."""

from __future__ import annotations

import asyncio
import socket
import time
from types import SimpleNamespace

import pytest

from collectors.probes import (
    PROBES,
    anthropic_messages,
    make_session,
    openai_chat,
    openai_embeddings,
    run_probe,
    validate_probe_config,
)
from collectors.probes import conditions as lang
from collectors.probes.base import Outcome, ProbeConfigError, ProbeTarget, classify_http_status
from demo.simulator import serve_in_background

SCENARIO = {
    "seed": 1,
    "defaults": {"ttft_ms": 20, "tokens_per_s": 2000},
    "models": {
        "good": {},
        "down": {"error_rate": 1.0, "error_status": 503},
        "limited": {"rate_limit_rate": 1.0},
        "overloaded": {"overloaded_rate": 1.0},
        "hangs": {"hang_rate": 1.0},
        "broken": {"broken_stream_rate": 1.0},
        "keyed": {"require_api_key": "sk-right"},
    },
}
MODEL_PROBES = ["openai_chat", "anthropic_messages", "openai_embeddings"]
STREAMED_PROBES = ["openai_chat", "anthropic_messages"]

# --- Helpers ----------------------------------------------------------------------------------------------------------


def target(kind: str, endpoint: str, model: str = "good", **kwargs) -> ProbeTarget:
    kwargs.setdefault("timeout_s", 5.0)
    return ProbeTarget(model_id=1, probe_kind=kind, endpoint=endpoint, upstream_model=model, **kwargs)


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="session")
def sim():
    with serve_in_background(SCENARIO) as running:
        yield running


@pytest.fixture
async def session():
    async with make_session(limit=50) as session:
        yield session


def failures(conditions: list[str], status: int = 200, response_time_ms: float = 10.0, body: str = "") -> list[str]:
    return lang.evaluate(lang.parse_all(conditions), status, response_time_ms, body)


# --- The registry -----------------------------------------------------------------------------------------------------


def test_the_registry_holds_every_probed_kind_and_not_push():
    assert set(PROBES) == {"openai_chat", "anthropic_messages", "openai_embeddings", "http", "tcp"}
    for module in PROBES.values():
        assert callable(module.probe) and callable(module.validate_config)


def test_http_statuses_are_classified_as_the_provider_or_our_fault():
    assert classify_http_status(200) == Outcome.OK
    assert classify_http_status(429) == Outcome.RATE_LIMITED
    assert classify_http_status(401) == Outcome.PROBE_FAULT
    assert classify_http_status(404) == Outcome.PROBE_FAULT
    assert classify_http_status(503) == Outcome.PROVIDER_FAULT
    assert classify_http_status(529) == Outcome.PROVIDER_FAULT


# --- Config validation ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "config"),
    [
        ("openai_chat", {}),
        ("openai_chat", {"prompt": "Hi", "max_tokens": 32, "path": "/chat", "headers": {"X-A": "b"}, "temperature": 0}),
        ("anthropic_messages", {"max_tokens": 16, "temperature": 0.5}),
        ("openai_embeddings", {"input": "hello", "path": "/embed"}),
        ("http", {"method": "post", "body": {"q": 1}, "conditions": ["[STATUS] == 200", "len([BODY].data) > 0"]}),
        ("http", {"body": "raw text"}),
        ("tcp", {}),
        ("push", {}),
    ],
)
def test_a_usable_config_passes_validation(kind, config):
    validate_probe_config(kind, config)


@pytest.mark.parametrize(
    ("kind", "config", "message"),
    [
        ("openai_chat", {"max_tokens": 0}, "probe_config.max_tokens: must be an integer from 1 to 4096"),
        ("openai_chat", {"max_tokens": "16"}, "probe_config.max_tokens:"),
        ("openai_chat", {"max_tokens": True}, "probe_config.max_tokens:"),
        ("openai_chat", {"max_tokens": None}, "probe_config.max_tokens:"),
        ("openai_chat", {"prompt": ""}, "probe_config.prompt:"),
        ("openai_chat", {"temperature": 3}, "probe_config.temperature: must be a number from 0 to 2"),
        ("openai_chat", {"path": "chat"}, "probe_config.path:"),
        ("openai_chat", {"headers": ["X-A"]}, "probe_config.headers:"),
        ("openai_chat", {"headers": {"X-A": "b\r\nX-B: c"}}, "probe_config.headers.X-A:"),
        ("openai_chat", {"headers": {"bad name": "x"}}, "probe_config.headers:"),
        ("openai_chat", {"max_token": 16}, "probe_config.max_token: unknown option"),
        ("openai_chat", [], "probe_config: must be a JSON object"),
        ("anthropic_messages", {"temperature": 1.5}, "probe_config.temperature:"),
        ("openai_embeddings", {"prompt": "x"}, "probe_config.prompt: unknown option"),
        ("http", {"method": "FETCH"}, "probe_config.method:"),
        ("http", {"body": 12}, "probe_config.body:"),
        ("http", {"conditions": "[STATUS] == 200"}, "probe_config.conditions:"),
        ("http", {"conditions": []}, "probe_config.conditions:"),
        ("http", {"conditions": ["[STATUS] == 200", "[STATUS] => 200"]}, "probe_config.conditions[1]:"),
        ("http", {"conditions": [{"a": 1}]}, "probe_config.conditions[0]: must be a non-empty string"),
        ("http", {"conditions": ["[STATUS] < 400", 404]}, "probe_config.conditions[1]: must be a non-empty string"),
        ("tcp", {"port": 80}, "probe_config.port: unknown option"),
        ("push", {"x": 1}, "probe_config.x: unknown option"),
        ("carrier_pigeon", {}, "probe_kind:"),
    ],
)
def test_an_unusable_config_is_refused_with_the_field_named(kind, config, message):
    with pytest.raises(ProbeConfigError) as caught:
        validate_probe_config(kind, config)
    assert str(caught.value).startswith(message)


async def test_a_probe_with_an_unusable_config_is_a_probe_fault_and_sends_nothing(session):
    result = await run_probe(target("openai_chat", "http://127.0.0.1:9/v1", config={"max_tokens": 0}), session)
    assert result.outcome == Outcome.PROBE_FAULT
    assert result.error.startswith("probe_config.max_tokens:")


# --- The condition language -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "must be a non-empty string"),
        ("[STATUS] 200", "no operator"),
        ("[STATE] == 200", "unknown left side"),
        ("[STATUS] ==", "nothing to compare with"),
        ("[STATUS] == OK", "is a number"),
        ("[BODY].status < UP", "needs a number"),
        ("[BODY].id > any(1, 2)", "works with == and != only"),
        ("[STATUS].code == 1", "takes no path"),
        ("len([STATUS]) == 1", "takes no path and no len()"),
        ("[BODY].data[x] == 1", "cannot read the path"),
        ("[BODY].x == any(a, , b)", "empty value"),
    ],
)
def test_a_malformed_condition_is_refused_with_the_reason(text, message):
    with pytest.raises(lang.ConditionError, match=message):
        lang.parse(text)


def test_conditions_on_status_and_response_time_compare_numbers():
    assert failures(["[STATUS] == 200", "[STATUS] < 400", "[RESPONSE_TIME] <= 300"], 200, 299.9) == []
    assert failures(["[STATUS] == any(200, 204)", "[STATUS] != 500", "[STATUS] >= 200", "[STATUS] > 199"], 204) == []
    assert failures(["[STATUS] < 400"], 503) == ["[STATUS] < 400 (actual: 503)"]
    assert failures(["[RESPONSE_TIME] < 300"], 200, 450.0) == ["[RESPONSE_TIME] < 300 (actual: 450.0)"]


def test_conditions_reach_into_a_json_body_by_key_and_index():
    body = '{"status": "UP", "count": 3, "ok": true, "data": [{"id": "gpt-4o"}, {"id": "o1"}], "none": null}'
    met = [
        "[BODY].status == UP",
        '[BODY].status == "UP"',
        "[BODY].count == 3",
        "[BODY].count >= 3",
        "[BODY].ok == true",
        "[BODY].none == null",
        "[BODY].data[0].id == gpt-4o",
        "[BODY].data[-1].id == o1",
        "[BODY].data[1].id == any(o1, o3)",
        "[BODY].data[0].id == pat(gpt-*)",
        "[BODY].data[0].id != pat(claude-*)",
        "len([BODY].data) > 0",
        "len([BODY].data) == 2",
        "len([BODY].status) == 2",
        "len([BODY]) == 5",
        "[BODY] == pat(*gpt-4o*)",
    ]
    assert failures(met, body=body) == []


def test_an_unmet_body_condition_reports_the_value_it_saw():
    body = '{"status": "DOWN", "data": []}'
    assert failures(["[BODY].status == UP"], body=body) == ['[BODY].status == UP (actual: "DOWN")']
    assert failures(["len([BODY].data) > 0"], body=body) == ["len([BODY].data) > 0 (actual: 0)"]
    assert failures(["[BODY].data[0].id == gpt-4o"], body=body) == [
        "[BODY].data[0].id == gpt-4o ([BODY].data[0] is missing)"
    ]
    assert failures(["[BODY].status > 1"], body=body) == ['[BODY].status > 1 (actual: "DOWN", not a number)']
    assert failures(["len([BODY].status.x) > 0"], body=body) == [
        "len([BODY].status.x) > 0 ([BODY].status.x is missing)"
    ]


def test_a_body_condition_on_a_body_that_is_not_json_fails_and_says_so():
    assert failures(["[BODY].status == UP"], body="<html>UP</html>") == ["[BODY].status == UP (the body is not JSON)"]
    assert failures(["[BODY] == pat(*UP*)", "len([BODY]) == 15"], body="<html>UP</html>") == []


def test_a_quoted_empty_value_matches_an_empty_string():
    assert failures(['[BODY].note == ""', "[BODY].name != ''"], body='{"note": "", "name": "x"}') == []


def test_a_numeric_string_in_the_body_compares_as_a_number():
    assert failures(["[BODY].n == 3", "[BODY].n < 10"], body='{"n": "3.0"}') == []


# --- Running a probe never raises -------------------------------------------------------------------------------------


async def test_an_unknown_probe_kind_is_a_probe_fault(session):
    result = await run_probe(target("push", "http://127.0.0.1:9"), session)
    assert result.outcome == Outcome.PROBE_FAULT
    assert "push" in result.error


async def test_a_bug_in_a_probe_becomes_a_probe_fault_with_the_exception_text(session, monkeypatch):
    async def broken_probe(target, session):
        raise KeyError("choices")

    monkeypatch.setitem(PROBES, "openai_chat", SimpleNamespace(validate_config=lambda config: None, probe=broken_probe))
    result = await run_probe(target("openai_chat", "http://127.0.0.1:9/v1"), session)
    assert result.outcome == Outcome.PROBE_FAULT
    assert result.error == "probe error: KeyError: 'choices'"


async def test_a_probe_that_outlives_its_timeout_is_cut_off_as_a_timeout(session, monkeypatch):
    async def slow_probe(target, session):
        await asyncio.sleep(10)

    monkeypatch.setitem(PROBES, "openai_chat", SimpleNamespace(validate_config=lambda config: None, probe=slow_probe))
    started = time.perf_counter()
    result = await run_probe(target("openai_chat", "http://127.0.0.1:9/v1", timeout_s=0.2), session)
    assert time.perf_counter() - started < 1.0
    assert result.outcome == Outcome.TIMEOUT
    assert result.error == "no answer within 0.2 s"


@pytest.mark.parametrize("kind", ["openai_chat", "anthropic_messages", "openai_embeddings", "http"])
async def test_a_closed_port_is_a_provider_fault_with_connection_refused(session, kind):
    result = await run_probe(target(kind, f"http://127.0.0.1:{closed_port()}/v1"), session)
    assert result.outcome == Outcome.PROVIDER_FAULT
    assert result.error.startswith("connection refused: ")


async def test_an_endpoint_that_is_not_a_url_is_a_probe_fault(session):
    result = await run_probe(target("openai_chat", "not a url"), session)
    assert result.outcome == Outcome.PROBE_FAULT


# --- TCP --------------------------------------------------------------------------------------------------------------


async def test_a_tcp_probe_connects_and_measures_the_connect_time(session):
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        result = await run_probe(target("tcp", f"127.0.0.1:{port}"), session)
    assert result.outcome == Outcome.OK
    assert 0 < result.latency_ms < 1000
    assert result.error == ""


async def test_a_tcp_probe_on_a_closed_port_is_a_provider_fault(session):
    result = await run_probe(target("tcp", f"127.0.0.1:{closed_port()}"), session)
    assert result.outcome == Outcome.PROVIDER_FAULT
    assert result.error.startswith("connection refused")


async def test_a_tcp_probe_with_an_endpoint_that_is_not_host_and_port_is_a_probe_fault(session):
    result = await run_probe(target("tcp", "http://example.com/"), session)
    assert result.outcome == Outcome.PROBE_FAULT
    assert "host:port" in result.error


async def test_a_tcp_probe_reaches_a_listening_service(session, sim):
    result = await run_probe(target("tcp", f"{sim.host}:{sim.port}"), session)
    assert result.outcome == Outcome.OK
    assert result.latency_ms is not None


# --- Model probes against the simulator -------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", STREAMED_PROBES)
async def test_a_streamed_chat_probe_measures_time_to_first_token(session, sim, kind):
    result = await run_probe(target(kind, sim.base_url), session)
    assert result.outcome == Outcome.OK, result.error
    assert result.http_status == 200
    assert result.error == ""
    # The simulator waits 20 ms before the first token, then streams 16 tokens at 2000 tokens/s.
    assert 15 <= result.ttft_ms < 1000
    assert result.ttft_ms < result.latency_ms < 2000
    assert result.tokens_per_s > 0


async def test_an_embeddings_probe_measures_latency_and_nothing_else(session, sim):
    result = await run_probe(target("openai_embeddings", sim.base_url), session)
    assert result.outcome == Outcome.OK, result.error
    assert result.http_status == 200
    assert 15 <= result.latency_ms < 2000
    assert result.ttft_ms is None and result.tokens_per_s is None


@pytest.mark.parametrize("kind", MODEL_PROBES)
async def test_a_server_error_is_a_provider_fault_carrying_the_body(session, sim, kind):
    result = await run_probe(target(kind, sim.base_url, "down"), session)
    assert result.outcome == Outcome.PROVIDER_FAULT
    assert result.http_status == 503
    assert result.error.startswith("HTTP 503: ")
    assert "simulated" in result.error
    assert result.latency_ms is not None


@pytest.mark.parametrize("kind", MODEL_PROBES)
async def test_an_overloaded_529_is_a_provider_fault(session, sim, kind):
    result = await run_probe(target(kind, sim.base_url, "overloaded"), session)
    assert (result.outcome, result.http_status) == (Outcome.PROVIDER_FAULT, 529)


@pytest.mark.parametrize("kind", MODEL_PROBES)
async def test_a_429_is_rate_limited(session, sim, kind):
    result = await run_probe(target(kind, sim.base_url, "limited"), session)
    assert (result.outcome, result.http_status) == (Outcome.RATE_LIMITED, 429)
    assert result.error.startswith("HTTP 429: ")


@pytest.mark.parametrize("kind", MODEL_PROBES)
@pytest.mark.parametrize("api_key", ["", "sk-wrong"])
async def test_a_missing_or_wrong_api_key_is_a_probe_fault(session, sim, kind, api_key):
    result = await run_probe(target(kind, sim.base_url, "keyed", api_key=api_key), session)
    assert (result.outcome, result.http_status) == (Outcome.PROBE_FAULT, 401)
    assert result.error.startswith("HTTP 401: ")


@pytest.mark.parametrize("kind", MODEL_PROBES)
async def test_the_api_key_is_sent_the_way_the_api_expects(session, sim, kind):
    result = await run_probe(target(kind, sim.base_url, "keyed", api_key="sk-right"), session)
    assert result.outcome == Outcome.OK, result.error


async def test_extra_headers_and_a_custom_path_from_the_config_are_used(session, sim):
    config = {"path": "/v1/chat/completions", "headers": {"x-api-key": "sk-right"}, "max_tokens": 4, "prompt": "Hi"}
    result = await run_probe(target("openai_chat", sim.url, "keyed", config=config), session)
    assert result.outcome == Outcome.OK, result.error


@pytest.mark.parametrize("kind", MODEL_PROBES)
async def test_an_unknown_model_is_a_probe_fault(session, sim, kind):
    result = await run_probe(target(kind, sim.base_url, "no-such-model"), session)
    assert (result.outcome, result.http_status) == (Outcome.PROBE_FAULT, 404)
    assert "no-such-model" in result.error


@pytest.mark.parametrize("kind", [*MODEL_PROBES, "http"])
async def test_a_hanging_model_times_out_within_the_timeout_and_no_later(session, sim, kind):
    config = {"method": "POST", "body": {"model": "hangs", "input": "x"}} if kind == "http" else {}
    endpoint = f"{sim.base_url}/embeddings" if kind == "http" else sim.base_url
    started = time.perf_counter()
    result = await run_probe(target(kind, endpoint, "hangs", timeout_s=0.3, config=config), session)
    elapsed = time.perf_counter() - started
    assert result.outcome == Outcome.TIMEOUT
    assert result.error == "no answer within 0.3 s"
    assert 0.29 <= elapsed < 0.8


@pytest.mark.parametrize("kind", MODEL_PROBES)
async def test_an_answer_cut_midway_is_a_broken_stream(session, sim, kind):
    result = await run_probe(target(kind, sim.base_url, "broken"), session)
    assert (result.outcome, result.http_status) == (Outcome.BROKEN_STREAM, 200)
    assert "cut" in result.error


async def test_a_broken_stream_still_reports_when_its_first_token_came(session, sim):
    result = await run_probe(target("openai_chat", sim.base_url, "broken"), session)
    assert result.outcome == Outcome.BROKEN_STREAM
    assert result.ttft_ms is not None and result.ttft_ms >= 15


async def test_many_concurrent_probes_share_one_session(session, sim):
    targets = [target(kind, sim.base_url) for kind in MODEL_PROBES] * 30
    results = await asyncio.gather(*(run_probe(t, session) for t in targets))
    assert {result.outcome for result in results} == {Outcome.OK}


# --- HTTP probes against the simulator --------------------------------------------------------------------------------


async def test_an_http_probe_with_met_conditions_is_ok(session, sim):
    conditions = ["[STATUS] == 200", "[RESPONSE_TIME] < 2000", "len([BODY].data) > 0", "[BODY].data[0].id == good"]
    result = await run_probe(target("http", f"{sim.base_url}/models", config={"conditions": conditions}), session)
    assert result.outcome == Outcome.OK, result.error
    assert result.http_status == 200
    assert result.latency_ms is not None


async def test_an_http_probe_by_default_wants_a_status_below_400(session, sim):
    result = await run_probe(target("http", f"{sim.url}/health"), session)
    assert result.outcome == Outcome.OK


async def test_an_unmet_http_condition_is_a_provider_fault_naming_it_and_the_value_seen(session, sim):
    conditions = ["[STATUS] == 200", "[BODY].status == UP", "[BODY].version == 2"]
    result = await run_probe(target("http", f"{sim.url}/health", config={"conditions": conditions}), session)
    assert result.outcome == Outcome.PROVIDER_FAULT
    assert result.http_status == 200
    assert result.error == (
        'unmet: [BODY].status == UP (actual: "ok"); [BODY].version == 2 ([BODY].version is missing)'
    )


@pytest.mark.parametrize(
    ("model", "api_key", "outcome", "status"),
    [
        ("down", "", Outcome.PROVIDER_FAULT, 503),
        ("limited", "", Outcome.RATE_LIMITED, 429),
        ("keyed", "", Outcome.PROBE_FAULT, 401),
        ("keyed", "sk-right", Outcome.OK, 200),
    ],
)
async def test_an_http_probe_keeps_our_own_faults_apart_from_the_providers(
    session, sim, model, api_key, outcome, status
):
    config = {"method": "POST", "body": {"model": model, "input": "x"}}
    result = await run_probe(target("http", f"{sim.base_url}/embeddings", api_key=api_key, config=config), session)
    assert (result.outcome, result.http_status) == (outcome, status)
    if outcome != Outcome.OK:
        assert result.error.startswith(f"unmet: [STATUS] < 400 (actual: {status}) | HTTP {status}: ")


async def test_an_http_probe_of_a_missing_page_is_a_probe_fault(session, sim):
    result = await run_probe(target("http", f"{sim.url}/no-such-page"), session)
    assert (result.outcome, result.http_status) == (Outcome.PROBE_FAULT, 404)


async def test_an_http_condition_can_expect_an_error_status(session, sim):
    config = {"conditions": ["[STATUS] == 404", "[BODY].error.message == pat(*no-such-page*)"]}
    result = await run_probe(target("http", f"{sim.url}/no-such-page", config=config), session)
    assert result.outcome == Outcome.OK, result.error


# --- What the simulator does not send: errors inside a 200 stream, odd framing ----------------------------------------


class StubContent:
    """The part of aiohttp's StreamReader the probes read, delivering a body in small network reads."""

    def __init__(self, body: bytes, read_size: int = 7) -> None:
        self.parts = [body[i : i + read_size] for i in range(0, len(body), read_size)]

    async def iter_any(self):
        for part in self.parts:
            yield part

    async def read(self, n: int = -1) -> bytes:
        body, self.parts = b"".join(self.parts), []
        return body


class StubResponse:
    def __init__(self, body: bytes, status: int = 200, content_type: str = "text/event-stream") -> None:
        self.status, self.content_type, self.charset = status, content_type, None
        self.content = StubContent(body)

    async def read(self) -> bytes:
        return await self.content.read()

    async def __aenter__(self):
        return self

    async def __aexit__(self, *exc_info):
        return False


class StubSession:
    """Answers every request with one canned response."""

    def __init__(self, response: StubResponse) -> None:
        self.response = response

    def post(self, url, **kwargs):
        return self.response


def sse(*events: str) -> bytes:
    return "".join(f"{event}\n\n" for event in events).encode()


async def test_an_error_object_inside_a_200_chat_stream_is_a_provider_fault():
    body = sse('data: {"choices":[{"delta":{"content":"O"}}]}', 'data: {"error":{"message":"upstream died"}}')
    result = await openai_chat.probe(target("openai_chat", "http://x/v1"), StubSession(StubResponse(body)))
    assert (result.outcome, result.http_status) == (Outcome.PROVIDER_FAULT, 200)
    assert result.error == "error inside the stream: upstream died"


async def test_a_chat_stream_that_ends_without_done_is_a_broken_stream():
    body = sse('data: {"choices":[{"delta":{"content":"O"}}]}')
    result = await openai_chat.probe(target("openai_chat", "http://x/v1"), StubSession(StubResponse(body)))
    assert result.outcome == Outcome.BROKEN_STREAM
    assert result.error == "stream ended without [DONE]"


async def test_a_chat_stream_cut_within_a_line_is_a_broken_stream():
    body = sse('data: {"choices":[{"delta":{"content":"O"}}]}') + b'data: {"choi'
    result = await openai_chat.probe(target("openai_chat", "http://x/v1"), StubSession(StubResponse(body)))
    assert result.outcome == Outcome.BROKEN_STREAM


async def test_a_chat_stream_without_usage_counts_its_content_chunks_and_skips_comments():
    body = sse(
        ": keep-alive",
        'data: {"choices":[{"delta":{"role":"assistant","content":""}}],"error":null}',
        'data: {"choices":[{"delta":{"content":"O"}}]}',
        'data: {"choices":[{"delta":{"content":"K"}}]}',
        'data: {"choices":[{"delta":{},"finish_reason":"stop"}]}',
        "data: [DONE]",
    ).replace(b"\n", b"\r\n")
    result = await openai_chat.probe(target("openai_chat", "http://x/v1"), StubSession(StubResponse(body)))
    assert result.outcome == Outcome.OK, result.error
    assert result.ttft_ms is not None


async def test_a_malformed_chunk_in_a_chat_stream_is_a_provider_fault():
    body = sse("data: {not json", "data: [DONE]")
    result = await openai_chat.probe(target("openai_chat", "http://x/v1"), StubSession(StubResponse(body)))
    assert result.outcome == Outcome.PROVIDER_FAULT
    assert result.error.startswith("malformed stream chunk: {not json")


async def test_an_overloaded_error_event_inside_an_anthropic_stream_is_a_provider_fault():
    body = sse(
        'event: message_start\ndata: {"type":"message_start","message":{"usage":{"output_tokens":1}}}',
        'event: error\ndata: {"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}',
    )
    session = StubSession(StubResponse(body))
    result = await anthropic_messages.probe(target("anthropic_messages", "http://x/v1"), session)
    assert (result.outcome, result.http_status) == (Outcome.PROVIDER_FAULT, 200)
    assert result.error == "error inside the stream: overloaded_error: Overloaded"


async def test_an_anthropic_stream_without_message_stop_is_a_broken_stream():
    body = sse(
        'event: content_block_delta\ndata: {"type":"content_block_delta","delta":{"type":"text_delta","text":"O"}}'
    )
    session = StubSession(StubResponse(body))
    result = await anthropic_messages.probe(target("anthropic_messages", "http://x/v1"), session)
    assert result.outcome == Outcome.BROKEN_STREAM
    assert result.error == "stream ended without message_stop"


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        (b'{"data": []}', "no data[0]"),
        (b'{"data": [{"embedding": []}]}', "data[0].embedding is not a non-empty list"),
        (b'{"data": [{"embedding": [0.1, "x"]}]}', "data[0].embedding holds something other than numbers"),
        (b"<html>", "not JSON"),
    ],
)
async def test_an_embeddings_answer_without_a_vector_is_a_malformed_provider_fault(body, problem):
    session = StubSession(StubResponse(body, content_type="application/json"))
    result = await openai_embeddings.probe(target("openai_embeddings", "http://x/v1"), session)
    assert (result.outcome, result.http_status) == (Outcome.PROVIDER_FAULT, 200)
    assert result.error == f"malformed response: {problem}"


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (
            '{"error": {"message": "The model is overloaded.", "type": "server_error"}}',
            "HTTP 503: The model is overloaded.",
        ),
        ('{"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}', "HTTP 503: Overloaded"),
        ('{"error": "plain words"}', "HTTP 503: plain words"),
        ("<html>Bad gateway</html>", "HTTP 503: <html>Bad gateway</html>"),
        ('{"detail": "no error key"}', 'HTTP 503: {"detail": "no error key"}'),
    ],
)
def test_error_text_uses_the_providers_own_message_when_there_is_one(body, expected):
    from collectors.probes.base import error_text

    assert error_text(503, body) == expected
