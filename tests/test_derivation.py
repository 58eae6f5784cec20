"""Deriving a status from evidence: confirmation, recovery, fault classes, thresholds, regions, maintenance."""

import pytest

from monitoring.derivation import Evidence, Thresholds, derive
from monitoring.status import Status

T = Thresholds(latency_ms=4000, ttft_ms=1500, failures_to_confirm=2, successes_to_recover=2)

OK = Evidence("ok", latency_ms=300, ttft_ms=150)
SLOW = Evidence("ok", latency_ms=2000, ttft_ms=2500)
SLOW_TOTAL = Evidence("ok", latency_ms=9000, ttft_ms=100)
DOWN = Evidence("provider_fault", http_status=503, error="HTTP 503: unavailable")
OVERLOADED = Evidence("provider_fault", http_status=529, error="HTTP 529: overloaded")
TIMEOUT = Evidence("timeout", error="no answer within 8 s")
BROKEN = Evidence("broken_stream", error="answer cut")
LIMITED = Evidence("rate_limited", http_status=429, error="HTTP 429")
KEY = Evidence("probe_fault", http_status=401, error="HTTP 401: invalid key")


def oldest_first(*results):
    # derive() takes results newest first; scenarios read better oldest first.
    return list(reversed(results))


SCENARIOS = [
    ("no results is unknown", [], Status.UNKNOWN),
    ("one success is operational", [OK], Status.OPERATIONAL),
    ("a first failure is not an outage", [OK, OK, DOWN], Status.OPERATIONAL),
    ("a first failure from nothing stays unknown", [DOWN], Status.UNKNOWN),
    ("two failures in a row are a major outage", [OK, DOWN, DOWN], Status.MAJOR_OUTAGE),
    ("overloaded 529s count against the provider", [OVERLOADED, OVERLOADED], Status.MAJOR_OUTAGE),
    ("timeouts count against the provider", [TIMEOUT, TIMEOUT], Status.MAJOR_OUTAGE),
    ("broken streams count against the provider", [BROKEN, BROKEN], Status.MAJOR_OUTAGE),
    ("one success does not end an outage", [DOWN, DOWN, OK], Status.MAJOR_OUTAGE),
    ("two successes end an outage", [DOWN, DOWN, OK, OK], Status.OPERATIONAL),
    ("alternating failures never confirm", [OK, DOWN, OK, DOWN, OK, DOWN], Status.OPERATIONAL),
    ("a key fault is unknown, never an outage", [KEY, KEY, KEY], Status.UNKNOWN),
    ("a key fault after an outage is unknown", [DOWN, DOWN, KEY], Status.UNKNOWN),
    ("429s on our key are at most degraded", [LIMITED, LIMITED, LIMITED, LIMITED], Status.DEGRADED_PERFORMANCE),
    ("a single 429 is not confirmed", [OK, LIMITED], Status.OPERATIONAL),
    ("a slow first token twice is degraded", [OK, SLOW, SLOW], Status.DEGRADED_PERFORMANCE),
    ("a slow total latency twice is degraded", [SLOW_TOTAL, SLOW_TOTAL], Status.DEGRADED_PERFORMANCE),
    ("slow answers after an outage are degraded", [DOWN, DOWN, SLOW], Status.DEGRADED_PERFORMANCE),
    ("degraded recovers after two good answers", [SLOW, SLOW, OK, OK], Status.OPERATIONAL),
]


@pytest.mark.parametrize(("name", "results", "expected"), SCENARIOS, ids=[s[0] for s in SCENARIOS])
def test_single_region_scenarios(name, results, expected):
    status, reason = derive({"default": oldest_first(*results)} if results else {}, T)
    assert status == expected, reason


def test_stricter_confirmation_is_per_model():
    strict = Thresholds(latency_ms=4000, ttft_ms=1500, failures_to_confirm=3, successes_to_recover=1)
    assert derive({"r": oldest_first(OK, DOWN, DOWN)}, strict)[0] == Status.OPERATIONAL
    assert derive({"r": oldest_first(DOWN, DOWN, DOWN)}, strict)[0] == Status.MAJOR_OUTAGE
    assert derive({"r": oldest_first(DOWN, DOWN, DOWN, OK)}, strict)[0] == Status.OPERATIONAL


def test_a_minority_of_regions_failing_is_a_partial_outage():
    status, reason = derive({"eu": [DOWN, DOWN], "us": [OK, OK], "ap": [OK, OK]}, T)
    assert status == Status.PARTIAL_OUTAGE
    assert "eu" in reason and "3 regions" in reason


def test_a_majority_of_regions_failing_is_a_major_outage():
    assert derive({"eu": [DOWN, DOWN], "us": [DOWN, DOWN], "ap": [OK, OK]}, T)[0] == Status.MAJOR_OUTAGE


def test_half_of_two_regions_failing_is_a_partial_outage():
    assert derive({"eu": [DOWN, DOWN], "us": [OK, OK]}, T)[0] == Status.PARTIAL_OUTAGE


def test_regions_without_evidence_do_not_count():
    assert derive({"eu": [DOWN, DOWN], "us": [KEY]}, T)[0] == Status.MAJOR_OUTAGE


def test_maintenance_wins_over_evidence():
    assert derive({"eu": [DOWN, DOWN]}, T, in_maintenance=True)[0] == Status.UNDER_MAINTENANCE


def test_reasons_say_why():
    assert "HTTP 503" in derive({"r": [DOWN, DOWN]}, T)[1]
    assert "time to first token 2500 ms over the 1500 ms threshold" in derive({"r": [SLOW, SLOW]}, T)[1]
    assert "probe or account fault" in derive({"r": [KEY]}, T)[1]
    assert derive({}, T)[1] == "no fresh results"
