"""The condition language of HTTP probes: `[STATUS] < 400`, `[BODY].data[0].id == gpt-4o`, `len([BODY].data) > 0`."""

from __future__ import annotations

import functools
import json
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from fnmatch import fnmatchcase
from typing import Any

# A condition is `LEFT OPERATOR RIGHT`.
#
# LEFT is one of
#   [STATUS]            the HTTP status code
#   [RESPONSE_TIME]     milliseconds from sending the request to the end of the body
#   [BODY]              the body as text
#   [BODY].a.b[0].c     a value inside a JSON body (`.key` and `[index]` steps; negative indexes count from the end)
#   len(...)            the length of a [BODY] value: items of an array or object, characters of a string
#                       (len([BODY]) counts the items of a JSON array or object body, else its characters)
#
# OPERATOR is one of ==, !=, <, <=, >, >=; the ordering ones need a number on the right.
#
# RIGHT is
#   a value             200, UP, true, null, "quoted text" (quotes make it text; unquoted numbers compare as numbers)
#   any(a, b, ...)      == is true when the value equals one of them, != when it equals none
#   pat(glob)           == is true when the value's text matches the glob (*, ?, [abc]), != when it does not
#
# A value that is not there (a missing key, an index out of range, a body that is not JSON) fails every condition.

OPERATORS = ("==", "!=", "<=", ">=", "<", ">")
PLACEHOLDERS = ("STATUS", "RESPONSE_TIME", "BODY")
NOT_A_STRING = "must be a non-empty string such as [STATUS] == 200"

_SPLIT = re.compile(r"^(?P<left>.+?)\s*(?P<op>==|!=|<=|>=|<|>)\s*(?P<right>.*)$", re.DOTALL)
_LEFT = re.compile(r"^\[(?P<name>[A-Z_]+)\](?P<path>.*)$")
_STEP = re.compile(r"\.(?P<key>[^.\[\]]+)|\[(?P<index>-?\d+)\]")
_FUNCTION = re.compile(r"^(?P<name>any|pat)\((?P<args>.*)\)$", re.DOTALL)


class ConditionError(ValueError):
    """A condition that cannot be parsed; the message says what is wrong with it."""


@dataclass(frozen=True, slots=True)
class Value:
    text: str
    number: float | None  # set for unquoted values that read as a number

    @classmethod
    def parse(cls, raw: str) -> Value:
        raw = raw.strip()
        if len(raw) >= 2 and raw[0] == raw[-1] and raw[0] in "\"'":
            return cls(raw[1:-1], None)
        try:
            number = float(raw)
        except ValueError:
            number = None
        if number is not None and not math.isfinite(number):
            number = None
        return cls(raw, number)


@dataclass(frozen=True, slots=True)
class Condition:
    text: str
    placeholder: str
    path: tuple[str | int, ...]
    length: bool
    op: str
    function: str  # "", "any" or "pat"
    values: tuple[Value, ...]


@functools.lru_cache(maxsize=4096)
def parse(text: str) -> Condition:
    """Parse one condition. Cached: probes parse the same few strings over and over."""
    if not isinstance(text, str) or not text.strip():
        raise ConditionError(NOT_A_STRING)
    match = _SPLIT.match(text.strip())
    if not match:
        raise ConditionError(f"no operator in {text!r}; use one of {', '.join(OPERATORS)}")
    left, op, right = match["left"].strip(), match["op"], match["right"].strip()

    length = left.startswith("len(") and left.endswith(")")
    if length:
        left = left[4:-1].strip()
    left_match = _LEFT.match(left)
    if not left_match or left_match["name"] not in PLACEHOLDERS:
        raise ConditionError(f"unknown left side {left!r}; use [STATUS], [RESPONSE_TIME], [BODY], [BODY].path or len()")
    placeholder = left_match["name"]
    path = _parse_path(left_match["path"], left)
    if placeholder != "BODY" and (path or length):
        raise ConditionError(f"[{placeholder}] takes no path and no len(); only [BODY] does")

    if not right:
        raise ConditionError(f"nothing to compare with after {op}")
    function_match = _FUNCTION.match(right)
    function = function_match["name"] if function_match else ""
    if function == "pat":
        parts = [function_match["args"].strip()]
    elif function == "any":
        parts = [part.strip() for part in function_match["args"].split(",")]
    else:
        parts = [right]
    if not all(parts):
        raise ConditionError(f"empty value in {right!r}")
    values = (Value(parts[0], None),) if function == "pat" else tuple(Value.parse(part) for part in parts)

    if op not in ("==", "!="):
        if function:
            raise ConditionError(f"{function}() works with == and != only")
        if values[0].number is None:
            raise ConditionError(f"{op} needs a number on the right, not {right!r}")
    numeric_subject = placeholder != "BODY" or length
    if numeric_subject and function != "pat" and any(value.number is None for value in values):
        raise ConditionError(f"{'len()' if length else '[' + placeholder + ']'} is a number; {right!r} is not")
    return Condition(text.strip(), placeholder, path, length, op, function, values)


