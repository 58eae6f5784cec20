"""Run the series anomaly detector over NAB's data layout and write NAB's results layout."""

from __future__ import annotations

import argparse
import csv
import json
import os
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from datetime import UTC, datetime

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from anomalies.detector import SeriesDetector  # noqa: E402


def parse_time(text: str) -> datetime:
    return datetime.fromisoformat(text.strip()).replace(tzinfo=UTC)


def in_windows(stamps: list[datetime], windows: list[list[str]]) -> list[int]:
    limits = [(parse_time(a), parse_time(b)) for a, b in windows]
    return [1 if any(a <= t <= b for a, b in limits) else 0 for t in stamps]


def run_file(job: tuple[str, str, list[list[str]]]) -> tuple[str, int, float, int, int]:
    """Score one series; returns (path, rows, CPU seconds spent in the detector, max state bytes, rejected).

    CPU time, not wall time: the machines are shared, and a busy neighbour must not count as our cost.
    """
    src, dst, windows = job
    with open(src, newline="") as fh:
        rows = list(csv.DictReader(fh))
    raw_stamps = [r["timestamp"] for r in rows]
    stamps = [parse_time(t) for t in raw_stamps]
    values = [float(r["value"]) for r in rows]
    labels = in_windows(stamps, windows)
    detector = SeriesDetector()
    scores = []
    spent = 0.0
    state_bytes = 0
    for i, (t, v) in enumerate(zip(stamps, values, strict=True)):
        start = time.thread_time()
        s = detector.score(t, v)
        spent += time.thread_time() - start
        scores.append(0.0 if s is None else s)
        if i % 500 == 499:
            state_bytes = max(state_bytes, len(json.dumps(detector.to_state())))
    state_bytes = max(state_bytes, len(json.dumps(detector.to_state())))
    os.makedirs(os.path.dirname(dst), exist_ok=True)
    with open(dst, "w", newline="") as fh:
        out = csv.writer(fh)
        out.writerow(["timestamp", "value", "anomaly_score", "label"])
        for t, r, s, lab in zip(raw_stamps, rows, scores, labels, strict=True):
            out.writerow([t, r["value"], repr(s), lab])
    return src, len(rows), spent, state_bytes, detector.rejected


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data", required=True, help="NAB data folder: <category>/<file>.csv")
    parser.add_argument("--out", required=True, help="results root")
    parser.add_argument("--name", required=True, help="detector name (results folder and file prefix)")
    parser.add_argument("--windows", default=None, help="combined_windows.json (default: next to --data)")
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    args = parser.parse_args()

    windows_path = args.windows or os.path.join(os.path.dirname(os.path.normpath(args.data)), "combined_windows.json")
    windows: dict[str, list[list[str]]] = {}
    if os.path.exists(windows_path):
        with open(windows_path) as fh:
            windows = json.load(fh)

    jobs = []
    for category in sorted(os.listdir(args.data)):
        folder = os.path.join(args.data, category)
        if not os.path.isdir(folder):
            continue
        for fname in sorted(os.listdir(folder)):
            if fname.endswith(".csv"):
                dst = os.path.join(args.out, args.name, category, f"{args.name}_{fname}")
                jobs.append((os.path.join(folder, fname), dst, windows.get(f"{category}/{fname}", [])))

    with ProcessPoolExecutor(max_workers=max(1, args.jobs)) as pool:
        done = list(pool.map(run_file, jobs))
    rows = sum(d[1] for d in done)
    spent = sum(d[2] for d in done)
    print(f"series: {len(done)}, rows: {rows}, rejected: {sum(d[4] for d in done)}")
    cost = 1e6 * spent / max(rows, 1)
    print(f"detector cost: {cost:.1f} µs CPU/point; largest state: {max(d[3] for d in done)} bytes")


if __name__ == "__main__":
    main()
