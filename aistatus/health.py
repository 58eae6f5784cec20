"""Liveness and readiness for load balancers and orchestrators."""

from __future__ import annotations

from django.conf import settings
from django.db import connections
from django.http import HttpRequest, JsonResponse

from aistatus.replica_monitor import OK, get_monitor


def healthz(request: HttpRequest) -> JsonResponse:
    """The process answers. Touches nothing else, so a database outage does not restart web processes."""
    return JsonResponse({"status": "ok"})


def readyz(request: HttpRequest) -> JsonResponse:
    """Ready when the database and (when configured) Redis answer; 503 naming what failed.

    With read replicas: each replica's region, state, lag and share of reads; a replica that lags
    or is away is named (the process stays ready), and with the primary down but a replica usable
    the process answers 200, "primary down, read-only": public reads go on.
    """
    checks: dict[str, str] = {}
    body: dict = {}
    monitor = get_monitor()
    summary = monitor.summary() if monitor else None
    if summary and summary["primary"]["state"] != "unchecked":
        primary = summary["primary"]
        checks["database"] = "ok" if primary["state"] == "up" else f"failed: {primary['error']}"
    else:
        checks["database"] = _database_check()
    if settings.REDIS_URL:
        checks["redis"] = _redis_check(settings.REDIS_URL)
    failed = sorted(name for name, result in checks.items() if result != "ok")
    status, code = ("ok", 200) if not failed else ("unavailable", 503)
    if summary:
        body["region"] = summary["region"]
        body["replicas"] = summary["replicas"]
        body["primary"] = summary["primary"]
        usable = [r for r in summary["replicas"] if r["state"] == OK]
        not_ok = [_describe(r) for r in summary["replicas"] if r["state"] != OK]
        if not_ok:
            body["replica_problems"] = not_ok
        if failed == ["database"] and checks["database"].startswith("failed") and usable:
            status, code = "read-only", 200
            body["message"] = "primary down, read-only"
    body = {"status": status, "checks": checks, **body}
    if failed:
        body["failed"] = failed
    return JsonResponse(body, status=code)


def _describe(replica: dict) -> str:
    where = f"{replica['alias']} ({replica['region'] or 'no region'})"
    if replica["state"] == "lagging":
        return f"{where} lagging: {replica['lag_bytes']} bytes, {replica['lag_seconds']} s behind the primary"
    if replica["state"] == "down":
        return f"{where} down: {replica['error']}"
    if replica["state"] == "not_in_recovery":
        return f"{where} not in recovery (not a standby): never read"
    return f"{where} {replica['state']}"


def _database_check() -> str:
    try:
        with connections["default"].cursor() as cursor:
            cursor.execute("SELECT 1")
        return "ok"
    except Exception as exc:  # any driver error means not ready
        return f"failed: {exc}".strip()


def _redis_check(url: str) -> str:
    import redis

    try:
        client = redis.Redis.from_url(url, socket_connect_timeout=1, socket_timeout=1)
        client.ping()
        client.close()
        return "ok"
    except Exception as exc:  # any client error means not ready
        return f"failed: {exc}"
