"""Providers through the API: anyone reads; administrators create, change and delete (never one with models)."""

from __future__ import annotations

from django.db.models import QuerySet
from drf_spectacular.utils import OpenApiExample, OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import serializers, status, viewsets
from rest_framework.request import Request
from rest_framework.response import Response

from monitoring.api.idempotency import idempotent
from monitoring.api.pagination import NewestFirst
from monitoring.api.permissions import StaffWritesOnly
from monitoring.models import Provider


class ProviderSerializer(serializers.ModelSerializer):
    class Meta:
        model = Provider
        fields = ["id", "name", "slug", "url", "display_order"]


class ProviderInUseSerializer(serializers.Serializer):
    detail = serializers.CharField()
    models = serializers.ListField(child=serializers.CharField())


@extend_schema_view(
    create=extend_schema(examples=[OpenApiExample("Create", value={"name": "Mistral", "slug": "mistral"})]),
    destroy=extend_schema(
        responses={204: None, 409: OpenApiResponse(ProviderInUseSerializer, description="The provider has models.")}
    ),
)
class ProviderViewSet(viewsets.ModelViewSet):
    serializer_class = ProviderSerializer
    permission_classes = [StaffWritesOnly]
    pagination_class = NewestFirst
    filter_backends: list = []
    lookup_field = "slug"
    lookup_value_regex = "[-a-zA-Z0-9_]+"

    def get_queryset(self) -> QuerySet[Provider]:
        return Provider.objects.all()

    @idempotent
    def create(self, request: Request, *args, **kwargs) -> Response:
        return super().create(request, *args, **kwargs)

    def destroy(self, request: Request, *args, **kwargs) -> Response:
        provider = self.get_object()
        models = [f"{provider.slug}/{slug}" for slug in provider.models.order_by("slug").values_list("slug", flat=True)]
        if models:
            detail = f"{provider.name} still has {len(models)} model(s); delete or move them first."
            return Response({"detail": detail, "models": models}, status=status.HTTP_409_CONFLICT)
        provider.delete()
        return Response(status=status.HTTP_204_NO_CONTENT)
