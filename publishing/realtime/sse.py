"""GET /api/v1/events/: the event stream as Server-Sent Events, resumable with Last-Event-ID or ?last_seq=."""

from __future__ import annotations

from collections.abc import AsyncIterator

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse, StreamingHttpResponse

from monitoring.client_address import request_address
from monitoring.events import encode
from publishing.realtime.clients import QueueClient
from publishing.realtime.connect_limit import connect_limit
from publishing.realtime.hub import hub
from publishing.realtime.session import EventSession, parse_last_seq

RETRY_MS = 3000


def _frame(event: dict) -> bytes:
    seq_line = f"id: {event['seq']}\n" if event.get("seq") is not None else ""
    return f"{seq_line}event: {event['type']}\ndata: {encode(event)}\n\n".encode()


async def events_view(request: HttpRequest) -> HttpResponse:
    if request.method != "GET":
        return JsonResponse({"error": "GET only"}, status=405)
    try:
        last_seq = parse_last_seq(request.headers.get("Last-Event-ID") or request.GET.get("last_seq"))
    except ValueError:
        return JsonResponse({"error": "Last-Event-ID / last_seq must be a whole number"}, status=400)
    retry_after = connect_limit.admit(request_address(request))
    if retry_after:
        return JsonResponse(
            {"error": "too many live connects from this address; retry later"},
            status=429,
            headers={"Retry-After": f"{retry_after:.0f}"},
        )
    await hub.ensure_started()
    if hub.connection_count >= settings.REALTIME_MAX_CONNECTIONS:
        return JsonResponse(
            {"error": "too many live connections; retry later"}, status=503, headers={"Retry-After": "5"}
        )
    session = EventSession(QueueClient())
    opening = await session.opening(last_seq)

    async def stream() -> AsyncIterator[bytes]:
        try:
            yield f"retry: {RETRY_MS}\n\n".encode()
            yield b"".join(_frame(event) for event in opening)  # up to 1,000 missed events: one write
            while not session.dropped:
                events = await session.next_events()
                if session.dropped:
                    break
                # Everything queued goes out in one write: after a burst, one write per event and client
                # held the other clients' streams (and newer events) for seconds.
                # On SSE a heartbeat is a comment line: it keeps proxies from cutting an idle stream.
                yield b"".join(b": ping\n\n" if event["type"] == "heartbeat" else _frame(event) for event in events)
        finally:
            session.close()

    response = StreamingHttpResponse(stream(), content_type="text/event-stream")
    response["Cache-Control"] = "no-cache"
    response["X-Accel-Buffering"] = "no"
    return response
