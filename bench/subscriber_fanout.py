"""Subscribers told of an incident: N email subscribers through a local SMTP server, M webhooks to a local receiver.

One process sends, as one Celery worker does (SUBSCRIPTIONS threads, each claiming batches): the
announcement writes one message per subscriber, then batches go out over reused SMTP connections
(webhooks several at a time). The baseline, measured in the same run on a sample, sends each
message as alerts' delivery does for an operator's channel: one claim and one new SMTP connection
(or one POST) per message.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import PYTHON, ROOT, bench_env, free_port, print_table, setup_django, stop_process, wait_for_port  # noqa: E402


def peer(kind: str, workdir: Path):
    import subprocess

    port, count_file = free_port(), workdir / f"{kind}.count"
    process = subprocess.Popen(
        [PYTHON, str(ROOT / "bench" / "receivers.py"), kind, str(port), str(count_file)], cwd=ROOT, env=bench_env()
    )
    wait_for_port(port, process)
    return port, count_file, process


def received(count_file: Path) -> int:
    try:
        return int(count_file.read_text() or 0)
    except (FileNotFoundError, ValueError):
        return 0


def reset() -> None:
    from django.db import connection

    from monitoring.models import Incident

    Incident.objects.filter(provider__slug="bench-subscribers").delete()
    with connection.cursor() as cursor:
        cursor.execute(
            "TRUNCATE subscriptions_subscribermessage, subscriptions_announcement, subscriptions_subscriber_providers, "
            "subscriptions_subscriber_ai_models, subscriptions_subscriber RESTART IDENTITY CASCADE"
        )


def make_subscribers(count: int, channel: str, provider, url: str = "") -> None:
    from django.utils import timezone

    from subscriptions.models import Subscriber

    now = timezone.now()
    made = Subscriber.objects.bulk_create(
        [
            Subscriber(
                channel=channel,
                email=f"reader{i}@bench.example" if channel == "email" else None,
                webhook_url=f"{url}?n={i}" if channel == "webhook" else None,
                secret="whsec_" + "A" * 44 if channel == "webhook" else "",
                language=("ko", "en", "ja")[i % 3],
                confirmed_at=now,
            )
            for i in range(count)
        ],
        batch_size=5000,
    )
    through = Subscriber.providers.through
    through.objects.bulk_create([through(subscriber_id=s.pk, provider_id=provider.pk) for s in made], batch_size=5000)


def incident(provider, model):
    from monitoring.models import Incident

    opened = Incident.objects.create(title="Bench outage", provider=provider, impact="critical")
    opened.models_affected.add(model)
    return opened.add_update("investigating", "The bench is down. We are investigating.")


def send_in_threads(threads: int) -> None:
    """What one worker does with its thread pool: each thread claims and sends batches until none is due."""
    from django.db import connections

    from subscriptions.sending import send_due

    def loop() -> None:
        cache: dict = {}
        try:
            while send_due(rendered_cache=cache):
                pass
        finally:
            connections.close_all()

    workers = [threading.Thread(target=loop) for _ in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()


def run_fanout(count: int, channel: str, threads: int, provider, model, peer_url: str, count_file: Path) -> dict:
    from django.db.models import Count

    from subscriptions.announcements import announce_incident_updates
    from subscriptions.models import SubscriberMessage

    reset()
    make_subscribers(count, channel, provider, peer_url)
    before = received(count_file)
    began = time.monotonic()
    from django.utils import timezone

    incident(provider, model)
    planned = announce_incident_updates(timezone.now())
    planned_at = time.monotonic()
    send_in_threads(threads)
    sent_at = time.monotonic()
    deadline = time.monotonic() + 10
    while received(count_file) - before < count and time.monotonic() < deadline:
        time.sleep(0.1)
    arrived = received(count_file) - before
    states = dict(SubscriberMessage.objects.values_list("state").annotate(n=Count("id")))
    total = sent_at - began
    return {
        "subscribers": count,
        "planned": planned,
        "plan_s": round(planned_at - began, 2),
        "send_s": round(sent_at - planned_at, 2),
        "total_s": round(total, 2),
        "rate": round(count / total, 1),
        "arrived": arrived,
        "states": states,
    }


def run_baseline(count: int, channel: str, provider, model, peer_url: str, count_file: Path) -> dict:
    """One claim and one connection (or POST) per message, as alerts' delivery sends to a channel."""
    from django.utils import timezone

    from alerts.delivery import claim
    from subscriptions import sending
    from subscriptions.announcements import announce_incident_updates
    from subscriptions.models import SubscriberMessage

    reset()
    make_subscribers(count, channel, provider, peer_url)
    incident(provider, model)
    announce_incident_updates(timezone.now())
    before = received(count_file)
    began = time.monotonic()
    for message_id in SubscriberMessage.objects.order_by("id").values_list("id", flat=True):
        now = timezone.now()
        token = claim(message_id, now, outbox=SubscriberMessage)
        sending._deliver([message_id], token, now)  # a batch of one: its own connection
    took = time.monotonic() - began
    return {
        "subscribers": count,
        "total_s": round(took, 2),
        "rate": round(count / took, 1),
        "arrived": received(count_file) - before,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--emails", type=int, default=100_000)
    parser.add_argument("--webhooks", type=int, default=10_000)
    parser.add_argument("--threads", type=int, default=8, help="sending threads in the one worker process")
    parser.add_argument("--baseline", type=int, default=2_000, help="messages sent one by one for the baseline")
    parser.add_argument("--json", help="write the figures to this file")
    args = parser.parse_args()

    setup_django(migrate=True)
    from django.conf import settings

    from monitoring.models import AIModel, Provider

    settings.WEBHOOK_ALLOWED_HOSTS = ["127.0.0.1"]
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    provider, _ = Provider.objects.get_or_create(slug="bench-subscribers", defaults={"name": "Bench subscribers"})
    model, _ = AIModel.objects.get_or_create(
        provider=provider, slug="bench-model", defaults={"name": "Bench model", "endpoint": "http://127.0.0.1:9/v1"}
    )
    figures: dict = {}
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        smtp_port, smtp_count, smtp_process = peer("smtp", workdir)
        http_port, http_count, http_process = peer("http", workdir)
        settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", smtp_port
        hook = f"http://127.0.0.1:{http_port}/hook"
        try:
            if args.emails:
                figures["email_baseline"] = run_baseline(args.baseline, "email", provider, model, "", smtp_count)
                figures["email"] = run_fanout(args.emails, "email", args.threads, provider, model, "", smtp_count)
            if args.webhooks:
                figures["webhook_baseline"] = run_baseline(args.baseline, "webhook", provider, model, hook, http_count)
                figures["webhook"] = run_fanout(
                    args.webhooks, "webhook", args.threads, provider, model, hook, http_count
                )
        finally:
            stop_process(smtp_process)
            stop_process(http_process)
            reset()
    rows = []
    for channel in ("email", "webhook"):
        if channel not in figures:
            continue
        f, b = figures[channel], figures[f"{channel}_baseline"]
        rows.append(
            [
                channel,
                f"{f['subscribers']:,}",
                f"{f['plan_s']} s",
                f"{f['total_s']} s",
                f"{f['rate']:,.0f}/s",
                f"{b['rate']:,.0f}/s",
                f"{f['rate'] / b['rate']:.1f}×",
                f"{f['arrived']:,}",
            ]
        )
    print_table(rows, ["channel", "subscribers", "announce", "all sent", "rate", "one by one", "ratio", "arrived"])
    if args.json:
        Path(args.json).write_text(json.dumps(figures))
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
