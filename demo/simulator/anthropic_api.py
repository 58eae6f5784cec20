"""Anthropic wire format: the Messages API (streamed events and whole messages), the model list and error bodies."""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from .behaviour import Behaviour
from .exchange import BadRequest, Exchange
from .scenario import ModelSpec
from .tokens import MAX_OUTPUT_TOKENS, content_length, estimate_tokens, text_of, token

_ids = itertools.count(1)

_ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    500: "api_error",
    529: "overloaded_error",
}


def error_body(status: int, message: str, code: str | None = None) -> bytes:
    kind = _ERROR_TYPES.get(status) or ("api_error" if status >= 500 else "invalid_request_error")
    return json.dumps({"type": "error", "error": {"type": kind, "message": message}}).encode()


def _model_entry(name: str) -> dict[str, Any]:
    return {"type": "model", "id": name, "display_name": name, "created_at": "2025-01-01T00:00:00Z"}


def models_body(names: Iterable[str]) -> bytes:
    data = [_model_entry(name) for name in names]
    return json.dumps(
        {
            "data": data,
            "has_more": False,
            "first_id": data[0]["id"] if data else None,
            "last_id": data[-1]["id"] if data else None,
        }
    ).encode()


def model_body(name: str) -> bytes:
    return json.dumps(_model_entry(name)).encode()


def _event(name: str, data: str) -> str:
    return f"event: {name}\ndata: {data}\n\n"


@dataclass(slots=True)
class MessagesRequest:
    stream: bool
    tokens: int
    input_tokens: int


class Messages:
    """POST /v1/messages."""

    error_body = staticmethod(error_body)

    def parse(self, body: dict[str, Any], spec: ModelSpec) -> MessagesRequest:
        messages = body.get("messages")
        if not isinstance(messages, list) or not messages:
            raise BadRequest("messages: must be a non-empty list")
        if "max_tokens" not in body:
            raise BadRequest("max_tokens: Field required")
        cap = body["max_tokens"]
        if not isinstance(cap, int) or isinstance(cap, bool) or cap < 1:
            raise BadRequest("max_tokens: must be a positive integer")
        stream = body.get("stream", False)
        if not isinstance(stream, bool) and stream is not None:
            raise BadRequest("stream: must be a boolean")
        chars = sum(content_length(m.get("content")) for m in messages if isinstance(m, dict))
        chars += content_length(body.get("system"))
        return MessagesRequest(
            stream=bool(stream), tokens=min(cap, MAX_OUTPUT_TOKENS), input_tokens=estimate_tokens(chars)
        )

    async def answer(
        self, ex: Exchange, behaviour: Behaviour, model: str, request: MessagesRequest, broken: bool
    ) -> None:
        n = request.tokens
        mid = f"msg_sim{next(_ids):012x}"
        # The simulator always writes up to the cap, so every message stops for max_tokens.
        if not request.stream:
            if not await ex.pause(behaviour.response_s(n)):
                return
            body = json.dumps(
                {
                    "id": mid,
                    "type": "message",
                    "role": "assistant",
                    "model": model,
                    "content": [{"type": "text", "text": text_of(n)}],
                    "stop_reason": "max_tokens",
                    "stop_sequence": None,
                    "usage": {"input_tokens": request.input_tokens, "output_tokens": n},
                }
            ).encode()
            await (ex.truncated_json(200, body) if broken else ex.json(200, body))
            return

        start = {
            "type": "message_start",
            "message": {
                "id": mid,
                "type": "message",
                "role": "assistant",
                "content": [],
                "model": model,
                "stop_reason": None,
                "stop_sequence": None,
                "usage": {"input_tokens": request.input_tokens, "output_tokens": 1},
            },
        }
        opening = _event("message_start", json.dumps(start)) + _event(
            "content_block_start",
            '{"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}',
        )

        def delta(i: int) -> str:
            return (
                "event: content_block_delta\ndata: "
                '{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"' + token(i) + '"}}\n\n'
            )

        closing = (
            _event("content_block_stop", '{"type":"content_block_stop","index":0}')
            + _event(
                "message_delta",
                '{"type":"message_delta","delta":{"stop_reason":"max_tokens","stop_sequence":null},'
                f'"usage":{{"output_tokens":{n}}}}}',
            )
            + _event("message_stop", '{"type":"message_stop"}')
        )
        await ex.token_stream(behaviour.ttft_s(), behaviour.token_interval_s, opening, delta, n, closing, broken)


MESSAGES = Messages()
