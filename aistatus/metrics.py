"""`/metrics` in Prometheus text format: per-model status, latency and uptime; collector and delivery counts.

Computed per scrape from the snapshot and a few cheap aggregates (not edge-cached: counts move
between snapshot versions). Every source besides the snapshot is optional: a failing one is
reported by `aistatus_metrics_source_up` and the rest is still served.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import timedelta

from django.db import DatabaseError
from django.db.models import Count
from django.http import HttpRequest, HttpResponse
from django.utils import timezone
from django.views.decorators.http import require_safe

from aistatus.replica_monitor import STATES as REPLICA_STATES
from aistatus.replica_monitor import get_monitor
from alerts.models import Notification
from anomalies.models import Metric, SeriesState
from collectors.models import Agent, Period, ProbeSlot
from collectors.rollup_reader import rollup_reader
from monitoring.status import Status
from publishing import snapshot_store
from publishing.snapshot import Snapshot
from publishing.snapshot_store import current_snapshot
from statuspage.presentation import as_datetime

log = logging.getLogger(__name__)

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
RECENT = timedelta(minutes=5)
OUTCOME_FIELDS = ["ok", "provider_fault", "probe_fault", "rate_limited", "timeout", "broken_stream"]
INDICATORS = ["none", "minor", "major", "critical", "maintenance"]
# A probe slot due longer ago than this means the collectors are behind (or not running).
OVERDUE_AFTER = timedelta(seconds=60)


def _escape(value: object) -> str:
    return str(value).replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _number(value: float | int) -> str:
    return repr(float(value)) if isinstance(value, float) else str(value)


class Exposition:
    """Collects metric families and writes them in the text format, HELP and TYPE first."""

    def __init__(self) -> None:
        self.lines: list[str] = []

    def family(self, name: str, kind: str, help_text: str, samples: Iterable[tuple[dict, float | int]]) -> None:
        self.lines.append(f"# HELP {name} {help_text}")
        self.lines.append(f"# TYPE {name} {kind}")
        for labels, value in samples:
            if labels:
                rendered = ",".join(f'{key}="{_escape(val)}"' for key, val in labels.items())
                self.lines.append(f"{name}{{{rendered}}} {_number(value)}")
            else:
                self.lines.append(f"{name} {_number(value)}")

    def text(self) -> str:
        return "\n".join(self.lines) + "\n"


def _model_families(out: Exposition, snapshot: Snapshot) -> None:
    models = snapshot.data["models"]

    def labels(model: dict) -> dict:
        return {"provider": model["provider"], "model": model["slug"]}

    out.family(
        "aistatus_model_status",
        "gauge",
        "1 for the status each public model is in (unknown means no recent evidence), 0 for the others.",
        (({**labels(m), "status": status}, int(m["status"] == status)) for m in models for status in Status.values),
    )
    out.family(
        "aistatus_model_latency_p50_seconds",
        "gauge",
        "Median probe latency over the last 24 hours; absent without data.",
        ((labels(m), m["latency"]["p50_ms"] / 1000) for m in models if m["latency"]["p50_ms"] is not None),
    )
    out.family(
        "aistatus_model_latency_p95_seconds",
        "gauge",
        "95th percentile probe latency over the last 24 hours; absent without data.",
        ((labels(m), m["latency"]["p95_ms"] / 1000) for m in models if m["latency"]["p95_ms"] is not None),
    )
    out.family(
        "aistatus_model_uptime_ratio",
        "gauge",
        "Uptime over the last 90 days (major outage 100 %, partial 30 %, degraded 0 % down); absent without data.",
        (
            ({**labels(m), "window": "90d"}, m["uptime"]["percent_90d"] / 100)
            for m in models
            if m["uptime"]["percent_90d"] is not None
        ),
    )
    open_by_metric = dict.fromkeys(Metric.values, 0)
    for model in models:
        for anomaly in model.get("unusual", []):
            open_by_metric[anomaly["metric"]] += 1
    out.family(
        "aistatus_anomalies_open",
        "gauge",
        "Open anomalies of public models, by metric (an annotation beside the status).",
        (({"metric": metric}, count) for metric, count in open_by_metric.items()),
    )
    page = snapshot.data["page"]
    out.family(
        "aistatus_models",
        "gauge",
        "Public models by displayed status.",
        (({"status": status}, page["counts"].get(status, 0)) for status in Status.values),
    )
    out.family(
        "aistatus_page_indicator",
        "gauge",
        "1 for the page's Statuspage indicator (computed from models with evidence).",
        (({"indicator": indicator}, int(page["indicator"] == indicator)) for indicator in INDICATORS),
    )
    built_at = as_datetime(snapshot.data["built_at"])
    out.family(
        "aistatus_snapshot_age_seconds",
        "gauge",
        "Age of the snapshot this process serves.",
        [({}, round((timezone.now() - built_at).total_seconds(), 3))],
    )
    out.family(
        "aistatus_status_changes_total",
        "counter",
        "Status changes recorded (the event sequence).",
        [({}, snapshot.sequence)],
    )
    out.family(
        "aistatus_snapshot_builds_total",
        "counter",
        "Snapshots this process built itself (others come from the shared cache).",
        [({}, snapshot_store.store.builds)],
    )


def _check_results() -> list[tuple[dict, int]]:

    since = timezone.now() - RECENT
    sums = rollup_reader().sums(Period.MINUTE, since, OUTCOME_FIELDS)
    return [({"outcome": field}, sums[field]) for field in OUTCOME_FIELDS]


def _overdue_slots() -> list[tuple[dict, int]]:

    rows = (
        ProbeSlot.objects.filter(model__enabled=True, next_due_at__lt=timezone.now() - OVERDUE_AFTER)
        .values("region")
        .annotate(n=Count("id"))
        .order_by("region")
    )
    return [({"region": row["region"]}, row["n"]) for row in rows]


def _notifications() -> list[tuple[dict, int]]:
    """Alert notifications by state (pending is the delivery backlog)."""
    rows = Notification.objects.values("state").annotate(n=Count("pk")).order_by("state")
    return [({"state": row["state"]}, row["n"]) for row in rows]


def _agents():
    return Agent.objects.filter(active=True).only(
        "name", "region", "last_seen_at", "sent", "stored", "dropped", "rejected", "spool_depth"
    )


def _agent_seen() -> list[tuple[dict, float]]:
    now = timezone.now()
    return [
        ({"agent": a.name, "region": a.region}, round((now - a.last_seen_at).total_seconds(), 3))
        for a in _agents()
        if a.last_seen_at is not None
    ]


def _agent_results() -> list[tuple[dict, int]]:
    """What each agent says it sent, and what the site stored, dropped (unknown or disabled models) or rejected."""
    kinds = ("sent", "stored", "dropped", "rejected")
    return [({"agent": a.name, "region": a.region, "kind": k}, getattr(a, k)) for a in _agents() for k in kinds]


def _agent_spool() -> list[tuple[dict, int]]:
    return [({"agent": a.name, "region": a.region}, a.spool_depth) for a in _agents()]


def _anomaly_input() -> list[tuple[dict, int]]:
    """Values refused by the anomaly detectors, and detector errors, over every series."""
    from django.db.models import Sum

    totals = SeriesState.objects.aggregate(rejected=Sum("rejected"), errors=Sum("errors"))
    return [({"kind": kind}, totals[kind] or 0) for kind in ("rejected", "errors")]


OPTIONAL_SOURCES = [
    (
        "checks",
        "aistatus_check_results_recent",
        "gauge",
        "Probe results over the last 5 minutes of minute rollups, by outcome.",
        _check_results,
    ),
    (
        "probe_slots",
        "aistatus_probe_slots_overdue",
        "gauge",
        "Probe slots due more than a minute ago, by region (collectors behind or stopped).",
        _overdue_slots,
    ),
    (
        "alerts",
        "aistatus_notifications",
        "gauge",
        "Alert notifications by state (pending, sent, failed, cancelled).",
        _notifications,
    ),
    (
        "agents",
        "aistatus_agent_last_seen_age_seconds",
        "gauge",
        "Seconds since each active remote agent's latest batch; absent for an agent never seen.",
        _agent_seen,
    ),
    (
        "agents",
        "aistatus_agent_results_total",
        "counter",
        "Results each active agent reports it sent, and those the site stored, dropped or rejected.",
        _agent_results,
    ),
    (
        "agents",
        "aistatus_agent_spool_depth",
        "gauge",
        "Results waiting in each active agent's spool, as it reported with its latest batch.",
        _agent_spool,
    ),
    (
        "anomalies",
        "aistatus_anomaly_input_problems_total",
        "counter",
        "Anomaly detection: implausible values refused (rejected) and detector errors (errors), all series.",
        _anomaly_input,
    ),
]


def _replica_families(out: Exposition) -> None:
    """Each read replica's state, lag and share of public reads (from the monitor: no query per scrape)."""
    monitor = get_monitor()
    if monitor is None:
        return
    summary = monitor.summary()
    replicas = summary["replicas"]

    def labels(replica: dict) -> dict:
        return {"replica": replica["alias"], "region": replica["region"]}

    out.family(
        "aistatus_primary_up",
        "gauge",
        "1 while the primary database answers (0: public reads come from the replicas, updates paused).",
        [({}, int(summary["primary"]["state"] == "up"))],
    )
    out.family(
        "aistatus_replica_state",
        "gauge",
        "1 for each read replica's state (ok, lagging, down, not_in_recovery, unchecked), 0 for the others.",
        (({**labels(r), "state": state}, int(r["state"] == state)) for r in replicas for state in REPLICA_STATES),
    )
    out.family(
        "aistatus_replica_lag_bytes",
        "gauge",
        "WAL the replica has yet to replay, behind the primary's current position; absent when unknown.",
        ((labels(r), r["lag_bytes"]) for r in replicas if r["lag_bytes"] is not None),
    )
    out.family(
        "aistatus_replica_lag_seconds",
        "gauge",
        "How long ago the primary was where the replica's replay stands; absent when unknown.",
        ((labels(r), float(r["lag_seconds"])) for r in replicas if r["lag_seconds"] is not None),
    )
    out.family(
        "aistatus_replica_replay_age_seconds",
        "gauge",
        "Time since the replica replayed its last transaction (pg_last_xact_replay_timestamp).",
        ((labels(r), float(r["replay_age_seconds"])) for r in replicas if r["replay_age_seconds"] is not None),
    )
    out.family(
        "aistatus_public_reads_total",
        "counter",
        "Public reads (requests, snapshot builds) this process sent to each database.",
        [
            *(({"database": r["alias"], "region": r["region"]}, r["reads"]) for r in replicas),
            ({"database": "primary", "region": ""}, summary["primary"]["reads"]),
        ],
    )


def render_metrics(snapshot: Snapshot) -> str:
    out = Exposition()
    _model_families(out, snapshot)
    _replica_families(out)
    health: dict[str, int] = {}
    for source, name, kind, help_text, read in OPTIONAL_SOURCES:
        try:
            samples = read()
        except DatabaseError as exc:
            log.warning("metrics source %s failed: %s", source, exc)
            health[source] = 0
            continue
        # A source of several families is up when every one of them could be read.
        health[source] = health.get(source, 1)
        out.family(name, kind, help_text, samples)
    out.family(
        "aistatus_metrics_source_up",
        "gauge",
        "1 when the source of a metric family could be read.",
        (({"source": source}, up) for source, up in health.items()),
    )
    return out.text()


@require_safe
def metrics_view(request: HttpRequest) -> HttpResponse:
    response = HttpResponse(render_metrics(current_snapshot()), content_type=CONTENT_TYPE)
    response["Cache-Control"] = "no-store"
    return response
