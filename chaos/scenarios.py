"""The faults, one scenario each. Every scenario runs the same script around its own fault:

    begin ── PRE_S ── fault start ── (the fault) ── fault end ── POST_S ── end

and changes two models' true state (picked by the seed): one is down from the scenario's beginning and
comes back 10 s into the fault; the other goes down 5 s into the fault and comes back 15 s after it.
"""

from __future__ import annotations

import random
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from chaos.cluster import Stack
from chaos.proxy import ProxyProcess
from chaos.seed import INTERVAL_S
from chaos.truth import Timeline, Window, pick_models

PRE_S = 20.0  # long enough for the rising model's outage to be confirmed (two failed probes) before the fault
FAULT_S = 30.0


@dataclass
class Context:
    stack: Stack
    timeline: Timeline
    rng: random.Random
    used: set[str] = field(default_factory=set)
    proxies: dict[str, ProxyProcess] = field(default_factory=dict)
    # Whether every reader has shown every model unknown since a moment (the sampler answers).
    all_unknown: Callable[[float], bool] = lambda since: False
    # How long a timed fault lasts (Redis, PostgreSQL, the network's three phases together; beat twice
    # this): 30 s in `make chaos`; the subset in `make test` uses less to stay within its budget.
    fault_seconds: float = FAULT_S

    @property
    def scale(self) -> float:
        return self.fault_seconds / FAULT_S


@dataclass
class Run:
    """What happened in one scenario, in epoch seconds: what the measures are taken against."""

    name: str
    begin: float
    fault_start: float = 0.0
    fault_end: float = 0.0
    end: float = 0.0
    kills: list[float] = field(default_factory=list)  # moments a process holding probes was SIGKILLed
    windows: list[Window] = field(default_factory=list)
    collectors_stopped: float | None = None
    availability_target: bool = False  # the 99.9 % target applies to this fault
    push_measured: bool = True
    notes: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Scenario:
    name: str
    title: str
    fault: Callable[[Context, Run], None]  # starts at fault_start, returns once the fault has ended
    availability_target: bool
    fault_s: float = 30.0  # how long the falling model's window reaches past the fault start (at FAULT_S)
    prepare: Callable[[Context], None] | None = None
    post_s: float = 10.0


def _sleep_until(moment: float) -> None:
    while (left := moment - time.time()) > 0:
        time.sleep(min(left, 0.5))


# -- the faults ----------------------------------------------------------------------------------


def worker_kill(ctx: Context, run: Run) -> None:
    """SIGKILL a worker in the middle of its probing round; start a new one 5 s later."""
    victim = ctx.stack.workers()[0]
    time.sleep(ctx.rng.uniform(0.0, 3.0))  # somewhere in the round (rounds last 10 s, probes are always running)
    run.kills.append(time.time())
    ctx.stack.kill(victim)
    time.sleep(5)
    ctx.stack.start_worker(victim)


def redis_kill(ctx: Context, run: Run) -> None:
    ctx.stack.kill("redis")
    time.sleep(ctx.fault_seconds)
    ctx.stack.start_redis()


def redis_freeze(ctx: Context, run: Run) -> None:
    ctx.stack.signal("redis", signal.SIGSTOP)
    try:
        time.sleep(ctx.fault_seconds)
    finally:
        ctx.stack.signal("redis", signal.SIGCONT)


def postgres_stop(ctx: Context, run: Run) -> None:
    ctx.stack.pg.stop("fast")
    time.sleep(ctx.fault_seconds)
    ctx.stack.pg.start()


def postgres_freeze(ctx: Context, run: Run) -> None:
    frozen = ctx.stack.pg_freeze()
    try:
        time.sleep(ctx.fault_seconds)
    finally:
        ctx.stack.pg_thaw(frozen)


def beat_down(ctx: Context, run: Run) -> None:
    ctx.stack.stop("beat")
    time.sleep(2 * ctx.fault_seconds)
    ctx.stack.start_beat()


def web_restart(ctx: Context, run: Run) -> None:
    ctx.stack.kill("web")
    ctx.stack.start_web()


def _network(proxy: ProxyProcess, seconds: float) -> None:
    """10 s of 2 s latency, 10 s of dropped connections, 10 s of half-open sockets (at 30 s)."""
    proxy.latency_s = 2.0
    for mode in ("latency", "drop", "blackhole"):
        proxy.set_mode(mode)
        time.sleep(seconds / 3)
    proxy.set_mode("pass")


