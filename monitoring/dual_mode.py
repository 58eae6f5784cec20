"""The base of the project's middleware: each runs in both modes.

Under ASGI a synchronous-only middleware makes every request hop to a thread and back; one that is
async-capable stays on the event loop, and under WSGI the same class runs synchronously.
"""

from __future__ import annotations

from asgiref.sync import iscoroutinefunction, markcoroutinefunction


class DualModeMiddleware:
    """Subclasses write `__call__` for the synchronous mode and `_call_async` for the asynchronous one."""

    sync_capable = True
    async_capable = True

    def __init__(self, get_response) -> None:
        self.get_response = get_response
        self.async_mode = iscoroutinefunction(get_response)
        if self.async_mode:
            markcoroutinefunction(self)
