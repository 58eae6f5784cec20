"""What every probe takes and returns, and how an HTTP answer is classified."""

from __future__ import annotations

import json
import re
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

import aiohttp


class Outcome(StrEnum):
    """What one probe result says. Plain strings, so probes run without Django (the remote agent has none).

    The core's stored vocabulary (monitoring.outcomes.Outcome) mirrors these values; a test keeps them equal.
    """

    OK = "ok"
    PROVIDER_FAULT = "provider_fault"
    PROBE_FAULT = "probe_fault"
    RATE_LIMITED = "rate_limited"
    TIMEOUT = "timeout"
    BROKEN_STREAM = "broken_stream"


@dataclass(frozen=True, slots=True)
class ProbeTarget:
    """Everything a probe needs, detached from the ORM so probes run without a database."""

    model_id: int
    probe_kind: str
    endpoint: str
    upstream_model: str
    api_key: str = ""
    timeout_s: float = 30.0
    config: dict[str, Any] = field(default_factory=dict)
    region: str = "default"


@dataclass(slots=True)
class ProbeResult:
    outcome: str
    http_status: int | None = None
    latency_ms: float | None = None
    ttft_ms: float | None = None
    tokens_per_s: float | None = None
    error: str = ""

    @property
    def ok(self) -> bool:
        return self.outcome == Outcome.OK


class ProbeConfigError(ValueError):
    """A probe's configuration is unusable; the message names the field."""


def classify_http_status(status: int) -> str:
    if 200 <= status < 300:
        return Outcome.OK
    if status == 429:
        return Outcome.RATE_LIMITED
    if status in (401, 402, 403, 400, 404, 405, 413, 415, 422):
        return Outcome.PROBE_FAULT
    # 408, 5xx, 529 (overloaded) and anything unexpected count against the provider.
    return Outcome.PROVIDER_FAULT


def error_text(status: int, body: str, limit: int = 300) -> str:
    """`HTTP 503: <message>`, using the provider's own error message when the body is an API error object.

    OpenAI-style `{"error": {"message": ...}}` and Anthropic-style `{"type": "error", "error": {...}}`
    bodies become their message; anything else is kept as it came, cut to `limit` characters.
    """
    text = body.strip()
    if text.startswith("{"):
        try:
            error = json.loads(text).get("error")
        except (ValueError, AttributeError, RecursionError):  # deeply nested bodies too: not an error object
            error = None
        message = error.get("message") if isinstance(error, dict) else error if isinstance(error, str) else None
        if isinstance(message, str) and message.strip():
            text = message.strip()
    return f"HTTP {status}: {text[:limit]}"


# --- Shared by the probe modules -------------------------------------------------------------------------------------

# How much of an error body is worth reading: enough for a message, never a whole page.
ERROR_BODY_BYTES = 4096

# A line longer than this in a stream is not an event a probe asked for.
MAX_LINE_BYTES = 1 << 20


class IncompleteLine(ConnectionError):
    """A stream ended in the middle of a line: the connection was cut."""


class MalformedStream(ValueError):
    """A stream that is not the event stream asked for."""


# A connection cut while the body streams: the answer started and never finished.
STREAM_CUT_ERRORS: tuple[type[BaseException], ...] = (
    aiohttp.ClientPayloadError,
    aiohttp.ClientConnectionError,
    ConnectionError,
)


_raw_decode = json.JSONDecoder().raw_decode


def parse_json(data: bytes) -> Any:
    """json.loads for one stream event, without its per-call overhead: it runs for every event of every probe."""
    text = data.decode()
    try:
        value, end = _raw_decode(text)
    except RecursionError:  # a hostile or broken provider: a malformed event like any other
        raise ValueError("JSON nested too deeply") from None
    if end != len(text):
        raise ValueError("extra data after the JSON value")
    return value


async def line_batches(content: aiohttp.StreamReader) -> AsyncIterator[list[bytes]]:
    """The complete lines of a stream (without line ends), one batch per network read.

    Splitting whole reads is far cheaper than a readline per line. Raises IncompleteLine when the stream stops
    within a line, and MalformedStream when a line grows past MAX_LINE_BYTES.
    """
    pending = b""
    async for chunk in content.iter_any():
        lines = (pending + chunk if pending else chunk).split(b"\n")
        pending = lines.pop()
        if len(pending) > MAX_LINE_BYTES:
            raise MalformedStream(f"malformed stream: a line longer than {MAX_LINE_BYTES} bytes")
        if lines:
            yield lines
    if pending.strip():
        raise IncompleteLine("the stream stopped in the middle of a line")


async def read_error(response: aiohttp.ClientResponse) -> str:
    """The classified error text of a non-2xx answer, reading at most ERROR_BODY_BYTES of its body."""
    try:
        body = await response.content.read(ERROR_BODY_BYTES)
    except STREAM_CUT_ERRORS:
        body = b""
    return error_text(response.status, body.decode("utf-8", "replace"))


def answered(
    response: aiohttp.ClientResponse, start: float, outcome: str, error: str = "", first: float | None = None
) -> ProbeResult:
    """A result for an answer that arrived, timed from start; first is when the first token came, if it did.

    start and first are time.perf_counter() readings.
    """
    ttft_ms = None if first is None else (first - start) * 1000.0
    return ProbeResult(outcome, response.status, elapsed_ms(start), ttft_ms=ttft_ms, error=error)


async def http_failure(response: aiohttp.ClientResponse, start: float) -> ProbeResult:
    """A non-2xx answer: classified by its status, with the start of its body as the error."""
    latency_ms = elapsed_ms(start)
    error = await read_error(response)
    return ProbeResult(classify_http_status(response.status), response.status, latency_ms, error=error)