def _parse_path(raw: str, left: str) -> tuple[str | int, ...]:
    steps: list[str | int] = []
    position = 0
    while position < len(raw):
        match = _STEP.match(raw, position)
        if not match:
            raise ConditionError(f"cannot read the path in {left!r} from {raw[position:]!r}; use .key and [0]")
        steps.append(match["key"] if match["key"] is not None else int(match["index"]))
        position = match.end()
    return tuple(steps)


def parse_all(texts: Sequence[str]) -> list[Condition]:
    return [parse(text) for text in texts]


# --- Evaluation -------------------------------------------------------------------------------------------------------

_MISSING = object()
_NOT_JSON = object()


class _Answer:
    """The answer a set of conditions is checked against; the JSON body is parsed once, on first use."""

    __slots__ = ("status", "response_time_ms", "body", "_json")

    def __init__(self, status: int, response_time_ms: float, body: str) -> None:
        self.status = status
        self.response_time_ms = response_time_ms
        self.body = body
        self._json: Any = _MISSING

    def json(self) -> Any:
        if self._json is _MISSING:
            try:
                self._json = json.loads(self.body)
            except (ValueError, RecursionError):
                self._json = _NOT_JSON
        return self._json


def evaluate(conditions: Sequence[Condition], status: int, response_time_ms: float, body: str = "") -> list[str]:
    """The conditions that are not met, each described with the value it saw. An empty list: all are met."""
    answer = _Answer(status, response_time_ms, body)
    failures = []
    for condition in conditions:
        problem = _check(condition, answer)
        if problem is not None:
            failures.append(f"{condition.text} ({problem})")
    return failures


def _check(condition: Condition, answer: _Answer) -> str | None:
    value, problem = _resolve(condition, answer)
    if problem is not None:
        return problem
    if condition.op in ("==", "!="):
        if condition.function == "pat":
            matched = fnmatchcase(_text(value), condition.values[0].text)
        else:
            matched = any(_equals(value, expected) for expected in condition.values)
        if matched == (condition.op == "=="):
            return None
        return f"actual: {_show(value)}"
    number = _number(value)
    if number is None:
        return f"actual: {_show(value)}, not a number"
    expected = condition.values[0].number
    met = {
        "<": number < expected,
        "<=": number <= expected,
        ">": number > expected,
        ">=": number >= expected,
    }[condition.op]
    return None if met else f"actual: {_show(value)}"


def _resolve(condition: Condition, answer: _Answer) -> tuple[Any, str | None]:
    if condition.placeholder == "STATUS":
        return answer.status, None
    if condition.placeholder == "RESPONSE_TIME":
        return round(answer.response_time_ms, 1), None
    if not condition.path:
        if condition.length:
            document = answer.json()
            return len(document if isinstance(document, list | dict) else answer.body), None
        return answer.body.strip(), None
    value = answer.json()
    if value is _NOT_JSON:
        return None, "the body is not JSON"
    walked = "[BODY]"
    for step in condition.path:
        walked += f"[{step}]" if isinstance(step, int) else f".{step}"
        if isinstance(step, int) and isinstance(value, list) and -len(value) <= step < len(value):
            value = value[step]
        elif isinstance(step, str) and isinstance(value, dict) and step in value:
            value = value[step]
        else:
            return None, f"{walked} is missing"
    if condition.length:
        if not isinstance(value, list | dict | str):
            return None, f"{walked} has no length; it is {_show(value)}"
        return len(value), None
    return value, None


def _number(value: Any) -> float | None:
    if type(value) is int or type(value) is float:
        return value
    if isinstance(value, str):
        try:
            number = float(value)
        except ValueError:
            return None
        return number if math.isfinite(number) else None
    return None


def _text(value: Any) -> str:
    if isinstance(value, str):
        return value
    if value is None or isinstance(value, bool | list | dict):
        return json.dumps(value, separators=(",", ":"))
    return str(value)


def _equals(value: Any, expected: Value) -> bool:
    if expected.number is not None:
        number = _number(value)
        if number is not None:
            return number == expected.number
    return _text(value) == expected.text


def _show(value: Any) -> str:
    shown = json.dumps(value, separators=(",", ":"), ensure_ascii=False, default=str)
    return shown if len(shown) <= 100 else shown[:97] + "..."
