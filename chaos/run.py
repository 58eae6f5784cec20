"""Run the chaos suite: `python -m chaos.run [--scenarios a,b|subset|all] [--models N] [--seed S]`.

Prints a table of the measures per scenario and ends with the summary line:
chaos: <N> scenarios, lost=<n>, false_green=<n>, missed_alerts=<n>, duplicate_alerts=<n>,
worst_push_recovery_s=<x>, worst_availability_pct=<x>
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import random
import re
import signal
import subprocess
import sys
import time
import urllib.request
from datetime import UTC, datetime

from chaos import measures
from chaos.cluster import ROOT, Stack
from chaos.load import Load
from chaos.sampler import Sampler
from chaos.scenarios import BY_NAME, FAULT_S, SCENARIOS, SUBSET, Context, Run, play
from chaos.seed import PROVIDER, PULSE_MODEL, PULSE_PROVIDER
from chaos.truth import Evidence, Timeline

PULSE_EVERY_S = 0.5
HEY_PATHS = ("/en/", "/api/v2/summary.json")
README_BEGIN, README_END = "<!-- chaos:begin -->", "<!-- chaos:end -->"


class Pulser:
    """Operator status changes on the pulse model, one every 0.5 s after a fault, to time live delivery."""

    def __init__(self, stack: Stack, sampler: Sampler) -> None:
        self.stack, self.sampler = stack, sampler
        self.count = 0
        self.posted: list[tuple[str, float]] = []

    def __call__(self, run: Run) -> None:
        deadline = run.fault_end + 15
        while time.time() < deadline:
            self.count += 1
            reason = f"pulse {self.count}"
            status = "degraded_performance" if self.count % 2 else "operational"
            request = urllib.request.Request(
                f"{self.stack.web}/api/v1/models/{PULSE_PROVIDER}/{PULSE_MODEL}/status/",
                data=json.dumps({"status": status, "reason": reason}).encode(),
                method="POST",
            )
            request.add_header("Content-Type", "application/json")
            request.add_header("Authorization", f"Token {self.stack.token}")
            try:
                with urllib.request.urlopen(request, timeout=5) as response:
                    response.read()
                self.posted.append((reason, time.time()))
            except OSError:
                pass
            arrived = self.sampler.record.pulses.get(reason, {})
            time.sleep(PULSE_EVERY_S)
            if len(arrived) == 2 or len(self.sampler.record.pulses.get(reason, {})) == 2:
                return


def run_hey(url: str, concurrency: int, rate: float) -> subprocess.Popen:
    """hey until interrupted (SIGINT at the fault's end: it stops and prints its report)."""
    command = ["hey", "-z", "10m", "-c", str(concurrency), "-q", str(rate), "-t", "10", url]
    return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)


def hey_figures(output: str, path: str = "") -> dict:
    """hey's counts, p99 and its failed requests ("failures": (count, what) per non-2xx status or error).

    hey reports no time for a failure, only how many of each kind there were over its whole run.
    """
    ok = total = 0
    section = ""
    p99 = None
    failures: list[tuple[int, str]] = []
    for line in output.splitlines():
        if line.startswith("Status code distribution"):
            section = "status"
        elif line.startswith("Error distribution"):
            section = "error"
        elif match := re.match(r"\s+99%+ in ([\d.]+) secs", line):
            p99 = float(match.group(1))
        elif section == "status" and (match := re.match(r"\s+\[(\d+)\]\s+(\d+) responses", line)):
            total += int(match.group(2))
            if match.group(1).startswith("2"):
                ok += int(match.group(2))
            else:
                failures.append((int(match.group(2)), f"status {match.group(1)}"))
        elif section == "error" and (match := re.match(r"\s+\[(\d+)\]\s*(.*)", line)):
            total += int(match.group(1))
            failures.append((int(match.group(1)), match.group(2).strip()[:160]))
    return {"ok": ok, "total": total, "p99_s": p99, "path": path, "failures": failures}


