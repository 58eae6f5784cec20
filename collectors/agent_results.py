"""Takes in one batch of an agent's results: validated item by item, stored once each, the agent's health noted.

Exactly once: every result carries the agent's sequence number, and the agent sends in order (its
disk spool drains oldest first). The agent's row holds the highest sequence stored; the batch is
filtered against it and written in the same transaction that moves it, under a row lock, so a batch
sent twice (a retry after a lost answer, two copies racing) is stored once.

Clocks: the batch says when the agent sent it. The difference from the receive time is the agent's
clock skew; past AGENT_CLOCK_SKEW_LIMIT_S the agent is flagged and its results are placed by the
receive time (shifted by the skew). Results dated more than AGENT_MAX_FUTURE_S after the receive
time are rejected and counted.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import F

from collectors.assignment import change_hint
from collectors.models import Agent
from collectors.probes.base import ProbeResult
from collectors.storage import Observation, insert_rows
from monitoring.models import AIModel
from monitoring.outcomes import Outcome

MAX_RESULTS = 5000
MAX_ERRORS_LISTED = 50
_OUTCOMES = frozenset(Outcome.values)
_NUMBERS = ("latency_ms", "ttft_ms", "tokens_per_s")


class BadBatch(ValueError):
    """A batch that cannot be taken in; `errors` maps each bad place (results[3].outcome) to what is wrong."""

    def __init__(self, errors: dict[str, str]) -> None:
        super().__init__("; ".join(f"{k}: {v}" for k, v in errors.items()))
        self.errors = errors


@dataclass(slots=True)
class Item:
    seq: int
    model_id: int
    time: float
    result: ProbeResult


@dataclass(slots=True)
class Batch:
    agent_time: float
    items: list[Item]
    health: dict[str, Any] = field(default_factory=dict)


@dataclass(slots=True)
class Receipt:
    stored: int = 0
    duplicates: int = 0
    dropped: int = 0
    rejected: int = 0
    last_seq: int = 0
    skew_s: float = 0.0
    skewed: bool = False
    model_ids: set[int] = field(default_factory=set)
    hint: str = ""  # the assignment's change hint (collectors.assignment.change_hint)


def _number(value: Any) -> bool:
    return type(value) in (int, float) and math.isfinite(value)


def _item(raw: Any, where: str, errors: dict[str, str]) -> Item | None:
    if not isinstance(raw, dict):
        errors[where] = "must be an object"
        return None
    bad = len(errors)
    seq, model, at, outcome = raw.get("seq"), raw.get("model"), raw.get("time"), raw.get("outcome")
    if type(seq) is not int or seq < 1:
        errors[f"{where}.seq"] = "must be a positive integer"
    if type(model) is not int:
        errors[f"{where}.model"] = "must be a model id (integer)"
    if not _number(at) or at < 0:
        errors[f"{where}.time"] = "must be epoch seconds"
    if outcome not in _OUTCOMES:
        errors[f"{where}.outcome"] = f"must be one of {', '.join(sorted(_OUTCOMES))}"
    status = raw.get("http_status")
    if status is not None and (type(status) is not int or not 100 <= status <= 599):
        errors[f"{where}.http_status"] = "must be an HTTP status (100-599) or null"
    for name in _NUMBERS:
        value = raw.get(name)
        if value is not None and (not _number(value) or value < 0):
            errors[f"{where}.{name}"] = "must be a non-negative number or null"
    error = raw.get("error", "")
    if not isinstance(error, str):
        errors[f"{where}.error"] = "must be a string"
    if len(errors) > bad:
        return None
    result = ProbeResult(outcome, status, raw.get("latency_ms"), raw.get("ttft_ms"), raw.get("tokens_per_s"), error)
    return Item(seq, model, float(at), result)


def parse_batch(data: Any) -> Batch:
    """The batch in `data` (decoded JSON), or BadBatch naming every bad item (up to MAX_ERRORS_LISTED)."""
    if not isinstance(data, dict):
        raise BadBatch({"batch": "must be a JSON object with results, agent_time and health"})
    errors: dict[str, str] = {}
    results = data.get("results")
    if not isinstance(results, list) or not results:
        errors["results"] = "must be a non-empty list"
        results = []
    elif len(results) > MAX_RESULTS:
        errors["results"] = f"at most {MAX_RESULTS} results a batch"
        results = []
    agent_time = data.get("agent_time")
    if not _number(agent_time):
        errors["agent_time"] = "must be the agent's clock at sending, in epoch seconds"
    health = data.get("health", {})
    if not isinstance(health, dict):
        errors["health"] = "must be an object"
    items: list[Item] = []
    previous = 0
    for index, raw in enumerate(results):
        item = _item(raw, f"results[{index}]", errors)
        if item is not None:
            if item.seq <= previous:
                errors[f"results[{index}].seq"] = "sequence numbers must increase within a batch"
            previous = item.seq
            items.append(item)
        if len(errors) >= MAX_ERRORS_LISTED:
            break
    if errors:
        raise BadBatch(errors)
    return Batch(float(agent_time), items, health)


def _health_fields(health: dict[str, Any]) -> dict[str, Any]:
    fields: dict[str, Any] = {}
    if isinstance(health.get("version"), str):
        fields["version"] = health["version"][:40]
    if _number(health.get("results_per_s")):
        fields["results_per_s"] = max(0.0, float(health["results_per_s"]))
    for name in ("spool_depth", "spool_dropped", "sent"):
        if type(health.get(name)) is int and health[name] >= 0:
            fields[name] = health[name]
    if isinstance(health.get("last_error"), str):
        fields["last_error"] = health["last_error"][:1000]
    return fields


def take_in(agent: Agent, batch: Batch, received: datetime) -> Receipt:
    """Store the batch's new results (once each) and the agent's health. Returns what happened to the results."""
    receipt = Receipt(skew_s=batch.agent_time - received.timestamp())
    receipt.skewed = abs(receipt.skew_s) > settings.AGENT_CLOCK_SKEW_LIMIT_S
    shift = receipt.skew_s if receipt.skewed else 0.0
    latest_allowed = received.timestamp() + settings.AGENT_MAX_FUTURE_S
    with transaction.atomic():
        last_seq = Agent.objects.select_for_update().values_list("last_seq", flat=True).get(pk=agent.pk)
        fresh = [item for item in batch.items if item.seq > last_seq]
        receipt.duplicates = len(batch.items) - len(fresh)
        wanted = {item.model_id for item in fresh}
        enabled = AIModel.objects.filter(pk__in=wanted, enabled=True)
        known = set(enabled.values_list("pk", flat=True)) if wanted else set()
        observations = []
        for item in fresh:
            if item.model_id not in known:
                receipt.dropped += 1
                continue
            at = item.time - shift
            if at > latest_allowed:
                receipt.rejected += 1
                continue
            observations.append(Observation(item.model_id, agent.region, datetime.fromtimestamp(at, UTC), item.result))
        insert_rows(observations)
        receipt.stored = len(observations)
        receipt.model_ids = {o.model_id for o in observations}
        receipt.last_seq = max(last_seq, batch.items[-1].seq)
        Agent.objects.filter(pk=agent.pk).update(
            last_seq=receipt.last_seq,
            stored=F("stored") + receipt.stored,
            dropped=F("dropped") + receipt.dropped,
            rejected=F("rejected") + receipt.rejected,
            last_seen_at=received,
            clock_skew_s=receipt.skew_s,
            clock_skewed=receipt.skewed,
            **_health_fields(batch.health),
        )
    receipt.hint = change_hint()
    return receipt


def note_contact(agent: Agent, received: datetime) -> None:
    """An agent that only asked for its assignment was seen too."""
    Agent.objects.filter(pk=agent.pk).update(last_seen_at=received)
