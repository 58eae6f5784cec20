"""Names the request as the one acting (monitoring.acting) while Django answers it, for the audit trail."""

from __future__ import annotations

from monitoring.acting import acting_as
from monitoring.dual_mode import DualModeMiddleware


class ActingRequestMiddleware(DualModeMiddleware):
    def __call__(self, request):
        if self.async_mode:
            return self._call_async(request)
        with acting_as(request=request):
            return self.get_response(request)

    async def _call_async(self, request):
        # The context is copied into the threads that run the view, so the receivers there see it.
        with acting_as(request=request):
            return await self.get_response(request)
