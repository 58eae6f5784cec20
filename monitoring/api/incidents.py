"""Incidents through the API: open, edit, post updates (investigating → identified → monitoring → resolved)."""

from __future__ import annotations

from django.db import transaction
from django.db.models import Prefetch, QuerySet
from django.utils import timezone
from drf_spectacular.utils import OpenApiExample, extend_schema, extend_schema_view
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import APIException
from rest_framework.request import Request
from rest_framework.response import Response

from monitoring.api.idempotency import idempotent
from monitoring.api.model_slugs import ModelSlugsField
from monitoring.api.pagination import NewestFirst
from monitoring.api.permissions import OperatorsOnly
from monitoring.models import AIModel, Incident, IncidentUpdate


class Conflict(APIException):
    status_code = status.HTTP_409_CONFLICT
    default_code = "conflict"


class IncidentUpdateSerializer(serializers.ModelSerializer):
    status = serializers.ChoiceField(source="state", choices=Incident.State.choices)
    body = serializers.CharField(max_length=10000)

    class Meta:
        model = IncidentUpdate
        fields = ["id", "status", "body", "at"]
        read_only_fields = ["id", "at"]


class IncidentSerializer(serializers.ModelSerializer):
    name = serializers.CharField(source="title", max_length=200)
    status = serializers.ChoiceField(
        source="state",
        choices=Incident.State.choices,
        default=Incident.State.INVESTIGATING,
        help_text="The first state when opening; later states come with updates (POST …/updates/).",
    )
    models = ModelSlugsField(source="models_affected", required=False)
    body = serializers.CharField(
        write_only=True, max_length=10000, required=False, help_text="The first update's message; the name when empty."
    )
    updates = IncidentUpdateSerializer(many=True, read_only=True)

    class Meta:
        model = Incident
        fields = [
            "id",
            "name",
            "status",
            "impact",
            "models",
            "body",
            "automatic",
            "started_at",
            "resolved_at",
            "created_at",
            "updated_at",
            "updates",
        ]
        read_only_fields = ["id", "automatic", "resolved_at", "created_at", "updated_at"]

    def validate_status(self, value: str) -> str:
        if self.instance is not None and value != self.instance.state:
            raise serializers.ValidationError("Change the status by posting an update (POST …/updates/).")
        return value

    def create(self, validated: dict) -> Incident:
        models = validated.pop("models_affected", [])
        body = validated.pop("body", "") or validated["title"]
        state = validated.pop("state")
        incident = Incident.objects.create(**validated)
        incident.models_affected.set(models)
        incident.add_update(state, body, at=incident.started_at)
        return incident

    def update(self, incident: Incident, validated: dict) -> Incident:
        models = validated.pop("models_affected", None)
        validated.pop("body", None)
        validated.pop("state", None)
        for name, value in validated.items():
            setattr(incident, name, value)
        incident.updated_at = timezone.now()
        incident.save()
        if models is not None:
            incident.models_affected.set(models)
        return incident


EXAMPLE = {
    "name": "Elevated errors on GPT-4o",
    "status": "investigating",
    "impact": "major",
    "models": ["openai/gpt-4o"],
    "body": "We are looking into failed completions.",
}


@extend_schema_view(
    list=extend_schema(summary="Incidents, newest first"),
    create=extend_schema(summary="Open an incident", examples=[OpenApiExample("Open", value=EXAMPLE)]),
    partial_update=extend_schema(summary="Edit name, impact or affected models (409 once resolved)"),
    update=extend_schema(summary="Replace name, impact and affected models (409 once resolved)"),
)
class IncidentViewSet(
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.CreateModelMixin,
    mixins.UpdateModelMixin,
    viewsets.GenericViewSet,
):
    """Incidents, manual and automatic alike (an edited automatic text is shown as written in every language)."""

    serializer_class = IncidentSerializer
    permission_classes = [OperatorsOnly]
    pagination_class = NewestFirst
    filter_backends: list = []

    def get_queryset(self) -> QuerySet[Incident]:
        queryset = Incident.objects.prefetch_related(
            Prefetch("models_affected", queryset=AIModel.objects.select_related("provider")),
            Prefetch("updates", queryset=IncidentUpdate.objects.order_by("at", "id")),
        )
        wanted = self.request.query_params.get("status")
        if wanted in Incident.State.values:
            queryset = queryset.filter(state=wanted)
        return queryset

    @idempotent
    def create(self, request: Request, *args, **kwargs) -> Response:
        return super().create(request, *args, **kwargs)

    def perform_update(self, serializer: IncidentSerializer) -> None:
        if not serializer.instance.is_open:
            raise Conflict("This incident is resolved; open a new one instead.")
        serializer.save()

    @extend_schema(
        request=IncidentUpdateSerializer,
        responses={201: IncidentSerializer},
        summary="Post an update; its status becomes the incident's (409 once resolved)",
        examples=[OpenApiExample("Identified", value={"status": "identified", "body": "A bad deploy; rolling back."})],
    )
    @action(detail=True, methods=["post"], url_path="updates")
    @idempotent
    def post_update(self, request: Request, pk: str | None = None) -> Response:
        given = IncidentUpdateSerializer(data=request.data)
        given.is_valid(raise_exception=True)
        with transaction.atomic():
            incident = Incident.objects.select_for_update().get(pk=self.get_object().pk)
            if not incident.is_open:
                raise Conflict("This incident is resolved; open a new one instead.")
            incident.add_update(given.validated_data["state"], given.validated_data["body"])
        fresh = self.get_queryset().get(pk=incident.pk)
        return Response(IncidentSerializer(fresh, context=self.get_serializer_context()).data, status=201)
