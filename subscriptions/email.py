"""Subscriber mail: text and HTML parts in the subscriber's language, RFC 8058 one-click unsubscribe, batched sends.

A batch goes out over one SMTP connection. Each announcement is rendered once per language, with
placeholders for the personal links, and its MIME frame is built once too: a hundred thousand mails
cost a hundred thousand substitutions and base64 encodings, not template renders and MIME trees.
(Backends other than SMTP, such as the console in development, get Django's EmailMessage.)
"""

from __future__ import annotations

import base64
import secrets
import smtplib
from collections.abc import Iterable
from dataclasses import dataclass, field
from email.header import Header
from email.utils import formatdate
from functools import cached_property

from django.conf import settings
from django.core.mail import EmailMultiAlternatives, get_connection
from django.core.mail.message import sanitize_address
from django.template.loader import render_to_string
from django.utils import translation

from alerts.messages import Message
from subscriptions.messages import announcement_message, confirmation_message, link
from subscriptions.models import SubscriberMessage
from subscriptions.tokens import confirmation_token, manage_token

MANAGE, UNSUBSCRIBE = "@@manage-url@@", "@@unsubscribe-url@@"


@dataclass(frozen=True)
class Rendered:
    subject: str
    text: str
    html: str

    def personal(self, manage_url: str, unsubscribe_url: str) -> tuple[str, str]:
        def fill(part: str) -> str:
            return part.replace(MANAGE, manage_url).replace(UNSUBSCRIBE, unsubscribe_url)

        return fill(self.text), fill(self.html)

    @cached_property
    def frame(self) -> tuple[str, str]:
        """The headers every copy shares (subject encoded once) and the multipart boundary."""
        boundary = f"==_{secrets.token_hex(12)}_=="  # "_" never occurs in base64, so no part can contain it
        shared = "".join(
            [
                header("From", sanitize_address(settings.DEFAULT_FROM_EMAIL, "utf-8")),
                header("Subject", self.subject),
                header("List-Id", f"{settings.SITE_NAME} <status-updates.{domain()}>"),
                "Auto-Submitted: auto-generated\r\n",
                "MIME-Version: 1.0\r\n",
                f'Content-Type: multipart/alternative; boundary="{boundary}"\r\n',
            ]
        )
        return shared, boundary

    def mime(self, to: str, message_id: str, manage_url: str, unsubscribe_url: str, date: str) -> bytes:
        """One copy as MIME bytes (CRLF lines, as SMTP sends them): text and HTML parts in base64 UTF-8."""
        shared, boundary = self.frame
        text, html = self.personal(manage_url, unsubscribe_url)
        head = (
            f"To: {to}\r\nDate: {date}\r\nMessage-ID: <{message_id}@{domain()}>\r\n"
            f"List-Unsubscribe: <{unsubscribe_url}>\r\n"
            f"List-Unsubscribe-Post: List-Unsubscribe=One-Click\r\n{shared}\r\n"
        )
        parts = []
        for kind, body in (("plain", text), ("html", html)):
            part_head = (
                f'--{boundary}\r\nContent-Type: text/{kind}; charset="utf-8"\r\n'
                "Content-Transfer-Encoding: base64\r\n\r\n"
            )
            parts.append(part_head.encode() + base64.encodebytes(body.encode()).replace(b"\n", b"\r\n"))
        return head.encode() + b"".join(parts) + f"--{boundary}--\r\n".encode()


def header(name: str, value: str) -> str:
    """A header line; non-ASCII values as RFC 2047 encoded words."""
    if value.isascii():
        return f"{name}: {value}\r\n"
    encoded = Header(value, "utf-8", header_name=name).encode(linesep="\r\n")
    return f"{name}: {encoded}\r\n"


@dataclass
class BatchOutcome:
    sent: list[int] = field(default_factory=list)
    # message id -> (attempts before this one, error)
    failed: dict[int, tuple[int, str]] = field(default_factory=dict)
    # subscribers whose address was refused: counted towards pausing them
    refused: list[int] = field(default_factory=list)


