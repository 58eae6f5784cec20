from django.conf.urls.i18n import i18n_patterns
from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView

from aistatus import health, metrics, replica_admin
from statuspage.urls import localized_urlpatterns

urlpatterns = [
    path("healthz", health.healthz, name="healthz"),
    path("readyz", health.readyz, name="readyz"),
    path("metrics", metrics.metrics_view, name="metrics"),
    path("admin/replicas/", replica_admin.replicas, name="admin-replicas"),
    path("admin/", admin.site.urls),
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("api/", include("monitoring.api.urls")),
    path("api/", include("publishing.urls")),
    path("api/", include("collectors.urls")),
    path("api/", include("alerts.urls")),
    path("", include("statuspage.urls")),
    *i18n_patterns(*localized_urlpatterns, prefix_default_language=True),
]
