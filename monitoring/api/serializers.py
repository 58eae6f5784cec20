"""JSON shapes of the registry. Secrets never leave the server; probe wiring is shown to staff only."""

from __future__ import annotations

from django.core.exceptions import ValidationError as DjangoValidationError
from django.utils import timezone
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from monitoring.api.permissions import sees_everything
from monitoring.models import AIModel, Credential, Provider, RegionStatus, region_view
from monitoring.status import Status, shown_record, shown_until


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

    @extend_schema_field(RegionViewSerializer(many=True))
    def get_regions(self, obj: AIModel) -> list[dict]:
        return RegionViewSerializer(obj.shown_regions(), many=True).data

    def validate(self, attrs: dict) -> dict:
        self.clean_as_model({**self.current_values(), **attrs})
        return attrs

    # What listing() reads: values, not model instances (three joined instances a row cost more than the rest).
    LISTING_VALUES = (
        *("id", "provider__slug", "provider__name", "name", "slug", "description", "kind", "probe_kind"),
        *("interval_seconds", "latency_threshold_ms", "ttft_threshold_ms", "public", "display_order"),
        *("status_row__status", "status_row__since", "status_row__last_checked_at", "status_row__last_latency_ms"),
        *("status_row__message", "status_row__manual", "endpoint", "upstream_model", "probe_config"),
        *("credential__name", "timeout_seconds", "failures_to_confirm", "successes_to_recover", "enabled"),
    )

    @classmethod
    def listing(cls, rows: list[dict], *, staff: bool, turns: list | None = None) -> list[dict]:
        """What `AIModelSerializer(models, many=True).data` gives, written directly from LISTING_VALUES rows.

        DRF builds and runs a field object per attribute and row, most of a list request's time;
        a test keeps both ways equal. `turns`, when given, receives the moments at which a status shown
        here turns `unknown` with time alone (shown_until): the page is right until the first of them.
        """
        out = []
        now = timezone.now()
        zone = timezone.get_current_timezone()
        regions = _regions_of(rows, now, zone, turns)
        for row in rows:
            if turns is not None:
                turns.append(
                    shown_until(
                        row["status_row__status"],
                        last_checked_at=row["status_row__last_checked_at"],
                        interval_seconds=row["interval_seconds"],
                        manual=row["status_row__manual"],
                    )
                )
            status, since, message = shown_record(
                row["status_row__status"],
                row["status_row__since"],
                row["status_row__message"],
                last_checked_at=row["status_row__last_checked_at"],
                interval_seconds=row["interval_seconds"],
                manual=row["status_row__manual"],
                now=now,
            )
            item = {
                "id": row["id"],
                "public_slug": f"{row['provider__slug']}/{row['slug']}",
                "provider": row["provider__slug"],
                "provider_name": row["provider__name"],
                "name": row["name"],
                "slug": row["slug"],
                "description": row["description"],
                "kind": row["kind"],
                "probe_kind": row["probe_kind"],
                "interval_seconds": row["interval_seconds"],
                "latency_threshold_ms": row["latency_threshold_ms"],
                "ttft_threshold_ms": row["ttft_threshold_ms"],
                "public": row["public"],
                "display_order": row["display_order"],
                "status": {
                    "status": status,
                    "since": _iso(since, zone),
                    "last_checked_at": _iso(row["status_row__last_checked_at"], zone),
                    "last_latency_ms": row["status_row__last_latency_ms"],
                    "message": message,
                    "manual": row["status_row__manual"],
                },
                "regions": regions.get(row["id"], []),
            }
            if staff:
                item |= {
                    "endpoint": row["endpoint"],
                    "upstream_model": row["upstream_model"],
                    "probe_config": row["probe_config"],
                    "credential": row["credential__name"],
                    "timeout_seconds": row["timeout_seconds"],
                    "failures_to_confirm": row["failures_to_confirm"],
                    "successes_to_recover": row["successes_to_recover"],
                    "enabled": row["enabled"],
                }
            out.append(item)
        return out


def _regions_of(rows: list[dict], now, zone, turns: list | None = None) -> dict[int, list[dict]]:
    """Each listed model's `regions` as get_regions() writes them, read for the whole page in one query."""
    intervals = {row["id"]: row["interval_seconds"] for row in rows}
    found = RegionStatus.objects.filter(model_id__in=intervals).values_list("model_id", *RegionStatus.VIEW_FIELDS)
    regions: dict[int, list[dict]] = {}
    # Sorted here, as shown_regions() sorts them (the database's collation may order names otherwise).
    for model_id, *values in sorted(found, key=lambda r: r[1]):
        view = region_view(*values, interval_seconds=intervals[model_id], now=now)
        if turns is not None:
            status, last_checked_at = values[1], values[2]
            turns.append(
                shown_until(status, last_checked_at=last_checked_at, interval_seconds=intervals[model_id], manual=False)
            )
        view["last_checked_at"] = _iso(view["last_checked_at"], zone)
        regions.setdefault(model_id, []).append(view)
    return regions


def _iso(moment, zone) -> str | None:
    """As DRF's DateTimeField writes it: in the current time zone, ISO 8601, UTC as Z."""
    if moment is None:
        return None
    text = moment.astimezone(zone).isoformat()
    return text[:-6] + "Z" if text.endswith("+00:00") else text
