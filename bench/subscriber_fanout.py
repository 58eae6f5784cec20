"""Subscribers told of an incident: N email subscribers through a local SMTP server, M webhooks to a local receiver.

One process sends, as one Celery worker does: the announcement writes one message per subscriber,
then batches are claimed and go out (mail over many SMTP connections at once from one thread,
webhooks several at a time from each of `--threads`). Beside it, in the same run: the SMTP peer's
ceiling (`raw`: the product's SMTP client sending one ready copy over and over, no database), the
sending path without SMTP (`build`: claim, load, make every copy, settle), and the baseline, which
sends each message as alerts' delivery does for an operator's channel: one claim and one new SMTP
connection (or one POST) per message. CPU per message is given for the sender, the SMTP peer and
PostgreSQL.
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

from common import (  # noqa: E402
    PYTHON,
    ROOT,
    bench_env,
    cpu_seconds,
    free_port,
    postgres_cpu_seconds,
    print_table,
    setup_django,
    stop_process,
    wait_for_port,
)


def peer(kind: str, workdir: Path, *options: str):
    import subprocess

    port, count_file = free_port(), workdir / f"{kind}{''.join(options)}.count"
    process = subprocess.Popen(
        [PYTHON, str(ROOT / "bench" / "receivers.py"), kind, str(port), str(count_file), *options],
        cwd=ROOT,
        env=bench_env(),
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
    # A live site's subscribers were analyzed long ago (by autovacuum, which may be off on a test server):
    # without statistics PostgreSQL may plan the claim from the subscriber side, a nested loop that reads
    # every pending message once per subscriber (tens of seconds per claim).
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("ANALYZE subscriptions_subscriber, subscriptions_subscriber_providers")


def incident(provider, model):
    from monitoring.models import Incident

    opened = Incident.objects.create(title="Bench outage", provider=provider, impact="critical")
    opened.models_affected.add(model)
    return opened.add_update("investigating", "The bench is down. We are investigating.")


def send_in_threads(threads: int) -> None:
    """What one worker does with its thread pool: each thread runs the round's sending until none is due."""
    from django.db import connections

    from subscriptions.sending import send_until

    def loop() -> None:
        try:
            send_until(float("inf"))
        finally:
            connections.close_all()

    workers = [threading.Thread(target=loop) for _ in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()


class Cpu:
    """CPU seconds of this process (the sender), the SMTP peer and PostgreSQL over a stretch."""

    def __init__(self, peer_pid: int) -> None:
        self.peer_pid = peer_pid
        self.start = self._read()

    def _read(self) -> tuple[float, float, float]:
        return time.process_time(), cpu_seconds(self.peer_pid), postgres_cpu_seconds()

    def per_message(self, count: int) -> dict:
        end = self._read()
        # PostgreSQL: every backend on the machine; one that exits meanwhile takes its CPU time out of the sum.
        sender, peer, postgres = (
            max(0, round(1e6 * (b - a) / max(count, 1))) for a, b in zip(self.start, end, strict=True)
        )
        return {"sender_us": sender, "peer_us": peer, "postgres_us": postgres}


def one_copy(provider, model) -> tuple[str, bytes, bool]:
    """A real subscriber copy as the product makes it (8bit when the peer takes it), for the raw phase."""
    from django.utils import timezone

    from alerts.delivery import claim_batch
    from subscriptions import sending
    from subscriptions.announcements import announce_incident_updates
    from subscriptions.email import BatchOutcome
    from subscriptions.mail_sending import address, copies_of

    reset()
    make_subscribers(1, "email", provider)
    incident(provider, model)
    announce_incident_updates(timezone.now())
    token, ids = claim_batch(sending.due_messages(), timezone.now(), 1)
    [(_pk, sender, _to, data)] = copies_of(sending.claimed(ids, token), {}, BatchOutcome())(True)
    reset()
    return address(sender), data


def run_raw(count: int, connections: int, port: int, peer_process, count_file: Path, copy: tuple[str, bytes]) -> dict:
    """The peer's ceiling: the product's SMTP client sends one ready copy `count` times, no database."""
    import asyncio

    from subscriptions.mail_sending import new_event_loop
    from subscriptions.smtp_client import Server, send_many

    sender, data = copy
    messages = [(i, sender, f"reader{i}@bench.example", data) for i in range(count)]
    before, cpu, began = received(count_file), Cpu(peer_process.pid), time.monotonic()
    with asyncio.Runner(loop_factory=new_event_loop) as runner:
        server = Server("127.0.0.1", port, 30.0)
        sent, failed = runner.run(send_many(server, lambda _8bit: messages, connections, count))
    took = time.monotonic() - began
    return {
        "subscribers": count,
        "total_s": round(took, 2),
        "rate": round(len(sent) / took, 1),
        "failed": len(failed),
        "arrived": wait_for(count_file, before, count),
        **cpu.per_message(count),
    }


def run_build(count: int, provider, model) -> dict:
    """The sending path without SMTP: claim, load, make every copy, settle as sent, batch after batch."""
    from django.conf import settings
    from django.utils import timezone

    from alerts.delivery import claim_batch, settle_batch
    from subscriptions import sending
    from subscriptions.announcements import announce_incident_updates
    from subscriptions.email import BatchOutcome
    from subscriptions.mail_sending import copies_of

    reset()
    make_subscribers(count, "email", provider)
    incident(provider, model)
    announce_incident_updates(timezone.now())
    cpu, began, made, cache = Cpu(0), time.monotonic(), 0, {}
    while True:
        now = timezone.now()
        token, ids = claim_batch(sending.due_messages(), now, settings.SUBSCRIPTIONS_BATCH)
        if not ids:
            break
        messages = list(copies_of(sending.claimed(ids, token), cache, BatchOutcome())(True))
        made += len(messages)
        settle_batch(sending.SubscriberMessage, token, [m[0] for m in messages], {}, now, 1)
    took = time.monotonic() - began
    figures = cpu.per_message(made)
    figures.pop("peer_us")
    return {"subscribers": count, "made": made, "total_s": round(took, 2), "rate": round(made / took, 1), **figures}


def wait_for(count_file: Path, before: int, count: int, timeout: float = 10.0) -> int:
    deadline = time.monotonic() + timeout
    while received(count_file) - before < count and time.monotonic() < deadline:
        time.sleep(0.1)
    return received(count_file) - before


def run_fanout(
    count: int, channel: str, threads: int, provider, model, peer_url: str, count_file: Path, peer_process
) -> dict:
    from django.db.models import Count

    from subscriptions.announcements import announce_incident_updates
    from subscriptions.models import SubscriberMessage

    reset()
    make_subscribers(count, channel, provider, peer_url)
    before = received(count_file)
    cpu, began = Cpu(peer_process.pid), time.monotonic()
    from django.utils import timezone

    incident(provider, model)
    planned = announce_incident_updates(timezone.now())
    planned_at = time.monotonic()
    send_in_threads(threads)
    sent_at = time.monotonic()
    arrived = wait_for(count_file, before, count)
    used = cpu.per_message(count)
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
        **used,
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
        "arrived": wait_for(count_file, before, count),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--emails", type=int, default=100_000)
    parser.add_argument("--webhooks", type=int, default=10_000)
    parser.add_argument("--threads", type=int, default=8, help="webhook sending threads in the one worker process")
    parser.add_argument("--email-threads", type=int, default=1, help="mail sending threads (each with its connections)")
    parser.add_argument("--connections", type=int, help="SMTP connections per sending thread (else the setting)")
    parser.add_argument("--batch", type=int, help="messages per claim (else SUBSCRIPTIONS_BATCH)")
    parser.add_argument("--raw", type=int, default=20_000, help="messages for the SMTP peer's ceiling (0: skip)")
    parser.add_argument("--baseline", type=int, default=2_000, help="messages sent one by one for the baseline")
    parser.add_argument("--json", help="write the figures to this file")
    args = parser.parse_args()

    setup_django(migrate=True)
    from django.conf import settings

    from monitoring.models import AIModel, Provider

    settings.WEBHOOK_ALLOWED_HOSTS = ["127.0.0.1"]
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.SUBSCRIPTIONS_SMTP_CONNECTIONS = args.connections or settings.SUBSCRIPTIONS_SMTP_CONNECTIONS
    settings.SUBSCRIPTIONS_BATCH = args.batch or settings.SUBSCRIPTIONS_BATCH
    connections = settings.SUBSCRIPTIONS_SMTP_CONNECTIONS
    provider, _ = Provider.objects.get_or_create(slug="bench-subscribers", defaults={"name": "Bench subscribers"})
    model, _ = AIModel.objects.get_or_create(
        provider=provider, slug="bench-model", defaults={"name": "Bench model", "endpoint": "http://127.0.0.1:9/v1"}
    )
    figures: dict = {"connections": connections, "batch": settings.SUBSCRIPTIONS_BATCH}
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        smtp_port, smtp_count, smtp_process = peer("smtp", workdir, "--pipelining")
        plain_port, plain_count, plain_process = peer("smtp", workdir)
        http_port, http_count, http_process = peer("http", workdir)
        settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", smtp_port
        hook = f"http://127.0.0.1:{http_port}/hook"
        try:
            if args.emails:
                if args.raw:
                    copy = one_copy(provider, model)
                    figures["raw"] = run_raw(args.raw, connections, smtp_port, smtp_process, smtp_count, copy)
                    figures["raw_unpipelined"] = run_raw(
                        args.raw, connections, plain_port, plain_process, plain_count, copy
                    )
                figures["build"] = run_build(args.emails, provider, model)
                figures["email_baseline"] = run_baseline(args.baseline, "email", provider, model, "", smtp_count)
                figures["email"] = run_fanout(
                    args.emails, "email", args.email_threads, provider, model, "", smtp_count, smtp_process
                )
            if args.webhooks:
                figures["webhook_baseline"] = run_baseline(args.baseline, "webhook", provider, model, hook, http_count)
                figures["webhook"] = run_fanout(
                    args.webhooks, "webhook", args.threads, provider, model, hook, http_count, http_process
                )
        finally:
            for process in (smtp_process, plain_process, http_process):
                stop_process(process)
            figures["bad_mails"] = received(smtp_count.with_suffix(".bad"))
            reset()
    print_tables(figures)
    if args.json:
        Path(args.json).write_text(json.dumps(figures))
    print(json.dumps(figures))


def print_tables(figures: dict) -> None:
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
                f"{b['rate']:,.0f}/s" if b["rate"] else "-",
                f"{f['rate'] / b['rate']:.1f}×" if b["rate"] else "-",  # --baseline 0: none measured
                f"{f['arrived']:,}",
                f"{f['sender_us']} / {f['peer_us']} / {f['postgres_us']} µs",
            ]
        )
    print_table(
        rows,
        ["channel", "subscribers", "announce", "all sent", "rate", "one by one", "ratio", "arrived", "CPU/msg s/p/pg"],
    )
    rows = []
    for name, what in (
        ("raw", "SMTP peer's ceiling: one ready copy, PIPELINING"),
        ("raw_unpipelined", "the same, peer without PIPELINING"),
        ("build", "claim, load, make, settle: no SMTP"),
        ("email", "the product, end to end"),
    ):
        if name in figures:
            f = figures[name]
            rows.append(
                [
                    name,
                    what,
                    f"{f['rate']:,.0f}/s",
                    f"{f.get('sender_us', '-')} µs",
                    f"{f.get('peer_us', '-')} µs",
                    f"{f.get('postgres_us', '-')} µs",
                ]
            )
    if rows:
        print(f"\nmail, {figures['connections']} connections, {figures['batch']} per claim; {figures['bad_mails']} bad")
        print_table(rows, ["phase", "what", "rate", "sender CPU/msg", "peer CPU/msg", "PostgreSQL CPU/msg"])


if __name__ == "__main__":
    main()
