"""Linear trend of a metric and when it would cross a threshold, as Prometheus's predict_linear does."""

from __future__ import annotations

from collections.abc import Sequence

# Fewer points than this, or a window shorter than this many minutes, make no forecast.
MIN_POINTS = 10
MIN_SPAN_MINUTES = 10.0


def linear_fit(points: Sequence[tuple[float, float]]) -> tuple[float, float] | None:
    """Least-squares (slope, intercept) of (x, y) points; None when x does not vary."""
    n = len(points)
    if n < 2:
        return None
    mean_x = sum(x for x, _ in points) / n
    mean_y = sum(y for _, y in points) / n
    var_x = sum((x - mean_x) ** 2 for x, _ in points)
    if var_x == 0:
        return None
    slope = sum((x - mean_x) * (y - mean_y) for x, y in points) / var_x
    return slope, mean_y - slope * mean_x


def minutes_to_cross(points: Sequence[tuple[float, float]], threshold: float, horizon: float = 60.0) -> float | None:
    """Minutes from now (x = 0, points at negative minutes) until the trend reaches `threshold`, when it
    rises towards it, is under it now, and gets there within `horizon` minutes; otherwise None."""
    if len(points) < MIN_POINTS or -min(x for x, _ in points) < MIN_SPAN_MINUTES:
        return None
    fit = linear_fit(points)
    if fit is None:
        return None
    slope, now_value = fit
    if slope <= 0 or now_value >= threshold:
        return None
    minutes = (threshold - now_value) / slope
    return minutes if minutes <= horizon else None
