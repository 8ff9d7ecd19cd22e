"""``syncwatch sla …``: contract arithmetic from an evidence file, no daemon or store needed."""

from __future__ import annotations

import json
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer

from syncwatch.errors import ConfigError

EXIT_BAD_INPUT = 2

sla_app = typer.Typer(
    help="Contract uptime, service credits and claim deadlines (DESIGN §7).",
    no_args_is_help=True,
    rich_markup_mode="markdown",
)


class Format(StrEnum):
    json = "json"
    table = "table"


def fail(problems: list[str]) -> typer.Exit:
    """Print every problem on stderr; exit 2 (bad input)."""
    for problem in problems:
        typer.echo(problem, err=True)
    return typer.Exit(EXIT_BAD_INPUT)


@sla_app.command("evaluate")
def evaluate(
    contract: Annotated[Path, typer.Option(help="The contract YAML (the config's shape).")],
    events: Annotated[Path, typer.Option(help="JSON Lines events: probes and calls.")],
    month: Annotated[str, typer.Option(help="The month, YYYY-MM, in the contract's time zone.")],
    output_format: Annotated[
        Format, typer.Option("--format", help="json (the result object) or table.")
    ] = Format.json,
) -> None:
    """Compute one contract's month from an evidence file, exactly as the contract words it.

    The events file is what `syncwatch export events` writes (one JSON object per line, `kind`
    `probe` or `call`), so anyone holding a claim's evidence can recompute it. A malformed
    line, a bad contract or a bad month exits 2 naming the file, line or key and the reason.
    """
    from syncwatch.config import load_contract
    from syncwatch.evidence import read_events
    from syncwatch.sla import evaluate as evaluate_month
    from syncwatch.sla import parse_month

    try:
        parse_month(month)
    except ValueError as exc:
        raise fail([f"--month: {exc}"]) from None
    try:
        loaded = load_contract(contract)
        result = evaluate_month(loaded, month, read_events(events)).to_json()
    except ConfigError as exc:
        raise fail(exc.problems) from None
    if output_format is Format.json:
        typer.echo(json.dumps(result, indent=2))
    else:
        typer.echo(table(result))


def table(result: dict[str, Any]) -> str:
    """The result as aligned ``key  value`` lines, incidents listed under it."""
    shown = {k: v for k, v in result.items() if k not in ("latency", "incidents")}
    latency = result.get("latency") or {}
    for key, value in latency.items():
        shown[f"latency.{key}"] = value
    width = max(len(key) for key in shown)
    lines = [f"{key:<{width}}  {'' if value is None else value}" for key, value in shown.items()]
    for incident in result.get("incidents", []):
        lines.append(
            f"incident  {incident['start']} → {incident['end']}  {incident['minutes']} min  "
            f"{incident['dominant_error_class'] or ''}"
        )
    return "\n".join(lines)
