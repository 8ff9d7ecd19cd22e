"""``syncwatch runbooks list|show``: the runbooks on the command line, where on-call staff are."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from syncwatch.cli_common import fail

if TYPE_CHECKING:
    from syncwatch.runbooks import Runbooks

runbooks_app = typer.Typer(
    help="The runbook of every incident cause (what to check, what to do, whom to call).",
    no_args_is_help=True,
)

ConfigOption = Annotated[
    Path | None,
    typer.Option(
        "--config", "-c", help="Use the config's runbooks_dir (default: the shipped runbooks)."
    ),
]


def _runbooks(config: Path | None) -> tuple[Runbooks, Path]:
    from syncwatch.config import load_config
    from syncwatch.errors import ConfigError
    from syncwatch.runbooks import Runbooks, default_directory

    directory = default_directory()
    if config is not None:
        try:
            loaded = load_config(config)
        except ConfigError as exc:
            raise fail(exc.problems) from None
        directory = loaded.runbooks_dir or directory
    return Runbooks(directory), directory


@runbooks_app.command("list")
def list_runbooks(config: ConfigOption = None) -> None:
    """List every runbook with its title, and any cause left without one.

    Exits 1 when a cause has no runbook or a runbook lacks one of the sections Meaning, Impact,
    Diagnosis, Mitigation, Escalation: an incident would link to a page that does not help.
    """
    from syncwatch.runbooks import summary

    runbooks, directory = _runbooks(config)
    names = runbooks.names()
    width = max((len(name) for name in names), default=0)
    for name in names:
        typer.echo(f"{name:<{width}}  {summary(runbooks.markdown(name))}")
    problems = runbooks.problems()
    for problem in problems:
        typer.echo(f"{directory}/{problem}", err=True)
    if problems:
        raise typer.Exit(1)


@runbooks_app.command("show")
def show(
    cause: Annotated[str, typer.Argument(help="The cause, e.g. vendor_5xx (see `list`).")],
    config: ConfigOption = None,
) -> None:
    """Print one runbook's Markdown."""
    from syncwatch.runbooks import RunbookNotFound

    runbooks, _ = _runbooks(config)
    try:
        typer.echo(runbooks.markdown(cause), nl=False)
    except RunbookNotFound as exc:
        raise fail([f"{exc}; `syncwatch runbooks list` shows them"]) from None
