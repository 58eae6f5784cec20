from django.urls import path

from anomalies.api import ModelAnomaliesView

urlpatterns = [
    path("v1/models/<int:pk>/anomalies/", ModelAnomaliesView.as_view(), name="api-model-anomalies"),
    path(
        "v1/models/<slug:provider>/<slug:model>/anomalies/",
        ModelAnomaliesView.as_view(),
        name="api-model-anomalies-slug",
    ),
]
