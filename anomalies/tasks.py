"""Celery tasks: the detection run, every ANOMALY_RUN_SECONDS, and the SLO run, every SLO_RUN_SECONDS
(see aistatus/celery.py)."""

from __future__ import annotations

from celery import shared_task
from django.utils import timezone

from anomalies.detection import run_detection
from anomalies.slo import run_slos
from monitoring.outages import reports_database_outage


@shared_task(ignore_result=True)
@reports_database_outage(lambda: 0)
def detect_anomalies() -> int:
    summary = run_detection()
    return len(summary.opened) + len(summary.closed)


@shared_task(ignore_result=True)
@reports_database_outage(lambda: 0)
def evaluate_slos() -> int:
    """Count results, keep budgets and burn alerts; once an hour, the latency forecasts."""
    run = run_slos(timezone.now())
    return len(run.opened) + len(run.closed)
