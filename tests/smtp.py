"""A real SMTP peer for tests and benchmarks: aiosmtpd on a free port, keeping every message it receives."""

from __future__ import annotations

import email
import email.policy
import logging
import socket
import threading
import time
from email.message import EmailMessage

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP

# aiosmtpd logs every command at INFO.
logging.getLogger("mail.log").setLevel(logging.WARNING)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Capture:
    """aiosmtpd handler: parses each message as MIME; can refuse chosen recipients with a 550.

    `pipelining` has the server advertise PIPELINING, `eight_bit=False` withdraws 8BITMIME, and an
    address in `drop` has its connection closed when its message's data arrives (once), with no reply.
    """

    def __init__(self, keep: bool = True, *, pipelining: bool = False, eight_bit: bool = True) -> None:
        self.keep = keep
        self.pipelining, self.eight_bit = pipelining, eight_bit
        self.messages: list[EmailMessage] = []
        self.bodies: list[bytes] = []
        self.mail_options: list[list[str]] = []
        self.senders: list[str] = []
        self.count = 0
        self.refuse: set[str] = set()
        self.drop: set[str] = set()
        self.connections = 0
        self.quits = 0
        self._lock = threading.Lock()

    async def handle_EHLO(self, server, session, envelope, hostname, responses):
        session.host_name = hostname
        if not self.eight_bit:
            responses = [r for r in responses if "8BITMIME" not in r]
        if self.pipelining:
            responses.insert(-1, "250-PIPELINING")
        return responses

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address.lower() in self.refuse:
            return "550 5.1.1 No such user here"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        dropped = self.drop.intersection(a.lower() for a in envelope.rcpt_tos)
        if dropped:
            self.drop -= dropped
            server.transport.close()
            return "421 closing"  # never reaches the client: the connection is gone
        with self._lock:
            self.count += len(envelope.rcpt_tos)
            self.mail_options.append(list(envelope.mail_options))
            self.senders.append(envelope.mail_from)
            if self.keep:
                self.bodies.append(envelope.original_content)
                parsed = email.message_from_bytes(envelope.content, policy=email.policy.default)
                parsed["X-Envelope-To"] = ", ".join(envelope.rcpt_tos)
                self.messages.append(parsed)
        return "250 Message accepted for delivery"

    def to(self, address: str) -> list[EmailMessage]:
        return [m for m in self.messages if address in m["X-Envelope-To"]]

    def wait_for(self, count: int, timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        while self.count < count and time.monotonic() < deadline:
            time.sleep(0.01)


class _CountingSMTP(SMTP):
    def connection_made(self, transport):
        self.event_handler.connections += 1
        super().connection_made(transport)

    async def smtp_QUIT(self, arg):
        self.event_handler.quits += 1
        await super().smtp_QUIT(arg)


class SMTPServer(Controller):
    """Started with `start()`, stopped with `stop()`; `port` is where it listens on 127.0.0.1."""

    def __init__(self, capture: Capture, port: int | None = None, **smtp_options) -> None:
        super().__init__(capture, hostname="127.0.0.1", port=port or free_port(), ready_timeout=10)
        self.capture = capture
        self.smtp_options = smtp_options  # e.g. tls_context, require_starttls, authenticator

    def factory(self):
        return _CountingSMTP(self.handler, enable_SMTPUTF8=True, data_size_limit=10_000_000, **self.smtp_options)
