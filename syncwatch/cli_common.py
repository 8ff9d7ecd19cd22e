"""What every command module shares: exit codes and how bad input is reported."""

from __future__ import annotations

import typer

EXIT_BAD_INPUT = 2
"""Exit code for bad input (config, contract, events, arguments); 1 is a runtime failure."""


def fail(problems: list[str]) -> typer.Exit:
    """Print every problem on stderr; the caller raises the returned exit (code 2)."""
    for problem in problems:
        typer.echo(problem, err=True)
    return typer.Exit(EXIT_BAD_INPUT)


def check_month(month: str) -> None:
    """``--month`` must be YYYY-MM; otherwise exit 2 saying so."""
    from syncwatch.sla import parse_month

    try:
        parse_month(month)
    except ValueError as exc:
        raise fail([f"--month: {exc}"]) from None
