from django.conf.urls.i18n import i18n_patterns
from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularRedocView, SpectacularSwaggerSplitView

from aistatus import health, metrics, replica_admin
from aistatus.openapi import describe_read_side
from statuspage.urls import localized_urlpatterns
from subscriptions.urls import localized_urlpatterns as subscription_pages

describe_read_side()

urlpatterns = [
    path("healthz", health.healthz, name="healthz"),
    path("readyz", health.readyz, name="readyz"),
    path("metrics", metrics.metrics_view, name="metrics"),
    path("admin/replicas/", replica_admin.replicas, name="admin-replicas"),
    path("admin/2fa/", include("accounts.urls")),
    path("admin/2fa/passkeys/", include("django_otp_webauthn.urls", namespace="otp_webauthn")),
    path("admin/", admin.site.urls),
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    # Split: its start-up script is a file, not inline, so the policy needs no 'unsafe-inline' for scripts.
    path("api/docs/", SpectacularSwaggerSplitView.as_view(url_name="api-schema"), name="api-docs"),
    path("api/docs/redoc/", SpectacularRedocView.as_view(url_name="api-schema"), name="api-docs-redoc"),
    path("api/", include("monitoring.api.urls")),
    # Before the model detail's <provider>/<model>/, which `<id>/anomalies/` would otherwise match.
    path("api/", include("anomalies.urls")),
    path("api/", include("statuspage.models_api")),
    path("api/", include("publishing.urls")),
    path("api/", include("collectors.urls")),
    path("api/", include("alerts.urls")),
    path("api/", include("subscriptions.urls")),
    path("api/", include("audit.urls")),
    path("", include("statuspage.urls")),
    *i18n_patterns(*localized_urlpatterns, *subscription_pages, prefix_default_language=True),
]
