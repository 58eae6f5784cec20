"""Run a coroutine in the caller's step until it must wait; only then give it a task of its own.

Fan-out writes one frame to each of thousands of sockets. A write to a socket with room in its
buffer finishes without waiting, and waking a task per client to do it costs several times the
write itself. Python 3.12's eager tasks do this; 3.11 has none, so this module carries a
suspended coroutine on the way asyncio.Task would.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any


def run_eagerly(coro: Coroutine[Any, Any, Any]) -> asyncio.Task | None:
    """None when `coro` ran to its end at once; otherwise the task that finishes it.

    An exception raised before the first suspension propagates to the caller.
    """
    try:
        waiting_on = coro.send(None)
    except StopIteration:
        return None
    task = asyncio.ensure_future(_carry_on(coro, waiting_on))
    # Cancelled, even before its first step: end the coroutine too, so that its cleanup runs now.
    task.add_done_callback(lambda _task: coro.close())
    return task


async def _carry_on(coro: Coroutine[Any, Any, Any], waiting_on: Any) -> Any:
    loop = asyncio.get_running_loop()
    while True:
        if waiting_on is None:  # a bare yield (asyncio.sleep(0)): just let others run
            await asyncio.sleep(0)
        else:
            # What the coroutine awaits hands its own result or exception back to it when resumed;
            # here we only wait until it is done.
            waiting_on._asyncio_future_blocking = False
            done = loop.create_future()
            waiting_on.add_done_callback(lambda _f, done=done: done.done() or done.set_result(None))
            try:
                await done
            except asyncio.CancelledError:
                waiting_on.cancel()
                raise
        try:
            waiting_on = coro.send(None)
        except StopIteration as stop:
            return stop.value
