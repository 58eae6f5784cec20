"""Burn-rate notices for channels that opted in ("burn_rate" among their events): one per burn episode,
when it opens (anomalies.slo opens and ends them), damped like status flips.

Follows the burn alerts' ids (written by one SLO run at a time, so they commit in order) with its own
cursor; the notices and the cursor's move commit together. Damping: a model whose burn alerts open
ALERT_FLAP_CHANGES times within ALERT_FLAP_MINUTES gets one "flapping" notice instead, and its further
burn notices are held until openings fall under that rate again.
"""

from __future__ import annotations

from datetime import datetime

from django.db import transaction
from django.db.models import Max
from django.utils import timezone

from alerts.cursor import REPLAY_WINDOW
from alerts.damping import damped_notices
from alerts.models import Channel, EventCursor, Notification
from alerts.planner import flap_window, model_data
from alerts.rules import Rule, active_rules
from anomalies.models import BurnAlert

CURSOR = "burn_rate"
BATCH = 500


def burn_data(alert: BurnAlert) -> dict:
    status = getattr(alert.model, "slo_status", None)
    return {
        "id": alert.pk,
        "sli": alert.sli,
        "speed": alert.speed,
        "threshold": alert.threshold,
        "long_window": alert.long_window,
        "short_window": alert.short_window,
        "long_burn": round(alert.long_burn, 2),
        "short_burn": round(alert.short_burn, 2),
        "started_at": alert.started_at.isoformat(),
        "availability_percent": float(alert.model.slo_availability_percent),
        "latency_objective_ms": alert.model.latency_objective_ms,
        "budget_left": (
            None
            if status is None
            else (status.availability_budget_left if alert.sli == "availability" else status.latency_budget_left)
        ),
    }


def _openings(alert: BurnAlert) -> int:
    """Burn alerts of the model opened within the flap window up to (and with) this one."""
    return BurnAlert.objects.filter(
        model_id=alert.model_id, id__lte=alert.pk, started_at__gt=alert.started_at - flap_window()
    ).count()


def _notices(alert: BurnAlert, rules: list[Rule], now: datetime) -> list[Notification]:
    model = alert.model
    covering = [rule for rule in rules if rule.covers(model)]
    if not covering:
        return []
    payload = {"model": model_data(model), "state": "opened", "at": alert.started_at.isoformat()}
    payload["burn"] = burn_data(alert)
    return damped_notices(
        model,
        covering,
        openings=_openings(alert),
        kind=Notification.Kind.BURN_RATE,
        key=f"burn:{alert.pk}",
        payload=payload,
        at=alert.started_at,
        now=now,
    )


def plan_burn_alerts(now: datetime | None = None) -> int:
    """Notices for the burn alerts opened since the cursor. Returns the notifications written."""
    now = now or timezone.now()
    with transaction.atomic():
        if not EventCursor.objects.filter(name=CURSOR).exists():
            # A new install announces recent burn alerts only, not the history.
            start = BurnAlert.objects.filter(started_at__lt=now - REPLAY_WINDOW).aggregate(last=Max("id"))["last"] or 0
            EventCursor.objects.get_or_create(name=CURSOR, defaults={"last_id": start, "updated_at": now})
        row = EventCursor.objects.select_for_update(skip_locked=True).filter(name=CURSOR).first()
        if row is None:
            return 0
        alerts = list(
            BurnAlert.objects.filter(id__gt=row.last_id)
            .select_related("model__provider", "model__status_row", "model__slo_status")
            .order_by("id")[:BATCH]
        )
        if not alerts:
            return 0
        rules = [rule for rule in active_rules() if Channel.Event.BURN_RATE in rule.events]
        notices = [notice for alert in alerts for notice in _notices(alert, rules, now)]
        Notification.objects.bulk_create(notices, ignore_conflicts=True)
        row.last_id = alerts[-1].pk
        row.updated_at = now
        row.save(update_fields=["last_id", "updated_at"])
    return len(notices)
