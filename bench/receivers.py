"""Local peers for the subscriber benchmark, each in its own process: an SMTP server (aiosmtpd) and an HTTP receiver.

`python bench/receivers.py smtp PORT COUNT_FILE [--pipelining]` or `... http PORT COUNT_FILE`: counts
what arrives and writes the count to COUNT_FILE every half second (and on exit).

The SMTP peer is aiosmtpd's own SMTP protocol on uvloop, with a lean handler: it counts a message
only when its headers carry what every subscriber mail must (Message-ID, List-Unsubscribe,
List-Unsubscribe-Post) and writes the mails that lack them to COUNT_FILE.bad. `--pipelining` has it
advertise PIPELINING (RFC 2920), as Postfix and Exim do: aiosmtpd reads commands one line after
another from its stream, so commands that arrive together are answered in turn.
"""

from __future__ import annotations

import asyncio
import signal
import sys
import threading
import time
from pathlib import Path


class Counter:
    def __init__(self, path: Path) -> None:
        self.path, self.count, self._lock = path, 0, threading.Lock()

    def add(self, n: int = 1) -> None:
        with self._lock:
            self.count += n

    def flush(self) -> None:
        self.path.write_text(str(self.count))


REQUIRED = (b"\nmessage-id: <", b"\nlist-unsubscribe: <", b"\nlist-unsubscribe-post: list-unsubscribe=one-click")


def smtp(port: int, counter: Counter, pipelining: bool = False) -> None:
    from aiosmtpd.controller import Controller

    try:
        import uvloop

        loop = uvloop.new_event_loop()
    except ImportError:
        loop = asyncio.new_event_loop()
    bad = Counter(counter.path.with_suffix(".bad"))

    class Handler:
        async def handle_EHLO(self, server, session, envelope, hostname, responses):
            session.host_name = hostname
            if pipelining:
                responses.insert(-1, "250-PIPELINING")
            return responses

        async def handle_DATA(self, server, session, envelope):
            head = b"\n" + envelope.original_content.partition(b"\r\n\r\n")[0].lower().replace(b"\r\n", b"\n")
            if all(required in head for required in REQUIRED):
                counter.add(len(envelope.rcpt_tos))
            else:
                bad.add()
                bad.flush()
            return "250 OK"

    controller = Controller(Handler(), hostname="127.0.0.1", port=port, ready_timeout=10, loop=loop)
    controller.start()


def http(port: int, counter: Counter) -> None:
    async def app(scope, receive, send):
        if scope["type"] != "http":
            return
        while (await receive()).get("more_body"):
            pass
        counter.add()
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"2")]})
        await send({"type": "http.response.body", "body": b"ok"})

    import uvicorn

    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)
    threading.Thread(target=uvicorn.Server(config).run, daemon=True).start()


def main() -> None:
    kind, port, path = sys.argv[1], int(sys.argv[2]), Path(sys.argv[3])
    counter = Counter(path)
    stopping = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopping.set())
    if kind == "smtp":
        smtp(port, counter, pipelining="--pipelining" in sys.argv[4:])
    else:
        http(port, counter)
    while not stopping.is_set():
        counter.flush()
        time.sleep(0.5)
    counter.flush()


if __name__ == "__main__":
    asyncio.set_event_loop_policy(None)
    main()
