"""The chaos subset: the whole product started from outside (its own PostgreSQL, Redis, simulator, web,
two workers and beat) with 100 models, while a worker is SIGKILLed mid-round, Redis is killed for 15 s
(long enough for the live subscription and the workers' broker connections to be lost and retried with
backoff; 30 s in `make chaos`) and every collector is stopped. What users see is measured against the
simulator's ground truth (chaos/measures.py says how); `make chaos` runs every scenario at full size.
"""

import pytest

from chaos.measures import INTERVAL_S, STALE_INTERVALS
from chaos.run import execute, summary
from chaos.scenarios import SUBSET


@pytest.mark.slow
def test_worker_kill_redis_kill_and_stopped_collectors_lose_nothing_and_never_show_a_false_green():
    results, _ = execute(SUBSET, models=100, seed=14, ws=20, sse=5, hey_rate=10, fault_seconds=15)
    print("\n" + summary(results))
    by_name = {r.name: r for r in results}
    assert list(by_name) == SUBSET
    for result in results:
        assert result.answered > 0 and result.readings > 0, result  # the truth and the readers were there
        assert result.lost == 0, result  # in-flight probes of the kill are counted apart (result.in_flight)
        assert result.false_green == 0, result
        assert (result.missed_alerts, result.duplicate_alerts) == (0, 0), result
        assert result.push_recovery_s is not None and result.push_recovery_s <= 5, result
    for name in ("worker_kill", "redis_kill"):
        assert by_name[name].availability_pct >= 99.9, by_name[name]
    stopped = by_name["collectors_stopped"]
    assert stopped.time_to_unknown_s <= STALE_INTERVALS * INTERVAL_S + 10, stopped
