"""The probe kinds, and running one probe so that it always ends in a result and never in an exception."""

from __future__ import annotations

import asyncio
import logging
from types import ModuleType
from typing import Any

import aiohttp

from . import anthropic_messages, http, openai_chat, openai_embeddings, tcp
from .base import Outcome, ProbeConfigError, ProbeResult, ProbeTarget, check_keys

logger = logging.getLogger(__name__)

# "push" has no probe: remote collectors send its results to the API.
PROBES: dict[str, ModuleType] = {
    "openai_chat": openai_chat,
    "anthropic_messages": anthropic_messages,
    "openai_embeddings": openai_embeddings,
    "http": http,
    "tcp": tcp,
}
PUSH = "push"


def validate_probe_config(probe_kind: str, config: Any) -> None:
    """Raise ProbeConfigError, naming the field, when config is unusable for probe_kind."""
    if probe_kind == PUSH:
        check_keys(config, frozenset())
        return
    module = PROBES.get(probe_kind)
    if module is None:
        raise ProbeConfigError(f"probe_kind: unknown probe kind {probe_kind!r}")
    module.validate_config(config)


def make_session(limit: int = 1000, headers: dict[str, str] | None = None) -> aiohttp.ClientSession:
    """One session for many concurrent probes: pooled keep-alive connections, cached DNS, no cookies.

    Call it inside the running event loop. It sets no overall timeout: run_probe enforces each target's own.
    `headers` go on every probe request (the remote agent names its region with X-Probe-Region).
    """
    connector = aiohttp.TCPConnector(limit=limit, limit_per_host=limit, ttl_dns_cache=300)
    return aiohttp.ClientSession(
        connector=connector,
        cookie_jar=aiohttp.DummyCookieJar(),
        timeout=aiohttp.ClientTimeout(total=None),
        headers=headers,
    )


async def run_probe(target: ProbeTarget, session: aiohttp.ClientSession) -> ProbeResult:
    """Run the probe for target.probe_kind within target.timeout_s. Never raises (except on cancellation)."""
    module = PROBES.get(target.probe_kind)
    if module is None:
        return ProbeResult(Outcome.PROBE_FAULT, error=f"no probe for the kind {target.probe_kind!r}")
    try:
        module.validate_config(target.config)
        async with asyncio.timeout(target.timeout_s):
            return await module.probe(target, session)
    except ProbeConfigError as exc:
        return ProbeResult(Outcome.PROBE_FAULT, error=str(exc))
    except TimeoutError:
        return ProbeResult(Outcome.TIMEOUT, error=f"no answer within {target.timeout_s:g} s")
    except aiohttp.InvalidURL as exc:
        return ProbeResult(Outcome.PROBE_FAULT, error=f"invalid endpoint URL: {exc}")
    except aiohttp.ClientConnectorError as exc:
        refused = isinstance(exc.os_error, ConnectionRefusedError)
        return ProbeResult(Outcome.PROVIDER_FAULT, error=f"connection {'refused' if refused else 'failed'}: {exc}")
    except aiohttp.ClientPayloadError as exc:
        return ProbeResult(Outcome.BROKEN_STREAM, error=f"answer cut: {exc}")
    except aiohttp.ServerDisconnectedError:
        return ProbeResult(Outcome.PROVIDER_FAULT, error="the server closed the connection without an answer")
    except (aiohttp.ClientError, OSError) as exc:
        return ProbeResult(Outcome.PROVIDER_FAULT, error=f"{type(exc).__name__}: {exc}")
    except Exception as exc:
        logger.warning("probe %s for model %s failed", target.probe_kind, target.model_id, exc_info=True)
        return ProbeResult(Outcome.PROBE_FAULT, error=f"probe error: {type(exc).__name__}: {exc}")


__all__ = [
    "PROBES",
    "Outcome",
    "ProbeConfigError",
    "ProbeResult",
    "ProbeTarget",
    "make_session",
    "run_probe",
    "validate_probe_config",
]
