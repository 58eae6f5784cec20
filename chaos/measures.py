"""The measures of one scenario against the ground truth (see README "Chaos suite" for the definitions).

- lost: answers the simulator gave in the scenario's time without a stored result of the same model
  within MATCH_S of it; those within PROBE_TIMEOUT_S before a SIGKILL (or the flush after it) are
  "in flight" and counted apart.
- false green: a reading that shows a chaos model `operational` when
  (a) the model is truly down and the simulator has already answered it FAILURES_TO_CONFIRM failed
      probes in this outage, more than DETECT_S ago (the product cannot know sooner: a first failure is
      not an outage, and a result takes a flush, a derivation and a snapshot to reach a reader); or
  (b) the simulator has answered no probe of the model for more than STALE_INTERVALS intervals plus
      STALE_GRACE_S (no fresh evidence exists anywhere, so nothing may say operational), from the moment
      the reading was asked until its answer arrived (a probe answered meanwhile is fresh evidence that
      answer may rightly show: a slow read asked just before it does not count).
- alerts: per outage window the product could confirm (FAILURES_TO_CONFIRM failed answers inside it),
  one outage alert is expected, and one recovery alert once SUCCESSES_TO_RECOVER ok answers followed
  it; none received by the end of the run is missed (unless a flapping notice about the model came in
  the window's time: the product's documented damping), each one more (distinct message id) a duplicate.
"""

from __future__ import annotations

import bisect
import math
from dataclasses import dataclass

from chaos.sampler import Record
from chaos.scenarios import Run
from chaos.seed import INTERVAL_S
from chaos.truth import Evidence, Window

MATCH_S = 5.0
PROBE_TIMEOUT_S = 8.0
FAILURES_TO_CONFIRM = 2
SUCCESSES_TO_RECOVER = 2
DETECT_S = 5.0
STALE_INTERVALS = 3
STALE_GRACE_S = 10.0
# An alert about an outage window is its own until this long after the window's end: the recovery
# needs SUCCESSES_TO_RECOVER probes, one interval apart, then a planner run and the delivery.
ALERT_LATE_S = SUCCESSES_TO_RECOVER * INTERVAL_S + 30.0
# ...or, when probing paused over the window's end (beat down, collectors stopped), until this long after
# the SUCCESSES_TO_RECOVER-th ok answer that followed it: nobody can see a recovery before that evidence.
ALERT_AFTER_EVIDENCE_S = 30.0


def alert_deadline(window: Window, evidence: Evidence) -> float:
    """Until when an alert about the model is about this window (see ALERT_LATE_S)."""
    recovered = evidence.nth_after("ok", window.model, window.end, SUCCESSES_TO_RECOVER)
    late = window.end + ALERT_LATE_S
    return late if recovered is None else max(late, recovered + ALERT_AFTER_EVIDENCE_S)


def false_alarms(
    windows: list[Window], received: list[dict], begin: float, end: float, evidence: Evidence
) -> list[dict]:
    """Outage alerts changed in [begin, end) about a model that was not truly down then (nor just before)."""
    return [
        a
        for a in received
        if a["kind"] == "outage"
        and begin <= a["at"] < end
        and not any(w.model == a["model"] and w.start <= a["at"] < alert_deadline(w, evidence) for w in windows)
    ]


@dataclass
class Result:
    name: str
    answered: int = 0
    lost: int = 0
    in_flight: int = 0
    readings: int = 0
    false_green: int = 0
    missed_alerts: int = 0
    duplicate_alerts: int = 0
    push_recovery_s: float | None = None
    availability_pct: float | None = None
    p99_ms: float | None = None
    requests: int = 0
    time_to_unknown_s: float | None = None
    availability_target: bool = False
    notes: str = ""


def lost_results(run: Run, answered: dict[str, list[float]], stored: dict[str, list[float]]) -> tuple[int, int, int]:
    """(answered, lost, in flight) for answers given in [run.begin, run.end)."""
    total = lost = in_flight = 0
    for model, times in answered.items():
        results = stored.get(model, [])
        used = [False] * len(results)
        for t in times:
            if not run.begin <= t < run.end:
                continue
            total += 1
            i = bisect.bisect_left(results, t - MATCH_S)
            while i < len(results) and results[i] <= t + MATCH_S and used[i]:
                i += 1
            if i < len(results) and results[i] <= t + MATCH_S:
                used[i] = True
            elif any(kill - PROBE_TIMEOUT_S <= t <= kill + 1.0 for kill in run.kills):
                in_flight += 1
            else:
                lost += 1
    return total, lost, in_flight


