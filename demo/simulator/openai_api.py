"""OpenAI wire format: chat completions (streamed and not), embeddings, the model list and error bodies."""

from __future__ import annotations

import itertools
import json
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from .behaviour import Behaviour
from .exchange import BadRequest, Exchange
from .scenario import ModelSpec
from .tokens import (
    MAX_EMBEDDING_DIM,
    MAX_OUTPUT_TOKENS,
    content_length,
    embedding,
    embedding_base64,
    estimate_tokens,
    text_of,
    token,
)

_ids = itertools.count(1)


def error_body(status: int, message: str, code: str | None = None) -> bytes:
    if status == 429:
        kind, code = "requests", code or "rate_limit_exceeded"
    elif status >= 500:
        kind = "server_error"
    else:
        kind = "invalid_request_error"
    return json.dumps({"error": {"message": message, "type": kind, "param": None, "code": code}}).encode()


def models_body(names: Iterable[str], created: int) -> bytes:
    return json.dumps(
        {
            "object": "list",
            "data": [{"id": name, "object": "model", "created": created, "owned_by": "simulator"} for name in names],
        }
    ).encode()


def model_body(name: str, created: int) -> bytes:
    return json.dumps({"id": name, "object": "model", "created": created, "owned_by": "simulator"}).encode()


def _positive_int(body: dict[str, Any], key: str, maximum: int) -> int | None:
    value = body.get(key)
    if value is None:
        return None
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise BadRequest(f"{key}: must be a positive integer")
    return min(value, maximum)


@dataclass(slots=True)
class ChatRequest:
    stream: bool
    tokens: int
    capped: bool  # the client set the cap, so the answer stops for "length"
    include_usage: bool
    prompt_tokens: int


class ChatCompletions:
    """POST /v1/chat/completions."""

    error_body = staticmethod(error_body)

    def parse(self, body: dict[str, Any], spec: ModelSpec) -> ChatRequest:
        messages = body.get("messages")
        if not isinstance(messages, list) or not messages:
            raise BadRequest("messages: must be a non-empty list")
        stream = body.get("stream", False)
        if not isinstance(stream, bool) and stream is not None:
            raise BadRequest("stream: must be a boolean")
        key = "max_completion_tokens" if body.get("max_completion_tokens") is not None else "max_tokens"
        cap = _positive_int(body, key, MAX_OUTPUT_TOKENS)
        options = body.get("stream_options") or {}
        if not isinstance(options, dict):
            raise BadRequest("stream_options: must be an object")
        chars = sum(content_length(m.get("content")) for m in messages if isinstance(m, dict))
        return ChatRequest(
            stream=bool(stream),
            tokens=cap if cap is not None else spec.output_tokens,
            capped=cap is not None,
            include_usage=bool(options.get("include_usage")),
            prompt_tokens=estimate_tokens(chars) + 3 * len(messages),
        )

    async def answer(self, ex: Exchange, behaviour: Behaviour, model: str, request: ChatRequest, broken: bool) -> None:
        n = request.tokens
        cid = f"chatcmpl-sim{next(_ids):x}"
        created = int(time.time())
        finish = "length" if request.capped else "stop"
        usage = {
            "prompt_tokens": request.prompt_tokens,
            "completion_tokens": n,
            "total_tokens": request.prompt_tokens + n,
        }
        if not request.stream:
            if not await ex.pause(behaviour.response_s(n)):
                return
            body = json.dumps(
                {
                    "id": cid,
                    "object": "chat.completion",
                    "created": created,
                    "model": model,
                    "choices": [
                        {
                            "index": 0,
                            "message": {"role": "assistant", "content": text_of(n), "refusal": None},
                            "logprobs": None,
                            "finish_reason": finish,
                        }
                    ],
                    "usage": usage,
                    "system_fingerprint": None,
                }
            ).encode()
            await (ex.truncated_json(200, body) if broken else ex.json(200, body))
            return

        # Chunks are rendered from a template: only the token differs, and tokens need no JSON escaping.
        head = (
            f'data: {{"id":"{cid}","object":"chat.completion.chunk","created":{created},'
            f'"model":{json.dumps(model)},"system_fingerprint":null,"choices":[{{"index":0,"delta":'
        )
        role = head + '{"role":"assistant","content":""},"logprobs":null,"finish_reason":null}]}\n\n'

        def chunk(i: int) -> str:
            return head + '{"content":"' + token(i) + '"},"logprobs":null,"finish_reason":null}]}\n\n'

        tail = head + '{},"logprobs":null,"finish_reason":"' + finish + '"}]}\n\n'
        if request.include_usage:
            tail += (
                f'data: {{"id":"{cid}","object":"chat.completion.chunk","created":{created},'
                f'"model":{json.dumps(model)},"choices":[],"usage":{json.dumps(usage)}}}\n\n'
            )
        tail += "data: [DONE]\n\n"
        await ex.token_stream(behaviour.ttft_s(), behaviour.token_interval_s, role, chunk, n, tail, broken)


@dataclass(slots=True)
class EmbeddingsRequest:
    texts: list[str]
    dim: int | None
    as_base64: bool
    prompt_tokens: int


def _embedding_texts(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, list) and value:
        if all(isinstance(item, str) for item in value):
            return value
        if all(isinstance(item, int) and not isinstance(item, bool) for item in value):
            return [" ".join(map(str, value))]
        if all(isinstance(item, list) and all(isinstance(t, int) for t in item) for item in value):
            return [" ".join(map(str, item)) for item in value]
    raise BadRequest("input: must be a string, a non-empty list of strings, or token ids")


class Embeddings:
    """POST /v1/embeddings."""

    error_body = staticmethod(error_body)

    def parse(self, body: dict[str, Any], spec: ModelSpec) -> EmbeddingsRequest:
        texts = _embedding_texts(body.get("input"))
        encoding = body.get("encoding_format") or "float"
        if encoding not in ("float", "base64"):
            raise BadRequest("encoding_format: must be 'float' or 'base64'")
        return EmbeddingsRequest(
            texts=texts,
            dim=_positive_int(body, "dimensions", MAX_EMBEDDING_DIM),
            as_base64=encoding == "base64",
            prompt_tokens=sum(estimate_tokens(len(text)) for text in texts),
        )

    async def answer(
        self, ex: Exchange, behaviour: Behaviour, model: str, request: EmbeddingsRequest, broken: bool
    ) -> None:
        if not await ex.pause(behaviour.embedding_s()):
            return
        dim = request.dim or behaviour.spec.embedding_dim
        data = []
        for index, text in enumerate(request.texts):
            vector = embedding(text, dim)
            data.append(
                {
                    "object": "embedding",
                    "index": index,
                    "embedding": embedding_base64(vector) if request.as_base64 else vector,
                }
            )
        body = json.dumps(
            {
                "object": "list",
                "data": data,
                "model": model,
                "usage": {"prompt_tokens": request.prompt_tokens, "total_tokens": request.prompt_tokens},
            }
        ).encode()
        await (ex.truncated_json(200, body) if broken else ex.json(200, body))


CHAT_COMPLETIONS = ChatCompletions()
EMBEDDINGS = Embeddings()
