"""Score a detector's results in NAB's layout with NAB's rules: windows, sigmoid weights, threshold sweep, profiles."""

from __future__ import annotations

import argparse
import csv
import json
import math
import os
from dataclasses import dataclass
from datetime import datetime

DEFAULT_PROFILES = {
    "standard": {"tpWeight": 1.0, "fpWeight": 0.11, "fnWeight": 1.0},
    "reward_low_FP_rate": {"tpWeight": 1.0, "fpWeight": 0.22, "fnWeight": 1.0},
    "reward_low_FN_rate": {"tpWeight": 1.0, "fpWeight": 0.11, "fnWeight": 2.0},
}
PROBATION_PERCENT = 0.15


def scaled_sigmoid(position: float) -> float:
    """+0.987 at a window's left edge (-1), 0 at its right edge (0), towards -1 past it (3 and more is -1)."""
    if position >= 3.0:
        return -1.0
    return 2.0 / (1.0 + math.exp(5.0 * position)) - 1.0


def probation_length(rows: int) -> float:
    """NAB's probation: 15 % of the rows, at most 15 % of 5000 (750)."""
    return min(math.floor(PROBATION_PERCENT * rows), PROBATION_PERCENT * 5000)


def parse_time(text: str) -> datetime:
    return datetime.fromisoformat(text.strip())


@dataclass(slots=True)
class Row:
    """One scorable row: its anomaly score, its window (None outside), and its unweighted sigmoid."""

    score: float
    window: str | None
    sigmoid: float


def file_rows(key: str, timestamps: list[datetime], scores: list[float], windows: list[list[str]]) -> list[Row]:
    """Every row after probation with its window and its position-weighted sigmoid."""
    index = {t: i for i, t in enumerate(timestamps)}
    limits = []
    for start, end in windows:
        s, e = parse_time(start), parse_time(end)
        if s in index and e in index:
            limits.append((index[s], index[e]))
        else:  # tolerate windows whose edges fall between samples
            inside = [i for i, t in enumerate(timestamps) if s <= t <= e]
            if inside:
                limits.append((inside[0], inside[-1]))
    limits.sort()
    probation = probation_length(len(timestamps))
    rows = []
    cur = None
    prev_right = prev_width = None
    pending = list(limits)
    for i, score in enumerate(scores):
        if pending and i == pending[0][0]:
            cur = pending.pop(0)
        if cur is not None:
            width = float(cur[1] - cur[0] + 1)
            sig = scaled_sigmoid(-(cur[1] - i + 1) / width)
            name = f"{key}|{cur[0]}"
        else:
            if prev_right is None:
                sig = scaled_sigmoid(3.0)
            else:
                # a one-row previous window would divide by zero: treat it as far away
                sig = scaled_sigmoid(abs(prev_right - i) / (prev_width - 1)) if prev_width > 1 else -1.0
            name = None
        if i >= probation:
            rows.append(Row(score, name, sig))
        if cur is not None and i == cur[1]:
            prev_right, prev_width = i, float(cur[1] - cur[0] + 1)
            cur = None
    return rows


def sweep(rows: list[Row], tp_w: float, fp_w: float, fn_w: float) -> tuple[float, float, dict[str, int]]:
    """Best (threshold, raw score, counts) over every distinct score used as threshold (detect when score >= it)."""
    max_tp = scaled_sigmoid(-1.0)
    windows = {r.window for r in rows if r.window is not None}
    parts = dict.fromkeys(windows, -fn_w)
    total = -fn_w * len(windows)
    fp_sum = 0.0
    fp_count = 0
    best = (1.1, total, {"tp": 0, "fp": 0, "fn": len(windows)})
    detected: set[str] = set()
    ordered = sorted(rows, key=lambda r: r.score, reverse=True)
    n = len(ordered)
    i = 0
    while i < n:
        threshold = ordered[i].score
        while i < n and ordered[i].score == threshold:
            r = ordered[i]
            if r.window is None:
                fp_sum += r.sigmoid * fp_w
                fp_count += 1
            else:
                weighted = r.sigmoid * tp_w / max_tp
                if weighted > parts[r.window]:
                    total += weighted - parts[r.window]
                    parts[r.window] = weighted
                detected.add(r.window)
            i += 1
        score = total + fp_sum
        if score > best[1]:
            best = (threshold, score, {"tp": len(detected), "fp": fp_count, "fn": len(windows) - len(detected)})
    return best


def load_results(results_dir: str, labels: dict[str, list[list[str]]]) -> dict[str, tuple[list, list]]:
    """Map each labelled file key (`<category>/<name>.csv`) to its (timestamps, scores) from the results layout."""
    name = os.path.basename(os.path.normpath(results_dir))
    found = {}
    for category in sorted(os.listdir(results_dir)):
        folder = os.path.join(results_dir, category)
        if not os.path.isdir(folder):
            continue
        for fname in sorted(os.listdir(folder)):
            if not fname.endswith(".csv"):
                continue
            base = fname[len(name) + 1 :] if fname.startswith(name + "_") else fname
            key = f"{category}/{base}"
            if key not in labels:
                continue
            stamps, scores = [], []
            with open(os.path.join(folder, fname), newline="") as fh:
                for row in csv.DictReader(fh):
                    stamps.append(parse_time(row["timestamp"]))
                    scores.append(float(row["anomaly_score"]))
            found[key] = (stamps, scores)
    return found


