"""Online anomaly scoring of one metric series: learns its normal (level, daily and weekly shape) as points arrive."""

from __future__ import annotations

import math
from datetime import datetime

import numpy as np

from anomalies.novelty import BoxMemory, pack_floats, unpack_floats

DAY = 86400.0
WEEK = 7 * DAY

# Predictors, in the order of the error scales: previous value, smoothed level, level + daily shape,
# level + weekly shape.
LAST, LEVEL, DAILY, WEEKLY = 0, 1, 2, 3


def _to_epoch(timestamp: datetime | float) -> float:
    if isinstance(timestamp, datetime):
        return timestamp.timestamp()
    return float(timestamp)


class SeriesDetector:
    """Learns one series' normal online and scores each new point's anomaly in [0, 1].

    `score(timestamp, value)` reads points in time order and never looks ahead. It returns None for a
    rejected input (not finite, negative when `non_negative`, above `max_value`, or absurdly larger than
    anything seen), counted in `rejected` and kept out of the state; otherwise a score that is 0 while
    `learning`. After each accepted point `expected()` gives the band the point was expected in, and
    `direction` says whether it was above (+1) or below (-1) the expectation. `min_range` is the smallest
    value range shapes are measured against (0.5 suits an error ratio in [0, 1]).
    """

    # Points before scores are given.
    learn_points = 150
    # Smoothing of the level predictor and of the seasonal models' level.
    level_alpha = 0.2
    seasonal_level_alpha = 0.1
    # Shape learning rate per visit of a daily / weekly bucket.
    daily_alpha = 0.3
    weekly_alpha = 0.4
    daily_buckets = 96
    weekly_buckets = 84
    # Memory of the typical error of each predictor, in points.
    error_alpha = 0.02
    # Errors beyond this many typical errors are clipped when they update the models.
    clip = 4.0
    # Novelty (see `_novelty`): smoothing of the three moving averages among the features.
    feature_alphas = (0.5, 0.125, 0.03125)
    # Box size allowed per feature, as a share of the value range seen (the vigilance), and its growth
    # each time a new box is founded.
    vigilance = 0.04
    vigilance_growth = 0.07
    box_capacity = 64
    # A full turn of the day counts like the whole value range, twice over.
    phase_scale = 2.0
    # Points of known shapes before a new one for half credit.
    gap_scale = 300.0
    # Credit is 1 - novelty_floor / novelty: nothing for a point only just outside what a box may take.
    novelty_floor = 1.0
    # Weight of the founding rate (new boxes per point, with a prior of `rate_prior` points).
    rate_scale = 1000.0
    rate_prior = 300.0
    # After a report, new boxes for this many points belong to the same event.
    refractory = 50
    # The raw credit that maps to a score of 0.5 (the alarm level). NAB's threshold sweep finds its best
    # far lower (every new shape counts); an alert wants a shape clearly outside what was known.
    score_ref = 0.02
    # Score from which a point is worth an alert.
    alarm_level = 0.5
    # A new shape's credit is weighted by how surprising the point is to the best predictor: z / (z + z_ref),
    # z its error in typical errors. A new shape the predictions expected (a familiar value at a new hour,
    # a slow drift) counts less than one that also breaks the prediction.
    z_ref = 1.0
    # A level shift is also reported on its own, once per excursion: when the fast moving average leaves
    # a slow one (smoothing `shift_alpha`) by more than `shift_k` mean absolute deviations. After a week a
    # noisy series' vigilance has grown so much that boxes can take a doubled latency; this catches that.
    # Its credit maps to a score of 0.6, above the alarm level.
    shift_k = 30.0
    shift_alpha = 0.005
    shift_credit = 0.03
    # A level shift measured against the prediction instead of the raw spread (a daily swing makes the raw
    # spread 10-20 % of the level, so even a tripling may stay within `shift_k` of it): two points in a row
    # on the same side of the level + daily shape predicted before the first, each at least `pair_min_z`
    # and on average `pair_mean_z` typical relative residuals away. Residuals are relative to the smaller
    # of value and prediction, so a doubling counts alike at the daily peak and trough, and a halving
    # counts as much as a doubling. A single spike never counts. The pair must also be `pair_min_z` and on
    # average `pair_abs_mean_z` typical absolute residuals away: where the noise is additive, a small value's
    # relative noise is large (a latency-like series' lowest values are not where its noise is largest).
    pair_min_z = 3.0
    pair_mean_z = 5.0
    pair_abs_mean_z = 4.0
    pair_alpha = 0.02
    # Residuals that come in runs (a ramp the prediction lags behind, bursts of spikes) make pairs common:
    # a pair counts only when its smaller residual is also `pair_k` times the largest such pair seen
    # lately (that peak decays by `pair_decay` per point: a half-life of about 7000 points).
    pair_k = 1.5
    pair_decay = 0.9999
    pair_warmup = 30
    # After it reports, each shift check stays silent for `shift_hold` points: a series whose level keeps
    # stepping (load that moves in steps, a level that leaves and returns) would otherwise report each step
    # once the slow level (time constant 1 / `shift_alpha`, 200 points) has caught up and re-armed the check.
    # Five time constants: the check's next shift within them belongs to the same episode.
    shift_hold = 1000
    # A report starts the quiet period only when it is worth this score: a barely new shape must not
    # silence the detector for the next `refractory` points.
    refractory_min_score = 0.0
    # A value beyond the whole range seen so far by more than `spatial_tolerance` of that range is new
    # whatever its shape (HTM's spatial anomaly on NAB, with its 5 %): an early spike can widen the range
    # so much that a later excursion past it is too small a step for the boxes. It is weak evidence on
    # its own (a cold series finds new extremes often), so its credit maps to 0.33, under the alarm level.
    spatial_tolerance = 0.05
    spatial_credit = 0.01
    # A sustained offset inside the known range (a slow drift, a daily peak that does not come, a holiday's
    # lower traffic) founds no new shape. It shows as a record of the residual's moving average (smoothing
    # `offset_alpha`, the slowest feature's), each residual clipped to `clip` typical residuals so a spike
    # counts little: an average beyond anything it reached before, and at least `offset_min` typical
    # residuals, is reported once per excursion (re-armed below half the record). Records grow rarer as a
    # series ages (a stationary one sets a new one about each time its age doubles). Two residuals: against
    # the slow level (a drift, a shift the daily shape would absorb) and against the level + daily shape (a
    # changed rhythm at a familiar level). Weak evidence like the new extreme: its credit maps to 0.33, under
    # the alarm level, so it never raises an alert on its own.
    offset_alpha = 0.03125
    offset_min = 1.0
    offset_credit = 0.01
    # Both weak reports (the new extreme, the lasting offset) wait for this many points of history: a young
    # series widens its range and sets offset records all the time (a record about each time its age
    # doubles), so early on they say little: on the NAB subset, 12 of the 13 they made in a series' first
    # 1,800 points were false positives, and none was the first in its anomaly window. They are under the
    # alarm level, so no alert waits for this.
    weak_learn = 2000
    # Band half-width, in typical errors.
    band_width = 4.0
    # A value this many times larger than anything seen is taken for garbage.
    absurd_ratio = 1e5

    def __init__(self, *, non_negative: bool = False, max_value: float | None = None, min_range: float = 0.0) -> None:
        self.non_negative = non_negative
        self.max_value = max_value
        # Shapes are measured against the value range seen, but never a smaller one than this (in the series'
        # units): a series that has only ever been 0 (a healthy model's error ratio) would otherwise find its
        # first failed probe infinitely new.
        self.min_range = min_range
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
        self.ema = [0.0] * len(self.feature_alphas)
        self.v_min = math.inf
        self.v_max = -math.inf
        # Features: value, previous value, moving averages, time of day as cos and sin.
        self.boxes = BoxMemory(2 + len(self.feature_alphas) + 2, self.box_capacity)
        self.previous = 0.0
        self.quiet = 0
        self.vig = self.vigilance
        self.since = 0
        self.found = 0
        self.last_score = 0.0
        self.surprise = 0.0
        self.slow = 0.0
        self.slow_dev = 0.0
        self.armed = True
        # The pair shift check: the prediction and residual (in typical residuals) of the previous point,
        # the typical relative residual, how many points it has seen, and whether it may report.
        self.pair_ref = 0.0
        self.pair_z = 0.0
        self.pair_z0 = 0.0
        self.pair_dev = 0.0
        self.pair_a = 0.0
        self.pair_abs_dev = 0.0
        self.pair_n = 0
        self.pair_run = 0.0
        self.pair_armed = True
        # Points left before each shift check (the sustained one, the pair) may report again (see `shift_hold`).
        self.shift_left = 0
        self.pair_left = 0
        # The offset records (see `offset_alpha`), against the slow level and against the level + daily shape:
        # typical absolute residual, moving average of the clipped residual in typical residuals, record, armed.
        self.offset_n = 0
        self.offsets = [[0.0, 0.0, 0.0, True], [0.0, 0.0, 0.0, True]]
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
            self.ema = [x] * len(self.feature_alphas)
            self.slow = self.pair_ref = x
            self.v_min = self.v_max = self.previous = x
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
        pair_shift = self._pair(x, preds)
        offset = self._offset(x, preds)

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

        self.surprise = abs(x - pred) / (best_err + floor)
        half = self.band_width * (best_err + floor)
        self.low, self.high = pred - half, pred + half
        self.direction = 1 if x > pred else (-1 if x < pred else 0)
        self.last_x = x
        self.last_t = t
        if abs(x) > self.max_abs:
            self.max_abs = abs(x)
        self.n += 1

        return self._novelty(x, pair_shift, offset)

    def _pair(self, x: float, preds: list[float | None]) -> bool:
        """Whether this point and the previous one together are a level shift (see `pair_min_z`)."""
        # The reference never follows the last value: the level + daily shape once it predicts better
        # than the level alone.
        ref = preds[LEVEL]
        daily = preds[DAILY]
        if daily is not None and self.err_n[DAILY] >= 30 and self.err[DAILY] < self.err[LEVEL]:
            ref = daily
        scale = 1e-3 * self.max_abs + 1e-12
        dev = self.pair_dev + 1e-4
        abs_dev = self.pair_abs_dev + 1e-9 + 1e-4 * abs(ref)
        ax = abs(x)
        ar = abs(ref)
        d = x - ref
        r = d / ((ax if ax < ar else ar) + scale)
        z = r / dev
        n = self.pair_n
        warm = n >= self.pair_warmup
        z1 = self.pair_z
        min_z = self.pair_min_z
        shifted = False
        run = 0.0
        # A pair smaller than min_z / pair_k decides nothing, not even through the peak it would leave.
        if warm and abs(z1) * self.pair_k >= min_z:
            # This point against the prediction made before the previous one, so the pair is judged against
            # a reference the shift has not moved yet.
            previous_ref = self.pair_ref
            ap = abs(previous_ref)
            z2 = (x - previous_ref) / ((ax if ax < ap else ap) + scale) / dev
            if z1 * z2 > 0.0:
                run = min(abs(z1), abs(z2))
                a1, a2 = self.pair_a, abs(x - previous_ref) / abs_dev
                shifted = (
                    self.pair_armed
                    and run >= min_z
                    and run >= self.pair_k * self.pair_run
                    and abs(self.pair_z0) < min_z
                    and min(a1, a2) >= min_z
                    and a1 + a2 >= 2.0 * self.pair_abs_mean_z
                    and abs(z1) + abs(z2) >= 2.0 * self.pair_mean_z
                    and abs(x - previous_ref) >= self.min_range
                    and not self.learning
                )
        if self.pair_left > 0:
            self.pair_left -= 1
        if shifted:
            self.pair_armed = False
            self.pair_left = self.shift_hold
        elif abs(z) < min_z and self.pair_left <= 0:
            self.pair_armed = True
        self.pair_ref = ref
        self.pair_z0 = z1
        self.pair_z = z if warm else 0.0
        ad = abs(d)
        self.pair_a = ad / abs_dev
        n += 1
        self.pair_n = n
        a = 1.0 / n
        if a < self.pair_alpha:
            a = self.pair_alpha
        e = abs(r)
        if warm:
            if not shifted:
                decayed = self.pair_run * self.pair_decay
                self.pair_run = run if run > decayed else decayed
            if e > 4.0 * dev:
                e = 4.0 * dev
            if ad > 4.0 * abs_dev:
                ad = 4.0 * abs_dev
        self.pair_dev += a * (e - self.pair_dev)
        self.pair_abs_dev += a * (ad - self.pair_abs_dev)
        return shifted

    def _offset(self, x: float, preds: list[float | None]) -> bool:
        """Whether the residual's moving average, against the slow level or the level + daily shape, sets a
        record (see `offset_alpha`)."""
        slow = self.slow
        daily = preds[DAILY]
        if daily is None or self.err_n[DAILY] < 30 or self.err[DAILY] >= self.err[LEVEL]:
            daily = slow
        self.offset_n += 1
        n = self.offset_n
        a = 1.0 / n
        if a < self.error_alpha:
            a = self.error_alpha
        clip = self.clip
        judged = not self.learning and n > max(self.learn_points, self.weak_learn)
        found = False
        for stat, ref in zip(self.offsets, (slow, daily), strict=True):
            dev, m, record, armed = stat
            r = x - ref
            dev_floor = dev + 1e-9 + 1e-4 * abs(ref)
            z = r / dev_floor
            if z > clip:
                z = clip
            elif z < -clip:
                z = -clip
            m += self.offset_alpha * (z - m)
            e = abs(r)
            if n > 30 and e > clip * dev_floor:
                e = clip * dev_floor
            dev += a * (e - dev)
            am = abs(m)
            if judged:
                if armed and am > record and am >= self.offset_min:
                    found = True
                    armed = False
                elif am < 0.5 * record:
                    armed = True
            if am > record:
                record = am
            stat[0], stat[1], stat[2], stat[3] = dev, m, record, armed
        if found:
            # One report per excursion, whichever residual saw it first.
            for stat in self.offsets:
                stat[3] = False
        return found

    def _novelty(self, x: float, pair_shift: bool = False, offset: bool = False) -> float:
        """Score of how new the recent shape around x is: the value, the one before, three moving averages
        and the time of day, against the boxes of shapes seen so far."""
        ema = self.ema
        for i, a in enumerate(self.feature_alphas):
            ema[i] += a * (x - ema[i])
        lo, hi = self.v_min, self.v_max
        if x < lo:
            self.v_min = x
        if x > hi:
            self.v_max = x
        previous = self.previous
        self.previous = x
        if self.n <= 2:
            return 0.0
        # Values are measured against the range seen so far (it only widens), the time of day on its own scale.
        span = max(hi - lo, self.min_range, 1e-6 * max(abs(hi), abs(lo)), 1e-12)
        angle = 2.0 * math.pi * (self.last_t % DAY) / DAY
        w = 1.0 / span
        p = 1.0 / self.phase_scale
        novelty = self.boxes.learn(
            np.array([x, previous, *ema, math.cos(angle), math.sin(angle)]),
            np.array([w, w, w, w, w, p, p]),
            self.vig,
        )
        gap = self.since
        self.since += 1
        novel = novelty > 1.0
        if novel:
            self.since = 0
            if self.n > self.learn_points // 3:
                # Shapes that keep coming back new are the series' normal: widen what counts as known.
                self.vig *= 1.0 + self.vigilance_growth
        shifted = False
        if self.shift_k:
            # Re-armed once the fast average is back within reach of the slow level (or that level and its
            # deviation caught up), so a sustained shift is reported once.
            away = abs(ema[0] - self.slow) > max(self.shift_k * self.slow_dev, self.min_range)
            if self.shift_left > 0:
                self.shift_left -= 1
            shifted = away and self.armed and not self.learning and self.shift_left <= 0
            if shifted:
                self.shift_left = self.shift_hold
                # Always reported (a shift report is never silenced by the quiet period), so disarming is safe.
                self.armed = False
            elif not away:
                self.armed = True
            # A plain running mean at first, so the slow level and deviation are sound from the start.
            a = max(self.shift_alpha, 1.0 / self.n)
            self.slow_dev += a * (abs(x - self.slow) - self.slow_dev)
            self.slow += a * (x - self.slow)
        shifted = shifted or pair_shift
        if shifted:
            # One report per excursion, whichever check saw it first.
            self.armed = self.pair_armed = False
        # Judged against the range before this point; not inside the quiet period after a report (the same
        # event), and it neither starts that period nor disarms the shift checks.
        tolerance = self.spatial_tolerance * (hi - lo)
        spatial = self.quiet <= 0 and self.n > self.weak_learn and (x > hi + tolerance or x < lo - tolerance)
        # Like the new extreme: not inside the quiet period, and it changes nothing else.
        offset = offset and self.quiet <= 0
        if self.learning or not (novel or shifted or spatial or offset):
            if self.quiet > 0:
                self.quiet -= 1
            return 0.0
        if novel:
            self.found += 1
        if self.quiet > 0:
            # New boxes right after a report belong to the same event: one report per event. A level
            # shift is a new event of its own and is reported even then.
            self.quiet -= 1
            if not shifted:
                return 0.0
        # Credit grows with how far outside the known shapes the point is, with the run of known shapes
        # before it, and shrinks with how often this series founds new shapes at all.
        raw = max(0.0, 1.0 - self.novelty_floor / novelty) if novel else 0.0
        raw *= (gap + 1.0) / (gap + 1.0 + self.gap_scale)
        raw /= 1.0 + self.rate_scale * self.found / (self.n - self.learn_points + self.rate_prior)
        raw *= self.surprise / (self.surprise + self.z_ref)
        if spatial:
            raw = max(raw, self.spatial_credit)
        if offset:
            raw = max(raw, self.offset_credit)
        if shifted:
            raw = max(raw, self.shift_credit)
        out = raw / (raw + self.score_ref)
        if novel and out >= self.refractory_min_score:
            self.quiet = self.refractory
        self.last_score = out
        return out

    @staticmethod
    def _learn(
        table: list[float | None], a: int, b: int, w: float, x: float, level: float, shape: float | None, alpha: float
    ) -> None:
        # Shapes are kept at float32 precision, enough for a band, so they store in short texts.
        target = x - level
        delta = 0.0 if shape is None else alpha * (target - shape)
        va, vb = table[a], table[b]
        table[a] = float(np.float32(target if va is None else va + delta * (1.0 - w)))
        table[b] = float(np.float32(target if vb is None else vb + delta * w))

    # ----------------------------------------------------------------------------------------------
    def to_state(self) -> dict:
        """The learned state as a JSON-able dict."""
        return {
            "version": 3,
            "non_negative": self.non_negative,
            "max_value": self.max_value,
            "min_range": self.min_range,
            "n": self.n,
            "rejected": self.rejected,
            "first_t": self.first_t,
            "last_t": self.last_t,
            "last_x": self.last_x,
            "max_abs": self.max_abs,
            "level": [self.level, self.d_level, self.w_level],
            "daily": pack_floats(self.daily),
            "weekly": pack_floats(self.weekly),
            "err": self.err,
            "err_n": self.err_n,
            "quiet": self.quiet,
            "ema": self.ema,
            "vigilance": self.vig,
            "since": self.since,
            "found": self.found,
            "previous": self.previous,
            "range": [self.v_min, self.v_max] if self.n else None,
            "boxes": self.boxes.to_state(),
            "last_score": self.last_score,
            "shift": [self.slow, self.slow_dev, self.armed, self.shift_left],
            "pair": [
                self.pair_ref,
                self.pair_z0,
                self.pair_z,
                self.pair_a,
                self.pair_dev,
                self.pair_abs_dev,
                self.pair_run,
                self.pair_n,
                self.pair_armed,
                self.pair_left,
            ],
            "offset": [self.offset_n, self.offsets],
            "band": [self.low, self.high, self.direction],
        }

    @classmethod
    def from_state(cls, state: dict) -> SeriesDetector:
        """A detector that carries on exactly where the one that produced `state` stopped."""
        d = cls(non_negative=state["non_negative"], max_value=state["max_value"], min_range=state.get("min_range", 0.0))
        d.n = state["n"]
        d.rejected = state["rejected"]
        d.first_t = state["first_t"]
        d.last_t = state["last_t"]
        d.last_x = state["last_x"]
        d.max_abs = state["max_abs"]
        d.level, d.d_level, d.w_level = state["level"]
        d.daily = unpack_floats(state["daily"])
        d.weekly = unpack_floats(state["weekly"])
        d.err = list(state["err"])
        d.err_n = list(state["err_n"])
        d.quiet = state["quiet"]
        d.ema = list(state["ema"])
        d.vig = state["vigilance"]
        d.since = state["since"]
        d.found = state["found"]
        d.previous = state["previous"]
        if state["range"] is not None:
            d.v_min, d.v_max = state["range"]
        d.boxes.load(state["boxes"])
        d.last_score = state["last_score"]
        shift = state.get("shift", [state["last_x"], 0.0, True])
        d.slow, d.slow_dev, d.armed = shift[:3]
        # A state saved before the hold after a shift report has none pending.
        d.shift_left = shift[3] if len(shift) > 3 else 0
        # A state saved before the pair check learns its residual scale afresh (`pair_warmup` points).
        pair = state.get("pair", [state["last_x"], 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0, True])
        pair_left = pair[9] if len(pair) > 9 else 0
        d.pair_ref, d.pair_z0, d.pair_z, d.pair_a, d.pair_dev, d.pair_abs_dev, d.pair_run, d.pair_n, d.pair_armed = (
            pair[:9]
        )
        d.pair_left = pair_left
        # A state saved before the offset records learns them afresh (`learn_points` points before reports).
        offset = state.get("offset")
        if offset is not None:
            d.offset_n = offset[0]
            d.offsets = [list(stat) for stat in offset[1]]
        d.low, d.high, d.direction = state["band"]
        return d
