"""Probe the Anthropic Messages API with a tiny streamed request."""

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
    http_failure,
    json_object,
    line_batches,
    parse_json,
    streamed,
)

API_VERSION = "2023-06-01"

FAULT = Outcome.PROVIDER_FAULT
BROKEN = Outcome.BROKEN_STREAM

# The endpoint is a base URL (or, for http, the URL itself).
ENDPOINT = "url"


def validate_config(config: dict) -> None:
    check_chat_config(config, max_temperature=1)


def _request(target: ProbeTarget) -> tuple[str, dict[str, str], dict[str, Any]]:
    headers = {"anthropic-version": API_VERSION}
    if target.api_key:
        headers["x-api-key"] = target.api_key
    return chat_request(target, path="/messages", headers=headers)


def _error_message(event: dict[str, Any]) -> str:
    error = event.get("error")
    if isinstance(error, dict):
        kind, message = error.get("type") or "error", error.get("message") or ""
        return f"{kind}: {message}"[:300] if message else str(kind)
    return str(error or event)[:300]


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
        output_tokens: int | None = None
        stopped = False
        event_name = b""
        try:
            async for lines in line_batches(response.content):
                for line in lines:
                    if line.startswith(b"event:"):
                        event_name = line[6:].strip()
                        continue
                    if stopped or not line.startswith(b"data:"):
                        continue  # after message_stop: read on to the end so the connection can be reused
                    data = line[5:].strip()
                    if not data:
                        continue
                    try:
                        event = parse_json(data)
                    except ValueError:
                        text = data[:200].decode("utf-8", "replace")
                        return answered(response, start, FAULT, f"malformed stream event: {text}", first)
                    if not isinstance(event, dict):
                        return answered(response, start, FAULT, "malformed stream event: not an object", first)
                    # The data carries its own type; the event line is the fallback.
                    kind = event.get("type") or event_name.decode("ascii", "replace")
                    if kind == "content_block_delta":
                        delta = event.get("delta")
                        if isinstance(delta, dict) and (delta.get("text") or delta.get("thinking")):
                            chunks += 1
                            if first is None:
                                first = time.perf_counter()
                    elif kind == "message_delta":
                        usage = event.get("usage")
                        if isinstance(usage, dict) and type(usage.get("output_tokens")) is int:
                            output_tokens = usage["output_tokens"]
                    elif kind == "message_stop":
                        stopped = True
                    elif kind == "error" or event.get("error"):
                        error = f"error inside the stream: {_error_message(event)}"
                        return answered(response, start, FAULT, error, first)
        except STREAM_CUT_ERRORS as exc:
            return answered(response, start, BROKEN, cut_text(exc), first)
        except MalformedStream as exc:
            return answered(response, start, FAULT, str(exc), first)
    end = time.perf_counter()
    if not stopped:
        return answered(response, start, BROKEN, "stream ended without message_stop", first)
    return streamed(response, start, first, end, output_tokens if output_tokens is not None else chunks)


async def _unstreamed(response: aiohttp.ClientResponse, start: float) -> ProbeResult:
    """A JSON body where a stream was asked for: an error object, or a server that does not stream."""
    payload = await json_object(response, start)
    if isinstance(payload, ProbeResult):
        return payload
    if payload.get("type") == "error" or payload.get("error"):
        return answered(response, start, FAULT, f"error in a {response.status} answer: {_error_message(payload)}")
    if payload.get("type") != "message" or not isinstance(payload.get("content"), list):
        return answered(response, start, FAULT, "malformed response: not a message")
    return answered(response, start, Outcome.OK)