def load_profiles(path: str | None) -> dict[str, dict[str, float]]:
    if not path or not os.path.exists(path):
        return DEFAULT_PROFILES
    with open(path) as fh:
        raw = json.load(fh)
    return {name: {k: float(v) for k, v in p["CostMatrix"].items()} for name, p in raw.items()}


def score_corpus(results_dir: str, labels: dict[str, list[list[str]]], profiles: dict) -> dict[str, dict]:
    """For each profile: best corpus-wide threshold, raw score, null and perfect scores, and the normalised score."""
    results = load_results(results_dir, labels)
    missing = sorted(set(labels) - set(results))
    rows: list[Row] = []
    per_file: dict[str, list[Row]] = {}
    for key in sorted(results):
        stamps, scores = results[key]
        per_file[key] = file_rows(key, stamps, scores, labels[key])
        rows.extend(per_file[key])
    window_count = sum(len(v) for k, v in labels.items() if k in results)
    scored_windows = len({r.window for r in rows if r.window is not None})
    out = {}
    for pname, p in profiles.items():
        threshold, raw, counts = sweep(rows, p["tpWeight"], p["fpWeight"], p["fnWeight"])
        null = -p["fnWeight"] * scored_windows
        perfect = p["tpWeight"] * window_count
        out[pname] = {
            "threshold": threshold,
            "raw": raw,
            "null": null,
            "perfect": perfect,
            "score": 100.0 * (raw - null) / (perfect - null) if perfect != null else 0.0,
            **counts,
        }
    out["_files"] = {"scored": len(results), "missing": missing}
    out["_per_file"] = per_file
    return out


def file_breakdown(rows: list[Row], threshold: float, p: dict[str, float]) -> tuple[float, int, int, int]:
    """One file's raw score, TPs, FPs and FNs at a fixed threshold."""
    max_tp = scaled_sigmoid(-1.0)
    windows = {r.window for r in rows if r.window is not None}
    best = dict.fromkeys(windows, -p["fnWeight"])
    fp = 0.0
    fps = 0
    for r in rows:
        if r.score < threshold:
            continue
        if r.window is None:
            fp += r.sigmoid * p["fpWeight"]
            fps += 1
        else:
            best[r.window] = max(best[r.window], r.sigmoid * p["tpWeight"] / max_tp)
    tps = sum(1 for w in windows if best[w] > -p["fnWeight"])
    return sum(best.values()) + fp, tps, fps, len(windows) - tps


def leave_one_category_out(per_file: dict[str, list[Row]], labels: dict, p: dict[str, float]) -> dict[str, float]:
    """Each category scored at the threshold swept on the other categories only, normalised like the corpus.

    The threshold is the one knob NAB tunes on the data itself; this shows what a category unseen by that
    sweep gets (a category without windows reports its raw score, its null and perfect being equal).
    """
    out = {}
    for category in sorted({k.split("/")[0] for k in per_file}):
        train = [r for k, rows in per_file.items() if k.split("/")[0] != category for r in rows]
        test = {k: rows for k, rows in per_file.items() if k.split("/")[0] == category}
        threshold, _, _ = sweep(train, p["tpWeight"], p["fpWeight"], p["fnWeight"])
        raw = sum(file_breakdown(rows, threshold, p)[0] for rows in test.values())
        windows = sum(len(labels[k]) for k in test)
        null, perfect = -p["fnWeight"] * windows, p["tpWeight"] * windows
        out[category] = 100.0 * (raw - null) / (perfect - null) if windows else raw
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--results", required=True, help="OUT/NAME: the detector's results folder")
    parser.add_argument("--labels", required=True, help="combined_windows.json")
    parser.add_argument("--profiles", default=None, help="profiles.json (defaults to the one next to --labels)")
    parser.add_argument("--per-file", action="store_true", help="print each file's standard-profile breakdown")
    parser.add_argument("--loco", action="store_true", help="print leave-one-category-out scores per profile")
    args = parser.parse_args()
    with open(args.labels) as fh:
        labels = json.load(fh)
    profiles = load_profiles(args.profiles or os.path.join(os.path.dirname(args.labels), "profiles.json"))
    out = score_corpus(args.results, labels, profiles)
    files = out["_files"]
    print(f"files scored: {files['scored']}, labelled files without results: {len(files['missing'])}")
    if args.per_file and "standard" in out:
        p, th = profiles["standard"], out["standard"]["threshold"]
        for key, rows in out["_per_file"].items():
            raw, tp, fp, fn = file_breakdown(rows, th, p)
            print(f"  {key:70s} raw {raw:+7.3f}  tp {tp} fp {fp:3d} fn {fn}")
    for pname in profiles:
        r = out[pname]
        print(
            f"{pname:20s} score {r['score']:6.2f}  (raw {r['raw']:.3f}, null {r['null']:.1f},"
            f" perfect {r['perfect']:.1f},"
            f" threshold {r['threshold']:.6f}, tp {r['tp']} fp {r['fp']} fn {r['fn']})"
        )
    if args.loco:
        print("leave-one-category-out (threshold swept on the other categories; raw score where no windows):")
        for pname, p in profiles.items():
            held = leave_one_category_out(out["_per_file"], labels, p)
            print(f"  {pname:20s} " + "  ".join(f"{c} {v:.2f}" for c, v in held.items()))


if __name__ == "__main__":
    main()
