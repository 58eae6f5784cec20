"""Sending a batch of subscriber mail: over many SMTP connections at once, or through Django's backend.

With Django's SMTP backend configured (the production case), a batch goes out over up to
SUBSCRIPTIONS_SMTP_CONNECTIONS connections at once from one event loop, each carrying message after
message: a mail server answers each command in turn, so one connection at a time leaves both ends
waiting on the other. Each copy is a join of precut pieces (see `email.Copies`). Other backends (the
console in development, a provider's API backend) get Django's EmailMessage, one after another.
"""

from __future__ import annotations

import asyncio
import re
import smtplib
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from email.utils import formatdate, parseaddr

from django.conf import settings
from django.core.mail import get_connection
from django.core.mail.backends.smtp import EmailBackend as SMTPBackend
from django.core.mail.message import sanitize_address

from subscriptions.email import BatchOutcome, Copies, Links, compose, personal_links, rendered_for
from subscriptions.models import SubscriberMessage
from subscriptions.smtp_client import Pool, RecipientRefused, Server, data_bytes, send_many

# An address that needs no IDNA or quoting: used as it is (sanitize_address parses, which costs more).
_PLAIN_ADDRESS = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+")

try:  # uvicorn[standard] brings uvloop: a faster event loop where it is installed
    from uvloop import new_event_loop
except ImportError:  # pragma: no cover
    new_event_loop = None


def send_batch(
    items: list[SubscriberMessage], rendered_cache: dict | None = None, mail_round: MailRound | None = None
) -> BatchOutcome:
    """Send a batch of mail; within a `MailRound`, over the SMTP connections its earlier batches opened."""
    rendered_cache = {} if rendered_cache is None else rendered_cache
    connection = get_connection(fail_silently=False, timeout=settings.EMAIL_TIMEOUT)
    if isinstance(connection, SMTPBackend):
        return send_over_smtp(items, Server.from_backend(connection), rendered_cache, mail_round)
    return send_through_backend(items, connection, rendered_cache)


class MailRound:
    """A round's event loop and SMTP connections, kept from one batch to the next (`with MailRound()
    as mail_round:`; the connections are closed at its end). In a thread that already runs an event
    loop, each batch opens and closes its own, as without a round."""

    def __init__(self) -> None:
        self._runner: asyncio.Runner | None = None
        self._pool: Pool | None = None

    def __enter__(self) -> MailRound:
        return self

    def __exit__(self, *exc_info) -> None:
        if self._runner is None:
            return
        try:
            if self._pool is not None:
                self._runner.run(self._pool.close())
        finally:
            self._runner.close()
            self._runner = self._pool = None

    def send(self, server: Server, build, count: int):
        if self._runner is None:
            try:
                asyncio.get_running_loop()
            except RuntimeError:
                self._runner = asyncio.Runner(loop_factory=new_event_loop)
            else:
                return run_in_own_loop(lambda: send_many(server, build, settings.SUBSCRIPTIONS_SMTP_CONNECTIONS, count))
        # Each batch's backend makes its own SSL context: the same server is the same place and login.
        if self._pool is None or replace(self._pool.server, ssl_context=None) != replace(server, ssl_context=None):
            if self._pool is not None:
                self._runner.run(self._pool.close())
            self._pool = Pool(server, settings.SUBSCRIPTIONS_SMTP_CONNECTIONS)
        return self._runner.run(self._pool.send(build, count))


def address(value: str) -> str:
    """The bare address for the envelope (MAIL FROM, RCPT TO): no display name, the domain in IDNA."""
    return value if _PLAIN_ADDRESS.fullmatch(value) else parseaddr(sanitize_address(value, "utf-8"))[1]


