"""Online anomaly scoring of one metric series: learns its normal (level, daily and weekly shape) as points arrive."""

from __future__ import annotations

import math
from datetime import datetime

DAY = 86400.0
WEEK = 7 * DAY

# Predictors, in the order of the error scales: previous value, smoothed level, level + daily shape,
# level + weekly shape.
LAST, LEVEL, DAILY, WEEKLY = 0, 1, 2, 3

# Error histogram bins: bin b holds normalised errors z with edge(b) <= z < edge(b + 1); half-unit steps
# up to 2, then a factor sqrt(2) per bin, so rare large errors still get their own bins.
_EDGES = [0.0, 0.5, 1.0, 1.5] + [2.0 * math.sqrt(2.0) ** k for k in range(20)]
_NBINS = len(_EDGES)


def _bin(z: float) -> tuple[int, float]:
    """The bin of z and z's fractional position inside it."""
    if z < 2.0:
        b = int(z * 2.0)
        return b, z * 2.0 - b
    k = math.log2(z * 0.5) * 2.0
    b = int(k)
    if b >= _NBINS - 4 - 1:
        return _NBINS - 1, 0.0
    return b + 4, k - b


def _to_epoch(timestamp: datetime | float) -> float:
    if isinstance(timestamp, datetime):
        return timestamp.timestamp()
    return float(timestamp)


class _Tail:
    """Exponentially forgetting histogram of normalised errors that answers "how rare is an error this large"."""

    __slots__ = ("counts", "total", "gain")

    def __init__(self) -> None:
        self.counts = [0.0] * _NBINS
        self.total = 0.0
        self.gain = 1.0

    def tail(self, z: float, prior_mass: float) -> float:
        """P(error >= z): the histogram's tail blended with a Laplace prior, so unseen sizes still rank by size."""
        b, frac = _bin(z)
        counts = self.counts
        above = counts[b] * (1.0 - frac)
        for c in counts[b + 1 :]:
            above += c
        g = self.gain
        prior = prior_mass * g
        return (above + prior * math.exp(-z)) / (self.total + prior)

    def add(self, z: float, forget: float) -> None:
        # Forgetting by growing the weight of new points instead of shrinking every bin.
        self.gain /= forget
        self.counts[_bin(z)[0]] += self.gain
        self.total += self.gain
        if self.gain > 1e100:
            scale = 1.0 / self.gain
            self.counts = [c * scale for c in self.counts]
            self.total *= scale
            self.gain = 1.0


