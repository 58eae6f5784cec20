"""Decide what one request to a fake model gets (an answer, an error, a hang or a broken stream) and how slowly."""

from __future__ import annotations

import random
import time
from typing import NamedTuple

from .scenario import ModelSpec


class Verdict(NamedTuple):
    """What happens to a request. `action` drives the response, `outcome` is the label counted in the stats."""

    action: str  # "answer", "fail", "hang" or "break"
    outcome: str
    status: int = 200


ANSWER = Verdict("answer", "ok")
HANG = Verdict("hang", "hang")
BREAK = Verdict("break", "broken_stream")


class Behaviour:
    """A model's spec together with its own random stream, seeded per model so traffic to one never shifts another."""

    __slots__ = ("spec", "rng", "_faults", "_outage_verdicts", "_flap_verdict", "_interval", "regions", "_burst_seen")

    def __init__(self, spec: ModelSpec, seed: int | None = None) -> None:
        self.spec = spec
        self.rng = random.Random(f"{seed}:{spec.name}") if seed is not None else random.Random()
        # One uniform draw per request picks among the faults by cumulative thresholds; a model
        # without faults skips the draw entirely, which keeps the zero-latency path cheap.
        faults = []
        upper = 0.0
        for rate, verdict in (
            (spec.error_rate, Verdict("fail", "error", spec.error_status)),
            (spec.rate_limit_rate, Verdict("fail", "rate_limited", 429)),
            (spec.overloaded_rate, Verdict("fail", "overloaded", 529)),
            (spec.hang_rate, HANG),
            (spec.broken_stream_rate, BREAK),
        ):
            if rate > 0:
                upper += rate
                faults.append((upper, verdict))
        self._faults = tuple(faults)
        self._outage_verdicts = tuple((window, Verdict("fail", "outage", window.status)) for window in spec.outages)
        self._flap_verdict = Verdict("fail", "flap_down", spec.flap.down_status) if spec.flap else None
        self._burst_seen = 0  # requests during the error burst: every n-th fails
        self._interval = 1.0 / spec.tokens_per_s if spec.tokens_per_s > 0 else 0.0
        # Each region named in the spec behaves on its own, with its own random stream.
        self.regions = {region: Behaviour(regional, seed) for region, regional in spec.regions.items()}

    def for_region(self, region: bytes | None) -> Behaviour:
        """The behaviour for a request from `region` (its X-Probe-Region header): the model's own when not named."""
        if region is None or not self.regions:
            return self
        return self.regions.get(region.decode("latin-1").strip(), self)

    def judge(self, now: float) -> Verdict:
        """The verdict for a request arriving at `now` (epoch seconds): scheduled downtime first, then chance."""
        for window, verdict in self._outage_verdicts:
            if window.start <= now < window.end:
                return verdict
        if self._flap_verdict is not None and self.spec.flap.is_down(now):
            return self._flap_verdict
        shape = self.spec.shape
        if shape is not None and shape.in_burst(now):
            self._burst_seen += 1
            if self._burst_seen % shape.burst_every == 0:
                return Verdict("fail", "error_burst", shape.burst_status)
        if self._faults:
            draw = self.rng.random()
            for upper, verdict in self._faults:
                if draw < upper:
                    return verdict
        return ANSWER

    def accepts_key(self, key: str | None) -> bool:
        required = self.spec.require_api_key
        return required is None or key == required

    def _factor(self) -> float:
        shape = self.spec.shape
        return shape.latency_factor(time.time()) if shape is not None else 1.0

    def ttft_s(self) -> float:
        return self.spec.ttft_ms.sample_s(self.rng) * self._factor()

    @property
    def token_interval_s(self) -> float:
        """Seconds between streamed tokens; 0 means as fast as the connection takes them."""
        return self._interval

    def response_s(self, tokens: int) -> float:
        """Total time of a non-streamed completion: `latency_ms` if set, else time to first token plus generation."""
        if self.spec.latency_ms is not None:
            return self.spec.latency_ms.sample_s(self.rng) * self._factor()
        return self.ttft_s() + max(0, tokens - 1) * self._interval

    def embedding_s(self) -> float:
        if self.spec.latency_ms is not None:
            return self.spec.latency_ms.sample_s(self.rng) * self._factor()
        return self.ttft_s()
