"""Run every benchmark in sequence with its default sizes and print one summary table (`make bench`)."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import PYTHON, ROOT, bench_env, print_table  # noqa: E402

HERE = Path(__file__).resolve().parent


def run(script: str, args: list[str], figures: Path) -> dict[str, Any] | None:
    """Run one benchmark, its output streaming through; its figures, or None when it failed."""
    command = [PYTHON, str(HERE / script), *args, "--json", str(figures)]
    print(f"\n=== {' '.join([script, *args])}", flush=True)
    began = time.monotonic()
    done = subprocess.run(command, cwd=ROOT, env=bench_env(), check=False)
    print(f"=== {script}: {time.monotonic() - began:.0f} s, exit {done.returncode}", flush=True)
    if done.returncode != 0 or not figures.exists():
        return None
    return json.loads(figures.read_text())


def collector_rows(f: dict[str, Any]) -> list[list[str]]:
    raw = f.get("raw", {}).get("rate")
    rows = []
    if raw:
        rows.append(["raw aiohttp client vs simulator (no storage)", f"{raw:,.0f} checks/s", "", "", ""])
    for name, p in f.items():
        if not isinstance(p, dict) or "rate" not in p or name == "raw":
            continue
        against = f"{p['rate'] / raw:.2f} x raw" if raw else ""
        if "offered" in p:
            keeps_up = p["rate"] >= 0.95 * p["offered"] and p["lateness_max_s"] < 10
            rows.append([
                f"pipeline {name}: {p['models']:,} models every {p['models'] / p['offered']:.0f} s",
                f"{p['rate']:,.0f} checks/s, late {p['lateness_p50_s']:.1f}/{p['lateness_max_s']:.1f} s",
                against, f"{p['offered']:,.0f}/s offered", "met" if keeps_up else "NOT met",
            ])  # fmt: skip
        else:
            rows.append([f"pipeline {name}: {p['models']:,} models all due", f"{p['rate']:,.0f} checks/s", against,
                         "1,000 checks/s", "met" if p["rate"] >= 1000 else "NOT met"])  # fmt: skip
            rows.append([f"collector peak RSS ({name}, {p['models']:,} models)", f"{p['peak_rss_mb']:.0f} MB", "",
                         "< 200 MB", "met" if p["peak_rss_mb"] < 200 else "NOT met"])  # fmt: skip
    return rows


def ingest_rows(f: dict[str, Any]) -> list[list[str]]:
    rows = []
    ingest = f.get("ingest", {})
    if "insert_rows" in ingest:
        mine, text = ingest["insert_rows"], ingest["plain COPY"]
        binary = ingest.get("plain binary COPY")
        key = "median_batch_rows_per_s"
        rows.append([f"ingest {mine['rows']:,} results, storage.insert_rows",
                     f"{mine['rows_per_s']:,.0f} rows/s (batch median {mine[key]:,.0f})",
                     f"{mine[key] / text[key]:.2f} x text COPY"
                     + (f", {mine[key] / binary[key]:.2f} x binary COPY" if binary else ""),
                     "", ""])  # fmt: skip
        if "bulk_create" in ingest:
            b = ingest["bulk_create"]
            rows.append(["  baseline: ORM bulk_create", f"{b['rows_per_s']:,.0f} rows/s", "", "", ""])
    if "rollups" in f:
        r = f["rollups"]
        rows.append(["update_rollups over the ingested results", f"{r['seconds']:.1f} s", "", "", ""])
    label = f"{f.get('uptime_days', 90)}-day uptime, {f.get('uptime_models', 1000):,} models"
    for name, q in f.get("uptime", {}).items():
        if isinstance(q, dict) and "median_ms" in q:
            rows.append([f"{label}: {name}", f"{q['median_ms']:.0f} ms median", "",
                         "< 100 ms", "met" if q["median_ms"] < 100 else "NOT met"])  # fmt: skip
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller sizes, for trying the benchmarks out")
    parser.add_argument("--baseline-ref", metavar="REV",
                        help="also run the pipeline with the collector files of git revision REV")  # fmt: skip
    parser.add_argument("--no-celery", action="store_true", help="leave out the Celery worker + beat phase")
    args = parser.parse_args(argv)

    collector = ["--phases", "raw,backlog,steady" + ("" if args.no_celery else ",celery"), "--duration", "15"]
    ingest: list[str] = []
    if args.quick:
        collector = ["--phases", "raw,backlog,steady", "--models", "2000", "--steady-models", "3000",
                     "--interval", "10", "--duration", "8"]  # fmt: skip
        ingest = ["--rows", "100000", "--orm-rows", "20000", "--days", "30", "--runs", "5"]
    began = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="bench-") as tmp:
        if args.baseline_ref:
            baseline = Path(tmp) / "baseline"
            subprocess.run([PYTHON, str(HERE / "baseline_tree.py"), str(baseline), "--ref", args.baseline_ref],
                           cwd=ROOT, check=True)  # fmt: skip
            collector += ["--baseline-code", str(baseline)]
        results = {
            "collector": run("collector_throughput.py", collector, Path(tmp) / "collector.json"),
            "ingest": run("ingest_and_uptime.py", ingest, Path(tmp) / "ingest.json"),
        }
    rows = []
    if results["collector"]:
        rows += collector_rows(results["collector"])
    if results["ingest"]:
        rows += ingest_rows(results["ingest"])
    print(f"\n=== summary ({time.monotonic() - began:.0f} s; ratios are against baselines measured in the same run)")
    print_table(rows, ["benchmark", "measured", "against", "target", ""])
    failed = [name for name, figures in results.items() if figures is None]
    if failed:
        print(f"failed: {', '.join(failed)} (see their output above)")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
