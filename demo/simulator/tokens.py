"""Fake model output: the words streamed as tokens, rough prompt token counts and deterministic embeddings."""

from __future__ import annotations

import base64
import math
import random
import struct
from functools import lru_cache
from typing import Any

# Plain ASCII words with no characters JSON would escape, so they can be spliced into
# pre-rendered chunk templates without encoding each one.
WORDS: tuple[str, ...] = (
    "All",
    " systems",
    " nominal",
    ".",
    " The",
    " simulated",
    " model",
    " answers",
    " promptly",
    " and",
    " streams",
    " short",
    " words",
    " as",
    " tokens",
    ",",
    " one",
    " at",
    " a",
    " time",
    " so",
    " probes",
    " can",
    " measure",
    " latency",
    " and",
    " throughput",
    " without",
    " the",
    " internet",
    ".",
    " Done",
)

# A client asking for a huge completion must not make one request stream forever.
MAX_OUTPUT_TOKENS = 4096
MAX_EMBEDDING_DIM = 4096


def token(index: int) -> str:
    return WORDS[index % len(WORDS)]


@lru_cache(maxsize=256)
def text_of(tokens: int) -> str:
    return "".join(token(i) for i in range(tokens))


def estimate_tokens(text_length: int) -> int:
    """About four characters a token, as the providers' own rules of thumb say; never zero."""
    return max(1, text_length // 4)


def content_length(content: Any) -> int:
    """Characters of text in a message content: a string, or a list of typed parts with `text`."""
    if isinstance(content, str):
        return len(content)
    if isinstance(content, list):
        total = 0
        for part in content:
            if isinstance(part, dict) and isinstance(part.get("text"), str):
                total += len(part["text"])
            elif isinstance(part, str):
                total += len(part)
        return total
    return 0


@lru_cache(maxsize=8192)
def embedding(text: str, dim: int) -> tuple[float, ...]:
    """A unit vector that depends only on the text and the dimension, so answers are reproducible."""
    rng = random.Random(f"{dim}:{text}")
    vector = [rng.gauss(0.0, 1.0) for _ in range(dim)]
    norm = math.sqrt(sum(x * x for x in vector)) or 1.0
    return tuple(round(x / norm, 6) for x in vector)


def embedding_base64(vector: tuple[float, ...]) -> str:
    """OpenAI's `encoding_format: base64`: little-endian float32s, base64-encoded."""
    return base64.b64encode(struct.pack(f"<{len(vector)}f", *vector)).decode("ascii")
