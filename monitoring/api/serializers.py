"""JSON shapes of the registry. Secrets never leave the server; probe wiring is shown to staff only."""

from __future__ import annotations

from django.core.exceptions import ValidationError as DjangoValidationError
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from monitoring.models import AIModel, Credential, Provider
from monitoring.status import Status


class CleanedByTheModel(serializers.ModelSerializer):
    """Writes validated by the model's own clean(), as the admin validates them."""

    def clean_as_model(self, values: dict) -> None:
        try:
            self.Meta.model(**values).clean()
        except DjangoValidationError as exc:
            raise serializers.ValidationError(exc.message_dict) from exc

    def current_values(self) -> dict:
        """The instance's stored values (nothing when creating), for the changes to be applied on."""
        if self.instance is None:
            return {}
        return {f.name: getattr(self.instance, f.name) for f in self.Meta.model._meta.concrete_fields if f.name != "id"}


class ProviderSerializer(serializers.ModelSerializer):
    class Meta:
        model = Provider
        fields = ["id", "name", "slug", "url"]


class StatusSerializer(serializers.Serializer):
    status = serializers.ChoiceField(choices=Status.choices)
    since = serializers.DateTimeField()
    last_checked_at = serializers.DateTimeField(allow_null=True)
    last_latency_ms = serializers.FloatField(allow_null=True)
    message = serializers.CharField()
    manual = serializers.BooleanField()


class RegionViewSerializer(serializers.Serializer):
    region = serializers.CharField()
    status = serializers.ChoiceField(choices=Status.choices)
    last_checked_at = serializers.DateTimeField()
    last_latency_ms = serializers.FloatField(allow_null=True)
    message = serializers.CharField()


class AIModelSerializer(CleanedByTheModel):
    provider = serializers.SlugRelatedField(slug_field="slug", queryset=Provider.objects.all())
    provider_name = serializers.CharField(source="provider.name", read_only=True)
    public_slug = serializers.CharField(read_only=True)
    status = serializers.SerializerMethodField()
    regions = serializers.SerializerMethodField(help_text="Each region's own view; stale regions show unknown.")
    credential = serializers.SlugRelatedField(
        slug_field="name", queryset=Credential.objects.all(), required=False, allow_null=True
    )

    # Operational wiring: visible and writable for staff, absent for everyone else.
    STAFF_ONLY = (
        "endpoint",
        "upstream_model",
        "probe_config",
        "credential",
        "timeout_seconds",
        "failures_to_confirm",
        "successes_to_recover",
        "enabled",
    )

    class Meta:
        model = AIModel
        fields = [
            "id",
            "public_slug",
            "provider",
            "provider_name",
            "name",
            "slug",
            "description",
            "kind",
            "probe_kind",
            "interval_seconds",
            "latency_threshold_ms",
            "ttft_threshold_ms",
            "public",
            "display_order",
            "status",
            "regions",
            "endpoint",
            "upstream_model",
            "probe_config",
            "credential",
            "timeout_seconds",
            "failures_to_confirm",
            "successes_to_recover",
            "enabled",
        ]

    def get_fields(self):
        fields = super().get_fields()
        request = self.context.get("request")
        if not (request and request.user and request.user.is_staff):
            for name in self.STAFF_ONLY:
                fields.pop(name, None)
        return fields

    @extend_schema_field(StatusSerializer)
    def get_status(self, obj: AIModel) -> dict:
        row = obj.status_row
        return {
            "status": obj.shown_status(),
            "since": row.since,
            "last_checked_at": row.last_checked_at,
            "last_latency_ms": row.last_latency_ms,
            "message": row.message,
            "manual": row.manual,
        }

    @extend_schema_field(RegionViewSerializer(many=True))
    def get_regions(self, obj: AIModel) -> list[dict]:
        return obj.shown_regions()

    def validate(self, attrs: dict) -> dict:
        self.clean_as_model({**self.current_values(), **attrs})
        return attrs
