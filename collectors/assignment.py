"""What a remote agent probes: the enabled models with their probe settings, as one JSON document with an ETag.

Credentials are never sent by default: a model's credential travels as the name of the environment
variable the agent resolves itself. Only a credential an operator shared with the agent's region
(CredentialShare) is sent with its key, and only over HTTPS.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from django.conf import settings
from django.db.models import Count, Max

from collectors.models import CredentialShare
from monitoring.models import AIModel, ProbeKind

_FIELDS = (
    "pk", "provider__slug", "slug", "probe_kind", "endpoint", "upstream_model", "probe_config", "interval_seconds",
    "timeout_seconds", "latency_threshold_ms", "ttft_threshold_ms", "failures_to_confirm", "successes_to_recover",
    "credential_id", "credential__api_key", "credential__api_key_env",
)  # fmt: skip


def _shared_credentials(region: str) -> set[int]:
    return {share.credential_id for share in CredentialShare.objects.all() if region in share.region_list()}


def assignment(region: str, *, secure: bool) -> dict[str, Any]:
    """The assignment of the agents of a region. Shared keys are included only when `secure` (HTTPS)."""
    shared = _shared_credentials(region) if secure else set()
    models = []
    rows = AIModel.objects.filter(enabled=True).exclude(probe_kind=ProbeKind.PUSH).order_by("pk").values_list(*_FIELDS)
    for (pk, provider, slug, kind, endpoint, upstream, config, interval, timeout, latency, ttft, failures,
         successes, credential_id, api_key, api_key_env) in rows:  # fmt: skip
        credential = None
        if credential_id is not None:
            credential = {"env": api_key_env or ""}
            if credential_id in shared and api_key:
                credential["api_key"] = api_key
        models.append(
            {
                "id": pk,
                "name": f"{provider}/{slug}",
                "probe_kind": kind,
                "endpoint": endpoint,
                "upstream_model": upstream or slug,
                "probe_config": config or {},
                "interval_seconds": interval,
                "timeout_seconds": timeout,
                "thresholds": {
                    "latency_ms": latency,
                    "ttft_ms": ttft,
                    "failures_to_confirm": failures,
                    "successes_to_recover": successes,
                },
                "credential": credential,
            }
        )
    return {"region": region, "refresh_seconds": settings.AGENT_ASSIGNMENT_REFRESH_S, "models": models}


def encode(document: dict[str, Any]) -> tuple[bytes, str]:
    """(body, ETag) of an assignment: the ETag is a hash of the body, so any change makes a new one."""
    body = json.dumps(document, separators=(",", ":"), sort_keys=True).encode()
    return body, '"' + hashlib.sha256(body).hexdigest()[:32] + '"'


def change_hint() -> str:
    """A cheap fingerprint of the registry's probe settings, sent with every batch's answer.

    Every save of a model moves its updated_at (and enabling or disabling does too), so when this
    changes the agent asks for its assignment at once instead of waiting for the next refresh.
    """
    figures = AIModel.objects.aggregate(n=Count("pk"), last=Max("updated_at"))
    last = figures["last"].timestamp() if figures["last"] else 0
    return f"{figures['n']}-{last:.6f}"
