"""The collectors' API (under /api/): remote collectors and other monitors push results here."""

from django.urls import path

from collectors.api.ingest import IngestView

urlpatterns = [
    path("v1/ingest/", IngestView.as_view(), name="api-ingest"),
]
