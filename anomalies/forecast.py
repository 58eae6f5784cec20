"""Forecasts of a metric: the linear trend and when it would cross a threshold (as Prometheus's predict_linear
does), and the next hour's latency with an empirical interval."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

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


# -- the next hour's latency ---------------------------------------------------------------------------
#
# Seasonal naive on a robust level, with a robust drift where a day of history is missing. The level
# of an hour is the median of it and the LEVEL_HOURS - 1 before it (one noisy hour does not carry the
# forecast). The value `steps` hours ahead is the latest level moved by the median of what followed
# the level at this time of day on the past days (up to a week), or, without two such days, by the
# median hourly change of the last hours (times the steps, and the level's own lag). The interval is
# empirical: the same method is replayed at every past hour of the history, and the 10th and 90th
# percentiles of its errors are put around the forecast (80 %).

SEASON = 24
SEASONS_USED = 7
LEVEL_HOURS = 3
DRIFT_HOURS = 6
MIN_ERRORS = 6
MAX_ERRORS = 24 * 7
COVERAGE = 0.8


@dataclass(frozen=True)
class Forecast:
    value: float
    low: float
    high: float
    method: str  # "seasonal", "drift" or "naive"
    errors: int  # past forecasts the interval was measured on


def _median(values: list[float]) -> float:
    ordered = sorted(values)
    middle = len(ordered) // 2
    return ordered[middle] if len(ordered) % 2 else (ordered[middle - 1] + ordered[middle]) / 2


def _quantile(ordered: list[float], q: float) -> float:
    """Linear interpolation between closest ranks of a sorted list."""
    position = q * (len(ordered) - 1)
    below = int(position)
    above = min(below + 1, len(ordered) - 1)
    return ordered[below] + (ordered[above] - ordered[below]) * (position - below)


def level(values: Sequence[float | None], at: int) -> float | None:
    """The median of the hour `at` and the LEVEL_HOURS - 1 before it; None when the hour itself has no value."""
    if at < 0 or values[at] is None:
        return None
    return _median([v for v in values[max(0, at - LEVEL_HOURS + 1) : at + 1] if v is not None])


def predict(
    values: Sequence[float | None], origin: int, steps: int, levels: Sequence[float | None] | None = None
) -> tuple[float, str] | None:
    """The value at `origin + steps` as forecast from `values[: origin + 1]` alone, and the method used.
    `levels`: each hour's level, when already worked out (a level reads only its own and earlier hours)."""
    if levels is None:
        levels = [level(values, i) for i in range(origin + 1)]
    base = levels[origin]
    if base is None:
        return None
    seasonal = []
    for k in range(1, SEASONS_USED + 1):
        then, ahead = origin - k * SEASON, origin + steps - k * SEASON
        past = levels[then] if then >= LEVEL_HOURS - 1 else None
        if past is not None and values[ahead] is not None:
            seasonal.append(values[ahead] - past)
    if len(seasonal) >= 2:
        return base + _median(seasonal), "seasonal"
    recent = values[max(0, origin - DRIFT_HOURS) : origin + 1]
    changes = [b - a for a, b in zip(recent, recent[1:], strict=False) if a is not None and b is not None]
    if len(changes) >= 3:
        # The level is the middle of its hours: it lags (LEVEL_HOURS - 1) / 2 hours behind a trend.
        return base + (steps + (LEVEL_HOURS - 1) / 2) * _median(changes), "drift"
    return base, "naive"


def forecast_ahead(values: Sequence[float | None], steps: int = 2) -> Forecast | None:
    """The forecast `steps` hours after the last of `values` (hourly, oldest first, None for an hour
    without data) with its empirical interval; None without a latest value or enough past errors."""
    last = len(values) - 1
    levels = [level(values, i) for i in range(len(values))]
    made = predict(values, last, steps, levels) if last >= 0 else None
    if made is None:
        return None
    errors = []
    for origin in range(max(0, last - steps - MAX_ERRORS + 1), last - steps + 1):
        actual = values[origin + steps]
        past = predict(values, origin, steps, levels) if actual is not None else None
        if past is not None:
            errors.append(actual - past[0])
    if len(errors) < MIN_ERRORS:
        return None
    errors.sort()
    value, method = made
    low = value + _quantile(errors, (1 - COVERAGE) / 2)
    high = value + _quantile(errors, (1 + COVERAGE) / 2)
    return Forecast(max(value, 0.0), max(low, 0.0), max(high, 0.0), method, len(errors))
