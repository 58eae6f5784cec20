"""Django's own request path: /healthz, a staff API page of 100 models, anonymous model reads, and the admin's list.

One uvicorn process serves this checkout, another a baseline tree whose aistatus/asgi.py is as of
`--baseline-ref` (Django's stock ASGI handler: a thread hop per synchronous middleware hook). Both
read one database seeded with the demo registry plus 1,000 models and a staff token. `hey -z
<duration> -c <connections>` measures each target on the baseline and then on this checkout, one
after another, so both see the same machine. Last, the admin's model list (1,000 models) is timed
in this process through Django's test client.

    .venv/bin/python bench/api_throughput.py [--duration 5] [--connections 64] [--baseline-ref e6df28b]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(Path(__file__).resolve().parent))
os.environ.setdefault("BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/aistatus_api_bench")
os.environ.setdefault("BENCH_REDIS_URL", "redis://127.0.0.1:6379/13")

from baseline_tree import make_tree  # noqa: E402
from common import bench_env, free_port, print_table, setup_django, stop_process, write_figures  # noqa: E402
from page_throughput import hey, serve  # noqa: E402

MODELS = 1000


def seed() -> str:
    """The demo registry, 1,000 more models and a staff user; returns the staff token."""
    from django.contrib.auth import get_user_model
    from django.core.management import call_command
    from rest_framework.authtoken.models import Token

    from demo.registry import seed_demo
    from monitoring.models import AIModel, Provider

    call_command("flush", interactive=False, verbosity=0)
    seed_demo()
    providers = [
        Provider.objects.create(name=f"Bench {i}", slug=f"bench-{i}", display_order=100 + i) for i in range(10)
    ]
    AIModel.objects.bulk_create(
        [AIModel(provider=providers[i % 10], name=f"bench-model-{i}", slug=f"m{i}") for i in range(MODELS)]
    )
    staff = get_user_model().objects.create_superuser("bench", "bench@example.com", "pw-bench-123")
    return Token.objects.create(user=staff).key


def time_admin_list(repeats: int) -> list[float]:
    """Milliseconds to render the admin's model list (its first page) with 1,000+ models."""
    from django.contrib.auth import get_user_model
    from django.test import Client, override_settings

    client = Client(HTTP_HOST="127.0.0.1")
    client.force_login(get_user_model().objects.get(username="bench"))
    timings = []
    # The list itself is timed: the two-factor gate (on when DEBUG is off) would send it to the code page.
    with override_settings(REQUIRE_2FA=False):
        for _ in range(repeats + 1):
            started = time.perf_counter()
            response = client.get("/admin/monitoring/aimodel/")
            timings.append((time.perf_counter() - started) * 1000)
            assert response.status_code == 200, response.status_code
    return timings[1:]  # the first fills template and URL caches


def _receiver():
    """An ASGI receive: the (empty) body, then a disconnect that never comes."""
    import asyncio

    sent: list[bool] = []

    async def receive() -> dict:
        if sent:
            await asyncio.Event().wait()
        sent.append(True)
        return {"type": "http.request", "body": b"", "more_body": False}

    return receive


