"""When a model is next probed: the interval with jitter, shared by the Celery collectors and the remote agent."""

from __future__ import annotations

import random

# Each next run lands within ±5% of the interval so that models registered together drift apart.
JITTER = 0.05


def next_delay(interval_seconds: float) -> float:
    """Seconds until the next probe of a model probed every interval_seconds."""
    return interval_seconds * random.uniform(1 - JITTER, 1 + JITTER)


def first_delay(interval_seconds: float) -> float:
    """Seconds until a newly scheduled model's first probe: spread over its first interval."""
    return random.uniform(0, interval_seconds)
