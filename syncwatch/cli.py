"""The ``syncwatch`` command line: commands, exit codes and output formats.

Exit codes: 0 success, 1 runtime failure, 2 bad input (config, scenario, arguments).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from syncwatch import __version__
from syncwatch.errors import ConfigError

EXIT_BAD_INPUT = 2

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


def parse_listen(value: str) -> tuple[str, int]:
    """``HOST:PORT`` (``[::1]:PORT`` for IPv6) → (host, port); ValueError says what is wrong."""
    host, sep, port_text = value.rpartition(":")
    if not sep or not host or not port_text.isdigit() or not 0 < int(port_text) < 65536:
        raise ValueError(f"{value!r} is not HOST:PORT (e.g. 127.0.0.1:8900)")
    return host.strip("[]"), int(port_text)


def _fail(problems: list[str]) -> typer.Exit:
    for problem in problems:
        typer.echo(problem, err=True)
    return typer.Exit(EXIT_BAD_INPUT)


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
        raise _fail(exc.problems) from None
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
    """Serve the built-in vendor sandbox (HubSpot + Salesforce emulation) on loopback.

    Each vendor lives under a prefix standing for its host: /hubspot (api.hubapi.com),
    /hsforms (api.hsforms.com), /salesforce (My Domain). Introspection and live faults are
    under /_sandbox (state, records, faults).
    """
    import uvicorn

    from syncwatch.sandbox import create_app
    from syncwatch.sandbox.scenario import Scenario, load_scenario

    try:
        host, port = parse_listen(listen)
        loaded = load_scenario(scenario) if scenario else Scenario()
    except ValueError as exc:
        raise _fail([f"--listen: {exc}"]) from None
    except ConfigError as exc:
        raise _fail(exc.problems) from None
    origin = f"http://{'[' + host + ']' if ':' in host else host}:{port}"
    typer.echo(f"syncwatch sandbox on {origin}  (state: {origin}/_sandbox/state)")
    for prefix, stands_for in (
        ("hubspot", "api.hubapi.com"),
        ("hsforms", "api.hsforms.com"),
        ("salesforce", "My Domain login + instance"),
    ):
        typer.echo(f"  {origin}/{prefix:<11} {stands_for}")
    uvicorn.run(
        create_app(loaded, seed=seed),
        host=host,
        port=port,
        log_level="warning",
        date_header=False,  # the sandbox stamps Date from its own clock
    )


def main() -> None:
    app()
