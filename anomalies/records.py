"""Reading anomaly records: what is open now, in words, for derivation and the read side."""

from __future__ import annotations

from collections.abc import Iterable

from django.utils import translation

from anomalies.models import Anomaly, Metric

UNITS = {Metric.TTFT: "ms", Metric.LATENCY: "ms", Metric.TOKENS_PER_S: "tokens/s", Metric.ERROR_RATIO: ""}


def _figure(metric: str, value: float) -> str:
    if metric == Metric.ERROR_RATIO:
        return f"{value:.0%}"
    return f"{value:.0f} {UNITS[metric]}"


def describe(anomaly: Anomaly) -> str:
    """One line for status messages: `latency above the expected range (expected 120 ms to 480 ms, saw 900 ms)`."""
    metric = Metric(anomaly.metric)
    where = f" in {anomaly.region}" if anomaly.region else ""
    # Stored reasons are written in English, as derivation's verdicts are; pages translate what they know.
    with translation.override("en"):
        return _sentence(anomaly, metric, where)


def _sentence(anomaly: Anomaly, metric: Metric, where: str) -> str:
    return (
        f"{metric.label} {anomaly.get_direction_display()}{where} (expected "
        f"{_figure(metric, anomaly.expected_low)} to {_figure(metric, anomaly.expected_high)}, "
        f"saw {_figure(metric, anomaly.observed)})"
    )


def unusual_reasons(model_ids: Iterable[int]) -> dict[int, str]:
    """{model_id: description of its earliest open anomaly} for the given models."""
    reasons: dict[int, str] = {}
    for anomaly in Anomaly.objects.filter(model_id__in=list(model_ids), ended_at__isnull=True).order_by("started_at"):
        reasons.setdefault(anomaly.model_id, describe(anomaly))
    return reasons
