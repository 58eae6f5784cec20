"""Turns registry rows into the plain ProbeTargets that probes take (secrets resolved here, server-side)."""

from __future__ import annotations

import os

from collectors.probes.base import ProbeTarget
from monitoring.models import AIModel


def api_key_of(model: AIModel) -> str:
    credential = model.credential
    if credential is None:
        return ""
    return credential.api_key or os.environ.get(credential.api_key_env, "")


def target_of(model: AIModel, region: str = "default") -> ProbeTarget:
    return ProbeTarget(
        model_id=model.pk,
        probe_kind=model.probe_kind,
        endpoint=model.endpoint,
        upstream_model=model.upstream_model or model.slug,
        api_key=api_key_of(model),
        timeout_s=float(model.timeout_seconds),
        config=dict(model.probe_config or {}),
        region=region,
    )
