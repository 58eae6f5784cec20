"""After results land: derive each affected model's status from its fresh results and record transitions."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from datetime import datetime

from django.db.models import F, Window
from django.db.models.functions import RowNumber
from django.utils import timezone

from collectors.models import CheckResult
from monitoring.derivation import Evidence, Thresholds, derive, history_length
from monitoring.models import AIModel, Maintenance, ModelStatus, StatusChange
from monitoring.status import stale_after
from monitoring.transitions import record_status


def thresholds_of(model: AIModel) -> Thresholds:
    return Thresholds(
        latency_ms=model.latency_threshold_ms,
        ttft_ms=model.ttft_threshold_ms,
        failures_to_confirm=model.failures_to_confirm,
        successes_to_recover=model.successes_to_recover,
    )


def _recent_results(models: list[AIModel], now: datetime) -> dict[int, dict[str, list[CheckResult]]]:
    """Each model's latest results per region, newest first, within its staleness window."""
    depth = max(history_length(thresholds_of(m)) for m in models)
    oldest = now - max(stale_after(m.interval_seconds) for m in models)
    rows = (
        CheckResult.objects.filter(model_id__in=[m.pk for m in models], time__gte=oldest)
        .annotate(rank=Window(RowNumber(), partition_by=[F("model_id"), F("region")], order_by=F("time").desc()))
        .filter(rank__lte=depth)
        .only("time", "model_id", "region", "outcome", "http_status", "latency_ms", "ttft_ms", "error")
        .order_by("model_id", "region", "-time")
    )
    grouped: dict[int, dict[str, list[CheckResult]]] = defaultdict(lambda: defaultdict(list))
    for row in rows:
        grouped[row.model_id][row.region].append(row)
    return grouped


def evaluate(model_ids: Iterable[int], now: datetime | None = None) -> list[StatusChange]:
    """Derive and record the status of these models. Returns the transitions written."""
    now = now or timezone.now()
    models = list(AIModel.objects.filter(pk__in=set(model_ids)).select_related("status_row"))
    if not models:
        return []
    recent = _recent_results(models, now)
    maintenance = Maintenance.active_model_ids(now, [m.pk for m in models])
    changes: list[StatusChange] = []
    refreshed: list[ModelStatus] = []
    for model in models:
        thresholds = thresholds_of(model)
        stale = now - stale_after(model.interval_seconds)
        by_region = recent.get(model.pk, {})
        regions = {
            region: [
                Evidence(r.outcome, r.latency_ms, r.ttft_ms, r.error, r.http_status) for r in rows if r.time >= stale
            ]
            for region, rows in by_region.items()
        }
        latest = max((rows[0] for rows in by_region.values()), key=lambda r: r.time, default=None)
        status, reason = derive(regions, thresholds, in_maintenance=model.pk in maintenance)
        row = model.status_row
        if row.manual or status == row.status:
            # No transition: only the evidence timestamps move (written below in one statement).
            if latest is not None and (row.last_checked_at is None or latest.time > row.last_checked_at):
                row.last_checked_at, row.last_latency_ms = latest.time, latest.latency_ms
                if not row.manual:
                    row.message = reason
                refreshed.append(row)
            continue
        change = record_status(
            model.pk,
            status,
            reason=reason,
            source=StatusChange.Source.MAINTENANCE if model.pk in maintenance else StatusChange.Source.COLLECTOR,
            at=latest.time if latest is not None and latest.time > row.since else now,
            checked=latest is not None,
            latency_ms=latest.latency_ms if latest is not None else None,
        )
        if change:
            changes.append(change)
    if refreshed:
        ModelStatus.objects.bulk_update(refreshed, ["last_checked_at", "last_latency_ms", "message"], batch_size=500)
    return changes
