"""The core's API (under /api/): a model's status, history, uptime and switches (by id or <provider>/<model>);
providers, incidents and maintenance windows. The model list and detail are routed by statuspage.models_api,
which answers anonymous readers from the snapshot and hands the rest to monitoring.api.views."""

from django.urls import path
from rest_framework.routers import SimpleRouter

from monitoring.api.incidents import IncidentViewSet
from monitoring.api.maintenances import MaintenanceViewSet
from monitoring.api.model_records import ModelHistoryView, ModelStatusView, ModelUptimeView
from monitoring.api.providers import ProviderViewSet
from monitoring.api.views import AIModelViewSet

model_disable = AIModelViewSet.as_view({"post": "disable"})
model_enable = AIModelViewSet.as_view({"post": "enable"})

router = SimpleRouter()
router.register("v1/providers", ProviderViewSet, basename="api-provider")
router.register("v1/incidents", IncidentViewSet, basename="api-incident")
router.register("v1/maintenances", MaintenanceViewSet, basename="api-maintenance")

urlpatterns = [
    path("v1/models/<int:pk>/disable/", model_disable, name="api-model-disable"),
    path("v1/models/<int:pk>/enable/", model_enable, name="api-model-enable"),
    path("v1/models/<int:pk>/status/", ModelStatusView.as_view(), name="api-model-status"),
    path("v1/models/<int:pk>/history/", ModelHistoryView.as_view(), name="api-model-history"),
    path("v1/models/<int:pk>/uptime/", ModelUptimeView.as_view(), name="api-model-uptime"),
    path("v1/models/<slug:provider>/<slug:model>/disable/", model_disable, name="api-model-disable-slug"),
    path("v1/models/<slug:provider>/<slug:model>/enable/", model_enable, name="api-model-enable-slug"),
    path("v1/models/<slug:provider>/<slug:model>/status/", ModelStatusView.as_view(), name="api-model-status-slug"),
    path("v1/models/<slug:provider>/<slug:model>/history/", ModelHistoryView.as_view(), name="api-model-history-slug"),
    path("v1/models/<slug:provider>/<slug:model>/uptime/", ModelUptimeView.as_view(), name="api-model-uptime-slug"),
    *router.urls,
]
