"""Template helpers for the status pages: status labels, numbers and the inline charts."""

from __future__ import annotations

from datetime import datetime

from django import template
from django.utils.safestring import SafeString

from anomalies.models import BurnAlert, Direction, Metric
from monitoring import status
from monitoring.dates import format_moment
from monitoring.models import Incident, ModelKind
from monitoring.status import label_of
from statuspage import charts, formatting, presentation

register = template.Library()


@register.filter
def status_label(value: str) -> str:
    return status.status_label(value)


@register.filter
def as_datetime(value: str | datetime | None) -> datetime | None:
    return presentation.as_datetime(value)


@register.filter
def moment(value: str | datetime | None) -> str:
    """A date and time as every page and incident text writes it in the active language, time zone named."""
    return format_moment(presentation.as_datetime(value))


@register.filter
def percent(value: float | None) -> str:
    return formatting.percent(value)


@register.filter
def budget_left(value: float | None) -> str:
    return formatting.budget_left(value)


@register.filter
def burning(slo: dict, sli: str) -> str:
    """The burn-rate alerts open on one objective, by name ("fast burn"), or "" when none is."""
    return ", ".join(str(label_of(BurnAlert.Speed, a["speed"])) for a in slo.get("burning", []) if a["sli"] == sli)


@register.filter
def reason(value: str) -> str:
    return formatting.reason(value)


@register.filter
def ms(value: float | None) -> str:
    return formatting.milliseconds(value)


@register.simple_tag
def uptime_bars(model: dict, css_class: str = "bars") -> SafeString:
    return charts.uptime_bars(model["uptime"], css_class=css_class)


@register.simple_tag
def sparkline(model: dict, css_class: str = "spark", period: str = "") -> SafeString:
    """The latency sparkline; period "24h" or "1h" fixes the range, else a new model shows its last hour."""
    last_hour = {"24h": False, "1h": True}.get(period)
    if not period:  # the list's small chart: the line alone
        return charts.latency_sparkline(model["latency"], css_class=css_class, last_hour=last_hour)
    return charts.latency_sparkline(
        model["latency"],
        css_class=css_class,
        last_hour=last_hour,
        expected=(model.get("expected") or {}).get("latency"),
        anomalies=model.get("anomalies") or [],
    )


@register.filter
def unusual_metrics(anomalies: list[dict]) -> str:
    """The metrics of a model's open anomalies, in words: `latency, error ratio`."""
    metrics = dict.fromkeys(a["metric"] for a in anomalies)
    return ", ".join(str(label_of(Metric, m)) for m in metrics)


@register.filter
def anomaly_summary(anomaly: dict) -> str:
    """`latency above the expected range` (with the region when known)."""
    text = f"{label_of(Metric, anomaly['metric'])} {label_of(Direction, anomaly['direction'])}"
    return f"{text} ({anomaly['region']})" if anomaly.get("region") else text


@register.filter
def anomaly_figure(anomaly: dict, which) -> str:
    """The expected range's low (0) or high (1) end, or the observed value, in the metric's unit."""
    value = anomaly["observed"] if which == "observed" else anomaly["expected"][int(which)]
    if anomaly["metric"] == Metric.ERROR_RATIO:
        return formatting.percent(100 * value)
    if anomaly["metric"] == Metric.TOKENS_PER_S:
        return f"{value:.0f} tokens/s"
    return formatting.milliseconds(value)


@register.filter
def model_kind(kind: str) -> str:
    return label_of(ModelKind, kind)


@register.filter
def incident_state(state: str) -> str:
    return label_of(Incident.State, state)


@register.filter
def incident_impact(impact: str) -> str:
    return label_of(Incident.Impact, impact)
