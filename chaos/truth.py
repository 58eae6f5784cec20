"""The ground truth: which model is down when, told to the simulator and kept for the measures.

A scenario picks a few "watched" models (by its seed) and gives each an outage window around its fault:
one goes down while the fault lasts, one comes back while it lasts. The windows are absolute times, so
the simulator (`PATCH /_control/models/<name>` with `outages`) and the measures read the same timeline.
"""

from __future__ import annotations

import bisect
import json
import random
import urllib.request
from dataclasses import dataclass, field
from datetime import UTC, datetime

from chaos.seed import model_name

# The simulated models' speed: quick and a little uneven, far under the registered thresholds.
SCENARIO_DEFAULTS = {"ttft_ms": {"p50": 30, "p95": 120, "max": 400}, "tokens_per_s": 0}


def simulator_scenario(models: int, seed: int) -> dict:
    return {"seed": seed, "defaults": SCENARIO_DEFAULTS, "models": {model_name(i): {} for i in range(models)}}


def _iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).isoformat()


@dataclass(frozen=True)
class Window:
    model: str
    start: float  # epoch seconds, down from here
    end: float  # up again from here


@dataclass
class Timeline:
    """Every outage window of the run, and the simulator's record of what it answered (filled later)."""

    simulator: str  # base URL, no /v1
    windows: list[Window] = field(default_factory=list)

    def add(self, model: str, start: float, end: float) -> Window:
        window = Window(model, start, end)
        self.windows.append(window)
        mine = [w for w in self.windows if w.model == model]
        body = json.dumps({"outages": [{"start": _iso(w.start), "end": _iso(w.end), "status": 503} for w in mine]})
        request = urllib.request.Request(
            f"{self.simulator}/_control/models/{model}", data=body.encode(), method="PATCH"
        )
        request.add_header("Content-Type", "application/json")
        with urllib.request.urlopen(request, timeout=10) as response:
            response.read()
        return window

    def down(self, model: str, at: float) -> Window | None:
        for window in self.windows:
            if window.model == model and window.start <= at < window.end:
                return window
        return None

    def requests(self, since: float) -> dict[str, list[tuple[float, str]]]:
        with urllib.request.urlopen(f"{self.simulator}/_control/requests?since={since}", timeout=60) as response:
            return {model: [tuple(e) for e in entries] for model, entries in json.load(response)["models"].items()}


def pick_models(rng: random.Random, models: int, count: int, avoid: set[str]) -> list[str]:
    names = [model_name(i) for i in range(models) if model_name(i) not in avoid]
    return rng.sample(names, count)


class Evidence:
    """What the simulator answered, per model, as sorted times: the product's best possible knowledge."""

    def __init__(self, requests: dict[str, list[tuple[float, str]]]) -> None:
        self.times = {model: [t for t, _ in entries] for model, entries in requests.items()}
        self.failed = {model: [t for t, outcome in entries if outcome != "ok"] for model, entries in requests.items()}
        self.ok = {model: [t for t, outcome in entries if outcome == "ok"] for model, entries in requests.items()}

    def last_before(self, model: str, at: float) -> float | None:
        times = self.times.get(model, [])
        i = bisect.bisect_right(times, at)
        return times[i - 1] if i else None

    def nth_after(self, kind: str, model: str, after: float, n: int, before: float = float("inf")) -> float | None:
        """The time of the n-th answer of `kind` ('failed' or 'ok') at or after `after` (and before `before`)."""
        times = (self.failed if kind == "failed" else self.ok).get(model, [])
        i = bisect.bisect_left(times, after) + n - 1
        return times[i] if i < len(times) and times[i] < before else None