def send_over_smtp(
    items: list[SubscriberMessage], server: Server, rendered_cache: dict, mail_round: MailRound | None = None
) -> BatchOutcome:
    """Each message once, over up to SUBSCRIPTIONS_SMTP_CONNECTIONS connections at once.

    A refused recipient fails that message only (and counts toward pausing its subscriber); a
    connection that breaks fails the message it carried, and what no connection could take waits
    for a later attempt.
    """
    outcome = BatchOutcome()
    by_pk = {item.pk: item for item in items}
    build = copies_of(items, rendered_cache, outcome)

    if mail_round is not None:
        sent, failed = mail_round.send(server, build, len(items))
    else:
        connections = settings.SUBSCRIPTIONS_SMTP_CONNECTIONS
        sent, failed = run_in_own_loop(lambda: send_many(server, build, connections, len(items)))
    outcome.sent.extend(sent)
    for pk, exc in failed.items():
        item = by_pk[pk]
        if isinstance(exc, RecipientRefused):
            outcome.failed[pk] = (item.attempts, f"refused: {exc}")
            outcome.refused.append(item.subscriber_id)
        else:
            outcome.failed[pk] = (item.attempts, f"{type(exc).__name__}: {exc}")
    return outcome


def run_in_own_loop(coroutine):
    """Run `coroutine()` to its end in an event loop of its own: in this thread, or in a new one where
    this thread already runs a loop (a caller inside async code, or a browser test's driver)."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        with asyncio.Runner(loop_factory=new_event_loop) as runner:
            return runner.run(coroutine())
    with ThreadPoolExecutor(1, thread_name_prefix="subscriptions-smtp") as pool:
        return pool.submit(run_in_own_loop, coroutine).result()


def copies_of(items: list[SubscriberMessage], rendered_cache: dict, outcome: BatchOutcome):
    """Render what the batch needs (here, before any event loop: a confirmation's text reads the
    database) and return `build(eight_bit)`, which makes each message's bytes for the SMTP client as
    the connections take them. A message that cannot be made fails alone, in `outcome`."""
    sender = address(settings.DEFAULT_FROM_EMAIL)
    rendered = []
    for item in items:
        try:
            rendered.append((item, rendered_for(item, rendered_cache)))
        except Exception as exc:  # one bad message must not hold up the others
            outcome.failed[item.pk] = (item.attempts, f"{type(exc).__name__}: {exc}")

    def build(eight_bit: bool) -> Iterator[tuple[int, str, str, bytes]]:
        date, links, copies = formatdate(), Links(), {}
        for item, message in rendered:
            try:
                maker = copies.get(id(message))
                if maker is None:
                    maker = copies[id(message)] = Copies(message, date, eight_bit)
                subscriber = item.subscriber
                to = address(subscriber.email)
                manage_url, unsubscribe_url = links.of(subscriber.pk, subscriber.key, subscriber.language)
                data = data_bytes(maker.make(to, item.message_id, manage_url, unsubscribe_url))
            except Exception as exc:  # one bad address must not hold up the others
                outcome.failed[item.pk] = (item.attempts, f"{type(exc).__name__}: {exc}")
            else:
                yield item.pk, sender, to, data

    return build


def send_through_backend(items: list[SubscriberMessage], connection, rendered_cache: dict) -> BatchOutcome:
    """One message after another over one connection of the configured backend."""
    outcome = BatchOutcome()
    try:
        connection.open()
    except Exception as exc:  # the mail service is away: everything waits for a later attempt
        error = f"{type(exc).__name__}: {exc}"
        outcome.failed = {item.pk: (item.attempts, error) for item in items}
        return outcome
    links = Links()
    try:
        for item in items:
            try:
                rendered = rendered_for(item, rendered_cache)
                compose(item, rendered, connection, personal_links(item, links)).send()
            except smtplib.SMTPRecipientsRefused as exc:
                outcome.failed[item.pk] = (item.attempts, f"refused: {exc.recipients}")
                outcome.refused.append(item.subscriber_id)
            except Exception as exc:  # one bad message must not hold up the others
                outcome.failed[item.pk] = (item.attempts, f"{type(exc).__name__}: {exc}")
            else:
                outcome.sent.append(item.pk)
    finally:
        try:
            connection.close()
        except Exception:  # noqa: S110  a connection that broke mid-batch may not close cleanly
            pass
    return outcome
