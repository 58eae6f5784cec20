"""Template helpers for the status pages: status labels, numbers and the inline charts."""

from __future__ import annotations

from datetime import datetime

from django import template
from django.utils.safestring import SafeString

from monitoring.models import Incident, ModelKind
from statuspage import charts, formatting, presentation

register = template.Library()


@register.filter
def status_label(status: str) -> str:
    return presentation.status_label(status)


@register.filter
def as_datetime(value: str | datetime | None) -> datetime | None:
    return presentation.as_datetime(value)


@register.filter
def percent(value: float | None) -> str:
    return formatting.percent(value)


@register.filter
def ms(value: float | None) -> str:
    return formatting.milliseconds(value)


@register.simple_tag
def uptime_bars(model: dict, css_class: str = "bars") -> SafeString:
    return charts.uptime_bars(model["uptime"], css_class=css_class)


@register.simple_tag
def sparkline(model: dict, css_class: str = "spark") -> SafeString:
    return charts.latency_sparkline(model["latency"], css_class=css_class)


@register.filter
def model_kind(kind: str) -> str:
    return str(ModelKind(kind).label) if kind in ModelKind.values else kind


@register.filter
def incident_state(state: str) -> str:
    return str(Incident.State(state).label) if state in Incident.State.values else state


@register.filter
def incident_impact(impact: str) -> str:
    return str(Incident.Impact(impact).label) if impact in Incident.Impact.values else impact
