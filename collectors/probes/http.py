"""Probe any HTTP(S) URL and judge the answer with conditions such as `[STATUS] < 400`."""

from __future__ import annotations

import time
from typing import Any

import aiohttp

from . import conditions as lang
from .base import (
    STREAM_CUT_ERRORS,
    Outcome,
    ProbeConfigError,
    ProbeResult,
    ProbeTarget,
    answered,
    check_headers,
    check_keys,
    classify_http_status,
    cut_text,
    elapsed_ms,
    error_text,
)

OPTIONS = frozenset({"method", "headers", "body", "conditions"})
METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")
DEFAULT_CONDITIONS = ("[STATUS] < 400",)
MAX_CONDITIONS = 50
# Conditions look at most this much of a body; a longer one is cut (and a cut JSON body no longer parses).
MAX_BODY_BYTES = 1 << 20
MAX_ERROR_CHARS = 1000

# The endpoint is a base URL (or, for http, the URL itself).
ENDPOINT = "url"


def validate_config(config: dict) -> None:
    check_keys(config, OPTIONS)
    check_headers(config)
    if "method" in config and (not isinstance(config["method"], str) or config["method"].upper() not in METHODS):
        raise ProbeConfigError(f"probe_config.method: must be one of {', '.join(METHODS)}")
    if "body" in config and not isinstance(config["body"], str | dict | list):
        raise ProbeConfigError("probe_config.body: must be a string (sent as is) or a JSON object or array")
    if "conditions" not in config:
        return
    texts = config["conditions"]
    if not isinstance(texts, list) or not 1 <= len(texts) <= MAX_CONDITIONS:
        raise ProbeConfigError(f"probe_config.conditions: must be a list of 1 to {MAX_CONDITIONS} conditions")
    for index, text in enumerate(texts):
        try:
            # Checked here because parse is cached, and a cache cannot take an unhashable list or object.
            if not isinstance(text, str):
                raise lang.ConditionError(lang.NOT_A_STRING)
            lang.parse(text)
        except lang.ConditionError as exc:
            raise ProbeConfigError(f"probe_config.conditions[{index}]: {exc}") from None


async def _read_body(response: aiohttp.ClientResponse) -> str:
    content = response.content
    parts: list[bytes] = []
    size = 0
    while size < MAX_BODY_BYTES:
        chunk = await content.read(MAX_BODY_BYTES - size)
        if not chunk:
            break
        parts.append(chunk)
        size += len(chunk)
    raw = b"".join(parts)
    try:
        return raw.decode(response.charset or "utf-8", "replace")
    except LookupError:  # a charset Python does not know
        return raw.decode("utf-8", "replace")


async def probe(target: ProbeTarget, session: aiohttp.ClientSession) -> ProbeResult:
    config = target.config
    conditions = lang.parse_all(config.get("conditions") or DEFAULT_CONDITIONS)
    headers = {"Authorization": f"Bearer {target.api_key}"} if target.api_key else {}
    headers.update(config.get("headers") or {})
    kwargs: dict[str, Any] = {"headers": headers}
    body = config.get("body")
    if isinstance(body, str):
        kwargs["data"] = body.encode()
    elif body is not None:
        kwargs["json"] = body

    start = time.perf_counter()
    async with session.request(config.get("method", "GET").upper(), target.endpoint, **kwargs) as response:
        try:
            # Read the body even when no condition needs it: a drained response lets the connection be reused.
            text = await _read_body(response)
        except STREAM_CUT_ERRORS as exc:
            return answered(response, start, Outcome.BROKEN_STREAM, cut_text(exc, "body"))
        latency_ms = elapsed_ms(start)

    status = response.status
    failures = lang.evaluate(conditions, status, latency_ms, text)
    if not failures:
        return ProbeResult(Outcome.OK, status, latency_ms)
    outcome = classify_http_status(status)
    # Our key or our rate limit is still what went wrong; anything else unmet is the provider's.
    if outcome not in (Outcome.PROBE_FAULT, Outcome.RATE_LIMITED):
        outcome = Outcome.PROVIDER_FAULT
    error = "unmet: " + "; ".join(failures)
    if not 200 <= status < 300:
        error = f"{error} | {error_text(status, text, limit=200)}"
    if len(error) > MAX_ERROR_CHARS:
        error = error[: MAX_ERROR_CHARS - 3] + "..."
    return ProbeResult(outcome, status, latency_ms, error=error)
