"""GET /api/v1/models/<provider>/<model>/anomalies/ (or by id): a model's anomalies, newest first, by cursor.

Public models for anyone; private ones for staff (the same lookup as the model's other records).
"""

from __future__ import annotations

from django.db.models import QuerySet
from drf_spectacular.utils import extend_schema
from rest_framework import generics, serializers

from anomalies.models import Anomaly, Direction, Metric
from monitoring.api.model_records import model_for
from monitoring.api.pagination import NewestFirst
from monitoring.api.permissions import AnyoneReadsOperatorsWrite


class AnomalySerializer(serializers.ModelSerializer):
    metric = serializers.ChoiceField(choices=Metric.choices)
    direction = serializers.ChoiceField(choices=Direction.choices)
    open = serializers.BooleanField(source="is_open", help_text="True until the series has been quiet long enough.")
    expected = serializers.SerializerMethodField(help_text="The range the value was expected in: [low, high].")

    class Meta:
        model = Anomaly
        fields = ["id", "metric", "region", "started_at", "ended_at", "open", "peak_score", "expected", "observed"]
        fields += ["direction"]
        read_only_fields = fields

    def get_expected(self, anomaly: Anomaly) -> list[float]:
        return [anomaly.expected_low, anomaly.expected_high]


@extend_schema(summary="A model's anomalies, newest first")
class ModelAnomaliesView(generics.ListAPIView):
    """A model's anomalies (unusual latency, time to first token, speed or error ratio), newest first.

    An anomaly is an annotation beside the status: it opens when the model's own learned normal is left
    and closes after a quiet period; `ended_at` is null while it is open.
    """

    serializer_class = AnomalySerializer
    pagination_class = NewestFirst
    permission_classes = [AnyoneReadsOperatorsWrite]
    filter_backends: list = []

    def get_queryset(self) -> QuerySet[Anomaly]:
        model = model_for(self.request, self.kwargs)
        return Anomaly.objects.filter(model=model)
