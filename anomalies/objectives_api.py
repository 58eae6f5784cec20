"""GET /api/v1/models/<provider>/<model>/forecast/ and …/slo/ (or by id): a model's latency forecast for
the next hour, and its objectives with the error budget left and the burn rates.

Public models for anyone; private ones for staff (the same lookup as the model's other records).
"""

from __future__ import annotations

from django.conf import settings
from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from anomalies.forecast import COVERAGE
from anomalies.models import BurnAlert, LatencyForecast, Sli, SloStatus
from anomalies.slo import LATENCY_TARGET, WINDOWS
from monitoring.api.model_records import model_for
from monitoring.api.permissions import AnyoneReadsOperatorsWrite


class IntervalSerializer(serializers.Serializer):
    forecast = serializers.FloatField(help_text="Milliseconds.")
    low = serializers.FloatField()
    high = serializers.FloatField()


class ForecastSerializer(serializers.Serializer):
    model = serializers.CharField(help_text="`<provider>/<model>`")
    hour = serializers.DateTimeField(allow_null=True, help_text="Start of the hour forecast; null without a forecast.")
    p50_ms = IntervalSerializer(allow_null=True)
    p95_ms = IntervalSerializer(allow_null=True)
    interval = serializers.FloatField(help_text="The share of past forecasts the interval would have held (0.8).")
    method = serializers.CharField(allow_null=True, help_text="`seasonal`, `drift` or `naive`.")
    errors = serializers.IntegerField(allow_null=True, help_text="Past forecasts the interval was measured on.")
    made_at = serializers.DateTimeField(allow_null=True)


def forecast_document(slug: str, forecast: LatencyForecast | None) -> dict:
    if forecast is None:
        empty = dict.fromkeys(["hour", "p50_ms", "p95_ms", "method", "errors", "made_at"])
        return {"model": slug, **empty, "interval": COVERAGE}
    return {
        "model": slug,
        "hour": forecast.hour,
        "p50_ms": {"forecast": forecast.p50_ms, "low": forecast.p50_low_ms, "high": forecast.p50_high_ms},
        "p95_ms": {"forecast": forecast.p95_ms, "low": forecast.p95_low_ms, "high": forecast.p95_high_ms},
        "interval": COVERAGE,
        "method": forecast.method,
        "errors": forecast.errors,
        "made_at": forecast.made_at,
    }


@extend_schema(summary="A model's latency forecast for the next hour", responses=ForecastSerializer)
class ModelForecastView(APIView):
    """The latency (p50 and p95 of answered probes) forecast for the next clock hour, each with an 80 %
    interval measured on the method's own past errors. All null while the model has too little history."""

    permission_classes = [AnyoneReadsOperatorsWrite]

    def get(self, request: Request, **kwargs) -> Response:
        model = model_for(request, kwargs)
        forecast = LatencyForecast.objects.filter(model=model).first()
        return Response(ForecastSerializer(forecast_document(model.public_slug, forecast)).data)


def burn_rates_field() -> serializers.DictField:
    return serializers.DictField(
        child=serializers.FloatField(allow_null=True),
        help_text=f"Burn rate per window ({', '.join(WINDOWS)}): 1 spends the budget exactly over the SLO window; "
        "null for a window without a counted event.",
    )


class AvailabilitySerializer(serializers.Serializer):
    objective_percent = serializers.FloatField()
    answered = serializers.IntegerField(help_text="Good events: answered probes.")
    failed = serializers.IntegerField(help_text="Bad events: provider faults, timeouts, broken streams.")
    budget_left = serializers.FloatField(
        allow_null=True, help_text="1 untouched, 0 spent, below 0 overspent; null without a counted event."
    )
    burn_rates = burn_rates_field()


class LatencySerializer(serializers.Serializer):
    objective_ms = serializers.IntegerField(help_text="p95 time to first token objective.")
    percentile = serializers.IntegerField()
    fast = serializers.IntegerField(help_text="Good events: answered under the objective.")
    slow = serializers.IntegerField(help_text="Bad events: answered at or over the objective.")
    budget_left = serializers.FloatField(allow_null=True)
    burn_rates = burn_rates_field()


class BurnAlertSerializer(serializers.ModelSerializer):
    class Meta:
        model = BurnAlert
        fields = ["id", "sli", "speed", "threshold", "long_window", "short_window", "started_at", "ended_at"]
        fields += ["long_burn", "short_burn", "peak_burn"]


class SloSerializer(serializers.Serializer):
    model = serializers.CharField(help_text="`<provider>/<model>`")
    window_days = serializers.IntegerField()
    window_start = serializers.DateTimeField(allow_null=True)
    evidence_since = serializers.DateTimeField(
        allow_null=True, help_text="The first counted event in the window: the budget stands on evidence since then."
    )
    availability = AvailabilitySerializer()
    latency = LatencySerializer()
    burn_alerts = BurnAlertSerializer(many=True, help_text="Open burn-rate alerts.")
    updated_at = serializers.DateTimeField(allow_null=True)


def slo_document(model, status: SloStatus | None, open_alerts: list[BurnAlert]) -> dict:
    rates = (status.burn_rates if status else {}) or {}
    none = dict.fromkeys(WINDOWS)
    return {
        "model": model.public_slug,
        "window_days": settings.SLO_WINDOW_DAYS,
        "window_start": status.window_start if status else None,
        "evidence_since": status.evidence_since if status else None,
        "availability": {
            "objective_percent": float(model.slo_availability_percent),
            "answered": status.answered if status else 0,
            "failed": status.failed if status else 0,
            "budget_left": status.availability_budget_left if status else None,
            "burn_rates": rates.get(Sli.AVAILABILITY, none),
        },
        "latency": {
            "objective_ms": model.latency_objective_ms,
            "percentile": round(LATENCY_TARGET * 100),
            "fast": status.fast if status else 0,
            "slow": status.slow if status else 0,
            "budget_left": status.latency_budget_left if status else None,
            "burn_rates": rates.get(Sli.LATENCY, none),
        },
        "burn_alerts": open_alerts,
        "updated_at": status.updated_at if status else None,
    }


@extend_schema(summary="A model's objectives: error budget left and burn rates", responses=SloSerializer)
class ModelSloView(APIView):
    """The model's availability and latency objectives over the last `window_days`: good and bad events
    counted, the error budget left, each window's burn rate and the burn-rate alerts open now.

    Probe faults and 429s on our own key count as neither good nor bad, and time without results counts
    for nothing: `evidence_since` says how much of the window the budget stands on."""

    permission_classes = [AnyoneReadsOperatorsWrite]

    def get(self, request: Request, **kwargs) -> Response:
        model = model_for(request, kwargs)
        status = SloStatus.objects.filter(model=model).first()
        alerts = list(BurnAlert.objects.filter(model=model, ended_at__isnull=True).order_by("started_at", "id"))
        return Response(SloSerializer(slo_document(model, status, alerts)).data)
