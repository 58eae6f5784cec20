"""The read side's API: the snapshot document and the SSE event stream (under /api/)."""

from django.urls import path

from publishing.api import snapshot_view
from publishing.realtime.sse import events_view

urlpatterns = [
    path("v1/snapshot/", snapshot_view, name="api-snapshot"),
    path("v1/events/", events_view, name="api-events"),
]
