"""The NAB scorer in bench/: probation, window weighting, false-positive weighting, sweep and normalisation."""

import csv
import math
import os
import sys
from datetime import datetime, timedelta

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "bench"))

import nab_score  # noqa: E402

START = datetime(2026, 1, 1)
ROWS = 1000  # probation: 150 rows
WINDOWS = [(400, 449), (700, 749)]


def stamp(i: int) -> str:
    return (START + timedelta(minutes=5 * i)).strftime("%Y-%m-%d %H:%M:%S.%f")


def write_results(root, detections: set[int]) -> str:
    folder = root / "det" / "cat"
    folder.mkdir(parents=True)
    with open(folder / "det_series.csv", "w", newline="") as fh:
        out = csv.writer(fh)
        out.writerow(["timestamp", "value", "anomaly_score", "label"])
        for i in range(ROWS):
            out.writerow([stamp(i), 1.0, 1.0 if i in detections else 0.0, 0])
    return str(root / "det")


def labels() -> dict:
    return {"cat/series.csv": [[stamp(a), stamp(b)] for a, b in WINDOWS]}


def score(tmp_path, detections: set[int]) -> dict:
    return nab_score.score_corpus(write_results(tmp_path, detections), labels(), nab_score.DEFAULT_PROFILES)


def test_detecting_each_window_at_its_first_row_scores_100_and_never_detecting_scores_0(tmp_path):
    assert math.isclose(score(tmp_path / "a", {400, 700})["standard"]["score"], 100.0)
    assert math.isclose(score(tmp_path / "b", set())["standard"]["score"], 0.0)


def test_detections_during_probation_count_nothing(tmp_path):
    result = score(tmp_path, {10, 100, 149, 400, 700})["reward_low_FP_rate"]
    assert math.isclose(result["score"], 100.0)
    assert result["fp"] == 0


def test_a_late_detection_in_a_window_earns_less_than_an_early_one_and_only_the_first_counts(tmp_path):
    early = score(tmp_path / "a", {400})["standard"]["raw"]
    late = score(tmp_path / "b", {445})["standard"]["raw"]
    both = score(tmp_path / "c", {400, 445})["standard"]["raw"]
    assert early > late > -1.0
    assert math.isclose(both, early)
    # Last row of a 50-row window: position -1/50, sigmoid 2 / (1 + e^-0.1) - 1, relative to the left edge's.
    last = score(tmp_path / "d", {449})["standard"]["raw"]
    expected = (2 / (1 + math.exp(-0.1)) - 1) / (2 / (1 + math.exp(-5)) - 1) - 1.0
    assert math.isclose(last, expected, rel_tol=1e-9)


def test_a_false_positive_far_from_windows_costs_the_full_weight_and_one_just_after_a_window_less(tmp_path):
    # The sweep may drop a lone false positive; score it at a fixed threshold instead.
    results = nab_score.load_results(write_results(tmp_path, {300, 451}), labels())
    rows = nab_score.file_rows("cat/series.csv", *results["cat/series.csv"], labels()["cat/series.csv"])
    raw, tp, fp, fn = nab_score.file_breakdown(rows, 0.5, nab_score.DEFAULT_PROFILES["standard"])
    assert (tp, fp, fn) == (0, 2, 2)
    # Row 300 is before any window: -1 x 0.11. Row 451 is 2 rows past a 50-row window: sigmoid(2/49).
    expected = -2.0 - 0.11 + (2 / (1 + math.exp(5 * 2 / 49)) - 1) * 0.11
    assert math.isclose(raw, expected, rel_tol=1e-9)


def test_leave_one_category_out_scores_each_category_at_the_threshold_the_others_chose(tmp_path):
    # Category "cat" detects both windows at their first row; category "quiet" has no windows and one
    # detection, so a sweep over "quiet" alone never detects, and "cat" scores as the null detector there.
    write_results(tmp_path, {400, 700})
    noisy = tmp_path / "det" / "quiet"
    noisy.mkdir()
    with open(noisy / "det_series.csv", "w", newline="") as fh:
        out = csv.writer(fh)
        out.writerow(["timestamp", "value", "anomaly_score", "label"])
        for i in range(ROWS):
            out.writerow([stamp(i), 1.0, 1.0 if i == 500 else 0.0, 0])
    windows = {**labels(), "quiet/series.csv": []}
    result = nab_score.score_corpus(str(tmp_path / "det"), windows, nab_score.DEFAULT_PROFILES)
    held = nab_score.leave_one_category_out(result["_per_file"], windows, nab_score.DEFAULT_PROFILES["standard"])
    assert math.isclose(held["cat"], 0.0)
    # "quiet" is scored at the threshold that suits "cat" (detect at 1.0): its one false positive costs 0.11.
    assert math.isclose(held["quiet"], -0.11)
