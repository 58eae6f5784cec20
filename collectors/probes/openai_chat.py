"""Probe an OpenAI-compatible chat completions API with a tiny streamed request."""

from __future__ import annotations

import time
from typing import Any

import aiohttp

from .base import (
    STREAM_CUT_ERRORS,
    MalformedStream,
    Outcome,
    ProbeResult,
    ProbeTarget,
    answered,
    chat_request,
    check_chat_config,
    cut_text,
    elapsed_ms,
    http_failure,
    json_object,
    line_batches,
    parse_json,
    streamed,
)

FAULT = Outcome.PROVIDER_FAULT
BROKEN = Outcome.BROKEN_STREAM

# The endpoint is a base URL (or, for http, the URL itself).
ENDPOINT = "url"


def validate_config(config: dict) -> None:
    check_chat_config(config, max_temperature=2)


def _request(target: ProbeTarget) -> tuple[str, dict[str, str], dict[str, Any]]:
    auth = {"Authorization": f"Bearer {target.api_key}"} if target.api_key else {}
    extra = {"stream_options": {"include_usage": True}}  # the token count arrives in a last chunk
    return chat_request(target, path="/chat/completions", headers=auth, extra_body=extra)


def _error_message(payload: dict[str, Any]) -> str:
    """The provider's error, from a chunk or a body that is an error object rather than a completion."""
    error = payload["error"]
    if isinstance(error, dict):
        error = error.get("message") or error.get("type") or error
    return str(error)[:300]


def _has_text(chunk: dict[str, Any]) -> bool:
    try:
        delta = chunk["choices"][0]["delta"]
        # Reasoning models stream their thinking first; it is output all the same.
        return bool(delta.get("content") or delta.get("reasoning_content") or delta.get("reasoning"))
    except (KeyError, IndexError, TypeError, AttributeError):  # the usage chunk has no choices
        return False


async def probe(target: ProbeTarget, session: aiohttp.ClientSession) -> ProbeResult:
    url, headers, body = _request(target)
    start = time.perf_counter()
    async with session.post(url, json=body, headers=headers) as response:
        if response.status >= 300:
            return await http_failure(response, start)
        if "json" in response.content_type:
            return await _unstreamed(response, start)

        first: float | None = None
        chunks = 0
        usage_tokens: int | None = None
        done = False
        try:
            async for lines in line_batches(response.content):
                for line in lines:
                    if not line.startswith(b"data:"):
                        continue  # blank separators, comments (keep-alives), event names
                    data = line[5:].strip()
                    if data == b"[DONE]":
                        done = True
                        continue  # read on to the end so the connection can be reused
                    if done or not data:
                        continue
                    try:
                        chunk = parse_json(data)
                    except ValueError:
                        text = data[:200].decode("utf-8", "replace")
                        return answered(response, start, FAULT, f"malformed stream chunk: {text}", first)
                    if type(chunk) is not dict:
                        return answered(response, start, FAULT, "malformed stream chunk: not an object", first)
                    if chunk.get("error"):  # some servers send "error": null in every chunk
                        error = f"error inside the stream: {_error_message(chunk)}"
                        return answered(response, start, FAULT, error, first)
                    if _has_text(chunk):
                        chunks += 1
                        if first is None:
                            first = time.perf_counter()
                    usage = chunk.get("usage")
                    if usage and type(usage) is dict and type(usage.get("completion_tokens")) is int:
                        usage_tokens = usage["completion_tokens"]
        except STREAM_CUT_ERRORS as exc:
            return answered(response, start, BROKEN, cut_text(exc), first)
        except MalformedStream as exc:
            return answered(response, start, FAULT, str(exc), first)
    end = time.perf_counter()
    if not done:
        return answered(response, start, BROKEN, "stream ended without [DONE]", first)
    return streamed(response, start, first, end, usage_tokens if usage_tokens is not None else chunks)


async def _unstreamed(response: aiohttp.ClientResponse, start: float) -> ProbeResult:
    """A JSON body where a stream was asked for: an error object, or a server that does not stream."""
    payload = await json_object(response, start)
    if isinstance(payload, ProbeResult):
        return payload
    if payload.get("error"):
        return answered(response, start, FAULT, f"error in a {response.status} answer: {_error_message(payload)}")
    choices = payload.get("choices")
    if not choices or not isinstance(choices, list) or not isinstance(choices[0], dict) or "message" not in choices[0]:
        return answered(response, start, FAULT, "malformed response: no choices")
    return ProbeResult(outcome=Outcome.OK, http_status=response.status, latency_ms=elapsed_ms(start))
