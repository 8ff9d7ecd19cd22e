"""Claims on the command line: ``sla evaluate`` (from an evidence file, no store needed),
``export events`` (the evidence file, from the store), ``report credits`` (the claims) and
``report scorecard`` (each integration's week)."""

from __future__ import annotations

import contextlib
import json
import sqlite3
from collections.abc import Iterator
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from syncwatch.cli_common import check_month, fail
from syncwatch.errors import ConfigError, StoreError

if TYPE_CHECKING:
    from syncwatch.config import Config
    from syncwatch.store import Store

sla_app = typer.Typer(
    help="Contract uptime, service credits and claim deadlines (DESIGN §7).",
    no_args_is_help=True,
    rich_markup_mode="markdown",
)


export_app = typer.Typer(help="Write stored evidence out.", no_args_is_help=True)
report_app = typer.Typer(
    help="Reports from the store: monthly claims, weekly scorecards.", no_args_is_help=True
)


class Format(StrEnum):
    json = "json"
    table = "table"


class ReportFormat(StrEnum):
    csv = "csv"
    json = "json"
    html = "html"


class ScorecardFormat(StrEnum):
    md = "md"
    csv = "csv"
    json = "json"


ConfigOption = Annotated[Path, typer.Option("--config", "-c", help="The YAML config file.")]
MonthOption = Annotated[str, typer.Option(help="The month, YYYY-MM (each contract's local month).")]
OutputOption = Annotated[Path | None, typer.Option(help="Write here instead of stdout.")]


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
    from syncwatch.evidence import read_evidence
    from syncwatch.sla import evaluate as evaluate_month
    from syncwatch.sla.folded import FoldTermsChanged

    check_month(month)
    try:
        loaded = load_contract(contract)
        evidence = read_evidence(events)
        folds = evidence.folds.get(loaded.name, {})
        result = evaluate_month(loaded, month, evidence.events, folds=folds).to_json()
    except ConfigError as exc:
        raise fail(exc.problems) from None
    except FoldTermsChanged as exc:
        raise fail([f"{events}: {exc}"]) from None
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


def _config_and_store(config: Path) -> tuple[Config, Store]:
    """The config and its existing database, or exit 2 saying which is missing or bad."""
    from syncwatch.config import load_config
    from syncwatch.store import Store

    try:
        loaded = load_config(config)
    except ConfigError as exc:
        raise fail(exc.problems) from None
    database = loaded.database
    if not database.exists() or (database.is_file() and database.stat().st_size == 0):
        # A zero-length file is an empty SQLite database: opening it would write our schema
        # into a file a read-only command was only asked to read.
        raise fail([f"{database}: no database yet (has `syncwatch run` been started?)"])
    try:
        return loaded, Store.open(database)
    except StoreError as exc:
        raise fail([str(exc)]) from None


@contextlib.contextmanager
def reading(store: Store) -> Iterator[None]:
    """Reads from an opened store; a damaged page found on the way (the file opened, but a
    table or index is corrupt) exits 2 naming the file, and the store is closed either way."""
    try:
        yield
    except sqlite3.DatabaseError as exc:
        problem = f"{store.path}: cannot read the database: {exc} (is the file damaged?)"
        raise fail([problem]) from None
    finally:
        store.close()


def _write(text: str, output: Path | None) -> None:
    if output is None or str(output) == "-":
        typer.echo(text, nl=False)
        return
    try:
        output.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise fail([f"--output: cannot write {output}: {exc.strerror}"]) from None
    typer.echo(f"wrote {output}", err=True)


@export_app.command("events")
def export_events(
    config: ConfigOption,
    month: MonthOption,
    output: Annotated[
        Path | None, typer.Option(help="Where to write the JSON Lines (default: stdout).")
    ] = None,
) -> None:
    """Write the month's probes and API calls as JSON Lines: the evidence behind its claims.

    The range covers every contract's local month and the months its termination right looks
    back, so `sla evaluate` on this file gives exactly what `report credits` gives.
    """
    from syncwatch.evidence import evidence_lines

    check_month(month)
    loaded, store = _config_and_store(config)
    with reading(store):
        text = "".join(evidence_lines(store, loaded.contracts, month))
    _write(text, output)


@report_app.command("credits")
def report_credits(
    config: ConfigOption,
    month: MonthOption,
    output_format: Annotated[
        ReportFormat, typer.Option("--format", help="csv or json (a row per contract), or html.")
    ] = ReportFormat.html,
    output: OutputOption = None,
) -> None:
    """Every contract's service-credit claim for the month, from the stored evidence.

    HTML is a printable claim per contract: uptime against the objective, tier, credit and
    amount, claim deadline, consecutive misses, the downtime with its causes, latency, MTTR,
    API success and quota use, and how to recompute it from `export events`.
    """
    from syncwatch.clock import RealClock
    from syncwatch.reports import build_claims, render_csv, render_html, render_json
    from syncwatch.sla.folded import FoldTermsChanged

    check_month(month)
    loaded, store = _config_and_store(config)
    with reading(store):
        try:
            claims = build_claims(loaded, store, month)
        except FoldTermsChanged as exc:
            raise fail([f"{config}: {exc}"]) from None
    if output_format is ReportFormat.csv:
        text = render_csv(claims)
    elif output_format is ReportFormat.json:
        text = render_json(claims)
    else:
        text = render_html(claims, month, RealClock().now(), str(config))
    _write(text, output)


@report_app.command("scorecard")
def report_scorecard(
    config: ConfigOption,
    week: Annotated[
        str,
        typer.Option(
            help="The ISO week, YYYY-Www (e.g. 2026-W45): Monday 00:00 to the next Monday "
            "00:00, UTC."
        ),
    ],
    output_format: Annotated[
        ScorecardFormat,
        typer.Option("--format", help="md (tables, the default), csv (one table) or json."),
    ] = ScorecardFormat.md,
    output: OutputOption = None,
) -> None:
    """Each integration's week from the store: breaches, MTTR, latency against each
    template's objective, probe outcomes, and the quota the monitor used per account.

    The week is an ISO week in UTC, from Monday 00:00 to the next Monday 00:00 (2026-W01
    starts on Monday 2025-12-29). Breaches are clipped to the week; one still open counts up
    to now. docs/claims.md describes every figure and the CSV columns.
    """
    from syncwatch.clock import RealClock
    from syncwatch.scorecard import load_scorecard, parse_week
    from syncwatch.scorecard_render import RENDERERS

    try:
        parsed = parse_week(week)
    except ValueError as exc:
        raise fail([f"--week: {exc}"]) from None
    loaded, store = _config_and_store(config)
    with reading(store):
        card = load_scorecard(loaded, store, parsed, RealClock().now())
    _write(RENDERERS[output_format](card), output)
