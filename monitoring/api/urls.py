from django.urls import path
from drf_spectacular.views import SpectacularAPIView

from collectors.api.ingest import IngestView
from monitoring.api.snapshot import snapshot_view
from monitoring.api.views import AIModelViewSet
from monitoring.realtime.sse import events_view

model_list = AIModelViewSet.as_view({"get": "list", "post": "create"})
model_detail = AIModelViewSet.as_view({"get": "retrieve", "put": "update", "patch": "partial_update"})
model_disable = AIModelViewSet.as_view({"post": "disable"})
model_enable = AIModelViewSet.as_view({"post": "enable"})

urlpatterns = [
    path("v1/models/", model_list, name="api-model-list"),
    path("v1/models/<int:pk>/", model_detail, name="api-model-detail"),
    path("v1/models/<int:pk>/disable/", model_disable, name="api-model-disable"),
    path("v1/models/<int:pk>/enable/", model_enable, name="api-model-enable"),
    path("v1/models/<slug:provider>/<slug:model>/", model_detail, name="api-model-detail-slug"),
    path("v1/models/<slug:provider>/<slug:model>/disable/", model_disable, name="api-model-disable-slug"),
    path("v1/models/<slug:provider>/<slug:model>/enable/", model_enable, name="api-model-enable-slug"),
    path("v1/snapshot/", snapshot_view, name="api-snapshot"),
    path("v1/events/", events_view, name="api-events"),
    path("v1/ingest/", IngestView.as_view(), name="api-ingest"),
    path("schema/", SpectacularAPIView.as_view(), name="api-schema"),
]
