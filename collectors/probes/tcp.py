"""Probe a TCP service by connecting to host:port; the latency is the connect time."""

from __future__ import annotations

import asyncio
import contextlib
import time
from urllib.parse import urlsplit

import aiohttp

from .base import Outcome, ProbeResult, ProbeTarget, check_keys, elapsed_ms

OPTIONS: frozenset[str] = frozenset()

# The endpoint is host:port.
ENDPOINT = "host_port"


def validate_config(config: dict) -> None:
    check_keys(config, OPTIONS)


def parse_endpoint(endpoint: str) -> tuple[str, int] | None:
    """host:port (or [v6 address]:port) as (host, port); None when it is not that."""
    parts = urlsplit(f"//{endpoint.strip()}")
    try:
        port = parts.port
    except ValueError:
        return None
    if not parts.hostname or not port or parts.path or parts.query or parts.username:
        return None
    return parts.hostname, port


async def probe(target: ProbeTarget, session: aiohttp.ClientSession) -> ProbeResult:
    address = parse_endpoint(target.endpoint)
    if address is None:
        return ProbeResult(Outcome.PROBE_FAULT, error=f"endpoint {target.endpoint!r} is not host:port")
    start = time.perf_counter()
    try:
        _, writer = await asyncio.open_connection(*address)
    except ConnectionRefusedError as exc:
        return ProbeResult(Outcome.PROVIDER_FAULT, latency_ms=elapsed_ms(start), error=f"connection refused: {exc}")
    except OSError as exc:  # unreachable, reset, name that does not resolve
        error = f"connection failed: {str(exc) or type(exc).__name__}"
        return ProbeResult(Outcome.PROVIDER_FAULT, latency_ms=elapsed_ms(start), error=error)
    latency_ms = elapsed_ms(start)
    writer.close()
    with contextlib.suppress(OSError):
        await writer.wait_closed()
    return ProbeResult(Outcome.OK, latency_ms=latency_ms)
