"""The one event schema: what a status change looks like on every live channel (WebSocket and SSE)."""

from __future__ import annotations

import json
from typing import Any

from monitoring.models import AIModel, StatusChange

# Broadcast events carry their JSON text precomputed under this key: encoded once, sent to thousands.
WIRE = "_wire"


def status_change_event(change: StatusChange, model: AIModel) -> dict[str, Any]:
    """The event for one StatusChange; its id is the sequence a reconnecting client resumes from."""
    return {
        "type": "status_change",
        "seq": change.pk,
        "model": model.public_slug,
        "model_id": change.model_id,
        "from": change.from_status,
        "to": change.to_status,
        "at": change.at.isoformat().replace("+00:00", "Z"),
        "reason": change.reason,
        "manual": change.manual,
    }


def encode(event: dict[str, Any]) -> str:
    """The event's JSON text (precomputed for broadcast events)."""
    wire = event.get(WIRE)
    if wire is None:
        wire = json.dumps({k: v for k, v in event.items() if k != WIRE}, ensure_ascii=False, separators=(",", ":"))
    return wire
