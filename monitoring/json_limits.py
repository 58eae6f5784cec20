"""JSON from outside (API bodies, WebSocket messages, pushed results) parsed within a size and a nesting limit."""

from __future__ import annotations

import json
import re
from typing import Any

from django.conf import settings

# A string (escapes included) or a bracket: the only tokens that matter for nesting.
_NESTING_TOKENS = re.compile(r'"(?:[^"\\]|\\.)*"|[\[\]{}]')


class JSONLimitError(ValueError):
    """JSON refused before parsing: too large or nested too deeply. The message names the limit."""


def nesting_depth(text: str, stop_after: int) -> int:
    """The deepest nesting of arrays and objects in `text`, counted up to `stop_after` (then returned at once)."""
    if text.count("[") + text.count("{") <= stop_after:
        return 0  # cannot be deeper than the brackets it holds; the usual small body ends here
    depth = deepest = 0
    for match in _NESTING_TOKENS.finditer(text):
        token = match.group()
        if token in "[{":
            depth += 1
            if depth > deepest:
                deepest = depth
                if deepest > stop_after:
                    return deepest
        elif token in "]}":
            depth -= 1
    return deepest


def check_limits(text: str | bytes, max_bytes: int | None = None, max_depth: int | None = None) -> None:
    """Raise JSONLimitError when `text` is over the size or nesting limit (settings JSON_MAX_BYTES, JSON_MAX_DEPTH)."""
    max_bytes = settings.JSON_MAX_BYTES if max_bytes is None else max_bytes
    max_depth = settings.JSON_MAX_DEPTH if max_depth is None else max_depth
    if len(text) > max_bytes:
        raise JSONLimitError(f"JSON body too large: more than {max_bytes} bytes.")
    if isinstance(text, bytes):
        text = text.decode("utf-8", errors="replace")
    if nesting_depth(text, max_depth) > max_depth:
        raise JSONLimitError(f"JSON nested too deeply: more than {max_depth} levels of arrays or objects.")


def loads(text: str | bytes, max_bytes: int | None = None, max_depth: int | None = None) -> Any:
    """json.loads within the limits: JSONLimitError when over them, ValueError when not JSON."""
    check_limits(text, max_bytes, max_depth)
    return json.loads(text)
