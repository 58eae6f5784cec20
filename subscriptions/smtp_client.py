"""A small asyncio SMTP client: many connections at once, each carrying many messages.

smtplib waits for each reply on one socket, so one thread keeps one connection busy at a time;
here one event loop keeps dozens busy, and where the server advertises PIPELINING (RFC 2920) a
message's MAIL, RCPT and DATA go out in one write. It speaks what Django's SMTP backend does with
the same settings: implicit TLS (EMAIL_USE_SSL) or STARTTLS (EMAIL_USE_TLS) with the backend's SSL
context, and AUTH PLAIN or LOGIN (EMAIL_HOST_USER, EMAIL_HOST_PASSWORD).
"""

from __future__ import annotations

import asyncio
import base64
import re
import socket
import ssl
from dataclasses import dataclass

_LEADING_DOT = re.compile(rb"^\.", re.MULTILINE)


class SMTPError(Exception):
    """The server answered with an error (`code` is its reply code) or broke the protocol."""

    def __init__(self, code: int, text: str) -> None:
        super().__init__(f"{code} {text}")
        self.code, self.text = code, text


class RecipientRefused(SMTPError):
    """The server refused this recipient for good (a 5xx reply to RCPT): this address, not the connection."""


@dataclass(frozen=True)
class Server:
    """Where and how to connect: taken from Django's SMTP backend, so EMAIL_* settings (and EMAIL_URL) hold."""

    host: str
    port: int
    timeout: float | None = None
    use_ssl: bool = False
    use_tls: bool = False
    ssl_context: ssl.SSLContext | None = None
    username: str = ""
    password: str = ""

    @classmethod
    def from_backend(cls, backend) -> Server:
        secure = backend.use_ssl or backend.use_tls
        return cls(
            host=backend.host,
            port=int(backend.port),
            timeout=backend.timeout,
            use_ssl=bool(backend.use_ssl),
            use_tls=bool(backend.use_tls),
            ssl_context=backend.ssl_context if secure else None,
            username=backend.username or "",
            password=backend.password or "",
        )


def data_bytes(message: bytes) -> bytes:
    """A message (CRLF lines) as the DATA command carries it: leading dots doubled, then the final dot line."""
    if not message.endswith(b"\r\n"):
        message += b"\r\n"
    if b"\n." in message or message.startswith(b"."):
        message = _LEADING_DOT.sub(b"..", message)
    return message + b".\r\n"


