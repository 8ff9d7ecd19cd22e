"""The ``syncwatch`` command line: commands, exit codes and output formats.

Exit codes: 0 success, 1 runtime failure, 2 bad input (config, scenario, arguments).
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from syncwatch import __version__
from syncwatch.cli_claims import export_app, report_app, sla_app
from syncwatch.cli_common import fail
from syncwatch.cli_runbooks import runbooks_app
from syncwatch.cli_simulate import simulate
from syncwatch.errors import ConfigError, StoreError, SyncwatchError, UsageError

if TYPE_CHECKING:
    from syncwatch.config import Config
    from syncwatch.store import Store


app = typer.Typer(
    name="syncwatch",
    help=(
        "Integration health monitor: injects synthetic leads into a marketing-automation "
        "platform, times their arrival in the CRM, and checks vendor SLAs."
    ),
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode="markdown",
)
app.add_typer(sla_app, name="sla")
app.add_typer(export_app, name="export")
app.add_typer(report_app, name="report")
app.add_typer(runbooks_app, name="runbooks")
app.command("simulate")(simulate)


def parse_listen(value: str) -> tuple[str, int]:
    """``HOST:PORT`` (``[::1]:PORT`` for IPv6) → (host, port); ValueError says what is wrong."""
    host, sep, port_text = value.rpartition(":")
    if not sep or not host or not port_text.isdigit() or not 0 < int(port_text) < 65536:
        raise ValueError(f"{value!r} is not HOST:PORT (e.g. 127.0.0.1:8900)")
    return host.strip("[]"), int(port_text)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"syncwatch {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool,
        typer.Option("--version", callback=_version, is_eager=True, help="Print the version."),
    ] = False,
) -> None:
    """Integration health monitor for MAP → CRM lead syncs."""


@app.command("check-config")
def check_config(
    config: Annotated[Path, typer.Option("--config", "-c", help="The YAML config file.")],
) -> None:
    """Validate a config file without side effects.

    Prints a one-line summary and exits 0, or lists every problem as FILE: KEY: REASON and
    exits 2. Secret references are not resolved; ones that could not be resolved right now
    are reported as warnings.
    """
    from syncwatch.config import load_config, summary, unresolved_secrets

    try:
        loaded = load_config(config)
    except ConfigError as exc:
        raise fail(exc.problems) from None
    for warning in unresolved_secrets(loaded):
        typer.echo(f"warning: {warning}", err=True)
    typer.echo(summary(loaded))


@app.command("sandbox")
def sandbox(
    listen: Annotated[
        str, typer.Option(help="Address to serve on, HOST:PORT. Loopback by default.")
    ] = "127.0.0.1:8900",
    scenario: Annotated[
        Path | None,
        typer.Option(help="Scenario YAML: quotas, connector latency, scheduled faults."),
    ] = None,
    seed: Annotated[
        int | None, typer.Option(help="Seed for latency and fault dice (overrides the scenario).")
    ] = None,
) -> None:
    """Serve the built-in vendor sandbox on loopback.

    Each vendor lives under a prefix standing for its host (HubSpot, Marketo, Account
    Engagement, Eloqua, Salesforce, Dynamics 365, and the PagerDuty, Slack and webhook
    receivers); it prints them on start. Introspection and live faults are under /_sandbox
    (state, records, notifications, faults).
    """
    import uvicorn

    from syncwatch.sandbox import create_app
    from syncwatch.sandbox.app import PREFIXES
    from syncwatch.sandbox.scenario import Scenario, load_scenario

    try:
        host, port = parse_listen(listen)
        loaded = load_scenario(scenario) if scenario else Scenario()
    except ValueError as exc:
        raise fail([f"--listen: {exc}"]) from None
    except ConfigError as exc:
        raise fail(exc.problems) from None
    origin = f"http://{'[' + host + ']' if ':' in host else host}:{port}"
    typer.echo(f"syncwatch sandbox on {origin}  (state: {origin}/_sandbox/state)")
    for prefix, stands_for in PREFIXES:
        typer.echo(f"  {origin}/{prefix:<13} {stands_for}")
    uvicorn.run(
        create_app(loaded, seed=seed),
        host=host,
        port=port,
        log_level="warning",
        date_header=False,  # the sandbox stamps Date from its own clock
    )


ConfigOption = Annotated[Path, typer.Option("--config", "-c", help="The YAML config file.")]
LogLevel = Annotated[
    str, typer.Option("--log-level", help="debug, info, warning or error.", case_sensitive=False)
]


def _load(config: Path) -> Config:
    from syncwatch.config import load_config

    try:
        return load_config(config)
    except ConfigError as exc:
        raise fail(exc.problems) from None


def _open_store(path: Path) -> Store:
    from syncwatch.store import Store

    try:
        return Store.open(path)
    except StoreError as exc:
        raise fail([str(exc)]) from None


def _logging(level: str) -> None:
    from syncwatch.clock import RealClock
    from syncwatch.logs import LEVELS, configure_logging

    if level.lower() not in LEVELS:
        raise fail([f"--log-level: must be one of {', '.join(LEVELS)}"])
    configure_logging(RealClock(), level=level.lower())


@app.command("run")
def run(config: ConfigOption, log_level: LogLevel = "info") -> None:
    """Run the daemon: probe every integration on its schedule until SIGTERM or Ctrl-C.

    Serves /metrics, /healthz and /readyz on the config's `listen` address (default
    127.0.0.1:9851). On start it resumes probes a previous run left in flight and sweeps
    synthetic leads older than each integration's timeout.
    """
    from syncwatch.clock import RealClock
    from syncwatch.daemon import stop_on_signals
    from syncwatch.runner import run_daemon

    loaded = _load(config)
    _logging(log_level)
    store = _open_store(loaded.database)

    async def main() -> None:
        stop = asyncio.Event()
        restore = stop_on_signals(stop)
        try:
            await run_daemon(loaded, store, RealClock(), stop)
        finally:
            restore()

    try:
        asyncio.run(main())
    except SyncwatchError as exc:
        typer.echo(f"syncwatch: {exc}", err=True)
        raise typer.Exit(1) from None
    finally:
        store.close()


@app.command("probe")
def probe(
    config: ConfigOption,
    integration: Annotated[str, typer.Option(help="The integration to probe.")],
    template: Annotated[
        str | None, typer.Option(help="Which of its templates (default: the first).")
    ] = None,
    wait: Annotated[
        float | None,
        typer.Option(help="Seconds to wait for the lead (default: the integration's timeout)."),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
    log_level: LogLevel = "warning",
) -> None:
    """Send one probe now, wait for it at the destination, clean up, and print the result.

    Exits 0 when the outcome is `ok`, 1 for any other outcome or when it is still in flight
    after `--wait` (the daemon resumes it on its next start).
    """
    from syncwatch.clock import RealClock
    from syncwatch.runner import probe_once

    loaded = _load(config)
    _logging(log_level)
    store = _open_store(loaded.database)
    try:
        result = asyncio.run(
            probe_once(loaded, store, RealClock(), integration, template, wait_s=wait)
        )
    except UsageError as exc:
        raise fail([f"syncwatch: {exc}"]) from None
    except SyncwatchError as exc:
        typer.echo(f"syncwatch: {exc}", err=True)
        raise typer.Exit(1) from None
    finally:
        store.close()
    fields = {
        "probe_id": result.probe_id,
        "integration": result.integration,
        "template": result.template,
        "outcome": result.outcome or "in_flight",
        "error_class": result.error_class,
        "latency_s": None if result.latency_s is None else round(result.latency_s, 3),
        "detail": result.detail,
    }
    if as_json:
        typer.echo(json.dumps(fields))
    else:
        for key, value in fields.items():
            typer.echo(f"{key:<12} {'' if value is None else value}")
    raise typer.Exit(0 if result.outcome == "ok" else 1)


@app.command("sweep")
def sweep(
    config: ConfigOption,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Only count what would be deleted.")
    ] = False,
    log_level: LogLevel = "warning",
) -> None:
    """Delete synthetic leads (at `probe_domain`) older than their integration's timeout.

    Looks on both sides of every integration. Probes still in flight are left alone. The
    daemon runs the same sweep at start-up and daily.
    """
    from syncwatch.clock import RealClock
    from syncwatch.runner import sweep_once

    loaded = _load(config)
    _logging(log_level)
    store = _open_store(loaded.database)
    try:
        report = asyncio.run(sweep_once(loaded, store, RealClock(), dry_run=dry_run))
    except SyncwatchError as exc:
        typer.echo(f"syncwatch: {exc}", err=True)
        raise typer.Exit(1) from None
    finally:
        store.close()
    verb = "would delete" if dry_run else "deleted"
    typer.echo(f"{verb}: {report.source} at the sources, {report.destination} at the destinations")
    for error in report.errors:
        typer.echo(f"error: {error}", err=True)
    raise typer.Exit(1 if report.errors else 0)


@app.command("quota")
def quota(
    config: ConfigOption,
    days: Annotated[int, typer.Option(help="How many UTC days of own calls to list.", min=1)] = 7,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of tables.")] = False,
) -> None:
    """What the monitor itself costs each vendor account: its own calls per UTC day, and the
    latest quota figures the vendors reported (read from the database; no vendor is called)."""
    from datetime import timedelta

    from syncwatch.cli_claims import _config_and_store, reading
    from syncwatch.clock import RealClock

    _, store = _config_and_store(config)  # an existing database, never a new one
    with reading(store):
        since = RealClock().now() - timedelta(days=days)
        per_day = store.calls_per_day(since.replace(hour=0, minute=0, second=0, microsecond=0))
        readings = store.latest_quota()
    if as_json:
        typer.echo(
            json.dumps(
                {
                    "calls": [{"account": a, "day": d, "calls": n} for a, d, n in per_day],
                    "quota": [
                        {
                            "account": r.account,
                            "window": r.window,
                            "used": r.used,
                            "limit": r.limit,
                            "observed_at": r.observed_at.isoformat(),
                        }
                        for r in readings
                    ],
                }
            )
        )
        return
    typer.echo(f"{'account':<24} {'day (UTC)':<10} {'own calls':>9}")
    for account, day, calls in per_day:
        typer.echo(f"{account:<24} {day:<10} {calls:>9}")
    typer.echo(f"\n{'account':<24} {'window':<16} {'used':>9} {'limit':>9}  observed")
    for r in readings:
        observed = r.observed_at.strftime("%Y-%m-%d %H:%M")
        typer.echo(f"{r.account:<24} {r.window:<16} {r.used:>9} {r.limit:>9}  {observed}")


@app.command("demo")
def demo(
    duration: Annotated[
        float, typer.Option(help="Seconds of probing before the demo winds down.", min=1)
    ] = 150.0,
    drain: Annotated[
        float,
        typer.Option(help="Seconds to wait afterwards for probes still in flight.", min=0),
    ] = 120.0,
    scenario: Annotated[
        Path, typer.Option(help="Sandbox scenario (ignored with --sandbox-url).")
    ] = Path("probes/scenarios/demo.yaml"),
    sandbox_url: Annotated[
        str | None,
        typer.Option(help="Use the sandbox already running here instead of starting one."),
    ] = None,
    db: Annotated[
        Path | None, typer.Option(help="Database file (default: a fresh temporary one).")
    ] = None,
    listen: Annotated[
        str | None, typer.Option(help="Where to serve /metrics, HOST:PORT (default: config's).")
    ] = None,
    config: Annotated[Path, typer.Option("--config", "-c", help="The demo config.")] = Path(
        "config/demo.yaml"
    ),
    log_level: LogLevel = "warning",
) -> None:
    """Watch HubSpot → Salesforce and Marketo → Salesforce syncs in the built-in sandbox,
    then print a summary.

    Starts the sandbox on loopback (or uses `--sandbox-url`), runs the real daemon on
    `config/demo.yaml` re-pointed at it, and after `--duration` stops scheduling, waits up to
    `--drain` for probes in flight, cleans up, and prints probes by outcome, p50/p95 sync
    latency, vendor calls per probe, the incidents opened and their notifications, and the
    synthetic leads left in the sandbox.
    """
    from syncwatch.demo import demo_session
    from syncwatch.sandbox.scenario import load_scenario

    _logging(log_level)
    if listen is not None:
        try:
            parse_listen(listen)
        except ValueError as exc:
            raise fail([f"--listen: {exc}"]) from None
    if sandbox_url is not None:
        # Checked here so the message names the flag, not the config keys it is copied into.
        if not sandbox_url.startswith(("http://", "https://")):
            raise fail([f"--sandbox-url: {sandbox_url!r} is not an http:// or https:// URL"])
        sandbox_url = sandbox_url.rstrip("/")
    try:
        loaded_scenario = None if sandbox_url else load_scenario(scenario)
    except ConfigError as exc:
        raise fail(exc.problems) from None
    try:
        lines = asyncio.run(
            demo_session(
                config, loaded_scenario, sandbox_url, db, listen, duration, drain, typer.echo
            )
        )
    except ConfigError as exc:
        raise fail(exc.problems) from None
    except (SyncwatchError, OSError) as exc:
        typer.echo(f"syncwatch demo: {exc}", err=True)
        raise typer.Exit(1) from None
    for line in lines:
        typer.echo(line)


def main() -> None:
    app()
