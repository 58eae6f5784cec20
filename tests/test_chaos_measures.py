"""The chaos suite's judgement of what readers showed, on made-up evidence (no services): chaos/measures.py."""

from chaos.measures import STALE_GRACE_S, STALE_INTERVALS, false_greens
from chaos.sampler import Reading, Record
from chaos.seed import INTERVAL_S

LIMIT = STALE_INTERVALS * INTERVAL_S + STALE_GRACE_S


class Answers:
    """Evidence as chaos.truth.Evidence keeps it: the simulator's answers per model."""

    def __init__(self, times: list[float]) -> None:
        self.times = {"m0": times}
        self.failed = {"m0": []}
        self.ok = {"m0": times}

    def nth_after(self, *args, **kwargs):
        return None


def green(at: float, answered: float | None = None) -> Reading:
    return Reading(at, "api_v1", frozenset(), seen=1, unknown=0, answered=answered)


def judged(*readings: Reading) -> list[float]:
    # m0 answered at 0, then nothing until 100: from LIMIT on, nothing may show it operational until 100.
    found = false_greens(Record(readings=list(readings)), [], Answers([0.0, 100.0]), ["m0"], until=200.0)
    return found.get(("api_v1", "m0"), [])


def test_a_green_read_while_no_probe_was_answered_for_too_long_is_false():
    assert judged(green(LIMIT + 1, answered=LIMIT + 2), green(99.0)) == [LIMIT + 1, 99.0]


def test_a_green_read_before_the_evidence_went_stale_is_not_false():
    assert judged(green(LIMIT - 0.1, answered=LIMIT + 5)) == []


def test_a_slow_green_read_whose_answer_came_after_a_fresh_probe_is_not_false():
    # Asked while stale, answered after the simulator answered again: the answer may show that evidence.
    assert judged(green(99.5, answered=101.0)) == []
    assert judged(green(99.5, answered=99.9)) == [99.5]
