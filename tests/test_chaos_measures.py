"""The chaos suite's judgement of what readers showed, on made-up evidence (no services): chaos/measures.py."""

from chaos.measures import (
    ALERT_AFTER_EVIDENCE_S,
    ALERT_LATE_S,
    STALE_GRACE_S,
    STALE_INTERVALS,
    alerts,
    failed_reads,
    false_alarms,
    false_greens,
)
from chaos.run import hey_figures
from chaos.sampler import LiveState, Reading, Record, Request
from chaos.scenarios import Run
from chaos.seed import INTERVAL_S
from chaos.truth import Evidence, Window

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


HEY_OUTPUT = """
Summary:
  Total:\t30.0012 secs
  Requests/sec:\t3.3332

Latency distribution:
  50% in 0.0021 secs
  99% in 0.2040 secs

Status code distribution:
  [200]\t95 responses
  [502]\t3 responses

Error distribution:
  [2]\tGet "http://127.0.0.1:8000/en/": read tcp 127.0.0.1:4->127.0.0.1:8000: read: connection reset by peer
"""


def test_the_failed_reads_are_named_by_reader_url_and_answer_and_hey_by_url_and_kind():
    figures = hey_figures(HEY_OUTPUT, "/en/")
    assert (figures["ok"], figures["total"], figures["p99_s"]) == (95, 100, 0.204)
    run = Run("redis_freeze", begin=0.0, fault_start=100.0, fault_end=130.0)
    record = Record(
        requests=[
            Request(110.0, "page", 200, 0.01),
            Request(130.2, "summary", 0, 5.0, "http://127.0.0.1:8000/api/v2/summary.json", "TimeoutError"),
            Request(130.5, "summary", 0, 5.0, "http://127.0.0.1:8000/api/v2/summary.json", "TimeoutError"),
            Request(131.5, "page", 500, 0.01, "http://127.0.0.1:8000/en/", "oops"),  # after the fault: not counted
        ]
    )
    assert failed_reads(record, run, [figures]) == [
        "failed read: summary /api/v2/summary.json 'TimeoutError' 2 times, +30.2 to +30.5 s from the fault",
        "failed read: hey /en/ 'status 502' 3 times",
        'failed read: hey /en/ \'Get "http://127.0.0.1:8000/en/": read tcp 127.0.0.1:4->127.0.0.1:8000: read: '
        "connection reset by peer' 2 times",
    ]


def test_a_recovery_alert_after_probing_paused_past_the_outage_belongs_to_it():
    # Down 0-30 s; probing paused from 25 s to 110 s (beat down): the recovery could only be seen at
    # 110 s and 120 s, and its alert came at 121 s, past the window's end plus ALERT_LATE_S.
    answers = [(t, "failed") for t in (5.0, 15.0, 25.0)] + [(110.0, "ok"), (120.0, "ok")]
    evidence = Evidence({"m0": answers})
    window = Window("m0", 0.0, 30.0)
    assert 121.0 > window.end + ALERT_LATE_S
    received = [
        {"model": "m0", "kind": "outage", "at": 16.0, "id": "a"},
        {"model": "m0", "kind": "recovery", "at": 121.0, "id": "b"},
    ]
    assert alerts([window], evidence, received)[:2] == (0, 0)
    assert alerts([window], evidence, received[:1])[:2] == (1, 0)  # without it: missed


def test_an_outage_alert_long_after_the_evidence_of_recovery_is_a_false_alarm():
    answers = [(t, "failed") for t in (5.0, 15.0)] + [(40.0, "ok"), (50.0, "ok")]
    evidence = Evidence({"m0": answers})
    late = {"model": "m0", "kind": "outage", "at": 50.0 + ALERT_AFTER_EVIDENCE_S + 1, "id": "c"}
    assert false_alarms([Window("m0", 0.0, 30.0)], [late], 0.0, 200.0, evidence) == [late]


def test_the_live_client_keeps_a_change_that_arrived_while_an_older_snapshot_was_fetched():
    live = LiveState()
    live.apply_snapshot({"version": "10.1", "sequence": 10, "models": [{"slug": "chaos/m0", "status": "operational"}]})
    live.apply_change("m0", {"seq": 12, "to": "major_outage"})  # arrived during the next fetch
    live.apply_snapshot({"version": "11.2", "sequence": 11, "models": [{"slug": "chaos/m0", "status": "operational"}]})
    assert live.statuses == {"m0": "major_outage"} and live.seq == 12
    live.apply_change("m0", {"seq": 11, "to": "operational"})  # older than what is held: not applied again
    assert live.statuses == {"m0": "major_outage"}