def cpu_per_request(token: str, repeats: int) -> dict[str, dict[str, float]]:
    """CPU milliseconds per request (every thread of this process), Django's stock ASGI handler against
    the one-hop one, driven in-process without HTTP: a figure the machine's other load barely moves."""
    import asyncio

    from django.core.handlers.asgi import ASGIHandler

    from aistatus.request_path import OneHopHandler

    def scope(path: str, *headers: tuple[bytes, bytes]) -> dict:
        return {
            "type": "http", "method": "GET", "path": path, "query_string": b"", "root_path": "", "scheme": "http",
            "headers": [(b"host", b"127.0.0.1"), *headers], "server": ("127.0.0.1", 80), "client": ("127.0.0.1", 1),
        }  # fmt: skip

    async def run(app, request: dict, n: int) -> None:
        async def send(message: dict) -> None:
            if message["type"] == "http.response.start":
                assert message["status"] == 200, message

        for _ in range(n):
            await app(request, _receiver(), send)

    requests = {
        "/healthz": scope("/healthz"),
        "staff /api/v1/models/": scope("/api/v1/models/", (b"authorization", f"Token {token}".encode())),
    }
    out: dict[str, dict[str, float]] = {}
    for name, app in [("stock", ASGIHandler()), ("one hop", OneHopHandler(threads=8))]:
        for label, request in requests.items():
            n = repeats if label == "/healthz" else max(1, repeats // 20)
            asyncio.run(run(app, request, 3))
            started = time.process_time()
            asyncio.run(run(app, request, n))
            out.setdefault(label, {})[name] = (time.process_time() - started) * 1000 / n
    return out


class StatusWriter:
    """Writes status rows as collectors do (a batch a tenth of a second, each its own transaction), spread over
    every model at random, so that the kept list pages are dropped as often as real probing drops them."""

    def __init__(self, per_second: int) -> None:
        import threading

        self.per_second = per_second
        self.written = 0
        self.rate = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> StatusWriter:
        self._started = time.monotonic()
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        self.rate = self.written / (time.monotonic() - self._started)

    def _run(self) -> None:
        import random

        import psycopg

        with psycopg.connect(os.environ["DATABASE_URL"], autocommit=True) as conn:
            ids = [row[0] for row in conn.execute("SELECT model_id FROM monitoring_modelstatus")]
            batch = max(1, self.per_second // 10)
            while not self._stop.wait(0.1):
                chosen = random.sample(ids, min(batch, len(ids)))
                conn.execute(
                    "UPDATE monitoring_modelstatus SET last_checked_at = now(), last_latency_ms = random() * 500 "
                    "WHERE model_id = ANY(%s)",
                    [chosen],
                )
                self.written += len(chosen)


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=5.0, help="seconds per hey run")
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--baseline-ref", default="e6df28b", help="revision whose aistatus/asgi.py is the baseline")
    parser.add_argument("--writes", type=int, default=100, help="status rows written a second in the last run")
    parser.add_argument("--json", help="write the figures to this file")
    args = parser.parse_args(argv)
    if shutil.which("hey") is None:
        raise SystemExit("hey is not installed (apt-get install hey)")
    setup_django(migrate=True)
    token = seed()
    work = Path(tempfile.mkdtemp(prefix="api-bench-"))
    baseline_code = work / "baseline"
    make_tree(baseline_code, args.baseline_ref, ["aistatus/asgi.py"])
    env = {**bench_env(), "DEBUG": "0"}
    ports = {"baseline": free_port(), "now": free_port(), "not kept": free_port()}
    servers = {
        "baseline": serve(
            "aistatus.asgi:application", ports["baseline"], bench_env(baseline_code), work / "b.log", baseline_code
        ),
        "now": serve("aistatus.asgi:application", ports["now"], env, work / "now.log"),
        "not kept": serve(
            "aistatus.asgi:application", ports["not kept"], {**env, "API_READ_CACHE": "0"}, work / "nokeep.log"
        ),
    }
    auth = ["-H", f"Authorization: Token {token}"]
    targets = [
        ("/healthz", "/healthz", []),
        ("staff GET /api/v1/models/ (page of 100)", "/api/v1/models/", auth),
        ("anonymous GET /api/v1/models/", "/api/v1/models/", []),
        ("/api/v2/summary.json (edge)", "/api/v2/summary.json", []),
    ]
    figures: dict = {"runs": {}}
    rows = []
    try:
        for label, path, extra in targets:
            runs = {}
            for name in ("baseline", "now"):
                runs[name] = hey(f"http://127.0.0.1:{ports[name]}{path}", args.duration, args.connections, extra)
            figures["runs"][label] = runs
            ratio = runs["now"]["rps"] / runs["baseline"]["rps"] if runs["baseline"]["rps"] else float("nan")
            rows.append(
                [label, f"{runs['baseline']['rps']:,.0f}", f"{runs['now']['rps']:,.0f}", f"{ratio:.1f}x",
                 f"{runs['now']['p99_ms']:.0f} ms", runs["now"]["codes"]]
            )  # fmt: skip
        staff_url = f"http://127.0.0.1:{ports['now']}/api/v1/models/"
        kept = {
            "off": hey(f"http://127.0.0.1:{ports['not kept']}/api/v1/models/", args.duration, args.connections, auth),
            "on": figures["runs"]["staff GET /api/v1/models/ (page of 100)"]["now"],
        }
        with StatusWriter(args.writes) as writer:
            kept["on, writes"] = hey(staff_url, args.duration, args.connections, auth)
        kept["writes_per_second"] = writer.rate
        figures["staff_kept_reads"] = kept
    finally:
        for process in servers.values():
            stop_process(process)
    print_table(rows, ["target", "baseline req/s", "now req/s", "now/baseline", "now p99", "status codes"])
    print(
        f"staff list, kept reads off (API_READ_CACHE=0): {kept['off']['rps']:,.0f} req/s; on: {kept['on']['rps']:,.0f}"
        f" ({kept['on']['rps'] / kept['off']['rps']:.1f}x); on while {kept['writes_per_second']:,.0f} status rows/s"
        f" are written: {kept['on, writes']['rps']:,.0f} req/s, p99 {kept['on, writes']['p99_ms']:.0f} ms,"
        f" {kept['on, writes']['codes']}"
    )
    anon = figures["runs"]["anonymous GET /api/v1/models/"]["now"]["rps"]
    edge = figures["runs"]["/api/v2/summary.json (edge)"]["now"]["rps"]
    print(f"anonymous /api/v1/models/ at {anon / edge:.2f}x the edge's summary.json rate")
    cpu = cpu_per_request(token, 2000)
    figures["cpu_ms_per_request"] = cpu
    for label, by_handler in cpu.items():
        stock, one_hop = by_handler["stock"], by_handler["one hop"]
        print(
            f"CPU per request, {label}: stock handler {stock:.2f} ms, one hop {one_hop:.2f} ms ({stock / one_hop:.1f}x)"
        )
    admin = time_admin_list(7)
    figures["admin_list_ms"] = admin
    print(
        f"admin model list ({MODELS}+ models, first page): "
        f"median {statistics.median(admin):.0f} ms, max {max(admin):.0f} ms"
    )
    write_figures(args.json, figures)
    return figures


if __name__ == "__main__":
    main()