def streamed(
    response: aiohttp.ClientResponse, start: float, first: float | None, end: float, tokens: int
) -> ProbeResult:
    """A stream that ended as it should: total latency, time to first token and output tokens/s."""
    return ProbeResult(
        outcome=Outcome.OK,
        http_status=response.status,
        latency_ms=(end - start) * 1000.0,
        ttft_ms=None if first is None else (first - start) * 1000.0,
        tokens_per_s=tokens_per_second(tokens, first, end),
    )


async def json_object(response: aiohttp.ClientResponse, start: float) -> dict[str, Any] | ProbeResult:
    """The body as a JSON object, or the provider-fault result that says why it is not one."""
    try:
        payload = json.loads(await response.read())
    except (ValueError, RecursionError):
        return answered(response, start, Outcome.PROVIDER_FAULT, "malformed response: not JSON")
    if not isinstance(payload, dict):
        return answered(response, start, Outcome.PROVIDER_FAULT, "malformed response: not an object")
    return payload


def cut_text(exc: BaseException, what: str = "stream") -> str:
    return f"{what} cut: {str(exc) or type(exc).__name__}"


def elapsed_ms(start: float) -> float:
    return (time.perf_counter() - start) * 1000.0


def tokens_per_second(tokens: int, first: float | None, end: float) -> float | None:
    if not tokens or first is None or end <= first:
        return None
    return tokens / (end - first)


def join_url(endpoint: str, path: str) -> str:
    return endpoint.rstrip("/") + path


# Config checks. Every message starts with the field it is about, so a form or an API answer can point at it.
# An option that is present must be valid: null is not a way to ask for the default.

_HEADER_NAME = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")


def check_keys(config: Any, allowed: frozenset[str]) -> dict[str, Any]:
    if not isinstance(config, dict):
        raise ProbeConfigError("probe_config: must be a JSON object")
    unknown = sorted(set(config) - allowed)
    if unknown:
        listed = ", ".join(sorted(allowed)) or "none"
        raise ProbeConfigError(f"probe_config.{unknown[0]}: unknown option (allowed: {listed})")
    return config


def check_int(config: dict[str, Any], key: str, low: int, high: int) -> None:
    if key in config and (type(config[key]) is not int or not low <= config[key] <= high):
        raise ProbeConfigError(f"probe_config.{key}: must be an integer from {low} to {high}")


def check_number(config: dict[str, Any], key: str, low: float, high: float) -> None:
    if key in config and (type(config[key]) not in (int, float) or not low <= config[key] <= high):
        raise ProbeConfigError(f"probe_config.{key}: must be a number from {low:g} to {high:g}")


def check_text(config: dict[str, Any], key: str, max_length: int = 4000) -> None:
    if key not in config:
        return
    value = config[key]
    if not isinstance(value, str) or not value.strip() or len(value) > max_length:
        raise ProbeConfigError(f"probe_config.{key}: must be a non-empty string of at most {max_length} characters")


def check_path(config: dict[str, Any], key: str = "path") -> None:
    if key not in config:
        return
    value = config[key]
    if not isinstance(value, str) or not value.startswith("/") or any(c.isspace() for c in value):
        raise ProbeConfigError(f"probe_config.{key}: must be a URL path starting with / and without spaces")


def check_headers(config: dict[str, Any], key: str = "headers") -> None:
    if key not in config:
        return
    value = config[key]
    if not isinstance(value, dict):
        raise ProbeConfigError(f"probe_config.{key}: must be an object of header names to string values")
    for name, header_value in value.items():
        if not isinstance(name, str) or not _HEADER_NAME.match(name):
            raise ProbeConfigError(f"probe_config.{key}: {name!r} is not a valid header name")
        # A line break in a value would smuggle another header into the request.
        if not isinstance(header_value, str) or "\r" in header_value or "\n" in header_value:
            raise ProbeConfigError(f"probe_config.{key}.{name}: must be a string on one line")


# The streamed chat probes (OpenAI chat completions, Anthropic messages) take the same options and send
# the same small request; only the wire format of the answer differs.
CHAT_OPTIONS = frozenset({"prompt", "max_tokens", "path", "headers", "temperature"})
CHAT_PROMPT = "Say OK."
CHAT_MAX_TOKENS = 16  # some models reject caps under 16 tokens


def check_chat_config(config: Any, max_temperature: float) -> None:
    check_keys(config, CHAT_OPTIONS)
    check_text(config, "prompt")
    check_int(config, "max_tokens", 1, 4096)
    check_path(config)
    check_headers(config)
    check_number(config, "temperature", 0, max_temperature)


def chat_request(
    target: ProbeTarget, *, path: str, headers: dict[str, str], extra_body: dict[str, Any] | None = None
) -> tuple[str, dict[str, str], dict[str, Any]]:
    """(url, headers, body) of a one-message streamed chat request; the configured headers come last."""
    config = target.config
    body: dict[str, Any] = {
        "model": target.upstream_model,
        "max_tokens": config.get("max_tokens", CHAT_MAX_TOKENS),
        "messages": [{"role": "user", "content": config.get("prompt", CHAT_PROMPT)}],
        "stream": True,
        **(extra_body or {}),
    }
    if "temperature" in config:
        body["temperature"] = config["temperature"]
    headers = {"Accept": "text/event-stream", **headers, **(config.get("headers") or {})}
    return join_url(target.endpoint, config.get("path", path)), headers, body
