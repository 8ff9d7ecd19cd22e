"""``syncwatch simulate``: days of probing, incidents and month ends against the sandbox, fast."""

from __future__ import annotations

import asyncio
import shutil
from datetime import date
from pathlib import Path
from typing import Annotated

import typer

from syncwatch.cli_common import fail
from syncwatch.errors import ConfigError, StoreError, SyncwatchError


def simulate(
    config: Annotated[
        Path | None,
        typer.Option(
            "--config",
            "-c",
            help="The config to simulate: its accounts, integrations, templates, contracts "
            "and notification targets. Every host is re-pointed at the in-process sandbox and "
            "every secret replaced by a placeholder (none of yours is read). Default: the "
            "shipped demo config (config/demo.yaml).",
        ),
    ] = None,
    days: Annotated[
        float,
        typer.Option(
            help="How many days to simulate, from --start's midnight in every contract's time "
            "zone to the last of them N days later (fractions are fine: 0.25 is six hours). "
            "Use the month's length from the 1st for a complete contract month.",
        ),
    ] = 1.0,
    start: Annotated[
        str | None,
        typer.Option(
            help="The first simulated day, YYYY-MM-DD (default: the 1st of the current month).",
        ),
    ] = None,
    scenario: Annotated[
        Path | None,
        typer.Option(
            help="Sandbox scenario YAML: quotas, connector latency, scheduled faults (times are "
            "relative to the start). Forms, connectors and credentials are fitted to the config. "
            "Default: the shipped demo scenario (probes/scenarios/demo.yaml).",
        ),
    ] = None,
    seed: Annotated[
        int,
        typer.Option(
            help="Seeds the sandbox's dice (overriding the scenario's seed) and the daemon's "
            "jitter: the same seed, config and scenario give the same database.",
        ),
    ] = 0,
    db: Annotated[
        Path | None,
        typer.Option(
            help="The database to write: a new file, or an empty syncwatch database; never one "
            "that holds probes, nor the config's own database. Default: a fresh file in a new "
            "temporary directory. The run's config is written beside it (NAME.yaml).",
        ),
    ] = None,
    log_level: Annotated[
        str,
        typer.Option("--log-level", help="debug, info, warning or error.", case_sensitive=False),
    ] = "error",
) -> None:
    """Run the real daemon against the built-in sandbox on a virtual clock: days of probing,
    incidents and month ends in minutes, the same for the same seed.

    Prints the virtual span, probes by outcome, vendor API calls (and per probe), incidents
    opened and resolved, the database and the config written beside it, the contract months
    the span covers completely, and the report command to run next. The database is an
    ordinary one: `report credits`, `report scorecard` and `export events` read it with the
    config written beside it. Exits 2 on bad input (config, scenario, options, database).
    """
    from syncwatch.clock import RealClock
    from syncwatch.demo import fresh_database
    from syncwatch.logs import LEVELS, configure_logging
    from syncwatch.sandbox.scenario import load_scenario
    from syncwatch.sandbox_config import shipped_file
    from syncwatch.simulate import Request, prepare
    from syncwatch.simulate import simulate as run

    if log_level.lower() not in LEVELS:
        raise fail([f"--log-level: must be one of {', '.join(LEVELS)}"])
    if not days > 0:
        raise fail([f"--days: must be more than 0, not {days:g} (0.25 is six hours)"])
    configure_logging(RealClock(), level=log_level.lower())
    first_day = _first_day(start)
    config_path = config or shipped_file("config/demo.yaml")
    scenario_path = scenario or shipped_file("probes/scenarios/demo.yaml")
    if not config_path.is_file():
        raise fail([f"--config: {config_path}: no such file"])
    try:
        loaded_scenario = load_scenario(scenario_path)
    except ConfigError as exc:
        raise fail(exc.problems) from None
    database = db or fresh_database("syncwatch-simulate-")
    try:
        request = Request(config_path, loaded_scenario, database, first_day, days, seed)
        simulation, span, config_file = prepare(request)
    except (ConfigError, StoreError) as exc:
        if db is None:  # the fresh directory made for it holds nothing worth keeping
            shutil.rmtree(database.parent, ignore_errors=True)
        problems = exc.problems if isinstance(exc, ConfigError) else [f"--db: {exc}"]
        raise fail(problems) from None

    def progress(line: str) -> None:
        typer.echo(line, err=True)

    try:
        summary = asyncio.run(run(simulation, span, config_file, first_day, progress))
    except SyncwatchError as exc:
        typer.echo(f"syncwatch simulate: {exc}", err=True)
        raise typer.Exit(1) from None
    finally:
        simulation.store.close()
    for line in summary.lines():
        typer.echo(line)


def _first_day(start: str | None) -> date:
    from syncwatch.clock import RealClock

    if start is None:
        return RealClock().now().date().replace(day=1)
    try:
        return date.fromisoformat(start)
    except ValueError:
        raise fail([f"--start: {start!r} is not a date, YYYY-MM-DD"]) from None
