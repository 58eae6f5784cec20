"""The registry's REST API: anyone reads public models, staff reads everything and writes."""

from __future__ import annotations

import django_filters
from django.db.models import QuerySet
from django.http import HttpResponse
from django.shortcuts import get_object_or_404
from drf_spectacular.utils import extend_schema
from rest_framework import mixins, viewsets
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from monitoring.api import listing_cache
from monitoring.api.permissions import sees_everything
from monitoring.api.registry_changes import changes
from monitoring.api.serializers import AIModelSerializer
from monitoring.models import AIModel, ModelKind
from monitoring.status import Status


class AIModelFilter(django_filters.FilterSet):
    provider = django_filters.CharFilter(field_name="provider__slug")
    kind = django_filters.ChoiceFilter(choices=ModelKind.choices)
    status = django_filters.ChoiceFilter(field_name="status_row__status", choices=Status.choices)

    class Meta:
        model = AIModel
        fields = ["provider", "kind", "status", "probe_kind", "enabled"]


class AIModelViewSet(
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.CreateModelMixin,
    mixins.UpdateModelMixin,
    viewsets.GenericViewSet,
):
    """AI models with their current status. Reach one by id or by `<provider>/<model>`."""

    serializer_class = AIModelSerializer
    filterset_class = AIModelFilter

    def get_queryset(self) -> QuerySet[AIModel]:
        queryset = AIModel.objects.select_related("provider", "status_row", "credential")
        queryset = queryset.prefetch_related("region_statuses")
        if not sees_everything(self.request.user):
            queryset = queryset.filter(public=True)
        return queryset

    def list(self, request: Request, *args, **kwargs) -> HttpResponse:
        """Models with their current status, 100 a page."""
        # Written by listing() rather than field by field (the same documents, several times faster); a JSON
        # page is kept as bytes while the database holds what it shows (listing_cache).
        staff = sees_everything(request.user)
        key = listing_cache.key_of(request, staff=staff)
        kept = listing_cache.get(key)
        if kept is not None:
            return kept
        read_at = changes.mark()  # before the reads: a change committed meanwhile drops the page
        queryset = self.get_queryset()
        if request.query_params:  # building the filter set costs more than the rest of a page
            queryset = self.filter_queryset(queryset)
        page = self.paginate_queryset(queryset.values(*AIModelSerializer.LISTING_VALUES))
        turns: list = []
        response = self.get_paginated_response(AIModelSerializer.listing(page, staff=staff, turns=turns))
        if key is None or read_at is None:
            return response
        return listing_cache.keep(key, read_at, self, response.data, tuple(row["id"] for row in page), turns)

    def get_object(self) -> AIModel:
        queryset = self.filter_queryset(self.get_queryset())
        kwargs = self.kwargs
        if "provider" in kwargs:
            obj = get_object_or_404(queryset, provider__slug=kwargs["provider"], slug=kwargs["model"])
        else:
            obj = get_object_or_404(queryset, pk=kwargs["pk"])
        self.check_object_permissions(self.request, obj)
        return obj

    @extend_schema(request=None)
    @action(detail=True, methods=["post"])
    def disable(self, request: Request, **kwargs) -> Response:
        """Stop probing a model (it stays in the registry)."""
        return self._set_enabled(False)

    @extend_schema(request=None)
    @action(detail=True, methods=["post"])
    def enable(self, request: Request, **kwargs) -> Response:
        return self._set_enabled(True)

    def _set_enabled(self, enabled: bool) -> Response:
        obj = self.get_object()
        obj.enabled = enabled
        obj.save(update_fields=["enabled"])
        return Response(self.get_serializer(obj).data)


model_list = AIModelViewSet.as_view({"get": "list", "post": "create"})
model_detail = AIModelViewSet.as_view({"get": "retrieve", "put": "update", "patch": "partial_update"})
