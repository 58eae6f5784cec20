"""The registry's API (under /api/): models, by id or <provider>/<model>."""

from django.urls import path

from monitoring.api.views import AIModelViewSet

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
]
