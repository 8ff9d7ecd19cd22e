"""Scale and scrape: the real daemon, in its own process, probing N integrations once a minute
against the sandbox in another process over loopback HTTP.

- **Scale**: ``syncwatch run --config FILE`` (``scale_config``) and ``syncwatch sandbox`` are
  started; after a warm-up (the number of probes in flight has settled: the connector's p95 is
  45 s) a window is measured between two scrapes of ``/metrics``, as Prometheus would scrape it
  at its default one-minute interval. In the window: the daemon's CPU seconds (``/proc``) per
  probe concluded, the share of a core that is, its peak RSS (``VmHWM``, whole life), the p99
  of ``syncwatch_event_loop_lag_seconds`` over the window (``histogram_quantile`` of the
  difference of the two scrapes), and the sandbox's own CPU, so a saturated sandbox can be told
  from a slow daemon. "Kept up" is the probes launched in the window against N per minute (the
  schedule kept); the probes concluded are shown too, but a one-minute window after a short
  warm-up ends before the connector's slower syncs, so they are not a criterion.
  The baseline is ``naive_poller`` on the same config, schedule and sandbox set-up, measured
  the same way (its lag samples put through the same buckets).
- **Scrape**: ``GET /metrics`` timed from this process, on the daemon of the scale run at that
  N once its window is over (it is still probing), alternating with ``GET /healthz`` on the same
  connection: the health check is the floor (loopback HTTP, uvicorn, and waiting for the busy
  loop), so the difference is what rendering the metrics costs.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from bench import exposition
from bench.naive_poller import READY
from bench.procs import Child, ChildFailed, free_port, wait_until
from bench.scale_config import PER_ACCOUNT, SECRETS, write_files
from syncwatch.metrics import LOOP_LAG_BUCKETS
from syncwatch.sla import nearest_rank

DAEMON, NAIVE = "syncwatch", "naive"
LAG = "syncwatch_event_loop_lag_seconds_bucket"
PROBES = "syncwatch_probes_total"
IN_FLIGHT = "syncwatch_probes_in_flight"
LAST_PROBE = "syncwatch_last_probe_timestamp_seconds"
PER_MINUTE = 60.0
PERIOD_S = 60.0
"""The probes' period. First starts are jittered over its first 10 s, or over more of it with
thousands of integrations (``start_window``); either way a window of exactly one period holds
one probe per integration, and (after a warm-up of at least the connector's latency) one
conclusion."""
LAUNCHED_ENOUGH = 0.95
"""A run keeps up when it launches the probes its schedule asks for and concludes most of them
within the window (conclusions come in bursts, one batched query per tick, so the count in one
window swings by a tick's worth around the launches)."""
STOP_GRACE_S = 10.0
"""SIGTERM, then this long to exit: the final clean-up is not measured, so it need not finish."""
STOP_S = 5.0
"""What stopping the child and the sandbox usually takes."""
SCRAPE_TIMEOUT_S = 120.0


@dataclass(frozen=True)
class Reading:
    """One side at one instant: its CPU and the sandbox's, and (the daemon) its scrape."""

    wall: float
    cpu_s: float
    sandbox_cpu_s: float
    scrape: str = ""
    scrape_s: float = 0.0


@dataclass(frozen=True)
class ScaleRun:
    kind: str
    n: int
    startup_s: float
    window_s: float
    cpu_s: float
    sandbox_cpu_s: float
    probes: int
    """Launched in the window: concluded, plus the change in probes in flight (the daemon)."""
    concluded: int
    failed: int
    """Concluded not ``ok`` (skipped, rejected, lost...), or the baseline's failures."""
    lag_p99_s: float | None
    lag_samples: int
    peak_rss: int
    in_flight: float | None = None
    scrape_s: float | None = None
    """How long the scrape that closed the window took (the daemon)."""

    @property
    def cpu_per_probe(self) -> float | None:
        return self.cpu_s / self.probes if self.probes else None

    @property
    def core(self) -> float:
        return self.cpu_s / self.window_s

    @property
    def sandbox_core(self) -> float:
        return self.sandbox_cpu_s / self.window_s

    @property
    def due(self) -> float:
        """Probes the schedule asks for in the window: one per integration per minute."""
        return self.n * self.window_s / PER_MINUTE

    @property
    def keeps_up(self) -> bool:
        return self.probes >= LAUNCHED_ENOUGH * self.due


@dataclass(frozen=True)
class ScrapeRun:
    n: int
    metrics_s: list[float]
    healthz_s: list[float]
    body_bytes: int
    samples: int
    last_probe_series: int


@dataclass
class Plan:
    """What to measure: the Ns, the seconds per run, which N also gets the scrape figure, and
    the wall-clock budget for all of it."""

    ns: Sequence[int]
    seconds: float
    scrape_n: int | None = 1000
    scrapes: int = 50
    per_account: int = PER_ACCOUNT
    budget_s: float = math.inf
    kinds: Sequence[str] = (DAEMON, NAIVE)
    startup_timeout_s: float = 300.0
    say: Callable[[str], None] = lambda _line: None

    @property
    def window_s(self) -> float:
        """One period, when that leaves at least a quarter of ``seconds`` for the warm-up."""
        return min(PERIOD_S, 0.75 * self.seconds)

    @property
    def warmup_s(self) -> float:
        return self.seconds - self.window_s

    def estimate_s(self, kind: str, n: int, scrapes: int) -> float:
        """A run's expected wall time on an idle machine of this kind (from measured runs)."""
        startup = 3.0 + n * (DAEMON_START_S if kind == DAEMON else NAIVE_START_S)
        return startup + self.seconds + n * scrapes * SCRAPE_S + STOP_S


DAEMON_START_S = 0.005
"""Per integration: YAML parsing, metrics and adapters, the start-up sweep (46 s at 10,000)."""
NAIVE_START_S = 0.002
SCRAPE_S = 0.00005
"""Per integration: one /metrics scrape (about 20 ms at 1,000, the request included)."""


class RunFailed(Exception):
    """A child process died, or never became ready: the run has no figures."""


@dataclass
class Outcome:
    runs: list[ScaleRun] = field(default_factory=list)
    scrape: ScrapeRun | None = None
    stopped: dict[str, str] = field(default_factory=dict)
    """Why a kind was not run at larger N."""


def run_plan(plan: Plan, workdir: Path) -> Outcome:
    """Each kind in turn (the daemon first), every N smallest first. A kind that fails to keep
    up (or to run) stops there; a run that would end past the budget is not started."""
    outcome = Outcome()
    began = time.monotonic()
    for kind in plan.kinds:
        for n in sorted(plan.ns):
            if kind in outcome.stopped:
                continue
            scrapes = plan.scrapes if kind == DAEMON and n == plan.scrape_n else 0
            spent = time.monotonic() - began
            if spent + plan.estimate_s(kind, n, scrapes) > plan.budget_s:
                outcome.stopped[kind] = (
                    f"{kind} at {n:,} not run: it would end past the {plan.budget_s:g} s budget "
                    f"(--scale-budget; {spent:.0f} s spent)"
                )
                continue
            plan.say(f"scale: {kind} at {n} integrations ({spent:.0f} s so far)")
            try:
                run, scrape = measure(kind, n, plan, workdir / f"{kind}-{n}", scrapes)
            except RunFailed as exc:
                outcome.stopped[kind] = f"{kind} at {n:,} failed: {exc}"
                continue
            outcome.runs.append(run)
            outcome.scrape = scrape or outcome.scrape
            if not run.keeps_up:
                outcome.stopped[kind] = (
                    f"{kind} launched {run.probes / run.due:.0%} and concluded "
                    f"{run.concluded / run.due:.0%} of the probes due at {n:,}: larger N not run"
                )
    if plan.scrape_n is not None and outcome.scrape is None:
        plan.say(f"scrape: syncwatch at {plan.scrape_n} integrations")
        where = workdir / f"scrape-{plan.scrape_n}"
        try:
            _, outcome.scrape = measure(DAEMON, plan.scrape_n, plan, where, plan.scrapes)
        except RunFailed as exc:
            outcome.stopped["scrape"] = f"scrape at {plan.scrape_n:,} failed: {exc}"
    return outcome


def measure(
    kind: str, n: int, plan: Plan, workdir: Path, scrapes: int = 0
) -> tuple[ScaleRun, ScrapeRun | None]:
    """One run: sandbox and ``kind`` started, warmed up, measured, scraped, stopped."""
    try:
        return _measure(kind, n, plan, workdir, scrapes)
    except ChildFailed as exc:
        plan.say(f"{exc}; the end of its output:\n{exc.log}")
        raise RunFailed(str(exc)) from exc
    except (httpx.HTTPError, OSError, ValueError) as exc:
        plan.say(f"{kind} at {n}: {exc!r}")
        raise RunFailed(f"{type(exc).__name__}: {exc}") from exc


def _measure(
    kind: str, n: int, plan: Plan, workdir: Path, scrapes: int
) -> tuple[ScaleRun, ScrapeRun | None]:
    workdir.mkdir(parents=True, exist_ok=True)
    sandbox_port, port = free_port(), free_port()
    origin, listen = f"http://127.0.0.1:{sandbox_port}", f"127.0.0.1:{port}"
    config, scenario = write_files(workdir, n, origin, listen, plan.per_account)
    sandbox_args = ["-m", "syncwatch", "sandbox", "--scenario", str(scenario)]
    sandbox = Child.start(
        "sandbox", [*sandbox_args, "--listen", f"127.0.0.1:{sandbox_port}"], workdir
    )
    child: Child | None = None
    try:
        wait_until(sandbox, f"{origin}/_sandbox/state", 60)
        started = time.monotonic()
        if kind == DAEMON:
            args = ["-m", "syncwatch", "run", "--config", str(config)]
            child = Child.start(kind, args, workdir, SECRETS)
            wait_until(child, f"http://{listen}/readyz", plan.startup_timeout_s)
        else:
            args = ["-m", "bench.naive_poller", str(config), str(workdir / "naive.json")]
            child = Child.start(kind, args, workdir, SECRETS)
            _wait_for_file(child, workdir / READY, plan.startup_timeout_s)
        startup = time.monotonic() - started
        with httpx.Client(timeout=SCRAPE_TIMEOUT_S) as client:
            read = _reader(kind, child, sandbox, client, f"http://{listen}")
            time.sleep(plan.warmup_s)
            first = read()
            time.sleep(max(0.0, plan.window_s - (time.time() - first.wall)))
            last = read()
            peak = child.peak_rss_bytes()
            scrape = _scrapes(client, f"http://{listen}", n, scrapes) if scrapes else None
        if not child.alive():
            raise ChildFailed(f"{kind} died during the run", child.tail())
    finally:
        if child is not None:
            child.stop(STOP_GRACE_S)
        sandbox.stop(STOP_GRACE_S)
    if kind == DAEMON:
        return _daemon_run(n, startup, first, last, peak), scrape
    record = json.loads((workdir / "naive.json").read_text())
    return _naive_run(n, startup, first, last, peak, record), None


def _reader(
    kind: str, child: Child, sandbox: Child, client: httpx.Client, origin: str
) -> Callable[[], Reading]:
    """A reading: the daemon is scraped first, so its CPU includes the scrape that closes the
    window and not the one that opens it (one scrape per window, as at a 1-minute interval)."""

    def read() -> Reading:
        text, took = "", 0.0
        if kind == DAEMON:
            began = time.perf_counter()
            response = client.get(f"{origin}/metrics")
            response.raise_for_status()
            text, took = response.text, time.perf_counter() - began
        return Reading(time.time(), child.cpu_seconds(), sandbox.cpu_seconds(), text, took)

    return read


def _daemon_run(n: int, startup: float, first: Reading, last: Reading, peak: int) -> ScaleRun:
    names = (PROBES, LAG, IN_FLIGHT)
    before, after = exposition.pick(first.scrape, names), exposition.pick(last.scrape, names)
    concluded = exposition.total(after[PROBES]) - exposition.total(before[PROBES])
    ok = exposition.total(after[PROBES], outcome="ok") - exposition.total(
        before[PROBES], outcome="ok"
    )
    # Polls conclude probes in bursts (one batched query per destination per tick), so the
    # conclusions in a window swing by a tick's worth; launches are what the schedule fixes.
    launched = concluded + exposition.total(after[IN_FLIGHT]) - exposition.total(before[IN_FLIGHT])
    lag = exposition.difference(exposition.buckets(after[LAG]), exposition.buckets(before[LAG]))
    return ScaleRun(
        kind=DAEMON,
        n=n,
        startup_s=startup,
        window_s=last.wall - first.wall,
        cpu_s=last.cpu_s - first.cpu_s,
        sandbox_cpu_s=last.sandbox_cpu_s - first.sandbox_cpu_s,
        probes=round(launched),
        concluded=round(concluded),
        failed=round(concluded - ok),
        lag_p99_s=exposition.quantile(0.99, lag),
        lag_samples=round(lag[-1][1]) if lag else 0,
        peak_rss=peak,
        in_flight=exposition.total(after[IN_FLIGHT]),
        scrape_s=last.scrape_s,
    )


def _naive_run(
    n: int, startup: float, first: Reading, last: Reading, peak: int, record: dict[str, object]
) -> ScaleRun:
    def within(stamps: object) -> list[float]:
        assert isinstance(stamps, list)
        return [t for t in stamps if first.wall <= t < last.wall]

    launched, concluded = within(record["launched"]), within(record["concluded"])
    lag_samples = record["lag"]
    assert isinstance(lag_samples, list)
    lag = [late for wall, late in lag_samples if first.wall <= wall < last.wall]
    failed = record["failed"]
    assert isinstance(failed, dict)
    return ScaleRun(
        kind=NAIVE,
        n=n,
        startup_s=startup,
        window_s=last.wall - first.wall,
        cpu_s=last.cpu_s - first.cpu_s,
        sandbox_cpu_s=last.sandbox_cpu_s - first.sandbox_cpu_s,
        probes=len(launched),
        concluded=len(concluded),
        failed=sum(failed.values()),
        lag_p99_s=exposition.quantile(0.99, exposition.bucket_counts(lag, LOOP_LAG_BUCKETS)),
        lag_samples=len(lag),
        peak_rss=peak,
    )


def _scrapes(client: httpx.Client, origin: str, n: int, count: int) -> ScrapeRun:
    """``count`` timed scrapes of /metrics, each followed by one of /healthz."""
    metrics_s, healthz_s, body = [], [], ""
    for _ in range(count):
        began = time.perf_counter()
        response = client.get(f"{origin}/metrics")
        metrics_s.append(time.perf_counter() - began)
        response.raise_for_status()
        body = response.text
        began = time.perf_counter()
        client.get(f"{origin}/healthz").raise_for_status()
        healthz_s.append(time.perf_counter() - began)
    samples = sum(1 for line in body.splitlines() if line and line[0] != "#")
    last_probe = len(exposition.pick(body, [LAST_PROBE])[LAST_PROBE])
    return ScrapeRun(n, metrics_s, healthz_s, len(body.encode()), samples, last_probe)


def _wait_for_file(child: Child, path: Path, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while not path.exists():
        if not child.alive():
            raise ChildFailed(f"{child.name} exited early", child.tail())
        if time.monotonic() > deadline:
            raise ChildFailed(f"{child.name} not ready within {timeout_s:g} s", child.tail())
        time.sleep(0.2)


# -- the table ---------------------------------------------------------------------------------


def rows(outcome: Outcome, plan: Plan) -> list[str]:
    """One scale row per N, a row for each kind that stopped, and the scrape row."""
    lines = []
    for n in sorted({run.n for run in outcome.runs}):
        ours, naive = _find(outcome.runs, DAEMON, n), _find(outcome.runs, NAIVE, n)
        window = next(run.window_s for run in outcome.runs if run.n == n)
        lines.append(
            f"| scale: {n:,} integrations at 1/min, {window:.0f} s window after "
            f"{plan.warmup_s:.0f} s warm-up: CPU per probe (share of a core), peak RSS, "
            f"loop lag p99, probes launched / concluded of due, sandbox CPU | {_cell(ours)} | "
            f"{_cell(naive, 'naive per-probe poller every 10 s: ')} | {_cpu_ratio(ours, naive)} |"
        )
    for kind, why in outcome.stopped.items():
        lines.append(f"| scale: {kind} stops | {why} | | |")
    if outcome.scrape is not None:
        lines.append(scrape_row(outcome.scrape))
    return lines


def scrape_row(scrape: ScrapeRun) -> str:
    p95_m, p95_h = nearest_rank(scrape.metrics_s, 95), nearest_rank(scrape.healthz_s, 95)
    render = "n/a" if p95_m is None or p95_h is None else f"{(p95_m - p95_h) * 1000:.0f} ms"
    return (
        f"| scrape: GET /metrics at {scrape.n:,} integrations while probing, p50 / p95 of "
        f"{len(scrape.metrics_s)} ({scrape.samples:,} samples, {scrape.body_bytes / 1e6:.1f} MB; "
        f"{scrape.last_probe_series:,} integrations have a last probe) | "
        f"{_spread(scrape.metrics_s)} | {_spread(scrape.healthz_s)} GET /healthz on the same "
        f"connection, alternating | p95 difference (rendering) {render}; target 50 ms |"
    )


def _find(runs: Sequence[ScaleRun], kind: str, n: int) -> ScaleRun | None:
    return next((run for run in runs if run.kind == kind and run.n == n), None)


def _cell(run: ScaleRun | None, prefix: str = "") -> str:
    if run is None:
        return "not run"
    per = run.cpu_per_probe
    cpu = "n/a" if per is None else f"{per * 1000:.1f} ms"
    lag = "n/a" if run.lag_p99_s is None else f"{run.lag_p99_s * 1000:.0f} ms"
    failed = f", {run.failed:,} failed" if run.failed else ""
    scrape = "" if run.scrape_s is None else f"; one scrape {run.scrape_s:.2f} s"
    return (
        f"{prefix}{cpu} ({run.core:.0%}), {run.peak_rss / 2**20:.0f} MB, {lag}, "
        f"{run.probes:,} / {run.concluded:,} of {run.due:,.0f}{failed}, "
        f"sandbox {run.sandbox_core:.0%}{scrape}"
    )


def _cpu_ratio(ours: ScaleRun | None, naive: ScaleRun | None) -> str:
    a = None if ours is None else ours.cpu_per_probe
    b = None if naive is None else naive.cpu_per_probe
    if not a or not b:
        return "n/a"
    return f"{b / a:.1f}x less CPU per probe" if b >= a else f"{a / b:.1f}x more CPU per probe"


def _spread(values: Sequence[float]) -> str:
    p50, p95 = nearest_rank(values, 50), nearest_rank(values, 95)
    if p50 is None or p95 is None:
        return "n/a"
    return f"{p50 * 1000:.1f} / {p95 * 1000:.1f} ms"
