"""Replay simulated healthy weeks of probe metrics through the anomaly detector: false alarms and shift delay.

Each simulated model has four series (total latency, time to first token, output tokens/s, error
ratio) with a daily load pattern, noise, probes every 10-60 s and a few gaps of up to two hours. The
weeks are replayed as fast as the CPU goes (timestamps are simulated). Two weeks per series: the first
warms the detector up from nothing, the second is counted as a model-week of a detector that already
knows the series. An alarm is an episode of scores at or above `alarm_level`; episodes closer than
`--quiet` minutes are one (the product's anomaly record stays open through such a pause).

Then, from the warm state in the middle of the second week, each latency-like series gets a sudden
level shift (`--shift`, 1.0 = +100 %, tokens/s drops by the same factor) and the bench reports how many
probes and seconds pass until the first alarm.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import statistics
import sys
import time
from concurrent.futures import ProcessPoolExecutor

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from anomalies.detector import SeriesDetector  # noqa: E402

DAY = 86400.0
WEEK = 7 * DAY
METRICS = ("latency_ms", "ttft_ms", "tokens_per_s", "error_ratio")


def options(metric: str, error_min_range: float) -> dict:
    """How each metric's detector is built: an error ratio is bounded, and its shapes are measured against at
    least `error_min_range` of its scale (one failed probe among 20 is 0.05, not an anomaly on its own)."""
    if metric == "error_ratio":
        return {"non_negative": True, "max_value": 1.0, "min_range": error_min_range}
    return {"non_negative": True}


def probe_times(rng: random.Random, start: float, end: float) -> list[float]:
    """Probe instants every 10-60 s with three or four gaps of 10 minutes to 2 hours."""
    gaps = sorted(rng.uniform(start, end) for _ in range(rng.randint(3, 4)))
    out, t = [], start
    while t < end:
        out.append(t)
        t += rng.uniform(10.0, 60.0)
        if gaps and t >= gaps[0]:
            t += rng.uniform(600.0, 7200.0)
            gaps.pop(0)
    return out


class HealthyModel:
    """One simulated model's normal behaviour: level, daily load shape, noise, rare failed probes."""

    def __init__(self, seed: int) -> None:
        rng = random.Random(seed)
        self.rng = random.Random(seed * 7919 + 1)
        self.latency = rng.uniform(200.0, 2500.0)
        self.ttft_share = rng.uniform(0.15, 0.5)
        self.speed = rng.uniform(20.0, 150.0)
        self.daily = rng.uniform(0.05, 0.4)  # peak-to-mean swing of the daily load
        self.peak_hour = rng.uniform(0.0, 24.0)
        self.noise = rng.uniform(0.03, 0.15)  # lognormal sigma
        self.fail_p = rng.choice((0.0, 0.002, 0.01))
        self.recent: list[int] = []

    def load(self, t: float) -> float:
        return 1.0 + self.daily * math.cos(2.0 * math.pi * (t / DAY - self.peak_hour / 24.0))

    def sample(self, t: float, shift: float = 0.0) -> dict[str, float]:
        g = self.rng.gauss
        load = self.load(t) * (1.0 + shift)
        latency = self.latency * load * math.exp(g(0.0, self.noise))
        ttft = self.latency * self.ttft_share * load * math.exp(g(0.0, self.noise * 1.3))
        speed = self.speed / load * math.exp(g(0.0, self.noise))
        # The error ratio the product derives: failed probes among the last 20.
        self.recent = (self.recent + [1 if self.rng.random() < self.fail_p else 0])[-20:]
        return {
            "latency_ms": latency,
            "ttft_ms": ttft,
            "tokens_per_s": speed,
            "error_ratio": sum(self.recent) / len(self.recent),
        }


def episodes(stamps: list[float], scores: list[float | None], alarm: float, quiet: float) -> list[float]:
    """Start times of alarm episodes: alarms closer than `quiet` seconds to the previous one join it."""
    out: list[float] = []
    last = -math.inf
    for t, s in zip(stamps, scores, strict=True):
        if s is not None and s >= alarm:
            if t - last > quiet:
                out.append(t)
            last = t
    return out


