"""Names the request as the one acting (monitoring.acting) while Django answers it, for the audit trail."""

from __future__ import annotations

from asgiref.sync import iscoroutinefunction, markcoroutinefunction

from monitoring.acting import acting_as


class ActingRequestMiddleware:
    # Both modes: under ASGI a synchronous-only middleware would cost every request thread hops.
    sync_capable = True
    async_capable = True

    def __init__(self, get_response) -> None:
        self.get_response = get_response
        self.async_mode = iscoroutinefunction(get_response)
        if self.async_mode:
            markcoroutinefunction(self)

    def __call__(self, request):
        if self.async_mode:
            return self._call_async(request)
        with acting_as(request=request):
            return self.get_response(request)

    async def _call_async(self, request):
        # The context is copied into the threads that run the view, so the receivers there see it.
        with acting_as(request=request):
            return await self.get_response(request)
