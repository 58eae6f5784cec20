"""Subscriber mail: text and HTML parts in the subscriber's language, RFC 8058 one-click unsubscribe.

Each announcement is rendered once per language, with placeholders for the personal parts (address,
Message-ID, links), and its MIME is cut once at those placeholders: a hundred thousand mails cost a
hundred thousand joins (and, for a server without 8BITMIME, base64 encodings), not template renders
and MIME trees. (`mail_sending` sends them.)
"""

from __future__ import annotations

import base64
import re
import secrets
from dataclasses import dataclass, field
from email.header import Header
from functools import cached_property

from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.core.mail.message import sanitize_address
from django.template.loader import render_to_string
from django.utils import translation

from alerts.messages import Message
from subscriptions.messages import announcement_message, confirmation_message, link
from subscriptions.models import SubscriberMessage
from subscriptions.tokens import confirmation_token, manage_signer, manage_token

MANAGE, UNSUBSCRIBE = "@@manage-url@@", "@@unsubscribe-url@@"


# A line of an 8bit part may be 998 octets (RFC 5321); each link placeholder is counted as this many.
MAX_LINE, LINK_ROOM = 998, 400
TO, MESSAGE_ID = "@@to@@", "@@message-id@@"
_HTML_SPACE = re.compile(r"[ \t\r\n\f]+")  # HTML's whitespace: not Python's, which takes in no-break spaces
_PLACEHOLDERS = re.compile("(" + "|".join(re.escape(p) for p in (TO, MESSAGE_ID, MANAGE, UNSUBSCRIBE)) + ")")


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
    def boundary(self) -> str:
        return f"==_{secrets.token_hex(12)}_=="  # "_" never occurs in base64, so no part can contain it

    def head(self, date: str) -> str:
        """The headers, the personal ones as placeholders (the subject encoded once)."""
        return "".join(
            [
                f"To: {TO}\r\nDate: {date}\r\nMessage-ID: <{MESSAGE_ID}@{domain()}>\r\n",
                f"List-Unsubscribe: <{UNSUBSCRIBE}>\r\n",
                "List-Unsubscribe-Post: List-Unsubscribe=One-Click\r\n",
                header("From", sanitize_address(settings.DEFAULT_FROM_EMAIL, "utf-8")),
                header("Subject", self.subject),
                header("List-Id", f"{settings.SITE_NAME} <status-updates.{domain()}>"),
                "Auto-Submitted: auto-generated\r\n",
                "MIME-Version: 1.0\r\n",
                f'Content-Type: multipart/alternative; boundary="{self.boundary}"\r\n\r\n',
            ]
        )

    def frame(self, date: str, eight_bit: bool) -> list[str]:
        """The whole message cut at its personal parts: text between placeholders, and the placeholders.

        With 8BITMIME the parts go as UTF-8 lines (fewer and shorter than base64's, for both ends to
        read), the HTML's line breaks folded into spaces; a part with a line too long for SMTP, or a
        server without 8BITMIME, gets base64 (`None` in the frame: encoded per copy).
        """
        pieces = [self.head(date)]
        for kind, body in (("plain", self.text), ("html", fold_html(self.html))):
            lines = crlf(body)
            eight = eight_bit and all(_octets(line) <= MAX_LINE for line in lines.split("\r\n"))
            encoding = "8bit" if eight else "base64"
            pieces.append(
                f'--{self.boundary}\r\nContent-Type: text/{kind}; charset="utf-8"\r\n'
                f"Content-Transfer-Encoding: {encoding}\r\n\r\n"
            )
            pieces.append(lines if eight else None)
            pieces.append(kind)
        pieces.append(f"--{self.boundary}--\r\n")
        return pieces


class Copies:
    """Makes a rendered message's personal copies: one join of precut pieces per copy."""

    def __init__(self, rendered: Rendered, date: str, eight_bit: bool) -> None:
        self.rendered = rendered
        self.segments: list[list[str] | tuple[str, str]] = []
        frame = rendered.frame(date, eight_bit)
        for index, piece in enumerate(frame):
            if piece in ("plain", "html"):
                continue
            if piece is None:  # a base64 part, encoded per copy from the part's text
                self.segments.append(("base64", frame[index + 1]))
            else:
                self.segments.append(_PLACEHOLDERS.split(piece))

    def make(self, to: str, message_id: str, manage_url: str, unsubscribe_url: str) -> bytes:
        values = {TO: to, MESSAGE_ID: message_id, MANAGE: manage_url, UNSUBSCRIBE: unsubscribe_url}
        out = []
        text, html = None, None
        for segment in self.segments:
            if isinstance(segment, tuple):
                if text is None:
                    text, html = self.rendered.personal(manage_url, unsubscribe_url)
                body = text if segment[1] == "plain" else html
                out.append(base64.encodebytes(body.encode()).decode().replace("\n", "\r\n"))
                continue
            for index, piece in enumerate(segment):
                out.append(values[piece] if index % 2 else piece)
        return "".join(out).encode()


def crlf(body: str) -> str:
    """A part's text with CRLF line ends, ending in one."""
    body = body.replace("\r\n", "\n").replace("\r", "\n")
    return body.rstrip("\n").replace("\n", "\r\n") + "\r\n"


def fold_html(html: str, width: int = 500) -> str:
    """HTML with its line breaks and indentation folded into single spaces (the same page for a
    browser: these templates have no <pre>), then broken at spaces into lines of about `width` octets."""
    lines, line, size = [], [], 0
    for word in _HTML_SPACE.split(html.strip(" \t\r\n\f")):
        octets = _octets(word)
        if line and size + octets > width:
            lines.append(" ".join(line))
            line, size = [], 0
        line.append(word)
        size += octets + 1
    lines.append(" ".join(line))
    return "\n".join(lines)


def _octets(line: str) -> int:
    links = line.count(MANAGE) + line.count(UNSUBSCRIBE)
    return len(line.encode()) + links * LINK_ROOM


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


class Links:
    """Subscribers' manage and one-click unsubscribe links: each page's URL reversed once per language
    and one signer for a whole batch (a reverse and a signer cost more than the signature itself)."""

    MARK = "0token0"

    def __init__(self) -> None:
        self.signer = manage_signer()
        self._around: dict[str, tuple[str, str, str, str]] = {}

    def of(self, subscriber_id: int, key: str, language: str) -> tuple[str, str]:
        around = self._around.get(language)
        if around is None:
            manage = link("subscriptions-manage", language, self.MARK).rpartition(self.MARK)
            leave = link("subscriptions-unsubscribe", language, self.MARK).rpartition(self.MARK)
            around = self._around[language] = (manage[0], manage[2], leave[0], leave[2])
        token = manage_token(subscriber_id, key, self.signer)
        return around[0] + token + around[1], around[2] + token + around[3]


def personal_links(item: SubscriberMessage, links: Links | None = None) -> tuple[str, str]:
    """The subscriber's manage and one-click unsubscribe links."""
    subscriber = item.subscriber
    return (links or Links()).of(subscriber.pk, subscriber.key, subscriber.language)


def compose(item: SubscriberMessage, rendered: Rendered, connection, links: tuple[str, str]) -> EmailMultiAlternatives:
    subscriber = item.subscriber
    manage_url, unsubscribe_url = links
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


def rendered_for(item: SubscriberMessage, cache: dict) -> Rendered:
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
