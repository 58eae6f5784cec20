"""One model's records through the API: set its status by hand, its status history, its daily uptime."""

from __future__ import annotations

from datetime import timedelta

from django.db.models import QuerySet
from django.shortcuts import get_object_or_404
from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiExample, OpenApiParameter, extend_schema, inline_serializer
from rest_framework import generics, serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from monitoring.api.idempotency import idempotent
from monitoring.api.pagination import NewestFirst
from monitoring.api.permissions import AnyoneReadsOperatorsWrite, sees_everything
from monitoring.models import AIModel, StatusChange
from monitoring.status import Status
from monitoring.transitions import record_status
from monitoring.uptime import daily_uptime, percent

RELEASE = "auto"
MANUAL_CHOICES = [*Status.values, RELEASE]
MAX_UPTIME_DAYS = 400


def model_for(request: Request, kwargs: dict) -> AIModel:
    """The model named in the URL (by `<provider>/<model>` or id); private ones only for those who see everything."""
    queryset = AIModel.objects.select_related("provider", "status_row")
    if not sees_everything(request.user):
        queryset = queryset.filter(public=True)
    if "provider" in kwargs:
        return get_object_or_404(queryset, provider__slug=kwargs["provider"], slug=kwargs["model"])
    return get_object_or_404(queryset, pk=kwargs["pk"])


class ManualStatusSerializer(serializers.Serializer):
    status = serializers.ChoiceField(
        choices=MANUAL_CHOICES,
        help_text=f"A status, or `{RELEASE}` to hand the model back to the collectors.",
        error_messages={"invalid_choice": f'"{{input}}" is not a status. Allowed: {", ".join(MANUAL_CHOICES)}.'},
    )
    reason = serializers.CharField(max_length=2000, required=False, allow_blank=True, default="")


class CurrentStatusSerializer(serializers.Serializer):
    model = serializers.CharField(help_text="`<provider>/<model>`")
    status = serializers.ChoiceField(choices=Status.choices)
    manual = serializers.BooleanField()
    since = serializers.DateTimeField()
    message = serializers.CharField(allow_blank=True)
    change = serializers.IntegerField(allow_null=True, help_text="The StatusChange written (its event sequence).")


class StatusChangeSerializer(serializers.ModelSerializer):
    seq = serializers.IntegerField(source="id", read_only=True)
    to = serializers.CharField(source="to_status")

    class Meta:
        model = StatusChange
        fields = ["seq", "from_status", "to", "at", "reason", "manual", "source"]
        read_only_fields = fields


class ModelStatusView(APIView):
    """A model's current status; operators set it by hand (`auto` hands it back to the collectors)."""

    permission_classes = [AnyoneReadsOperatorsWrite]

    @extend_schema(responses=CurrentStatusSerializer)
    def get(self, request: Request, **kwargs) -> Response:
        model = model_for(request, kwargs)
        return Response(_current(model, None))

    @extend_schema(
        request=ManualStatusSerializer,
        responses={200: CurrentStatusSerializer},
        examples=[
            OpenApiExample("Declare an outage", value={"status": "major_outage", "reason": "Upstream 503s"}),
            OpenApiExample("Hand back to the collectors", value={"status": RELEASE}),
        ],
    )
    @idempotent
    def post(self, request: Request, **kwargs) -> Response:
        model = model_for(request, kwargs)
        given = ManualStatusSerializer(data=request.data)
        given.is_valid(raise_exception=True)
        wanted, reason = given.validated_data["status"], given.validated_data["reason"]
        manual = wanted != RELEASE
        # The one way a status changes: the event log, live push and snapshot follow from it.
        change = record_status(
            model.pk,
            wanted if manual else Status.UNKNOWN,
            reason=reason or ("set by the team" if manual else "handed back to the collectors"),
            source=StatusChange.Source.OPERATOR,
            manual=manual,
            set_by=request.user.get_username(),
        )
        model.status_row.refresh_from_db()
        return Response(_current(model, change), status=status.HTTP_200_OK)


def _current(model: AIModel, change: StatusChange | None) -> dict:
    row = model.status_row
    return {
        "model": model.public_slug,
        "status": model.shown_status(),
        "manual": row.manual,
        "since": row.since,
        "message": row.message,
        "change": change.pk if change else None,
    }


class ModelHistoryView(generics.ListAPIView):
    """A model's status changes, newest first, by cursor."""

    serializer_class = StatusChangeSerializer
    pagination_class = NewestFirst
    permission_classes = [AnyoneReadsOperatorsWrite]
    filter_backends: list = []

    def get_queryset(self) -> QuerySet[StatusChange]:
        model = model_for(self.request, self.kwargs)
        return StatusChange.objects.filter(model=model)


class DailyUptimeSerializer(serializers.Serializer):
    date = serializers.DateField()
    uptime = serializers.FloatField(allow_null=True)
    major_outage_s = serializers.IntegerField()
    partial_outage_s = serializers.IntegerField()
    degraded_s = serializers.IntegerField()
    maintenance_s = serializers.IntegerField()
    unknown_s = serializers.IntegerField()
    counted_s = serializers.FloatField()
    down_s = serializers.FloatField()


class ModelUptimeView(APIView):
    """Daily uptime over the last `days` (Statuspage's weighting); `uptime` is null without evidence."""

    permission_classes = [AnyoneReadsOperatorsWrite]

    @extend_schema(
        parameters=[OpenApiParameter("days", OpenApiTypes.INT, description=f"1 to {MAX_UPTIME_DAYS}; default 90")],
        responses=inline_serializer(
            "ModelUptime",
            {
                "model": serializers.CharField(),
                "days": serializers.IntegerField(),
                "uptime": serializers.FloatField(allow_null=True),
                "daily": DailyUptimeSerializer(many=True),
            },
        ),
    )
    def get(self, request: Request, **kwargs) -> Response:
        model = model_for(request, kwargs)
        days = serializers.IntegerField(min_value=1, max_value=MAX_UPTIME_DAYS)
        raw = request.query_params.get("days", "90")
        try:
            count = days.run_validation(raw)
        except serializers.ValidationError as exc:
            raise serializers.ValidationError({"days": exc.detail}) from None
        now = timezone.now()
        daily = daily_uptime([model.pk], now - timedelta(days=count - 1), now)[model.pk]
        down = sum(day["down_s"] for day in daily)
        counted = sum(day["counted_s"] for day in daily)
        return Response({"model": model.public_slug, "days": count, "uptime": percent(down, counted), "daily": daily})
