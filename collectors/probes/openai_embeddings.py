"""Probe an OpenAI-compatible embeddings API with a one-word input."""

from __future__ import annotations

import json
import time
from typing import Any

import aiohttp

from .base import (
    STREAM_CUT_ERRORS,
    Outcome,
    ProbeResult,
    ProbeTarget,
    check_headers,
    check_keys,
    check_path,
    check_text,
    cut_text,
    elapsed_ms,
    http_failure,
    join_url,
)

OPTIONS = frozenset({"input", "path", "headers"})
DEFAULT_INPUT = "ok"

# The endpoint is a base URL (or, for http, the URL itself).
ENDPOINT = "url"


def validate_config(config: dict) -> None:
    check_keys(config, OPTIONS)
    check_text(config, "input")
    check_path(config)
    check_headers(config)


def _is_number(value: Any) -> bool:
    return type(value) is float or type(value) is int


def _problem(payload: Any) -> str | None:
    """What is wrong with an embeddings answer, or None when data[0].embedding is a usable vector."""
    if not isinstance(payload, dict):
        return "not an object"
    if payload.get("error"):
        error = payload["error"]
        return f"error: {(error.get('message') if isinstance(error, dict) else error) or error}"[:300]
    data = payload.get("data")
    if not isinstance(data, list) or not data or not isinstance(data[0], dict):
        return "no data[0]"
    embedding = data[0].get("embedding")
    if not isinstance(embedding, list) or not embedding:
        return "data[0].embedding is not a non-empty list"
    if not all(map(_is_number, embedding)):
        return "data[0].embedding holds something other than numbers"
    return None


async def probe(target: ProbeTarget, session: aiohttp.ClientSession) -> ProbeResult:
    config = target.config
    body = {"model": target.upstream_model, "input": config.get("input", DEFAULT_INPUT)}
    headers = {"Authorization": f"Bearer {target.api_key}"} if target.api_key else {}
    headers.update(config.get("headers") or {})
    url = join_url(target.endpoint, config.get("path", "/embeddings"))
    start = time.perf_counter()
    async with session.post(url, json=body, headers=headers) as response:
        if response.status >= 300:
            return await http_failure(response, start)
        try:
            raw = await response.read()
        except STREAM_CUT_ERRORS as exc:
            return ProbeResult(Outcome.BROKEN_STREAM, response.status, elapsed_ms(start), error=cut_text(exc, "body"))
        latency_ms = elapsed_ms(start)
    try:
        problem = _problem(json.loads(raw))
    except ValueError:
        problem = "not JSON"
    if problem is not None:
        return ProbeResult(Outcome.PROVIDER_FAULT, response.status, latency_ms, error=f"malformed response: {problem}")
    return ProbeResult(Outcome.OK, response.status, latency_ms)
