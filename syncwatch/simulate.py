"""``syncwatch simulate``: days of the real daemon against the sandbox, on a virtual clock.

Any config runs: ``sandbox_config`` re-points every vendor host and notification endpoint at an
in-process sandbox and swaps every secret for a placeholder (none of the operator's is read), and
``scenario_for`` fits the sandbox to the config's integrations. The daemon probes, polls, opens
and resolves incidents and rolls months over exactly as ``syncwatch run`` would, only with time
advanced by hand, so a month passes in minutes and the same seed gives the same database.

What it leaves is an ordinary database, and beside it the config the simulated daemon ran with
(sandbox hosts, placeholder secrets, that database), which every report command reads.
"""

from __future__ import annotations

import gc
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta, tzinfo
from datetime import time as midnight
from pathlib import Path
from typing import Any

import yaml

from syncwatch.clock import VirtualClock
from syncwatch.config import Config
from syncwatch.daemon import Tally
from syncwatch.errors import ConfigError
from syncwatch.incident_store import IncidentStore
from syncwatch.sandbox import create_app
from syncwatch.sandbox.scenario import Scenario
from syncwatch.sandbox_config import sandbox_config_data
from syncwatch.simulation import SANDBOX_ORIGIN, Simulation, scenario_for
from syncwatch.sla import month_period
from syncwatch.store import Store
from syncwatch.yamlfile import read_yaml

CONFIG_HEADER = "# Written by `syncwatch simulate`"
DAY_S = 86_400.0
STEP_S = 3600.0
"""Virtual time between looks at the run (progress, a daemon that died), and between commits
of the throwaway database (``Store.batch``); the daemon's own wakes are exact whatever it is."""


@dataclass(frozen=True)
class Span:
    """The simulated time, [start, end), UTC."""

    start: datetime
    end: datetime

    @property
    def days(self) -> float:
        return (self.end - self.start).total_seconds() / DAY_S


def span_for(config: Config, first_day: date, days: float) -> Span:
    """``days`` days from ``first_day`` in every contract's time zone (UTC without contracts):
    from the first of their midnights to the last, so each contract sees whole local days and
    a month's worth from the 1st covers that month for every contract."""
    zones: list[tzinfo] = [contract.zone for contract in config.contracts] or [UTC]
    whole = int(days)
    part = timedelta(seconds=(days - whole) * DAY_S)
    last_day = first_day + timedelta(days=whole)
    starts = [datetime.combine(first_day, midnight(), tzinfo=zone) for zone in zones]
    ends = [datetime.combine(last_day, midnight(), tzinfo=zone) + part for zone in zones]
    return Span(min(starts).astimezone(UTC), max(ends).astimezone(UTC))


def complete_months(config: Config, span: Span) -> dict[str, list[str]]:
    """Month (YYYY-MM) → the contracts whose whole local month lies inside the span."""
    months: dict[str, list[str]] = {}
    for contract in config.contracts:
        local = span.start.astimezone(contract.zone).replace(day=1)
        while True:
            month = local.strftime("%Y-%m")
            period = month_period(contract, month)
            if period.start >= span.end:
                break
            if period.start >= span.start and period.end <= span.end:
                months.setdefault(month, []).append(contract.name)
            local = (local.replace(day=28) + timedelta(days=4)).replace(day=1)
    return months


@dataclass
class Summary:
    """What a simulation did, from its tally and its database."""

    span: Span
    seed: int
    tally: Tally
    database: Path
    config_file: Path
    months: dict[str, list[str]]
    contracts: list[str]
    first_month: str
    """The month of ``--start``: the one to report on when none is complete."""
    opened: Counter[str] = field(default_factory=Counter)
    """Incidents the run opened, by cause."""
    resolved: int = 0
    elapsed_s: float = 0.0

    @property
    def probes(self) -> int:
        """Probes that reached a vendor (skipped ones did not)."""
        return sum(n for outcome, n in self.tally.outcomes.items() if outcome != "skipped")

    @property
    def calls(self) -> int:
        return sum(self.tally.calls.values())

    def lines(self) -> list[str]:
        start, end = (_utc(moment) for moment in (self.span.start, self.span.end))
        outcomes = ", ".join(f"{n} {o}" for o, n in sorted(self.tally.outcomes.items())) or "none"
        per_probe = f", {self.calls / self.probes:.2f} per probe" if self.probes else ""
        causes = ", ".join(f"{n} {cause}" for cause, n in sorted(self.opened.items()))
        opened = sum(self.opened.values())
        lines = [
            f"virtual span: {start} → {end} ({self.span.days:.2f} days), seed {self.seed}",
            f"probes: {outcomes}",
            f"vendor API calls: {self.calls}{per_probe}",
            f"incidents: {opened} opened{f' ({causes})' if causes else ''}, "
            f"{self.resolved} resolved",
            f"database: {self.database}",
            f"config:   {self.config_file} (this run's config: sandbox hosts, placeholder "
            "secrets, this database)",
        ]
        lines += self._months()
        if self.elapsed_s > 0 and self.span.days > 0:
            lines.append(
                f"simulated in {self.elapsed_s:.1f} s "
                f"({self.elapsed_s / self.span.days:.2f} s per virtual day)"
            )
        return lines

    def _months(self) -> list[str]:
        if not self.contracts:
            return ["complete contract months: none (the config has no contracts)"]
        whole = ", ".join(f"{m} ({', '.join(names)})" for m, names in sorted(self.months.items()))
        lines = [f"complete contract months: {whole or 'none'}"]
        month = max(self.months) if self.months else self.first_month
        if not self.months:
            lines.append(
                "  (a contract month is complete when the span covers it: --start on the 1st "
                "and --days the month's length)"
            )
        lines.append(f"next: syncwatch report credits --config {self.config_file} --month {month}")
        return lines


