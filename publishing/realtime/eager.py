"""Run a coroutine in the caller's step until it must wait; only then give it a task of its own.

Fan-out writes one frame to each of thousands of sockets. A write to a socket with room in its
buffer finishes without waiting, and waking a task per client to do it costs several times the
write itself. Python 3.12's eager tasks do this; 3.11 has none. Here the first step runs in the
caller (whose task is the current one meanwhile); if the coroutine then waits, an asyncio.Task
takes it over from exactly that point, so cancellation, exceptions and loop checks from there on
are a Task's own.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any

_STARTED = object()


def run_eagerly(coro: Coroutine[Any, Any, Any]) -> asyncio.Task | None:
    """None when `coro` ran to its end at once; otherwise the task that finishes it.

    An exception raised before the first suspension propagates to the caller.
    """
    try:
        waiting_on = coro.send(None)
    except StopIteration:
        return None
    return asyncio.ensure_future(_Resumed(coro, waiting_on))


class _Resumed(Coroutine):
    """`coro`, already stepped once, as a coroutine whose first step hands the Task what it awaits."""

    def __init__(self, coro: Coroutine[Any, Any, Any], waiting_on: Any) -> None:
        self._coro = coro
        self._first = waiting_on

    def send(self, value: Any) -> Any:
        if self._first is not _STARTED:
            first, self._first = self._first, _STARTED
            return first  # the Task waits on this, as if the coroutine had just yielded it
        return self._coro.send(value)

    def throw(self, typ, val=None, tb=None) -> Any:  # noqa: ANN001 (the generator protocol's signature)
        if self._first is not _STARTED:
            # Cancelled before the Task's first step: what the coroutine awaited is abandoned.
            if isinstance(self._first, asyncio.Future):
                self._first.cancel()
            self._first = _STARTED
        if val is None and tb is None:
            return self._coro.throw(typ)
        return self._coro.throw(typ, val, tb)

    def close(self) -> None:
        self._coro.close()

    def __await__(self):
        return self

    def __iter__(self):
        return self

    def __next__(self) -> Any:
        return self.send(None)