def _provider_proxy(ctx: Context) -> None:
    """Point every model at the simulator through a fault proxy (the endpoint is read at each claim)."""
    proxy = ctx.proxies.get("provider")
    if proxy is None:
        proxy = ctx.proxies["provider"] = ProxyProcess("127.0.0.1", ctx.stack.simulator_port).start()
    ctx.stack.sql(
        f"UPDATE monitoring_aimodel SET endpoint = 'http://127.0.0.1:{proxy.port}/v1' "
        "WHERE provider_id = (SELECT id FROM monitoring_provider WHERE slug = 'chaos')"
    )


def provider_network(ctx: Context, run: Run) -> None:
    _network(ctx.proxies["provider"], ctx.fault_seconds)


def _database_proxy(ctx: Context) -> None:
    """Restart the web process with its database behind a fault proxy (before the fault: not measured)."""
    proxy = ctx.proxies.get("database")
    if proxy is None:
        proxy = ctx.proxies["database"] = ProxyProcess("127.0.0.1", ctx.stack.pg.port).start()
    ctx.stack.database_url_for_web = f"postgres://postgres@127.0.0.1:{proxy.port}/aistatus"
    ctx.stack.stop("web")
    ctx.stack.start_web()


def database_network(ctx: Context, run: Run) -> None:
    _network(ctx.proxies["database"], ctx.fault_seconds)


def collectors_stopped(ctx: Context, run: Run) -> None:
    """Stop every worker and beat; start them again once every reader shows every model `unknown`.

    At least 3 intervals (nothing can be unknown sooner), at most 3 intervals plus 30 s.
    """
    names = [*ctx.stack.workers(), "beat"]
    for name in names:
        ctx.stack.stop(name)
    run.collectors_stopped = time.time()
    earliest = run.collectors_stopped + 3 * INTERVAL_S
    latest = earliest + 30
    while time.time() < latest and not (time.time() >= earliest and ctx.all_unknown(run.collectors_stopped)):
        time.sleep(0.5)
    for name in names:
        if name == "beat":
            ctx.stack.start_beat()
        else:
            ctx.stack.start_worker(name)


SCENARIOS = [
    Scenario("worker_kill", "worker SIGKILLed mid-round", worker_kill, True, fault_s=25),
    Scenario("redis_kill", "Redis killed 30 s", redis_kill, True),
    Scenario("redis_freeze", "Redis frozen (SIGSTOP) 30 s", redis_freeze, True),
    Scenario("postgres_stop", "PostgreSQL stopped 30 s", postgres_stop, False),
    Scenario("postgres_freeze", "PostgreSQL frozen (SIGSTOP) 30 s", postgres_freeze, False),
    Scenario("beat_down", "beat down 60 s", beat_down, True, fault_s=40),
    Scenario("web_restart", "web process killed and restarted", web_restart, False, fault_s=20),
    Scenario(
        "provider_network", "worker <-> provider proxy faults 30 s", provider_network, True, prepare=_provider_proxy
    ),
    Scenario("database_network", "web <-> database proxy faults 30 s", database_network, True, prepare=_database_proxy),
    # The falling model goes down 5 s after the stop and is up again before probing resumes: nobody can
    # know, so every reader must say unknown rather than operational.
    Scenario("collectors_stopped", "every collector stopped", collectors_stopped, False, fault_s=25),
]
BY_NAME = {s.name: s for s in SCENARIOS}
SUBSET = ["worker_kill", "redis_kill", "collectors_stopped"]


def play(ctx: Context, scenario: Scenario, pulse: Callable[[Run], None]) -> Run:
    run = Run(scenario.name, begin=time.time(), availability_target=scenario.availability_target)
    if scenario.prepare is not None:
        scenario.prepare(ctx)
        run.begin = time.time()
    rising, falling = pick_models(ctx.rng, ctx.stack.models, 2, ctx.used)
    ctx.used |= {rising, falling}
    run.fault_start = run.begin + PRE_S
    run.windows.append(ctx.timeline.add(rising, run.begin, run.fault_start + 10))
    falling_end = run.fault_start + scenario.fault_s * ctx.scale + 15
    run.windows.append(ctx.timeline.add(falling, run.fault_start + 5, falling_end))
    _sleep_until(run.fault_start)
    run.fault_start = time.time()
    scenario.fault(ctx, run)
    run.fault_end = time.time()
    pulse(run)  # live delivery after the fault, timed; returns after POST_S
    _sleep_until(run.fault_end + scenario.post_s)
    run.end = time.time()
    # A piece that did not come back (it failed to start again) would make later figures meaningless.
    for name, process in ctx.stack.processes.items():
        if process.poll() is not None:
            run.notes.append(f"{name} exited with code {process.returncode}: see {ctx.stack.root / name}.log")
    return run
