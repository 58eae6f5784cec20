"""Tells the core's registry each probe kind's rules, so models are validated without the core importing probes."""

from __future__ import annotations

from collectors.probes import PROBES, PUSH
from collectors.probes.base import check_keys
from monitoring import probe_kinds


def register_probe_kinds() -> None:
    for kind, module in PROBES.items():
        probe_kinds.register(kind, probe_kinds.ProbeKindRules(module.ENDPOINT, module.validate_config))
    probe_kinds.register(PUSH, probe_kinds.ProbeKindRules("none", lambda config: check_keys(config, frozenset())))
