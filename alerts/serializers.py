"""JSON shapes of alert channels. Secrets are write-only: a webhook's secret is returned once, on creation."""

from __future__ import annotations

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from alerts.models import Channel
from monitoring.api.serializers import CleanedByTheModel
from monitoring.models import AIModel, ModelKind, Provider


@extend_schema_field(OpenApiTypes.STR)
class PublicSlugField(serializers.RelatedField):
    """A model named as on the page: `<provider>/<model>`."""

    default_error_messages = {
        "missing": "No model {value!r}; use <provider>/<model>.",
        "invalid": "Use <provider>/<model>, for example openai/gpt-4o.",
    }

    def to_representation(self, value: AIModel) -> str:
        return value.public_slug

    def to_internal_value(self, data) -> AIModel:
        if not isinstance(data, str) or "/" not in data:
            self.fail("invalid")
        provider, _, slug = data.partition("/")
        model = self.get_queryset().filter(provider__slug=provider, slug=slug).first()
        if model is None:
            self.fail("missing", value=data)
        return model


class ChannelSerializer(CleanedByTheModel):
    url = serializers.CharField(write_only=True, help_text="Write; read back masked as `shown_url`.")
    shown_url = serializers.CharField(read_only=True)
    secret = serializers.CharField(
        write_only=True,
        required=False,
        allow_blank=True,
        help_text="Webhooks: a whsec_... signing secret. Left out, one is generated and returned once.",
    )
    has_secret = serializers.SerializerMethodField()
    providers = serializers.SlugRelatedField(
        slug_field="slug", many=True, required=False, queryset=Provider.objects.all()
    )
    models = PublicSlugField(
        source="ai_models", many=True, required=False, queryset=AIModel.objects.select_related("provider")
    )
    model_kinds = serializers.ListField(child=serializers.ChoiceField(choices=ModelKind.choices), required=False)
    events = serializers.ListField(child=serializers.ChoiceField(choices=Channel.Event.choices), required=False)

    class Meta:
        model = Channel
        fields = [
            "id",
            "name",
            "kind",
            "url",
            "shown_url",
            "secret",
            "has_secret",
            "language",
            "enabled",
            "providers",
            "models",
            "model_kinds",
            "events",
            "min_duration_seconds",
            "silence_during_maintenance",
            "remind_every_minutes",
            "consecutive_failures",
            "disabled_reason",
            "disabled_at",
            "created_at",
        ]
        read_only_fields = ["consecutive_failures", "disabled_reason", "disabled_at", "created_at"]

    def get_has_secret(self, obj: Channel) -> bool:
        return bool(obj.secret)

    def validate(self, attrs: dict) -> dict:
        values = {**self.current_values(), **{k: v for k, v in attrs.items() if k not in ("providers", "ai_models")}}
        if not values.get("secret") and self.instance is not None:
            values["secret"] = self.instance.secret
        self.clean_as_model(values)
        return attrs

    def update(self, instance: Channel, validated_data: dict) -> Channel:
        if not validated_data.get("secret"):
            validated_data.pop("secret", None)  # write-only: empty keeps the current secret
        reenable = validated_data.get("enabled") and not instance.enabled
        instance = super().update(instance, validated_data)
        if reenable:
            instance.enable()
        return instance


class ChannelCreatedSerializer(ChannelSerializer):
    """The answer to a creation: the only time a webhook's secret is shown."""

    secret = serializers.CharField(read_only=True)


class TestResultSerializer(serializers.Serializer):
    ok = serializers.BooleanField()
    notification_id = serializers.IntegerField()
    status_code = serializers.IntegerField(allow_null=True)
    error = serializers.CharField()