class Connection:
    """One SMTP session; `send` one message after another, then `close`."""

    def __init__(self, server: Server) -> None:
        self.server = server
        self.extensions: dict[str, str] = {}
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None

    async def open(self) -> None:
        async with asyncio.timeout(self.server.timeout):
            await self._open()

    async def _open(self) -> None:
        server = self.server
        self._reader, self._writer = await asyncio.open_connection(
            server.host,
            server.port,
            ssl=server.ssl_context if server.use_ssl else None,
            server_hostname=server.host if server.use_ssl else None,
        )
        sock = self._writer.get_extra_info("socket")
        if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
            # Small commands must leave at once: no Nagle delay waiting for the previous reply's ACK.
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        await self._expect(220)
        await self._ehlo()
        if server.use_tls:
            if "starttls" not in self.extensions:
                raise SMTPError(0, "STARTTLS extension not supported by server.")
            await self._command(b"STARTTLS", 220)
            await self._writer.start_tls(server.ssl_context, server_hostname=server.host)
            await self._ehlo()
        if server.username or server.password:
            await self._login()

    async def send(self, sender: str, recipient: str, data: bytes, eight_bit: bool = False) -> None:
        """Send one message (`data` as from `data_bytes`); RecipientRefused or SMTPError when it was not taken.

        `eight_bit`: the message has 8bit parts (the server must have said 8BITMIME).
        """
        async with asyncio.timeout(self.server.timeout):
            await self._send(sender, recipient, data, eight_bit)

    async def _send(self, sender: str, recipient: str, data: bytes, eight_bit: bool) -> None:
        body = " BODY=8BITMIME" if eight_bit else ""
        envelope = [f"MAIL FROM:<{sender}>{body}".encode(), f"RCPT TO:<{recipient}>".encode(), b"DATA"]
        if "pipelining" in self.extensions:
            self._writer.write(b"\r\n".join(envelope) + b"\r\n")
            replies = [await self._reply() for _command in envelope]
        else:
            replies = []
            for command in envelope:
                self._writer.write(command + b"\r\n")
                replies.append(await self._reply())
                if replies[-1][0] >= 400:
                    break
        (mail_code, mail_text), *rest = replies
        rcpt_code, rcpt_text = rest[0] if rest else (0, "")
        data_code, data_text = rest[1] if len(rest) > 1 else (0, "")
        mail_ok, rcpt_ok = mail_code == 250, rcpt_code in (250, 251)
        if data_code == 354:
            if mail_ok and rcpt_ok:
                self._writer.write(data)
                code, text = await self._reply()
                if code != 250:
                    raise SMTPError(code, text)
                return
            self._writer.write(b".\r\n")  # a server that opened DATA without a recipient: send nothing
            await self._reply()
        elif mail_ok:
            await self._command(b"RSET", 250)  # end the half-made transaction before the next message
        if not mail_ok:
            raise SMTPError(mail_code, mail_text)
        if not rcpt_ok:
            raise (RecipientRefused if 500 <= rcpt_code < 600 else SMTPError)(rcpt_code, rcpt_text)
        raise SMTPError(data_code, data_text)

    def usable(self) -> bool:
        """Open and silent between messages, as far as this end knows. A server speaks unasked only
        to say goodbye (Postfix's "421 timeout" before it hangs up; aiosmtpd hangs up without a word),
        and StreamReader shows no unread reply but through its buffer."""
        if self._writer is None or self._writer.is_closing():
            return False
        return not self._reader.at_eof() and not getattr(self._reader, "_buffer", b"")

    async def close(self) -> None:
        if self._writer is None:
            return
        try:
            if not self._writer.is_closing():
                self._writer.write(b"QUIT\r\n")
                async with asyncio.timeout(1.0):
                    await self._reply()
        except (OSError, SMTPError, EOFError, RuntimeError):  # RuntimeError: uvloop's word for a closed transport
            pass
        finally:
            self._writer.close()
            try:
                await self._writer.wait_closed()
            except (OSError, ssl.SSLError):
                pass
            self._writer = None

    async def _ehlo(self) -> None:
        self._writer.write(f"EHLO {socket.getfqdn()}\r\n".encode())
        code, text = await self._reply()
        self.extensions = {}
        if code != 250:  # a server that only speaks HELO: no extensions, as smtplib falls back
            await self._command(f"HELO {socket.getfqdn()}".encode(), 250)
            return
        for line in text.splitlines()[1:]:
            name, _, value = line.partition(" ")
            self.extensions[name.lower()] = value

    async def _login(self) -> None:
        methods = self.extensions.get("auth", "").upper().split()
        user, password = self.server.username, self.server.password
        if "PLAIN" in methods:
            token = base64.b64encode(f"\0{user}\0{password}".encode()).decode()
            await self._command(f"AUTH PLAIN {token}".encode(), 235)
        elif "LOGIN" in methods:
            await self._command(b"AUTH LOGIN", 334)
            await self._command(base64.b64encode(user.encode()), 334)
            await self._command(base64.b64encode(password.encode()), 235)
        else:
            raise SMTPError(0, "No suitable authentication method found.")

    async def _command(self, line: bytes, expected: int) -> str:
        self._writer.write(line + b"\r\n")
        return await self._expect(expected)

    async def _expect(self, expected: int) -> str:
        code, text = await self._reply()
        if code != expected:
            raise SMTPError(code, text)
        return text

    async def _reply(self) -> tuple[int, str]:
        """One reply, its continuation lines ("250-...") joined by newlines."""
        lines = []
        while True:
            line = await self._reader.readuntil(b"\n")
            if len(line) < 4:
                raise SMTPError(0, f"malformed reply {line!r}")
            lines.append(line[4:].strip().decode("utf-8", "replace"))
            if line[3:4] != b"-":
                try:
                    return int(line[:3]), "\n".join(lines)
                except ValueError:
                    raise SMTPError(0, f"malformed reply {line!r}") from None