class SeriesDetector:
    """Learns one series' normal online and scores each new point's anomaly in [0, 1].

    `score(timestamp, value)` reads points in time order and never looks ahead. It returns None for a
    rejected input (not finite, negative when `non_negative`, above `max_value`, or absurdly larger than
    anything seen), counted in `rejected` and kept out of the state; otherwise a score that is 0 while
    `learning`. After each accepted point `expected()` gives the band the point was expected in, and
    `direction` says whether it was above (+1) or below (-1) the expectation.
    """

    # Points before scores are given.
    learn_points = 150
    # Smoothing of the level predictor and of the seasonal models' level.
    level_alpha = 0.2
    seasonal_level_alpha = 0.1
    # Shape learning rate per visit of a daily / weekly bucket.
    daily_alpha = 0.3
    weekly_alpha = 0.4
    daily_buckets = 144
    weekly_buckets = 168
    # Memory of the typical error of each predictor, in points.
    error_alpha = 0.02
    # Errors beyond this many typical errors are clipped when they update the models.
    clip = 4.0
    # Memory of the error histograms, in points, and the weight of their prior.
    tail_forget = 1.0 - 1.0 / 10000.0
    prior_mass = 5.0
    # Smoothing of the normalised error for slow, sustained departures.
    smooth_alpha = 0.15
    # How fast the alarm ceiling falls after a report, per point (in log10 surprise).
    ceiling_decay = 0.995
    # A new report must beat the last one's surprise times this.
    ceiling_margin = 2.0
    # A report this surprising (log10) silences further reports for `refractory` points.
    report_level = 5.0
    refractory = 300
    # The log10 surprise that maps to a score of 0.5.
    score_half = 8.0
    # Score from which a point is worth an alert (stationary noise stays below it).
    alarm_level = 0.5
    # Weight of the value's rarity (log10) in the surprise, the number of value bins over the learned range,
    # and their memory in points.
    value_weight = 1.0
    value_bins = 16
    value_forget = 1.0 - 1.0 / 20000.0
    # Band half-width, in typical errors.
    band_width = 4.0
    # A value this many times larger than anything seen is taken for garbage.
    absurd_ratio = 1e5

    def __init__(self, *, non_negative: bool = False, max_value: float | None = None) -> None:
        self.non_negative = non_negative
        self.max_value = max_value
        self.n = 0
        self.rejected = 0
        self.first_t: float | None = None
        self.last_t: float | None = None
        self.last_x = 0.0
        self.max_abs = 0.0
        self.level = 0.0
        self.d_level = 0.0
        self.w_level = 0.0
        self.daily: list[float | None] = [None] * self.daily_buckets
        self.weekly: list[float | None] = [None] * self.weekly_buckets
        self.err = [0.0, 0.0, 0.0, 0.0]
        self.err_n = [0, 0, 0, 0]
        self.fast = _Tail()
        self.slow = _Tail()
        self.z_smooth = 0.0
        self.v_min = math.inf
        self.v_max = -math.inf
        self.v_lo = 0.0
        self.v_width = 0.0
        self.v_hist: dict[int, float] = {}
        self.v_total = 0.0
        self.v_gain = 1.0
        self.ceiling = 0.0
        self.quiet = 0
        self.last_score = 0.0
        self.low = self.high = 0.0
        self.direction = 0

    # ----------------------------------------------------------------------------------------------
    @property
    def learning(self) -> bool:
        """True while there is too little history to judge a point."""
        return self.n < self.learn_points

    def expected(self) -> tuple[float, float]:
        """The band (low, high) the last accepted point was expected in."""
        return self.low, self.high

    def accepts(self, value: float) -> bool:
        """Whether a value is plausible input at all (not whether it is normal)."""
        if not math.isfinite(value):
            return False
        if self.non_negative and value < 0.0:
            return False
        if self.max_value is not None and value > self.max_value:
            return False
        # An all-zero history gives no scale to judge by.
        return self.max_abs == 0.0 or abs(value) <= self.absurd_ratio * self.max_abs

    # ----------------------------------------------------------------------------------------------
    def _seasonal(self, table: list[float | None], period: float, t: float) -> tuple[int, int, float, float | None]:
        """Interpolated shape value at t, with the two buckets it sits between and the weight of the second."""
        size = len(table)
        pos = (t % period) / period * size - 0.5
        i = math.floor(pos)
        w = pos - i
        a = i % size
        b = (i + 1) % size
        va, vb = table[a], table[b]
        if va is None or vb is None:
            return a, b, w, va if vb is None else (vb if va is None else None)
        return a, b, w, va + (vb - va) * w

    def score(self, timestamp: datetime | float, value: float) -> float | None:
        """Anomaly score in [0, 1] of this point given the past; None when the input is rejected."""
        try:
            x = float(value)
        except (TypeError, ValueError):
            self.rejected += 1
            return None
        if not self.accepts(x):
            self.rejected += 1
            return None
        t = _to_epoch(timestamp)
        if self.last_t is not None and t < self.last_t:
            self.rejected += 1
            return None

        if self.n == 0:
            self.first_t = t
            self.last_t = t
            self.last_x = self.level = self.d_level = self.w_level = x
            self.max_abs = abs(x)
            self.n = 1
            self.low = self.high = x
            return 0.0

        err = self.err
        err_n = self.err_n
        span = t - self.first_t
        da, db, dw, dshape = self._seasonal(self.daily, DAY, t)
        wa, wb, ww, wshape = self._seasonal(self.weekly, WEEK, t)

        preds = [self.last_x, self.level, None, None]
        if dshape is not None:
            preds[DAILY] = self.d_level + dshape
        if wshape is not None and span >= WEEK:
            preds[WEEKLY] = self.w_level + wshape

        # The predictor with the smallest typical error is the one the point is judged by.
        best = LEVEL
        best_err = err[LEVEL]
        for k in (LAST, DAILY, WEEKLY):
            if preds[k] is not None and err_n[k] >= 30 and err[k] < best_err:
                best, best_err = k, err[k]
        pred = preds[best]
        floor = 1e-9 + 1e-4 * abs(self.level)
        z = abs(x - pred) / (best_err + floor)

        # Update every predictor's typical error; large errors count only partly so one spike cannot blind us.
        ea = self.error_alpha
        for k in range(4):
            p = preds[k]
            if p is None:
                continue
            e = abs(x - p)
            if err_n[k] == 0:
                err[k] = e
            else:
                cap = 6.0 * err[k] + floor
                err[k] += ea * ((e if e < cap else cap) - err[k])
            err_n[k] += 1

        # Models learn from the point clipped to a plausible range around the current expectation.
        lim = self.clip * (best_err + floor)
        xc = x if abs(x - pred) <= lim else pred + math.copysign(lim, x - pred)
        self.level += self.level_alpha * (xc - self.level)
        self._learn(self.daily, da, db, dw, xc, self.d_level, dshape, self.daily_alpha)
        self.d_level += self.seasonal_level_alpha * (xc - (dshape or 0.0) - self.d_level)
        self._learn(self.weekly, wa, wb, ww, xc, self.w_level, wshape, self.weekly_alpha)
        self.w_level += self.seasonal_level_alpha * (xc - (wshape or 0.0) - self.w_level)

        half = self.band_width * (best_err + floor)
        self.low, self.high = pred - half, pred + half
        self.direction = 1 if x > pred else (-1 if x < pred else 0)
        self.last_x = x
        self.last_t = t
        if abs(x) > self.max_abs:
            self.max_abs = abs(x)
        self.n += 1

        zs = self.z_smooth + self.smooth_alpha * (z - self.z_smooth)
        self.z_smooth = zs
        if x < self.v_min:
            self.v_min = x
        if x > self.v_max:
            self.v_max = x
        if self.n <= self.learn_points // 3:
            return 0.0
        rarity = self._value_rarity(x)
        tail = min(self.fast.tail(z, self.prior_mass), self.slow.tail(zs, self.prior_mass))
        self.fast.add(z, self.tail_forget)
        self.slow.add(zs, self.tail_forget)
        if self.learning:
            return 0.0

        surprise = -math.log10(max(tail, 1e-300))
        # A surprising step to a value level rarely seen before is worth more than one to a familiar level.
        surprise += self.value_weight * rarity
        # One report per event: a point must be more surprising than the decaying ceiling left by the last report.
        ceiling = self.ceiling
        self.ceiling = ceiling * self.ceiling_decay
        if self.quiet > 0:
            self.quiet -= 1
            surprise *= 0.5
        elif surprise > ceiling:
            self.ceiling = surprise * self.ceiling_margin
            if surprise > self.report_level:
                self.quiet = self.refractory
        else:
            surprise *= 0.5
        out = surprise / (surprise + self.score_half)
        self.last_score = out
        return out

    def _value_rarity(self, x: float) -> float:
        """-log10 of how often values near x were seen (long memory), then counts x in."""
        if self.v_width == 0.0:
            span = self.v_max - self.v_min
            self.v_lo = self.v_min
            self.v_width = max(span / self.value_bins, 1e-3 * max(abs(self.v_max), abs(self.v_min)), 1e-9)
        b = math.floor((x - self.v_lo) / self.v_width)
        h = self.v_hist
        g = self.v_gain
        near = h.get(b, 0.0) + 0.5 * (h.get(b - 1, 0.0) + h.get(b + 1, 0.0))
        rarity = -math.log10((near + g) / (self.v_total + g))
        g /= self.value_forget
        self.v_gain = g
        h[b] = h.get(b, 0.0) + g
        self.v_total += g
        if g > 1e100:
            for k in h:
                h[k] /= g
            self.v_total /= g
            self.v_gain = 1.0
        if len(h) > 64:
            for k in sorted(h, key=h.__getitem__)[:16]:
                self.v_total -= h.pop(k)
        return rarity

    @staticmethod
    def _learn(
        table: list[float | None], a: int, b: int, w: float, x: float, level: float, shape: float | None, alpha: float
    ) -> None:
        target = x - level
        delta = 0.0 if shape is None else alpha * (target - shape)
        if table[a] is None:
            table[a] = target
        else:
            table[a] += delta * (1.0 - w)
        if table[b] is None:
            table[b] = target
        else:
            table[b] += delta * w

    # ----------------------------------------------------------------------------------------------
    def to_state(self) -> dict:
        """The learned state as a JSON-able dict."""
        return {
            "version": 1,
            "non_negative": self.non_negative,
            "max_value": self.max_value,
            "n": self.n,
            "rejected": self.rejected,
            "first_t": self.first_t,
            "last_t": self.last_t,
            "last_x": self.last_x,
            "max_abs": self.max_abs,
            "level": [self.level, self.d_level, self.w_level],
            "daily": self.daily,
            "weekly": self.weekly,
            "err": self.err,
            "err_n": self.err_n,
            "fast": [self.fast.counts, self.fast.total, self.fast.gain],
            "slow": [self.slow.counts, self.slow.total, self.slow.gain],
            "z_smooth": self.z_smooth,
            "ceiling": self.ceiling,
            "quiet": self.quiet,
            "values": [
                None if math.isinf(self.v_min) else self.v_min,
                None if math.isinf(self.v_max) else self.v_max,
                self.v_lo,
                self.v_width,
                self.v_total,
                self.v_gain,
                [[k, c] for k, c in self.v_hist.items()],
            ],
            "last_score": self.last_score,
            "band": [self.low, self.high, self.direction],
        }

    @classmethod
    def from_state(cls, state: dict) -> SeriesDetector:
        """A detector that carries on exactly where the one that produced `state` stopped."""
        d = cls(non_negative=state["non_negative"], max_value=state["max_value"])
        d.n = state["n"]
        d.rejected = state["rejected"]
        d.first_t = state["first_t"]
        d.last_t = state["last_t"]
        d.last_x = state["last_x"]
        d.max_abs = state["max_abs"]
        d.level, d.d_level, d.w_level = state["level"]
        d.daily = list(state["daily"])
        d.weekly = list(state["weekly"])
        d.err = list(state["err"])
        d.err_n = list(state["err_n"])
        for tail, (counts, total, gain) in ((d.fast, state["fast"]), (d.slow, state["slow"])):
            tail.counts, tail.total, tail.gain = list(counts), total, gain
        d.z_smooth = state["z_smooth"]
        d.ceiling = state["ceiling"]
        d.quiet = state["quiet"]
        v_min, v_max, d.v_lo, d.v_width, d.v_total, d.v_gain, hist = state["values"]
        d.v_min = math.inf if v_min is None else v_min
        d.v_max = -math.inf if v_max is None else v_max
        d.v_hist = {int(k): c for k, c in hist}
        d.last_score = state["last_score"]
        d.low, d.high, d.direction = state["band"]
        return d
