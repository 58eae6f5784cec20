"""Annotations beside the evidence that may shade a derived status, supplied by downstream apps at start-up.

The core derives statuses from results alone; an app downstream of it (anomaly detection) registers a
source here naming the models it finds unusual, and derivation lets that turn an `operational` model
`degraded_performance` for models whose operator opted in. The core never imports that app.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

DegradingSource = Callable[[Iterable[int]], dict[int, str]]

_sources: list[DegradingSource] = []


def register_degrading_source(source: DegradingSource) -> None:
    """`source(model_ids)` returns {model_id: reason} for the models it finds unusual now."""
    if source not in _sources:
        _sources.append(source)


def degrading_reasons(model_ids: Iterable[int]) -> dict[int, str]:
    """{model_id: reason} of the given models that some registered source finds unusual."""
    ids = list(model_ids)
    reasons: dict[int, str] = {}
    if not ids:
        return reasons
    for source in _sources:
        for model_id, reason in source(ids).items():
            reasons.setdefault(model_id, reason)
    return reasons
