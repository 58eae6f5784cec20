"""Ports for `make run`: refuse to start when one is taken, saying how to choose another; wait for one to listen."""

from __future__ import annotations

import os
import socket
import sys
import time

# (variable, default, what listens there, whether it is bound on HOST or on loopback)
PORTS = [
    ("PORT", 8000, "the status page (web server)", True),
    ("SIMULATOR_PORT", 8900, "the AI-provider simulator", False),
]


def is_free(host: str, port: int) -> bool:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def _suggest(host: str, taken: int, avoid: set[int]) -> int:
    port = taken + 1
    while port in avoid or not is_free(host, port):
        port += 1
    return port


def check(environ: dict[str, str]) -> list[str]:
    """A message for each port of `make run` that is already taken; empty when all are free."""
    host = environ.get("HOST") or "127.0.0.1"
    chosen = {name: int(environ.get(name) or default) for name, default, _, _ in PORTS}
    problems = []
    for name, _, what, on_host in PORTS:
        where = host if on_host else "127.0.0.1"
        port = chosen[name]
        if not is_free(where, port):
            other = _suggest(where, port, set(chosen.values()))
            follows = " (the demo models follow it)" if name == "SIMULATOR_PORT" else ""
            problems.append(
                f"Port {port} on {where} is already in use; {what} needs it. Stop what is using it, "
                f"or choose another port with {name}{follows}: make run {name}={other}"
            )
    return problems


def wait(host: str, port: int, timeout: float) -> bool:
    """True once host:port accepts connections, False after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection((host if host not in ("0.0.0.0", "::") else "127.0.0.1", port), 0.5):
                return True
        except OSError:
            time.sleep(0.1)
    return False


def main(argv: list[str]) -> int:
    if argv[:1] == ["wait"]:
        return 0 if wait(argv[1], int(argv[2]), float(argv[3]) if len(argv) > 3 else 60.0) else 1
    problems = check(dict(os.environ))
    for problem in problems:
        print(problem, file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