def stale_spans(evidence: Evidence, models: list[str], until: float) -> list[tuple[float, float, str, bool]]:
    """Per model, the spans where no answer was given for more than 3 intervals plus the grace; each ends
    at the next answer, which a reading answered after it may show (True: judged until the answer)."""
    limit = STALE_INTERVALS * INTERVAL_S + STALE_GRACE_S
    spans = []
    for model in models:
        times = evidence.times.get(model, [])
        for previous, following in zip(times, [*times[1:], until], strict=False):
            if following - previous > limit:
                spans.append((previous + limit, following, model, True))
    return spans


def false_greens(
    record: Record, windows: list[Window], evidence: Evidence, models: list[str], until: float
) -> dict[tuple[str, str], list[float]]:
    """False greens by reader (page, api_v1, summary, websocket) and model: the moments they were read."""
    confirmed = []
    for window in windows:
        at = evidence.nth_after("failed", window.model, window.start, FAILURES_TO_CONFIRM, before=window.end)
        if at is not None:
            # Truly down until the window's end: judged at the moment the reading was asked.
            confirmed.append((at + DETECT_S, window.end, window.model, False))
    suspects = confirmed + stale_spans(evidence, models, until)
    counts: dict[tuple[str, str], list[float]] = {}
    for reading in record.readings:
        for start, end, model, until_answer in suspects:
            if start <= reading.at and (reading.until if until_answer else reading.at) < end:
                if model not in reading.not_operational:
                    counts.setdefault((reading.source, model), []).append(reading.at)
    return counts


def alerts(windows: list[Window], evidence: Evidence, received: list[dict]) -> tuple[int, int, list[str]]:
    """(missed, duplicates, notes) over every window of the run."""
    by_model: dict[str, list[Window]] = {}
    for window in sorted(windows, key=lambda w: w.start):
        by_model.setdefault(window.model, []).append(window)
    got: dict[tuple[str, int, str], set[str]] = {}
    flapping: set[tuple[str, int]] = set()
    notes = []
    for alert in received:
        if alert["model"] not in by_model:
            continue  # another scenario's model
        mine = by_model[alert["model"]]
        index = next((i for i, w in enumerate(mine) if w.start <= alert["at"] < alert_deadline(w, evidence)), None)
        if index is None:
            continue  # about this model at another time (a fault that made it look down): see false_alarms
        if alert["kind"] == "model.flapping":
            # The product's damping (5 changes in 10 minutes): one notice stands for the alerts it holds
            # back, and a "settled" message follows after 10 quiet minutes. Faults in a row make it common.
            notes.append(f"flapping notice for {alert['model']}")
            flapping.add((alert["model"], index))
            continue
        if alert["kind"] not in ("outage", "recovery"):
            notes.append(f"{alert['kind']} alert for {alert['model']}")
            continue
        got.setdefault((alert["model"], index, alert["kind"]), set()).add(alert["id"])
    missed = duplicates = 0
    for model, mine in by_model.items():
        for index, window in enumerate(mine):
            following = mine[index + 1].start if index + 1 < len(mine) else math.inf
            confirmed = evidence.nth_after("failed", model, window.start, FAILURES_TO_CONFIRM, before=window.end)
            recovered = evidence.nth_after("ok", model, window.end, SUCCESSES_TO_RECOVER, before=following)
            for kind, expected in (("outage", confirmed is not None), ("recovery", bool(confirmed and recovered))):
                ids = got.get((model, index, kind), set())
                if expected and not ids and (model, index) not in flapping:
                    missed += 1
                    notes.append(f"missed {kind} alert for {model}")
                duplicates += max(0, len(ids) - 1)
    return missed, duplicates, notes


def availability(record: Record, run: Run, hey: list[dict]) -> tuple[float | None, float | None, int]:
    """(share of 2xx in percent, p99 in ms, requests) during the fault: the sampler's reads and hey's."""
    inside = [r for r in record.requests if run.fault_start <= r.at <= run.fault_end + 1]
    ok = sum(1 for r in inside if 200 <= r.status < 300)
    total = len(inside)
    latencies = sorted(r.seconds for r in inside)
    for figures in hey:
        ok += figures["ok"]
        total += figures["total"]
    if not total:
        return None, None, 0
    p99s = [latencies[min(len(latencies) - 1, int(0.99 * len(latencies)))]] if latencies else []
    p99s += [f["p99_s"] for f in hey if f.get("p99_s") is not None]
    return 100.0 * ok / total, 1000 * max(p99s) if p99s else None, total


