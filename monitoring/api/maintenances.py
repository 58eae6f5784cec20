"""Maintenance windows through the API, one-off and recurring: schedule, change and cancel."""

from __future__ import annotations

from datetime import timedelta

from django.core.exceptions import ValidationError as DjangoValidationError
from django.db.models import Prefetch, QuerySet
from django.utils import timezone
from drf_spectacular.utils import OpenApiExample, extend_schema, extend_schema_field, extend_schema_view
from rest_framework import serializers, viewsets

from monitoring.api.idempotency import idempotent
from monitoring.api.model_slugs import ModelSlugsField
from monitoring.api.pagination import NewestFirst
from monitoring.api.permissions import OperatorsOnly
from monitoring.models import AIModel, Maintenance, Provider


class WindowSerializer(serializers.Serializer):
    starts_at = serializers.DateTimeField()
    ends_at = serializers.DateTimeField()


class MaintenanceSerializer(serializers.ModelSerializer):
    name = serializers.CharField(source="title", max_length=200)
    models = ModelSlugsField(source="target_models", required=False)
    provider = serializers.SlugRelatedField(
        slug_field="slug",
        queryset=Provider.objects.all(),
        required=False,
        allow_null=True,
        help_text="Every model of this provider is under maintenance too.",
    )
    active = serializers.SerializerMethodField(help_text="A window of it is in progress now.")
    next_window = serializers.SerializerMethodField(help_text="The window in progress or the next one (a year ahead).")

    class Meta:
        model = Maintenance
        fields = [
            "id",
            "name",
            "description",
            "models",
            "provider",
            "starts_at",
            "ends_at",
            "recurrence",
            "duration_minutes",
            "time_zone",
            "active",
            "next_window",
        ]
        read_only_fields = ["id"]

    def get_active(self, window: Maintenance) -> bool:
        return window.is_active(timezone.now())

    @extend_schema_field(WindowSerializer(allow_null=True))
    def get_next_window(self, window: Maintenance) -> dict | None:
        now = timezone.now()
        found = window.occurrences(now, now + timedelta(days=366))[:1]
        return {"starts_at": found[0].starts_at, "ends_at": found[0].ends_at} if found else None

    def validate(self, attrs: dict) -> dict:
        current = self.instance
        models = attrs.get("target_models", list(current.target_models()) if current else [])
        provider = attrs.get("provider", current.provider if current else None)
        if not models and provider is None:
            raise serializers.ValidationError({"models": ["Name at least one model, or a provider."]})
        values = {
            name: attrs.get(name, getattr(current, name) if current else None)
            for name in ("title", "starts_at", "ends_at", "recurrence", "duration_minutes", "time_zone")
        }
        values["recurrence"] = values["recurrence"] or ""
        values["time_zone"] = values["time_zone"] or "UTC"
        # The model's own rules, as the admin applies them (end after start, cron, time zone, duration).
        window = Maintenance(**values, provider=provider, model=models[0] if models else None)
        try:
            window.clean()
        except DjangoValidationError as exc:
            raise serializers.ValidationError(exc.message_dict) from exc
        return attrs

    def create(self, validated: dict) -> Maintenance:
        models = validated.pop("target_models", [])
        window = Maintenance.objects.create(**validated)
        window.models_affected.set(models)
        return window

    def update(self, window: Maintenance, validated: dict) -> Maintenance:
        models = validated.pop("target_models", None)
        for name, value in validated.items():
            setattr(window, name, value)
        if models is not None:
            window.model = None  # the list replaces whatever the admin named
        window.save()
        if models is not None:
            window.models_affected.set(models)
        return window


EXAMPLE = {
    "name": "Database upgrade",
    "models": ["openai/gpt-4o"],
    "starts_at": "2026-12-24T02:00:00Z",
    "ends_at": "2026-12-24T03:00:00Z",
}
RECURRING = {
    "name": "Weekly restart",
    "models": ["openai/gpt-4o"],
    "starts_at": "2026-12-01T00:00:00Z",
    "ends_at": "2027-12-01T00:00:00Z",
    "recurrence": "0 3 * * sun",
    "duration_minutes": 30,
    "time_zone": "Asia/Seoul",
}


@extend_schema_view(
    list=extend_schema(summary="Maintenance windows, newest first"),
    create=extend_schema(
        summary="Schedule a window (overlapping windows are allowed)",
        examples=[OpenApiExample("One-off", value=EXAMPLE), OpenApiExample("Recurring", value=RECURRING)],
    ),
    destroy=extend_schema(summary="Cancel a window (a recurring one: the whole series)"),
)
class MaintenanceViewSet(viewsets.ModelViewSet):
    """While a window is active its models are `under_maintenance` (applied by the collectors' sweep, every 10 s)."""

    serializer_class = MaintenanceSerializer
    permission_classes = [OperatorsOnly]
    pagination_class = NewestFirst
    filter_backends: list = []

    def get_queryset(self) -> QuerySet[Maintenance]:
        return Maintenance.objects.select_related("provider", "model__provider").prefetch_related(
            Prefetch("models_affected", queryset=AIModel.objects.select_related("provider"))
        )

    @idempotent
    def create(self, request, *args, **kwargs):
        return super().create(request, *args, **kwargs)