@dataclass(frozen=True)
class Request:
    """One ``syncwatch simulate``, its inputs checked."""

    config_path: Path
    scenario: Scenario
    database: Path
    first_day: date
    days: float
    seed: int = 0


def prepare(request: Request) -> tuple[Simulation, Span, Path]:
    """The simulation to run, its span, and the config file written beside the database.

    Raises ConfigError (a bad config, pairs the sandbox cannot serve together, a database that
    must not be written to) or StoreError (``--db`` is not a syncwatch database)."""
    problem = check_database(request.database, _own_database(request.config_path))
    if problem is not None:
        raise ConfigError([problem])
    config, raw = sandbox_config_data(
        request.config_path, SANDBOX_ORIGIN, request.database, secrets="replace"
    )
    scenario = scenario_for(config, request.scenario)
    span = span_for(config, request.first_day, request.days)
    config_file = write_config(raw, config, request.database)
    clock = VirtualClock(span.start)
    sandbox = create_app(scenario, clock, request.seed)
    store = Store.open(config.database, throwaway=True)
    return Simulation(config, store, clock, sandbox, request.seed), span, config_file


def write_config(raw: Any, config: Config, database: Path) -> Path:
    """The run's config beside its database (``syncwatch.db`` → ``syncwatch.yaml``), its paths
    made absolute so it reads the same from anywhere."""
    target = database.with_suffix(".yaml")
    if target.exists() and not target.read_text(encoding="utf-8").startswith(CONFIG_HEADER):
        raise ConfigError([f"{target}: exists and was not written by syncwatch simulate"])
    data = dict(raw)
    data["database"] = str(config.database.resolve())
    data["probe_templates"] = str(config.probe_templates.resolve())
    if config.runbooks_dir is not None:
        data["runbooks_dir"] = str(config.runbooks_dir.resolve())
    header = (
        f"{CONFIG_HEADER} from {config.source.resolve()}: every host points at the sandbox\n"
        "# (which never resolves), every secret is a placeholder, and the database is the\n"
        "# simulation's. Use it with the report commands; it monitors nothing.\n"
    )
    target.write_text(header + yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return target


async def simulate(
    simulation: Simulation,
    span: Span,
    config_file: Path,
    first_day: date,
    progress: Callable[[str], object] = lambda _line: None,
) -> Summary:
    """Run the daemon through ``span``, let probes in flight conclude (up to the slowest
    timeout), and summarise from the tally and the database."""
    config = simulation.config
    drain = max((i.timeout for i in config.integrations), default=0.0)
    started = time.monotonic()
    days_done = 0

    def report(elapsed: float) -> None:
        nonlocal days_done
        if int(elapsed // DAY_S) > days_done:
            days_done = int(elapsed // DAY_S)
            real = time.monotonic() - started
            progress(f"day {days_done} of {span.days:.0f} simulated ({real:.0f} s)")
            # What a day left alive (the sandbox's records, mostly) joins what was frozen: a
            # full collection otherwise walks every earlier day again, and a month's twenty
            # of them grew to a second of the run. Unfrozen, all of it, when the run ends.
            gc.collect()
            gc.freeze()

    seconds = (span.end - span.start).total_seconds()
    # No /metrics or /status to show figures on: the reports compute them from the database.
    daemon = simulation.daemon(contract_figures=False, probe_metrics=False)
    # As ``run_daemon`` does: what was just built (the config, the sandbox, the daemon) lives
    # as long as the run, out of the collector's sight; each full collection walked it again.
    gc.collect()
    gc.freeze()
    try:
        tally = await simulation.run(
            seconds, drain_s=drain, during=report, step_s=STEP_S, daemon=daemon
        )
    finally:
        gc.unfreeze()
    summary = Summary(
        span,
        simulation.seed,
        tally,
        config.database.resolve(),
        config_file,
        complete_months(config, span),
        [contract.name for contract in config.contracts],
        first_day.strftime("%Y-%m"),
        elapsed_s=time.monotonic() - started,
    )
    opened = [
        incident
        for incident in IncidentStore(simulation.store).incidents_between(
            span.start, datetime.max.replace(tzinfo=UTC)
        )
        if incident.opened_at >= span.start
    ]
    summary.opened = Counter(incident.cause for incident in opened)
    summary.resolved = sum(incident.resolved_at is not None for incident in opened)
    return summary


def _own_database(config_path: Path) -> Path:
    """Where the config itself keeps its database (``database:``, relative to the file)."""
    raw = read_yaml(config_path)
    written = raw.get("database") if isinstance(raw, dict) else None
    return config_path.parent / (written if isinstance(written, str) else "syncwatch.db")


def _utc(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%d %H:%M UTC")


def check_database(path: Path, config_database: Path) -> str | None:
    """Why the simulation must not write to ``path``, or None: it must be new, or a syncwatch
    database without probes, and never the config's own database (simulated evidence mixed
    with real evidence would end up in a claim)."""
    if path.resolve() == config_database.resolve():
        return f"{path}: is the config's own database; simulate into another file"
    if not path.exists():
        return None
    store = Store.open(path)  # StoreError: not a syncwatch database
    try:
        probes = store.db.execute("SELECT count(*) FROM probes").fetchone()[0]
    finally:
        store.close()
    if probes:
        return (
            f"{path}: already holds {probes} probes; simulated evidence would mix with them "
            "(choose a new file)"
        )
    return None
