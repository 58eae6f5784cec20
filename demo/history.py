"""A compressed history for the demo models: what their probes would have stored over the last hours.

Drawn from the simulator's demo scenario (each model's latency distribution, shape and faults), so the
anomaly detectors have learned each model's normal by the time live probes start, and the demo shows
an anomaly within minutes of `make run` instead of after hours of probing.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime

from collectors.models import CheckResult
from demo.simulator import DEMO_SCENARIO_PATH, load_scenario
from demo.simulator.behaviour import Behaviour
from monitoring.models import AIModel, ModelKind
from monitoring.outcomes import Outcome

# The simulator's verdicts as a probe records them.
OUTCOMES = {
    "ok": Outcome.OK,
    "rate_limited": Outcome.RATE_LIMITED,
    "hang": Outcome.TIMEOUT,
    "broken_stream": Outcome.BROKEN_STREAM,
}


def write_history(hours: float = 6.0, step_seconds: int = 60, seed: int = 2024) -> int:
    """Results every `step_seconds` over the last `hours` for each demo model that has none yet; how many written.

    Times stop one step before now, so the live probes' evidence alone decides every status.
    """
    now = time.time()
    scenario = load_scenario(DEMO_SCENARIO_PATH, now=now)
    rows = []
    for model in AIModel.objects.filter(upstream_model__in=list(scenario.models)).select_related("provider"):
        if CheckResult.objects.filter(model=model).exists():
            continue
        spec = scenario.models[model.upstream_model]
        behaviour = Behaviour(spec, seed)
        points = int(hours * 3600 // step_seconds)
        for i in range(points, 0, -1):
            at = now - i * step_seconds
            verdict = behaviour.judge(at)
            outcome = OUTCOMES.get(verdict.outcome, Outcome.PROVIDER_FAULT)
            result = CheckResult(
                model=model,
                region="default",
                time=datetime.fromtimestamp(at, UTC),
                outcome=outcome,
                http_status=verdict.status if verdict.action == "fail" else 200,
            )
            if outcome == Outcome.OK:
                factor = spec.shape.latency_factor(at) if spec.shape else 1.0
                if model.kind == ModelKind.CHAT:
                    ttft = spec.ttft_ms.sample_s(behaviour.rng) * 1000 * factor
                    tokens = (model.probe_config or {}).get("max_tokens", spec.output_tokens)
                    generation = (tokens - 1) * 1000 / spec.tokens_per_s if spec.tokens_per_s else 0.0
                    result.ttft_ms, result.latency_ms = ttft, ttft + generation
                else:
                    spread = spec.latency_ms or spec.ttft_ms
                    result.latency_ms = spread.sample_s(behaviour.rng) * 1000 * factor
            rows.append(result)
    CheckResult.objects.bulk_create(rows, batch_size=2000)
    return len(rows)