def render(message: Message, language: str, *, manage: bool = True) -> Rendered:
    context = {
        "message": message,
        "language": language,
        "site_name": settings.SITE_NAME,
        "manage_url": MANAGE if manage else "",
        "unsubscribe_url": UNSUBSCRIBE,
    }
    with translation.override(language):
        subject = " ".join(render_to_string("subscriptions/email/subject.txt", context).split())
        return Rendered(
            subject,
            render_to_string("subscriptions/email/body.txt", context),
            render_to_string("subscriptions/email/body.html", context),
        )


def domain() -> str:
    return settings.DEFAULT_FROM_EMAIL.rpartition("@")[2].strip(">") or "localhost"


def personal_links(item: SubscriberMessage) -> tuple[str, str]:
    """The subscriber's manage and one-click unsubscribe links."""
    subscriber = item.subscriber
    token = manage_token(subscriber.pk, subscriber.key)
    return (
        link("subscriptions-manage", subscriber.language, token),
        link("subscriptions-unsubscribe", subscriber.language, token),
    )


def compose(item: SubscriberMessage, rendered: Rendered, connection) -> EmailMultiAlternatives:
    subscriber = item.subscriber
    manage_url, unsubscribe_url = personal_links(item)
    text, html = rendered.personal(manage_url, unsubscribe_url)
    mail = EmailMultiAlternatives(
        subject=rendered.subject,
        body=text,
        from_email=settings.DEFAULT_FROM_EMAIL,
        to=[subscriber.email],
        headers={
            # The same Message-ID on every retry, so that a mail system can drop a duplicate.
            "Message-ID": f"<{item.message_id}@{domain()}>",
            "List-Unsubscribe": f"<{unsubscribe_url}>",
            "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
            "List-Id": f"{settings.SITE_NAME} <status-updates.{domain()}>",
            "Auto-Submitted": "auto-generated",
        },
        connection=connection,
    )
    mail.attach_alternative(html, "text/html")
    return mail


def _rendered_for(item: SubscriberMessage, cache: dict) -> Rendered:
    language = item.subscriber.language
    if item.kind == SubscriberMessage.Kind.CONFIRMATION:
        token = confirmation_token(item.subscriber, item.payload)
        url = link("subscriptions-confirm", language, token)
        return render(confirmation_message(item.payload, language, url), language, manage=False)
    announcement = item.announcement
    key = (announcement.pk, language)
    if key not in cache:
        cache[key] = render(announcement_message(announcement.kind, announcement.payload, language), language)
    return cache[key]


def send_batch(items: Iterable[SubscriberMessage], rendered_cache: dict | None = None) -> BatchOutcome:
    """Send each message over one connection; a connection that fails leaves the rest to be retried."""
    outcome = BatchOutcome()
    items = list(items)
    rendered_cache = {} if rendered_cache is None else rendered_cache
    connection = get_connection(fail_silently=False, timeout=settings.EMAIL_TIMEOUT)
    try:
        connection.open()
    except Exception as exc:  # the mail server is away: everything waits for a later attempt
        error = f"{type(exc).__name__}: {exc}"
        outcome.failed = {item.pk: (item.attempts, error) for item in items}
        return outcome
    smtp = getattr(connection, "connection", None)  # Django's SMTP backend: send our own MIME bytes on it
    sender = sanitize_address(settings.DEFAULT_FROM_EMAIL, "utf-8")
    date = formatdate()
    try:
        for index, item in enumerate(items):
            try:
                rendered = _rendered_for(item, rendered_cache)
                if isinstance(smtp, smtplib.SMTP):
                    to = sanitize_address(item.subscriber.email, "utf-8")
                    manage_url, unsubscribe_url = personal_links(item)
                    smtp.sendmail(sender, [to], rendered.mime(to, item.message_id, manage_url, unsubscribe_url, date))
                else:
                    compose(item, rendered, connection).send()
            except smtplib.SMTPRecipientsRefused as exc:
                outcome.failed[item.pk] = (item.attempts, f"refused: {exc.recipients}")
                outcome.refused.append(item.subscriber_id)
            except (smtplib.SMTPServerDisconnected, OSError) as exc:
                error = f"{type(exc).__name__}: {exc}"
                for rest in items[index:]:
                    outcome.failed[rest.pk] = (rest.attempts, error)
                break
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
