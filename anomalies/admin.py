from django.contrib import admin

from anomalies.models import Anomaly, SeriesState


@admin.register(Anomaly)
class AnomalyAdmin(admin.ModelAdmin):
    """Anomalies are the detector's records: read here, never edited."""

    list_display = ["model", "metric", "region", "started_at", "ended_at", "peak_score", "observed", "direction"]
    list_filter = ["metric", "direction", ("ended_at", admin.EmptyFieldListFilter)]
    list_select_related = ["model__provider"]
    search_fields = ["model__name", "model__slug"]

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False


@admin.register(SeriesState)
class SeriesStateAdmin(admin.ModelAdmin):
    list_display = ["model", "metric", "region", "learning", "last_time", "rejected", "errors"]
    list_filter = ["metric", "learning"]
    list_select_related = ["model__provider"]
    exclude = ["state", "window"]

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False
