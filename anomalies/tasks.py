"""Celery task: the detection run, every ANOMALY_RUN_SECONDS (see aistatus/celery.py)."""

from __future__ import annotations

from celery import shared_task

from anomalies.detection import run_detection
from monitoring.outages import reports_database_outage


@shared_task(ignore_result=True)
@reports_database_outage(lambda: 0)
def detect_anomalies() -> int:
    summary = run_detection()
    return len(summary.opened) + len(summary.closed)