def failed_reads(record: Record, run: Run, hey: list[dict], limit: int = 8) -> list[str]:
    """What the availability counted as failed, so a figure under target says which reads to look at:
    per reader, URL and answer (status and body, or the exception), how many and when from the fault's
    start; hey's per URL and kind over its run (hey gives no times)."""
    groups: dict[tuple[str, str, str], list[float]] = {}
    for r in record.requests:
        if run.fault_start <= r.at <= run.fault_end + 1 and not 200 <= r.status < 300:
            answer = f"{r.status} {r.error}".strip() if r.status else r.error or "no answer"
            path = r.url.split("//", 1)[-1].partition("/")[2]
            groups.setdefault((r.source, "/" + path, answer), []).append(r.at - run.fault_start)
    notes = [
        f"failed read: {source} {path} {answer!r} {len(at)} times, {min(at):+.1f} to {max(at):+.1f} s from the fault"
        for (source, path, answer), at in sorted(groups.items(), key=lambda item: min(item[1]))
    ]
    for figures in hey:
        for count, what in figures.get("failures", []):
            notes.append(f"failed read: hey {figures.get('path', '')} {what!r} {count} times")
    return notes[:limit] + ([f"{len(notes) - limit} more kinds of failed reads"] if len(notes) > limit else [])


def push_recovery(run: Run, pulses: list[tuple[str, float]], record: Record) -> float | None:
    """From the fault's end to the arrival (on both WebSocket and SSE) of the first pulse written after it."""
    for reason, posted in pulses:
        if posted < run.fault_end:
            continue
        arrived = record.pulses.get(reason, {})
        if "ws" in arrived and "sse" in arrived:
            return max(arrived.values()) - run.fault_end
    return None


def pulse_arrivals(run: Run, pulses: list[tuple[str, float]], record: Record, limit: int = 6) -> list[str]:
    """When each pulse written after the fault was posted and arrived on each transport, from the fault's end:
    a late push recovery says whether one transport lagged or every pulse was late."""
    notes = []
    for reason, posted in pulses:
        if posted < run.fault_end:
            continue
        arrived = record.pulses.get(reason, {})
        where = ", ".join(
            f"{t} {arrived[t] - run.fault_end:+.1f}" if t in arrived else f"{t} never" for t in ("ws", "sse")
        )
        notes.append(f"{reason} posted {posted - run.fault_end:+.1f} s, arrived {where}")
    return notes[:limit]


def live_events(record: Record, run: Run, limit: int = 8) -> list[str]:
    """What the suite's own live clients went through in the scenario (connects, ends, resyncs, failed
    snapshot fetches), by client and kind, from the fault's start: a late push or a live client's false
    green says whether its connection was cut, resumed or resynced, and when."""
    groups: dict[tuple[str, str], list[float]] = {}
    for at, client, what in record.live:
        groups.setdefault((client, what), []).append(at - run.fault_start)
    notes = [
        f"live: {client} {what} {len(at)} times, {min(at):+.1f} to {max(at):+.1f} s from the fault"
        for (client, what), at in sorted(groups.items(), key=lambda item: min(item[1]))
    ]
    return notes[:limit] + ([f"{len(notes) - limit} more kinds of live events"] if len(notes) > limit else [])


def sampler_lag(record: Record, run: Run) -> list[str]:
    """When the sampler's own loop ran late in the scenario: its readings were late by as much."""
    if not record.late:
        return []
    moments = [at - run.fault_start for at, _ in record.late]
    return [
        f"the sampler's own loop ran late {len(moments)} times, {min(moments):+.1f} to {max(moments):+.1f} s "
        f"from the fault, up to {max(late for _, late in record.late):.1f} s"
    ]


READERS = ("page", "api_v1", "summary", "websocket")


def time_to_unknown(run: Run, record: Record, models: int) -> dict[str, float] | None:
    """Per reader, from the collectors' stop to the first reading showing every chaos model unknown."""
    if run.collectors_stopped is None:
        return None
    found = {}
    for source in READERS:
        times = [
            r.at
            for r in record.readings
            if r.source == source and r.at >= run.collectors_stopped and r.unknown == models
        ]
        found[source] = min(times) - run.collectors_stopped if times else math.inf
    return found
