"""JSON shapes of the registry. Secrets never leave the server; probe wiring is shown to staff only."""

from __future__ import annotations

from django.core.exceptions import ValidationError as DjangoValidationError
from django.utils import timezone
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from monitoring.api.permissions import sees_everything
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


class AIModelSerializer(CleanedByTheModel):
    provider = serializers.SlugRelatedField(slug_field="slug", queryset=Provider.objects.all())
    provider_name = serializers.CharField(source="provider.name", read_only=True)
    public_slug = serializers.CharField(read_only=True)
    status = serializers.SerializerMethodField()
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
        if not (request and sees_everything(request.user)):
            for name in self.STAFF_ONLY:
                fields.pop(name, None)
        return fields

    @extend_schema_field(StatusSerializer)
    def get_status(self, obj: AIModel) -> dict:
        row = obj.status_row
        status, since, message = obj.shown_record()
        return {
            "status": status,
            "since": since,
            "last_checked_at": row.last_checked_at,
            "last_latency_ms": row.last_latency_ms,
            "message": message,
            "manual": row.manual,
        }

    def validate(self, attrs: dict) -> dict:
        self.clean_as_model({**self.current_values(), **attrs})
        return attrs

    @classmethod
    def listing(cls, models: list[AIModel], *, staff: bool) -> list[dict]:
        """What `AIModelSerializer(models, many=True).data` gives, written directly.

        DRF builds and runs a field object per attribute and row, most of a list request's time;
        a test keeps both ways equal.
        """
        out = []
        now = timezone.now()
        zone = timezone.get_current_timezone()
        for obj in models:
            row = obj.status_row
            status, since, message = obj.shown_record(now)
            item = {
                "id": obj.pk,
                "public_slug": f"{obj.provider.slug}/{obj.slug}",
                "provider": obj.provider.slug,
                "provider_name": obj.provider.name,
                "name": obj.name,
                "slug": obj.slug,
                "description": obj.description,
                "kind": obj.kind,
                "probe_kind": obj.probe_kind,
                "interval_seconds": obj.interval_seconds,
                "latency_threshold_ms": obj.latency_threshold_ms,
                "ttft_threshold_ms": obj.ttft_threshold_ms,
                "public": obj.public,
                "display_order": obj.display_order,
                "status": {
                    "status": status,
                    "since": _iso(since, zone),
                    "last_checked_at": _iso(row.last_checked_at, zone),
                    "last_latency_ms": row.last_latency_ms,
                    "message": message,
                    "manual": row.manual,
                },
            }
            if staff:
                item |= {
                    "endpoint": obj.endpoint,
                    "upstream_model": obj.upstream_model,
                    "probe_config": obj.probe_config,
                    "credential": obj.credential.name if obj.credential_id else None,
                    "timeout_seconds": obj.timeout_seconds,
                    "failures_to_confirm": obj.failures_to_confirm,
                    "successes_to_recover": obj.successes_to_recover,
                    "enabled": obj.enabled,
                }
            out.append(item)
        return out


def _iso(moment, zone) -> str | None:
    """As DRF's DateTimeField writes it: in the current time zone, ISO 8601, UTC as Z."""
    if moment is None:
        return None
    text = moment.astimezone(zone).isoformat()
    return text[:-6] + "Z" if text.endswith("+00:00") else text
