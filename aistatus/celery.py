"""The Celery app: beat schedules probing rounds and upkeep; workers probe (one queue per region)."""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "aistatus.settings")

app = Celery("aistatus")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks(["collectors", "anomalies"])


@app.on_after_finalize.connect
def schedule_periodic_tasks(sender: Celery, **kwargs) -> None:
    from django.conf import settings

    from alerts.tasks import process_alerts
    from anomalies.tasks import detect_anomalies, evaluate_slos
    from collectors.rollup_reader import on_timescale
    from collectors.tasks import apply_retention, run_due_probes, sweep_statuses, update_rollups
    from subscriptions.tasks import notify_subscribers

    for region in settings.COLLECTOR_REGIONS:
        # A round every second picks up whatever is due; a round nobody took within 5 s is dropped,
        # the next one covers it.
        sender.add_periodic_task(
            1.0,
            run_due_probes.s(region),
            name=f"probe {region}",
            options={"queue": f"probes.{region}", "expires": 5},
        )
    sender.add_periodic_task(10.0, sweep_statuses.s(), name="sweep statuses", options={"expires": 10})
    if not on_timescale():
        # On TimescaleDB its continuous aggregates and retention policies do this work (timescale_setup).
        sender.add_periodic_task(60.0, update_rollups.s(), name="update rollups", options={"expires": 60})
        sender.add_periodic_task(3600.0, apply_retention.s(), name="apply retention", options={"expires": 3600})
    # Anomalies: feed new results to each series' detector; open and close anomaly records.
    sender.add_periodic_task(
        settings.ANOMALY_RUN_SECONDS, detect_anomalies.s(), name="detect anomalies", options={"expires": 10}
    )
    # Objectives: count good and bad events, keep error budgets and burn-rate alerts, forecast latency.
    sender.add_periodic_task(
        settings.SLO_RUN_SECONDS, evaluate_slos.s(), name="evaluate SLOs", options={"expires": settings.SLO_RUN_SECONDS}
    )
    # Alerts: plan notifications from new status changes, keep incidents, hand due sends to workers.
    sender.add_periodic_task(1.0, process_alerts.s(), name="process alerts", options={"expires": 5})
    # Subscribers: announce incident updates, maintenance (and flips, when on); send what is due in batches.
    sender.add_periodic_task(1.0, notify_subscribers.s(), name="notify subscribers", options={"expires": 5})
