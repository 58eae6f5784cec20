"""A local HTTP receiver that records what channels send: for trying a channel on loopback, and for tests."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass(frozen=True)
class Received:
    path: str
    headers: dict[str, str]
    body: bytes

    def json(self):
        return json.loads(self.body)


class Receiver:
    """Listens on 127.0.0.1; answers the queued status codes in turn (then 200), after an optional delay."""

    def __init__(
        self, statuses: list[int] | None = None, delay: float = 0.0, reply: Callable[[Received], bytes] | None = None
    ) -> None:
        self.statuses = list(statuses or [])
        self.delay = delay
        # What a 2xx answer says, from the request (a webhook subscriber echoing its challenge); else "ok".
        self.reply = reply
        self.requests: list[Received] = []
        self.answered: list[int] = []
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                with receiver._lock:
                    status = receiver.statuses.pop(0) if receiver.statuses else 200
                if receiver.delay:
                    time.sleep(receiver.delay)
                received = Received(self.path, dict(self.headers.items()), body)
                with receiver._lock:
                    receiver.requests.append(received)
                    receiver.answered.append(status)
                payload = b"receiver error" if status >= 400 else receiver.reply(received) if receiver.reply else b"ok"
                try:
                    self.send_response(status)
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)
                except OSError:
                    pass  # the sender gave up waiting

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def url(self, path: str = "/hook") -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}{path}"

    def __enter__(self) -> Receiver:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()