def run_model(job: tuple[int, float, float, float, float]) -> dict:
    """Two weeks of one model's four series, then a level shift from the warm state of each shifted series."""
    seed, shift, quiet, horizon, error_min_range = job
    model = HealthyModel(seed)
    rng = random.Random(seed)
    stamps = probe_times(rng, 0.0, 2 * WEEK)
    samples = [model.sample(t) for t in stamps]
    detectors = {m: SeriesDetector(**options(m, error_min_range)) for m in METRICS}
    scores: dict[str, list[float | None]] = {m: [] for m in METRICS}
    shift_at = WEEK + rng.uniform(0.3, 0.7) * WEEK
    snapshot: dict[str, dict] = {}
    cpu = 0.0
    state_max = 0
    for t, sample in zip(stamps, samples, strict=True):
        if t >= shift_at and not snapshot:
            snapshot = {m: d.to_state() for m, d in detectors.items()}
            state_max = max(len(json.dumps(s)) for s in snapshot.values())
        began = time.process_time()
        for m in METRICS:
            scores[m].append(detectors[m].score(t, sample[m]))
        cpu += time.process_time() - began
    state_max = max(state_max, *(len(json.dumps(d.to_state())) for d in detectors.values()))
    alarm = SeriesDetector.alarm_level
    result = {"points": len(stamps) * len(METRICS), "cpu": cpu, "state_max": state_max, "weeks": {}}
    for m in METRICS:
        first = [(t, s) for t, s in zip(stamps, scores[m], strict=True) if t < WEEK]
        second = [(t, s) for t, s in zip(stamps, scores[m], strict=True) if t >= WEEK]
        result["weeks"][m] = [
            len(episodes([t for t, _ in part], [s for _, s in part], alarm, quiet)) for part in (first, second)
        ]
    # The shift: the same model's next probes with the level moved, read by a copy of the warm detector.
    delays = {}
    t0 = shift_at
    later = random.Random(seed + 1)
    after = probe_times(later, t0 + later.uniform(10.0, 60.0), t0 + horizon)
    for m in ("latency_ms", "ttft_ms", "tokens_per_s"):
        detector = SeriesDetector.from_state(snapshot[m])
        found = None
        for i, t in enumerate(after):
            s = detector.score(t, model.sample(t, shift)[m])
            if s is not None and s >= alarm:
                found = (i + 1, t - t0)
                break
        delays[m] = found
    result["delays"] = delays
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--models", type=int, default=12, help="simulated healthy models (four series each)")
    parser.add_argument("--shift", type=float, default=1.0, help="injected level shift, as a share of the level")
    parser.add_argument("--quiet", type=float, default=30.0, help="minutes without alarm that end an episode")
    parser.add_argument("--horizon", type=float, default=60.0, help="minutes after the shift to wait for an alarm")
    parser.add_argument("--error-min-range", type=float, default=0.5, help="min_range of the error ratio")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--jobs", type=int, default=min(2, os.cpu_count() or 1))
    parser.add_argument("--json", default=None, help="write the figures to this file")
    args = parser.parse_args()

    jobs = [
        (args.seed * 1000 + i, args.shift, args.quiet * 60.0, args.horizon * 60.0, args.error_min_range)
        for i in range(args.models)
    ]
    with ProcessPoolExecutor(max_workers=max(1, args.jobs)) as pool:
        done = list(pool.map(run_model, jobs))

    points = sum(d["points"] for d in done)
    cpu = sum(d["cpu"] for d in done)
    series_weeks = len(done) * len(METRICS)
    figures: dict = {"models": len(done), "series": series_weeks, "points": points}
    print(f"{len(done)} healthy models x {len(METRICS)} series, two simulated weeks each, {points:,} points")
    for label, k in (("first week (cold start)", 0), ("second week (warm)", 1)):
        per_metric = {m: sum(d["weeks"][m][k] for d in done) for m in METRICS}
        total = sum(per_metric.values())
        worst = max(d["weeks"][m][k] for d in done for m in METRICS)
        figures[f"week{k + 1}"] = {"alarms": total, "per_series_week": total / series_weeks, "worst": worst}
        detail = ", ".join(f"{m} {n}" for m, n in per_metric.items())
        print(
            f"  {label}: {total} alarm episodes over {series_weeks} series-weeks = {total / series_weeks:.2f} per"
            f" series-week, {total / len(done):.2f} per model-week (worst series {worst}; {detail})"
        )
    print(f"  level shift of {args.shift:+.0%} from the warm state, first alarm after:")
    for m in ("latency_ms", "ttft_ms", "tokens_per_s"):
        got = [d["delays"][m] for d in done if d["delays"][m] is not None]
        missed = len(done) - len(got)
        if got:
            probes = [p for p, _ in got]
            secs = [s for _, s in got]
            print(
                f"    {m:13s} median {statistics.median(probes):.0f} probes ({statistics.median(secs):.0f} s),"
                f" worst {max(probes)} probes ({max(secs):.0f} s), missed within {args.horizon:.0f} min: {missed}"
            )
        figures[f"delay_{m}"] = {"probes": [p for p, _ in got], "seconds": [s for _, s in got], "missed": missed}
    cost = 1e6 * cpu / points
    state = max(d["state_max"] for d in done)
    print(f"  detector cost {cost:.1f} µs CPU/point, largest state {state} bytes")
    figures["cpu_us_per_point"] = cost
    figures["state_max_bytes"] = state
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(figures, fh, indent=1)


if __name__ == "__main__":
    main()
