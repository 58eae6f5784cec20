"""The one status derivation: from a model's recent results, per region, to a status and the reason for it.

A pure function of its inputs, so every path (collectors, pushed results, `collect_once`) agrees.

- Failures need confirmation: a model goes down after `failures_to_confirm` consecutive provider
  faults (5xx, 529, timeouts, broken streams); recovery needs `successes_to_recover` good results.
  Each region's verdict is replayed from its recent results, so single blips and flaps are damped
  without keeping any state besides the results themselves.
- A probe or account fault (401/403, quota, invalid request) says nothing about the provider: the
  region is `unknown`, never an outage. A 429 on our own key is at most degraded performance.
- A result over the model's latency or time-to-first-token threshold is degraded performance.
- Regions combine: a minority of regions down is a partial outage, a majority a major outage.
- No result within the staleness window means no evidence: `unknown`. Maintenance wins over all.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from monitoring.outcomes import Outcome
from monitoring.status import Status

GOOD, SLOW, LIMITED, FAILED, PROBE_FAULT = "good", "slow", "limited", "failed", "probe_fault"
_FAILURE_OUTCOMES = {Outcome.PROVIDER_FAULT, Outcome.TIMEOUT, Outcome.BROKEN_STREAM}

# Region verdicts
UP, DEGRADED, DOWN, NO_EVIDENCE = "up", "degraded", "down", "no_evidence"


@dataclass(frozen=True, slots=True)
class Thresholds:
    latency_ms: float
    ttft_ms: float
    failures_to_confirm: int = 2
    successes_to_recover: int = 2


@dataclass(frozen=True, slots=True)
class Evidence:
    """The parts of a check result that derivation reads."""

    outcome: str
    latency_ms: float | None = None
    ttft_ms: float | None = None
    error: str = ""
    http_status: int | None = None


def grade(result: Evidence, thresholds: Thresholds) -> str:
    if result.outcome == Outcome.OK:
        if result.latency_ms is not None and result.latency_ms > thresholds.latency_ms:
            return SLOW
        if result.ttft_ms is not None and result.ttft_ms > thresholds.ttft_ms:
            return SLOW
        return GOOD
    if result.outcome == Outcome.RATE_LIMITED:
        return LIMITED
    if result.outcome in _FAILURE_OUTCOMES:
        return FAILED
    return PROBE_FAULT


def history_length(thresholds: Thresholds) -> int:
    """How many recent results per region derivation reads: enough to replay a confirmation and a recovery."""
    return 2 * max(thresholds.failures_to_confirm, thresholds.successes_to_recover) + 2


def region_verdict(results_newest_first: Sequence[Evidence], thresholds: Thresholds) -> str:
    """Replay a region's recent results, oldest first, through the confirmation rules."""
    state = NO_EVIDENCE
    fail_streak = bad_streak = good_streak = 0
    for result in reversed(results_newest_first):
        g = grade(result, thresholds)
        if g == PROBE_FAULT:
            # Our own fault hides the provider from view: nothing is known until a real answer.
            state, fail_streak, bad_streak, good_streak = NO_EVIDENCE, 0, 0, 0
            continue
        if g == GOOD:
            good_streak += 1
            fail_streak = bad_streak = 0
            if state in (NO_EVIDENCE, UP) or good_streak >= thresholds.successes_to_recover:
                state = UP
            continue
        good_streak = 0
        bad_streak += 1
        fail_streak = fail_streak + 1 if g == FAILED else 0
        if fail_streak >= thresholds.failures_to_confirm:
            state = DOWN
        elif g != FAILED and bad_streak >= thresholds.failures_to_confirm:
            # It answers, but slowly or rate-limited (a recovering outage passes through here too).
            state = DEGRADED
        # Otherwise the failure is not confirmed yet: the previous verdict stands (pending).
    return state


def _describe(result: Evidence, thresholds: Thresholds) -> str:
    g = grade(result, thresholds)
    if g == SLOW:
        if result.latency_ms is not None and result.latency_ms > thresholds.latency_ms:
            return f"latency {result.latency_ms:.0f} ms over the {thresholds.latency_ms:.0f} ms threshold"
        return f"time to first token {result.ttft_ms:.0f} ms over the {thresholds.ttft_ms:.0f} ms threshold"
    if g == GOOD:
        return f"answered in {result.latency_ms:.0f} ms" if result.latency_ms is not None else "answered"
    if result.error:
        return result.error
    return result.outcome.replace("_", " ") + (f" (HTTP {result.http_status})" if result.http_status else "")


def derive(
    regions: Mapping[str, Sequence[Evidence]],
    thresholds: Thresholds,
    *,
    in_maintenance: bool = False,
    unusual: str | None = None,
) -> tuple[str, str]:
    """(status, reason) from each region's fresh results, newest first. Regions with no fresh result may be absent.

    `unusual` (an open anomaly's description, given only for models whose operator opted in) turns what
    would be `operational` into `degraded_performance`; it never makes a model look better, nor gives a
    status to a model without fresh evidence.
    """
    if in_maintenance:
        return Status.UNDER_MAINTENANCE, "scheduled maintenance"
    verdicts = {region: region_verdict(results, thresholds) for region, results in regions.items()}
    known = {region: v for region, v in verdicts.items() if v != NO_EVIDENCE}
    latest = {region: results[0] for region, results in regions.items() if results}
    if not known:
        faults = [_describe(r, thresholds) for r in latest.values() if grade(r, thresholds) == PROBE_FAULT]
        if faults:
            return Status.UNKNOWN, "probe or account fault: " + faults[0]
        if latest:
            return Status.UNKNOWN, "awaiting confirmation: " + _describe(next(iter(latest.values())), thresholds)
        return Status.UNKNOWN, "no fresh results"
    down = sorted(region for region, v in known.items() if v == DOWN)
    degraded = sorted(region for region, v in known.items() if v == DEGRADED)
    example = _describe(latest[(down or degraded or sorted(known))[0]], thresholds)
    if down:
        where = "" if len(known) == 1 else f" in {', '.join(down)} of {len(known)} regions"
        status = Status.MAJOR_OUTAGE if 2 * len(down) > len(known) else Status.PARTIAL_OUTAGE
        return status, f"failing{where}: {example}"
    if degraded:
        where = "" if len(known) == 1 else f" in {', '.join(degraded)} of {len(known)} regions"
        return Status.DEGRADED_PERFORMANCE, f"degraded{where}: {example}"
    if unusual:
        return Status.DEGRADED_PERFORMANCE, f"unusual: {unusual}"
    return Status.OPERATIONAL, example


_VERDICT_STATUS = {
    UP: Status.OPERATIONAL,
    DEGRADED: Status.DEGRADED_PERFORMANCE,
    DOWN: Status.MAJOR_OUTAGE,
    NO_EVIDENCE: Status.UNKNOWN,
}


def region_statuses(regions: Mapping[str, Sequence[Evidence]], thresholds: Thresholds) -> dict[str, tuple[str, str]]:
    """Each region's own (status, reason) from its fresh results, newest first: what that vantage point sees.

    The model's status combines them (derive); this is the per-region breakdown shown beside it.
    """
    statuses = {}
    for region, results in regions.items():
        if not results:
            continue
        verdict = region_verdict(results, thresholds)
        statuses[region] = (_VERDICT_STATUS[verdict], _describe(results[0], thresholds))
    return statuses