def model_statuses(stack: Stack) -> list[str]:
    """Every chaos model's shown status, following the list's pages (100 a page)."""
    statuses, url = [], f"{stack.web}/api/v1/models/?provider={PROVIDER}"
    while url:
        with urllib.request.urlopen(url, timeout=10) as response:
            document = json.load(response)
        statuses += [item["status"]["status"] for item in document["results"]]
        url = document.get("next")
    return statuses


def wait_operational(stack: Stack, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            statuses = model_statuses(stack)
            if len(statuses) == stack.models and set(statuses) == {"operational"}:
                return True
        except (OSError, ValueError):
            pass
        time.sleep(1)
    return False


def settle(timeline: Timeline, started: float) -> None:
    """Let what was spooled, queued or retried land (10 s), and every confirmed outage's alerts arrive: until
    its alerts' deadline (measures.alert_deadline: the recovery's evidence, a planner run and the delivery)."""
    until = time.time() + 10
    while time.time() < until:
        evidence = Evidence(timeline.requests(started - 30))
        confirmed = [
            w
            for w in timeline.windows
            if evidence.nth_after("failed", w.model, w.start, measures.FAILURES_TO_CONFIRM, before=w.end) is not None
        ]
        until = max([until, *(measures.alert_deadline(w, evidence) for w in confirmed)])
        time.sleep(min(3.0, max(0.0, until - time.time())))


def stored_results(stack: Stack, since: float) -> dict[str, list[float]]:
    rows = stack.sql(
        "SELECT m.slug, extract(epoch from r.time)::float8 FROM collectors_checkresult r "
        "JOIN monitoring_aimodel m ON m.id = r.model_id JOIN monitoring_provider p ON p.id = m.provider_id "
        f"WHERE p.slug = '{PROVIDER}' AND r.time >= to_timestamp({since - 30}) ORDER BY 2"
    )
    stored: dict[str, list[float]] = {}
    for model, at in rows:
        stored.setdefault(model, []).append(at)
    return stored


def received_alerts(stack: Stack) -> list[dict]:
    alerts = []
    for request in stack.receiver.requests:
        document = request.json()
        data = document.get("data", {})
        model = data.get("model", {})
        if model.get("provider") != PROVIDER:
            continue
        kind = {"model.alert": "outage", "model.recovery": "recovery"}.get(document.get("type"), document.get("type"))
        if kind == "outage" and data.get("to_status") not in ("partial_outage", "major_outage"):
            kind = f"alert to {data.get('to_status')}"
        at = datetime.fromisoformat(data["at"]).timestamp() if data.get("at") else time.time()
        alerts.append({"model": model["slug"], "kind": kind, "at": at, "id": request.headers.get("webhook-id")})
    return alerts


def fmt(value, digits: int = 1) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return "never" if math.isinf(value) else f"{value:.{digits}f}"
    return str(value)


def table(results: list[measures.Result]) -> str:
    header = (
        "| scenario | answered | lost | in flight | readings | false green | missed alerts | duplicate alerts "
        "| push recovery s | availability % (target) | p99 ms | time to unknown s |"
    )
    lines = [header, "|" + "---|" * 12]
    for r in results:
        target = " (≥99.9)" if r.availability_target else ""
        lines.append(
            f"| {r.name} | {r.answered} | {r.lost} | {r.in_flight} | {r.readings} | {r.false_green} "
            f"| {r.missed_alerts} | {r.duplicate_alerts} | {fmt(r.push_recovery_s)} "
            f"| {fmt(r.availability_pct, 2)}{target} | {fmt(r.p99_ms, 0)} | {fmt(r.time_to_unknown_s)} |"
        )
    return "\n".join(lines)


def summary(results: list[measures.Result]) -> str:
    # A scenario after which no pulse arrived at all counts as never recovered.
    worst_push = max((math.inf if r.push_recovery_s is None else r.push_recovery_s for r in results), default=0.0)
    targeted = [r.availability_pct for r in results if r.availability_target and r.availability_pct is not None]
    worst_availability = min(targeted, default=100.0)
    return (
        f"chaos: {len(results)} scenarios, lost={sum(r.lost for r in results)}, "
        f"false_green={sum(r.false_green for r in results)}, missed_alerts={sum(r.missed_alerts for r in results)}, "
        f"duplicate_alerts={sum(r.duplicate_alerts for r in results)}, worst_push_recovery_s={worst_push:.1f}, "
        f"worst_availability_pct={worst_availability:.2f}"
    )


def execute(
    names: list[str],
    models: int,
    seed: int,
    ws: int = 0,
    sse: int = 0,
    hey_rate: float = 20,
    keep: bool = False,
    fault_seconds: float = FAULT_S,
) -> tuple[list[measures.Result], dict]:
    stack = Stack(models=models, seed=seed, keep=keep)
    load = None
    sampler = None
    try:
        stack.start()
        started = time.time()
        timeline = Timeline(stack.simulator)
        if not wait_operational(stack, timeout=90):
            raise RuntimeError("the models did not all turn operational:\n" + stack.log_tail("worker1"))
        sampler = Sampler(stack.web, models)
        sampler.start()
        if ws or sse:
            load = Load(stack, ws, sse)
        rng = random.Random(seed)
        ctx = Context(stack, timeline, rng, all_unknown=sampler.all_unknown, fault_seconds=fault_seconds)
        pulser = Pulser(stack, sampler)
        runs: list[tuple[Run, object, list[dict]]] = []
        for name in names:
            scenario = BY_NAME[name]
            # A scenario starts from every model operational: the last one's faults may have made some look down.
            if not wait_operational(stack, timeout=90):
                print(f"chaos: not every model was operational before {name}", file=sys.stderr)
            sampler.take()
            heys: list[subprocess.Popen] = []

            def fault_with_load(ctx: Context, run: Run, fault=scenario.fault, heys=heys):
                for path in HEY_PATHS:
                    heys.append(run_hey(stack.web + path, 2, hey_rate))
                try:
                    fault(ctx, run)
                finally:
                    for process in heys:
                        process.send_signal(signal.SIGINT)

            run = play(ctx, dataclasses.replace(scenario, fault=fault_with_load), pulser)
            hey = []
            for process, path in zip(heys, HEY_PATHS, strict=True):
                out, _ = process.communicate(timeout=120)
                hey.append(hey_figures(out, path))
            runs.append((run, sampler.take(), hey))
            print(f"chaos: {name} done", file=sys.stderr, flush=True)
        settle(timeline, started)
        evidence = Evidence(timeline.requests(started - 30))
        stored = stored_results(stack, started)
        alerts = received_alerts(stack)
        answered = evidence.times
        model_names = sorted(answered)
        results = []
        for run, record, hey in runs:
            result = measures.Result(run.name, availability_target=run.availability_target)
            result.answered, result.lost, result.in_flight = measures.lost_results(run, answered, stored)
            result.readings = len(record.readings)
            missed, duplicates, notes = measures.alerts(run.windows, evidence, alerts)
            false_alarms = measures.false_alarms(timeline.windows, alerts, run.begin, run.end, evidence)
            if false_alarms:
                notes.append(f"{len(false_alarms)} outage alerts about models that were up (made to look down)")
            by_reader = measures.false_greens(record, timeline.windows, evidence, model_names, run.end)
            result.false_green = sum(map(len, by_reader.values()))
            for (reader, model), moments in sorted(by_reader.items())[:8]:
                notes.append(
                    f"false green: {reader} showed {model} operational {len(moments)} times, "
                    f"{min(moments) - run.fault_start:+.1f} to {max(moments) - run.fault_start:+.1f} s from the fault"
                )
            result.missed_alerts, result.duplicate_alerts = missed, duplicates
            result.push_recovery_s = measures.push_recovery(run, pulser.posted, record)
            if result.push_recovery_s is None or result.push_recovery_s > 5:
                notes += measures.pulse_arrivals(run, pulser.posted, record)
            if (
                result.push_recovery_s is None
                or result.push_recovery_s > 5
                or any(reader == "websocket" for reader, _ in by_reader)
            ):
                notes += measures.live_events(record, run)
            notes += measures.sampler_lag(record, run)
            result.availability_pct, result.p99_ms, result.requests = measures.availability(record, run, hey)
            notes += measures.failed_reads(record, run, hey)
            unknown = measures.time_to_unknown(run, record, models)
            if unknown is not None:
                result.time_to_unknown_s = max(unknown.values())
                notes.append("unknown after (s): " + ", ".join(f"{k} {fmt(v)}" for k, v in unknown.items()))
            result.notes = "; ".join(notes + run.notes)
            results.append(result)
        info = {"models": models, "seed": seed, "ws": ws, "sse": sse, "load": load.report() if load else None}
        return results, info
    finally:
        if load is not None:
            load.close()
        if sampler is not None:
            sampler.stop()
        for proxy in getattr(locals().get("ctx"), "proxies", {}).values():
            proxy.stop()
        stack.close()


def write_readme(text: str) -> None:
    readme = ROOT / "README.md"
    content = readme.read_text()
    if README_BEGIN in content:
        before, rest = content.split(README_BEGIN, 1)
        after = rest.split(README_END, 1)[1]
        content = before + README_BEGIN + "\n" + text + "\n" + README_END + after
    readme.write_text(content)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scenarios", default="all", help="comma-separated names, 'subset' or 'all'")
    parser.add_argument("--models", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--ws", type=int, default=1000, help="WebSocket clients held open for the whole run")
    parser.add_argument("--sse", type=int, default=200, help="SSE clients held open for the whole run")
    parser.add_argument("--hey-rate", type=float, default=20, help="requests/s per hey worker (2 workers, 2 URLs)")
    parser.add_argument("--fault-seconds", type=float, default=FAULT_S, help="how long a timed fault lasts")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder (logs) afterwards")
    parser.add_argument("--readme", action="store_true", help="write the table into README.md")
    args = parser.parse_args(argv)
    names = {"all": [s.name for s in SCENARIOS], "subset": SUBSET}.get(args.scenarios) or args.scenarios.split(",")
    unknown = [n for n in names if n not in BY_NAME]
    if unknown:
        parser.error(f"unknown scenarios: {', '.join(unknown)} (choose among {', '.join(BY_NAME)})")
    began = time.monotonic()
    results, info = execute(
        names, args.models, args.seed, args.ws, args.sse, args.hey_rate, args.keep, args.fault_seconds
    )
    elapsed = time.monotonic() - began
    text = table(results)
    notes = [f"- {r.name}: {r.notes}" for r in results if r.notes]
    heading = (
        f"Measured {datetime.now(UTC):%Y-%m-%d %H:%M} UTC: {info['models']} models every 10 s, seed {info['seed']}, "
        f"{info['ws']} WebSocket and {info['sse']} SSE clients, hey at {4 * args.hey_rate:g} req/s on the page "
        f"and summary.json during each fault, timed faults {args.fault_seconds:g} s; {elapsed / 60:.1f} min "
        f"(`python -m chaos.run --scenarios {args.scenarios} --models {args.models} --ws {args.ws} --sse {args.sse}"
        f"{'' if args.fault_seconds == FAULT_S else f' --fault-seconds {args.fault_seconds:g}'}`)."
    )
    if info["load"]:
        heading += f" Live clients: {json.dumps(info['load'])}."
    line = summary(results)
    output = "\n".join([heading, "", text, *([""] + notes if notes else []), "", line])
    if args.readme:
        write_readme(output)
    print(output)
    return 0


if __name__ == "__main__":
    sys.exit(main())
