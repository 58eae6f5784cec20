"""Read replicas from the environment: `DATABASE_REPLICAS` (region=url), `DATABASE_REPLICA_URLS`, `REPLICA_MAX_LAG`.

Pure parsing and validation, called by settings at start-up: a replica URL that does not parse, or
that names the primary itself, stops the process with a message naming the setting.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import urlsplit

from django.core.exceptions import ImproperlyConfigured

# Replicas listed without a region (DATABASE_REPLICA_URLS) belong to this one.
NO_REGION = ""
_REGION = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$")
_LAG = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|b|kb|mb|gb)?\s*$", re.IGNORECASE)
_BYTES = {"b": 1, "kb": 1024, "mb": 1024**2, "gb": 1024**3}


@dataclass(frozen=True, slots=True)
class ReplicaSetting:
    alias: str
    region: str
    url: str
    setting: str  # the environment variable it came from, for messages


@dataclass(frozen=True, slots=True)
class MaxLag:
    bytes: int
    seconds: float


def _endpoint(url: str, setting: str) -> tuple[str, int, str]:
    """(host, port, database) of a PostgreSQL URL, or ImproperlyConfigured naming the setting."""
    try:
        parts = urlsplit(url.strip())
        port = parts.port or 5432
    except ValueError as exc:
        raise ImproperlyConfigured(f"{setting}: {url!r} is not a database URL ({exc}).") from None
    if parts.scheme not in ("postgres", "postgresql", "pgsql", "timescale", "timescaledb") or not parts.hostname:
        raise ImproperlyConfigured(
            f"{setting}: {url!r} is not a PostgreSQL URL (expected postgres://user@host:port/database)."
        )
    database = parts.path.lstrip("/")
    if not database:
        raise ImproperlyConfigured(f"{setting}: {url!r} names no database.")
    host = parts.hostname.lower()
    if host in ("localhost", "::1"):
        host = "127.0.0.1"
    return host, port, database


def parse_replicas(regional: list[str], plain: list[str], primary_url: str) -> list[ReplicaSetting]:
    """Replicas in the order given: `DATABASE_REPLICAS` (region=url) first, then `DATABASE_REPLICA_URLS`."""
    entries: list[tuple[str, str, str]] = []
    for item in regional:
        region, sep, url = item.partition("=")
        region = region.strip()
        if not sep or not _REGION.match(region):
            raise ImproperlyConfigured(
                f"DATABASE_REPLICAS: {item!r} is not region=url (for example eu=postgres://user@host:5432/db)."
            )
        entries.append((region, url.strip(), "DATABASE_REPLICAS"))
    entries += [(NO_REGION, url.strip(), "DATABASE_REPLICA_URLS") for url in plain if url.strip()]
    if not entries:
        return []
    try:
        primary = _endpoint(primary_url, "DATABASE_URL")
    except ImproperlyConfigured:
        raise ImproperlyConfigured("DATABASE_URL must be a PostgreSQL URL when read replicas are configured.") from None
    seen: dict[tuple[str, int, str], str] = {}
    replicas = []
    for index, (region, url, setting) in enumerate(entries, start=1):
        endpoint = _endpoint(url, setting)
        if endpoint[:2] == primary[:2]:
            # Another database on the primary's server is no replica either: same host and port suffice.
            raise ImproperlyConfigured(
                f"{setting}: {url!r} points at the primary itself (DATABASE_URL); a replica must be another server."
            )
        if endpoint in seen:
            raise ImproperlyConfigured(f"{setting}: {url!r} is listed twice (also as {seen[endpoint]}).")
        seen[endpoint] = url
        replicas.append(ReplicaSetting(f"replica{index}", region, url, setting))
    return replicas


def parse_max_lag(value: str) -> MaxLag:
    """`REPLICA_MAX_LAG`: a time (`2s`, `500ms`), a size (`16MB`, `65536` bytes), or both, comma-separated."""
    lag = MaxLag(bytes=0, seconds=0.0)
    for part in value.split(","):
        match = _LAG.match(part)
        if not match:
            raise ImproperlyConfigured(
                f"REPLICA_MAX_LAG: {part.strip()!r} is neither a time (2s, 500ms) nor a size (16MB, 65536)."
            )
        number, unit = float(match[1]), (match[2] or "b").lower()
        if unit in ("s", "ms"):
            lag = MaxLag(lag.bytes, number / 1000 if unit == "ms" else number)
        else:
            lag = MaxLag(int(number * _BYTES[unit]), lag.seconds)
    return lag
