"""The `anomaly` live event: an anomaly opened or closed, as it travels on WebSocket and SSE."""

from __future__ import annotations

from typing import Any

from anomalies.models import Anomaly, AnomalyEvent


def _iso(value) -> str | None:
    return value.isoformat().replace("+00:00", "Z") if value else None


def anomaly_data(anomaly: Anomaly) -> dict[str, Any]:
    """One anomaly as the API, the snapshot and the live event give it."""
    return {
        "id": anomaly.pk,
        "metric": anomaly.metric,
        "region": anomaly.region,
        "started_at": _iso(anomaly.started_at),
        "ended_at": _iso(anomaly.ended_at),
        "peak_score": round(anomaly.peak_score, 3),
        "expected": [round(anomaly.expected_low, 3), round(anomaly.expected_high, 3)],
        "observed": round(anomaly.observed, 3),
        "direction": anomaly.direction,
    }


def anomaly_event(event: AnomalyEvent, model_slug: str, model_id: int) -> dict[str, Any]:
    """The live event. `anomaly_seq` is the event's place in the anomalies' own log; the hub adds `seq`
    (the status sequence the client stands at), so a client's resume point is unchanged by it."""
    return {
        "type": "anomaly",
        "anomaly_seq": event.pk,
        "state": event.kind,
        "model": model_slug,
        "model_id": model_id,
        "at": _iso(event.at),
        "anomaly": anomaly_data(event.anomaly),
    }


def events_after(after: int, limit: int) -> tuple[list[dict[str, Any]], int]:
    """Events of public models after `after` in the anomalies' log, in order (without `seq`), and the
    highest id read (private models' events move the log too)."""
    rows = list(
        AnomalyEvent.objects.filter(pk__gt=after).select_related("anomaly__model__provider").order_by("pk")[:limit]
    )
    events = [anomaly_event(e, e.anomaly.model.public_slug, e.anomaly.model_id) for e in rows if e.anomaly.model.public]
    return events, rows[-1].pk if rows else after


def latest_event_id() -> int:
    from django.db.models import Max

    return AnomalyEvent.objects.aggregate(latest=Max("id"))["latest"] or 0
