"""Read replicas: settings refused at start-up, only public reads routed, failover proven on real streaming replicas.

The cluster tests run the real ASGI server against their own primary and two streaming replicas
(regions us and eu, see the `replication` fixture): a paused replay, a replica stopped under load,
two regions, a stray server that is no standby, and the primary stopped.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
import uuid

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.db import transaction
from django.db.models import Max
from django.test import RequestFactory

from aistatus import replica_monitor
from aistatus.db_router import ReplicaRouter
from aistatus.read_routing import READ_YOUR_WRITES_COOKIE, is_public_read
from aistatus.replica_monitor import DOWN, LAGGING, OK, ReplicaMonitor
from aistatus.replica_settings import MaxLag, ReplicaSetting, parse_max_lag, parse_replicas
from monitoring.models import StatusChange
from publishing.read_scope import public_read, public_reads
from publishing.snapshot import content_mark
from tests import pg_cluster
from tests.servers import ROOT, serve

PRIMARY_URL = "postgres://postgres@db.example:5432/aistatus"
# A public read that goes to the database on every request (the pages and the model list come from the snapshot).
HISTORY = "/api/v1/models/openai/gpt-4o/history/"


# -- settings --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("regional", "plain", "message"),
    [
        (["eu"], [], "DATABASE_REPLICAS: 'eu' is not region=url"),
        (["eu=postgres://replica:port/aistatus"], [], "DATABASE_REPLICAS: 'postgres://replica:port/aistatus'"),
        (["eu=mysql://replica/aistatus"], [], "is not a PostgreSQL URL"),
        ([], ["postgres://replica:5432/"], "DATABASE_REPLICA_URLS: 'postgres://replica:5432/' names no database"),
        (["eu=postgres://postgres@db.example:5432/aistatus"], [], "DATABASE_REPLICAS: 'postgres://postgres@db"),
        ([], ["postgres://other@DB.example/elsewhere"], "points at the primary itself"),
        (["eu=postgres://r1/a", "us=postgres://r1:5432/a"], [], "listed twice"),
    ],
)
def test_a_replica_setting_that_does_not_parse_or_names_the_primary_is_refused(regional, plain, message):
    with pytest.raises(ImproperlyConfigured, match=re.escape(message)):
        parse_replicas(regional, plain, PRIMARY_URL)


def test_replicas_keep_their_regions_and_plain_urls_have_none():
    replicas = parse_replicas(["eu=postgres://r1/a", "us = postgres://r2/a"], ["postgres://r3/a"], PRIMARY_URL)
    assert [(r.alias, r.region, r.setting) for r in replicas] == [
        ("replica1", "eu", "DATABASE_REPLICAS"),
        ("replica2", "us", "DATABASE_REPLICAS"),
        ("replica3", "", "DATABASE_REPLICA_URLS"),
    ]


def test_max_lag_takes_a_time_a_size_or_both():
    assert parse_max_lag("2s,16MB") == MaxLag(bytes=16 * 1024**2, seconds=2.0)
    assert parse_max_lag("500ms") == MaxLag(bytes=0, seconds=0.5)
    assert parse_max_lag("65536") == MaxLag(bytes=65536, seconds=0.0)
    with pytest.raises(ImproperlyConfigured, match="REPLICA_MAX_LAG"):
        parse_max_lag("soon")


def test_the_process_refuses_to_start_with_a_replica_that_is_the_primary():
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "aistatus.settings", "SECRET_KEY": "x"}
    env.update(
        {"DATABASE_URL": "postgres://postgres@127.0.0.1:5999/a", "DATABASE_REPLICAS": "eu=postgres://127.0.0.1:5999/b"}
    )
    done = subprocess.run([sys.executable, "manage.py", "check"], cwd=ROOT, env=env, capture_output=True, text=True)
    assert done.returncode != 0
    assert "DATABASE_REPLICAS: 'postgres://127.0.0.1:5999/b' points at the primary itself" in done.stderr


# -- choosing a database ---------------------------------------------------------------------------


def monitor_of(*replicas: tuple[str, str, str, float | None], region: str = "eu") -> ReplicaMonitor:
    """A monitor whose measurements are set by hand: (region, state, round trip ms, sequence) per replica."""
    settings = [
        ReplicaSetting(f"replica{i}", r[0], "postgres://r/a", "DATABASE_REPLICAS") for i, r in enumerate(replicas, 1)
    ]
    monitor = ReplicaMonitor(settings, region, MaxLag(0, 2.0), autostart=False)
    for health, (_, state, round_trip, sequence) in zip(monitor.replicas, replicas, strict=True):
        health.state, health.round_trip_ms, health.sequence = state, round_trip, sequence
    monitor._reorder()
    return monitor


def test_the_same_region_is_read_first_then_other_regions_by_round_trip_then_the_primary():
    monitor = monitor_of(
        ("us", OK, 5, 9), ("eu", OK, 9, 9), ("eu", OK, 3, 9), ("asia", OK, 1, 9), ("eu", LAGGING, 1, 9)
    )
    assert [r.alias for r in monitor.order] == ["replica3", "replica2", "replica4", "replica1"]
    assert monitor.choose(frozenset(), 9) == "replica3"
    assert monitor.choose(frozenset({"replica3"}), 9) == "replica2"
    assert monitor.choose(frozenset({"replica3", "replica2"}), 9) == "replica4"
    assert monitor.choose(frozenset({"replica1", "replica2", "replica3", "replica4"}), 9) == "default"


def test_a_replica_holding_less_than_the_newest_sequence_seen_is_not_read():
    monitor = monitor_of(("eu", OK, 1, 41), ("us", OK, 9, 42))
    assert monitor.choose(frozenset(), 42) == "replica2"
    assert monitor.choose(frozenset(), 43) == "default"


def test_a_replica_whose_read_failed_is_out_at_once_and_retried_after_a_backoff():
    monitor = monitor_of(("eu", OK, 1, 0), ("us", OK, 9, 0))
    monitor.report_failure("replica1")
    assert monitor.replicas[0].state == DOWN and monitor.choose(frozenset(), 0) == "replica2"
    assert 0 < monitor.replicas[0].retry_at - time.monotonic() <= replica_monitor.BACKOFF_FIRST


def test_lag_in_seconds_counts_from_when_the_primary_first_passed_the_replica():
    monitor = monitor_of(("eu", OK, 1, 0))
    now = time.monotonic()
    monitor.primary.history.extend([(now - 5, 100), (now - 3, 200), (now - 1, 300)])
    assert monitor._behind_for(300) == 0.0
    assert 2.9 < monitor._behind_for(150) < 3.5  # the primary moved past 150 at now - 3
    assert 4.9 < monitor._behind_for(50) < 5.5


@pytest.fixture
def routed(monkeypatch, renew_snapshot):
    monitor = monitor_of(("eu", OK, 1, 0))
    monkeypatch.setattr(replica_monitor, "_monitor", monitor)
    monkeypatch.setattr("django.conf.settings.REPLICAS", ["set"], raising=False)
    return ReplicaRouter()


def test_the_admin_shows_each_replicas_region_state_lag_and_share_of_reads(routed, client, staff):
    monitor = replica_monitor._monitor
    monitor.replicas[0].lag_bytes, monitor.replicas[0].replay_age_seconds = 4096, 1.5
    monitor.choose(frozenset(), 0)
    client.force_login(staff)
    page = client.get("/admin/replicas/").content.decode()
    assert '<tr data-replica="replica1"><td>replica1</td><td>eu</td><td>ok</td>' in page
    assert "<td>4096</td>" in page and "<td>1.5</td>" in page and "<td>100 %</td>" in page
    client.logout()
    assert client.get("/admin/replicas/").status_code == 302  # staff only


def test_only_reads_inside_a_public_read_scope_go_to_a_replica(routed, transactional_db):
    assert routed.db_for_read(None) == "default"
    with public_reads() as scope:
        assert routed.db_for_read(None) == "replica1" and scope.alias == "replica1"
    with transaction.atomic(), public_reads():
        assert routed.db_for_read(None) == "default"  # inside a transaction on the primary
    assert routed.db_for_write(None) == "default"
    assert routed.allow_migrate("replica1", "monitoring") is False


def test_a_public_read_moves_on_when_its_replica_is_behind_and_ends_on_the_primary(routed):
    seen = []

    def read() -> str:
        alias = routed.db_for_read(None)
        seen.append(alias)
        return alias

    assert public_read(read, accept=lambda alias: alias == "default") == "default"
    assert seen == ["replica1", "default"]


def test_the_snapshots_content_mark_is_read_where_the_router_sends_it(db, settings):
    # Its raw SQL would otherwise always read the primary: never a replica, and nothing with the primary down.
    asked = []

    class Recording:
        def db_for_read(self, model, **hints) -> str:
            asked.append(model)
            return "default"

    settings.DATABASE_ROUTERS = [Recording()]
    mark = content_mark()
    assert asked == [StatusChange]
    assert mark[0] == (StatusChange.objects.aggregate(m=Max("id"))["m"] or 0)


@pytest.mark.parametrize(
    ("method", "path", "extra", "public"),
    [
        ("get", "/en/", {}, True),
        ("get", "/api/v1/models/", {}, True),
        ("head", "/badge/openai/gpt-4o.svg", {}, True),
        ("post", "/api/v1/models/", {}, False),
        ("get", "/api/v1/models/", {"HTTP_AUTHORIZATION": "Token abc"}, False),
        ("get", "/en/", {"HTTP_COOKIE": "sessionid=abc"}, False),
        ("get", "/en/", {"HTTP_COOKIE": f"{READ_YOUR_WRITES_COOKIE}=1"}, False),
        ("get", "/admin/", {}, False),
    ],
)
def test_only_anonymous_safe_requests_outside_the_admin_are_public_reads(method, path, extra, public):
    request = getattr(RequestFactory(), method)(path, **extra)
    assert is_public_read(request) is public


def test_a_signed_in_users_write_sends_their_reads_to_the_primary_for_a_while(client, staff, settings):
    settings.READ_YOUR_WRITES_SECONDS = 30
    response = client.post("/admin/login/?next=/admin/", {"username": "alice", "password": "pw-alice-123"})
    assert response.status_code == 302
    cookie = response.cookies[READ_YOUR_WRITES_COOKIE]
    assert cookie["max-age"] == 30 and cookie["httponly"]
    assert READ_YOUR_WRITES_COOKIE not in client.get("/en/").cookies  # reads set nothing


def test_an_anonymous_write_sets_no_read_your_writes_cookie(client, db):
    response = client.post("/admin/login/?next=/admin/", {"username": "nobody", "password": "wrong"})
    assert READ_YOUR_WRITES_COOKIE not in response.cookies


# -- on real streaming replicas ---------------------------------------------------------------------


def fetch(url: str, timeout: float = 10) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def page_status(base: str, slug: str) -> str | None:
    match = re.search(rf'data-model="{re.escape(slug)}" data-status="(\w+)"', fetch(f"{base}/en/")[1].decode())
    return match[1] if match else None


def summary_status(base: str, name: str) -> str | None:
    components = json.loads(fetch(f"{base}/api/v2/summary.json")[1])["components"]
    return next((c["status"] for c in components if c["name"] == name), None)


def readyz(base: str) -> tuple[int, dict]:
    status, body = fetch(f"{base}/readyz")
    return status, json.loads(body)


def public_reads_by(base: str) -> dict[str, int]:
    text = fetch(f"{base}/metrics")[1].decode()
    return {m[1]: int(m[2]) for m in re.finditer(r'aistatus_public_reads_total\{database="(\w+)",[^}]*\} (\d+)', text)}


def wait_for(condition, timeout: float, what: str, interval: float = 0.05):
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        assert time.monotonic() < deadline, f"{what}: not within {timeout} s"
        time.sleep(interval)


def manage(replication, *args: str) -> str:
    from django.conf import settings

    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "aistatus.settings", "SECRET_KEY": "test-only-secret-key"}
    env.update({"DATABASE_URL": replication.primary.url(), "REDIS_URL": settings.REDIS_URL, "LOG_LEVEL": "WARNING"})
    done = subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    return done.stdout


def site_readers(cluster: pg_cluster.Cluster, application_name: str) -> int:
    sql = (
        f"SELECT count(*) FROM pg_stat_activity WHERE application_name = '{application_name}' AND datname = 'aistatus'"
    )
    return cluster.execute(sql)[0][0]


@pytest.fixture(scope="module")
def eu_site(replication, tmp_path_factory):
    """The site in region eu, with replicas in us and eu (replica1 = us, replica2 = eu)."""
    env = {
        "DATABASE_URL": replication.primary.url(),
        "DATABASE_REPLICAS": f"us={replication.us.url()},eu={replication.eu.url()}",
        "REGION": "eu",
        "CACHE_KEY_PREFIX": f"replicas-{uuid.uuid4().hex}",
        "LOG_LEVEL": "WARNING",
    }
    with serve(tmp_path_factory.mktemp("eu-site") / "uvicorn.log", **env) as base:
        yield base


def test_a_process_in_region_eu_reads_from_the_eu_replica(replication, eu_site):
    # The pages and the model list are answered from the snapshot, whose checks and builds read the database.
    for path in ["/en/", "/ko/", "/api/v1/models/", "/api/v2/summary.json", "/en/models/openai/gpt-4o/"]:
        assert fetch(f"{eu_site}{path}")[0] == 200, path
    assert public_reads_by(eu_site)["replica2"] >= 1
    # A model's history is read from the database on each request.
    before = public_reads_by(eu_site)
    for _ in range(4):
        assert fetch(f"{eu_site}{HISTORY}")[0] == 200
    assert site_readers(replication.eu, "aistatus@eu") >= 1
    assert site_readers(replication.us, "aistatus@eu") == 0
    reads = public_reads_by(eu_site)
    assert reads["replica2"] >= before["replica2"] + 4 and reads["replica1"] == 0
    status, body = readyz(eu_site)
    assert status == 200 and body["status"] == "ok"
    assert [(r["alias"], r["region"], r["state"]) for r in body["replicas"]] == [
        ("replica1", "us", OK),
        ("replica2", "eu", OK),
    ]
    assert body["replicas"][1]["lag_bytes"] is not None and body["replicas"][1]["read_share"] > 0.5


def test_with_the_replay_paused_a_status_change_shows_within_a_second_and_readyz_names_the_replica(
    replication, eu_site
):
    assert page_status(eu_site, "openai/gpt-4o") == "unknown"
    replication.eu.execute("SELECT pg_wal_replay_pause()")
    replication.us.execute("SELECT pg_wal_replay_pause()")
    try:
        manage(replication, "set_status", "openai/gpt-4o", "major_outage", "--reason", "replay paused check")
        changed = time.monotonic()
        wait_for(lambda: page_status(eu_site, "openai/gpt-4o") == "major_outage", 1.0, "/en/ shows the change")
        wait_for(
            lambda: summary_status(eu_site, "GPT-4o") == "major_outage", 1.0 - (time.monotonic() - changed), "summary"
        )
        # The replicas still do not have it: the page was read from the primary.
        assert replication.eu.execute(
            "SELECT count(*) FROM monitoring_statuschange WHERE reason = 'replay paused check'"
        ) == [(0,)]

        # Both replicas are paused; either may be judged lagging first, so wait for the eu one by name.
        def eu_lagging() -> list[str]:
            problems = readyz(eu_site)[1].get("replica_problems") or []
            return [p for p in problems if p.startswith("replica2 (eu) lagging")]

        assert wait_for(eu_lagging, 10, "readyz names the lagging replica")
        assert readyz(eu_site)[0] == 200
        assert (
            'aistatus_replica_state{replica="replica2",region="eu",state="lagging"} 1'
            in fetch(f"{eu_site}/metrics")[1].decode()
        )
    finally:
        replication.eu.execute("SELECT pg_wal_replay_resume()")
        replication.us.execute("SELECT pg_wal_replay_resume()")
    wait_for(lambda: "replica_problems" not in readyz(eu_site)[1], 10, "the replicas catch up")


def hey(url: str, seconds: float, results: dict, clients: int = 64) -> None:
    command = ["hey", "-z", f"{seconds}s", "-c", str(clients), "-t", "20", url]
    done = subprocess.run(command, capture_output=True, text=True)
    codes = {int(m[1]): int(m[2]) for m in re.finditer(r"\[(\d+)\]\s+(\d+) responses", done.stdout)}
    errors = sum(int(m[1]) for m in re.finditer(r"\[(\d+)\]\s+Get ", done.stdout))
    results[url] = (codes, errors, done.stdout)


def test_a_replica_stopped_under_load_costs_no_request_and_is_read_again_once_back(replication, eu_site):
    results: dict = {}
    # The pages and the model list come from the snapshot; a model's history reads the database on each request.
    loads = [
        threading.Thread(target=hey, args=(f"{eu_site}{path}", 5, results, clients))
        for path, clients in (("/en/", 64), ("/api/v1/models/", 64), (HISTORY, 16))
    ]
    for load in loads:
        load.start()
    time.sleep(1.5)
    replication.eu.stop("fast")
    try:
        for load in loads:
            load.join()
        for url, (codes, errors, output) in results.items():
            total = sum(codes.values()) + errors
            failed = total - codes.get(200, 0)
            assert total > 100 and failed <= total * 0.001, f"{url}: {failed} of {total} failed\n{output}"
        status, body = readyz(eu_site)
        assert status == 200 and body["replicas"][1]["state"] == DOWN
        before = public_reads_by(eu_site)
        assert before["replica1"] > 0  # the us replica took over
    finally:
        replication.eu.start()
    wait_for(lambda: readyz(eu_site)[1]["replicas"][1]["state"] == OK, 15, "the eu replica is read again")
    for _ in range(10):
        assert fetch(f"{eu_site}{HISTORY}")[0] == 200
    assert public_reads_by(eu_site)["replica2"] >= before["replica2"] + 10
    assert site_readers(replication.eu, "aistatus@eu") >= 1


def test_a_server_that_is_no_standby_is_never_read_and_logged_once(replication, tmp_path):
    env = {
        "DATABASE_URL": replication.primary.url(),
        "DATABASE_REPLICAS": f"eu={replication.stray.url()}",
        "REGION": "eu",
        "CACHE_KEY_PREFIX": f"replicas-{uuid.uuid4().hex}",
        "LOG_LEVEL": "WARNING",
    }
    with serve(tmp_path / "uvicorn.log", **env) as base:
        for _ in range(5):
            assert fetch(f"{base}{HISTORY}")[0] == 200
        time.sleep(1.2)  # a few more checks
        status, body = readyz(base)
        assert status == 200 and body["replicas"][0]["state"] == "not_in_recovery"
        assert site_readers(replication.stray, "aistatus@eu") == 0
        reads = public_reads_by(base)
        assert reads["replica1"] == 0 and reads["primary"] >= 5
    assert (tmp_path / "uvicorn.log").read_text().count("is not in recovery") == 1


def test_with_the_primary_stopped_pages_answer_with_a_banner_statuses_go_unknown_and_all_recovers(replication, eu_site):
    # Every model has evidence from 20 s ago: it goes stale (3 intervals of 10 s) 10 s from now.
    manage(
        replication,
        "shell",
        "-c",
        "from datetime import timedelta; from django.utils import timezone;"
        "from monitoring.models import AIModel; from monitoring.transitions import StatusUpdate, record_statuses;"
        "at = timezone.now() - timedelta(seconds=20);"
        "record_statuses([StatusUpdate(m.pk, 'operational', reason='probe ok', checked=True, at=at)"
        " for m in AIModel.objects.filter(public=True)])",
    )
    wait_for(lambda: page_status(eu_site, "openai/gpt-4o-mini") == "operational", 2, "evidence shown")
    replication.primary.stop("fast")
    try:
        page = wait_for(
            lambda: (lambda r: r[0] == 200 and b"data-updates-paused-since" in r[1] and r)(fetch(f"{eu_site}/en/")),
            3,
            "the banner",
        )
        assert b"Updates paused since" in page[1]
        assert b"data-updates-paused-since" in fetch(f"{eu_site}/ja/")[1]
        assert fetch(f"{eu_site}/api/v1/models/")[0] == 200
        status, body = readyz(eu_site)
        assert status == 200 and body["status"] == "read-only" and body["message"] == "primary down, read-only"
        wait_for(lambda: page_status(eu_site, "openai/gpt-4o-mini") == "unknown", 15, "statuses go unknown")
        assert fetch(f"{eu_site}/en/")[0] == 200 and summary_status(eu_site, "GPT-4o mini") != "operational"
    finally:
        replication.primary.start()
    wait_for(lambda: b"data-updates-paused-since" not in fetch(f"{eu_site}/en/")[1], 10, "the banner goes")
    wait_for(lambda: readyz(eu_site)[1]["status"] == "ok", 10, "ready again")
    manage(replication, "set_status", "openai/gpt-4o-mini", "degraded_performance", "--reason", "back")
    wait_for(lambda: page_status(eu_site, "openai/gpt-4o-mini") == "degraded_performance", 1, "updates flow again")
