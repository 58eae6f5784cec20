from django.urls import path

from anomalies.api import ModelAnomaliesView
from anomalies.objectives_api import ModelForecastView, ModelSloView

urlpatterns = [
    path("v1/models/<int:pk>/anomalies/", ModelAnomaliesView.as_view(), name="api-model-anomalies"),
    path(
        "v1/models/<slug:provider>/<slug:model>/anomalies/",
        ModelAnomaliesView.as_view(),
        name="api-model-anomalies-slug",
    ),
    path("v1/models/<int:pk>/forecast/", ModelForecastView.as_view(), name="api-model-forecast"),
    path(
        "v1/models/<slug:provider>/<slug:model>/forecast/", ModelForecastView.as_view(), name="api-model-forecast-slug"
    ),
    path("v1/models/<int:pk>/slo/", ModelSloView.as_view(), name="api-model-slo"),
    path("v1/models/<slug:provider>/<slug:model>/slo/", ModelSloView.as_view(), name="api-model-slo-slug"),
]