# What ends a connection (the message in flight is retried later); an SMTPError with code 421 does too.
CONNECTION_ERRORS = (OSError, EOFError, ssl.SSLError)


async def send_many(server: Server, build, connections: int, count: int):
    """Open up to `connections` sessions, send what `build(eight_bit)` makes over all of them, close them
    (`Pool.send` over a pool of its own)."""
    pool = Pool(server, connections)
    try:
        return await pool.send(build, count)
    finally:
        await pool.close()


class Pool:
    """SMTP sessions kept open from one batch to the next: a round's batches go out over the same
    connections, since opening one costs both ends a connect, the greeting and EHLO (and TLS and
    AUTH where set), and a batch would otherwise wait for its connections before its first mail."""

    def __init__(self, server: Server, size: int) -> None:
        self.server, self.size = server, max(1, size)
        self.idle: list[Connection] = []

    async def send(self, build, count: int):
        """Send what `build(eight_bit)` makes over up to `size` sessions, opening what is missing.

        `build` gets whether every open session took 8BITMIME and returns (key, sender, recipient,
        data) messages: a list, or an iterator, made as the connections take them (the first mails
        are out while the rest are made). Returns (keys sent, {key: exception}). A connection that
        breaks takes only its message in flight with it; the others carry on with the rest. What no
        connection could take fails with the error that ended the last one (a server that is down:
        every message, with its refusal).
        """
        await asyncio.sleep(0)  # the loop sees what arrived while it was idle: a server that hung up
        kept = [c for c in self.idle if c.usable()]
        await asyncio.gather(*(c.close() for c in self.idle if c not in kept))
        self.idle = []
        wanted = max(0, min(self.size, max(1, count)) - len(kept))
        opened = await asyncio.gather(*(_open(self.server) for _session in range(wanted)))
        live = kept + [c for c in opened if isinstance(c, Connection)]
        errors: list[Exception] = [c for c in opened if not isinstance(c, Connection)]
        eight_bit = bool(live) and all("8bitmime" in c.extensions for c in live)
        try:
            queue = iter(build(eight_bit))
        except BaseException:
            await asyncio.gather(*(c.close() for c in live))
            raise
        sent: list[int] = []
        failed: dict[int, Exception] = {}

        async def session(connection: Connection) -> None:
            for key, sender, recipient, data in queue:
                try:
                    await connection.send(sender, recipient, data, eight_bit)
                except SMTPError as exc:
                    failed[key] = exc
                    if exc.code in (0, 421):  # the server is closing this session, or it spoke gibberish
                        errors.append(exc)
                        await connection.close()
                        return
                except CONNECTION_ERRORS as exc:
                    failed[key] = exc
                    errors.append(exc)
                    await connection.close()
                    return
                else:
                    sent.append(key)
            self.idle.append(connection)

        try:
            await asyncio.gather(*(session(c) for c in live))
        except BaseException:  # cancelled: what each session had in flight is unknown, so none is kept
            await asyncio.gather(*(c.close() for c in live))
            self.idle = []
            raise
        for key, *_rest in queue:
            failed[key] = errors[-1] if errors else SMTPError(0, "no connection")
        return sent, failed

    async def close(self) -> None:
        idle, self.idle = self.idle, []
        await asyncio.gather(*(c.close() for c in idle))


async def _open(server: Server) -> Connection | Exception:
    connection = Connection(server)
    try:
        await connection.open()
    except (*CONNECTION_ERRORS, SMTPError) as exc:
        await connection.close()
        return exc
    return connection
