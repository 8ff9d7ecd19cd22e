"""The runbooks: one per cause, five sections each, found, rendered and listed."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from syncwatch.cli import app
from syncwatch.incidents import CAUSES
from syncwatch.runbooks import (
    REQUIRED,
    SECTIONS,
    RunbookNotFound,
    Runbooks,
    default_directory,
    missing_sections,
    summary,
)

REPO = Path(__file__).resolve().parent.parent
COMPLETE = "# {name}\n\nWhat {name} is. More.\n\n" + "".join(
    f"## {section}\n\ntext\n\n" for section in SECTIONS
)


def test_the_shipped_runbooks_cover_every_cause_with_every_section() -> None:
    """A cause without a runbook, or a runbook without a section, fails here."""
    runbooks = Runbooks(REPO / "runbooks")
    assert runbooks.problems() == []
    assert set(CAUSES) <= set(runbooks.names())


@pytest.mark.parametrize("name", REQUIRED)
def test_each_shipped_runbook_has_the_sections_in_order(name: str) -> None:
    """Meaning, Impact, Diagnosis, Mitigation, Escalation: the same order in every page, and
    the title names the cause."""
    markdown = (REPO / "runbooks" / f"{name}.md").read_text(encoding="utf-8")
    assert markdown.splitlines()[0] == f"# {name}"
    positions = [markdown.index(f"\n## {section}\n") for section in SECTIONS]
    assert positions == sorted(positions)


def test_the_default_directory_is_the_repositorys() -> None:
    """A source checkout (and an editable install) serves the repository's runbooks."""
    assert default_directory() == REPO / "runbooks"


def test_problems_name_missing_pages_and_sections(tmp_path: Path) -> None:
    """Every required page missing is listed; a page lacking sections says which."""
    (tmp_path / "auth.md").write_text("# auth\n\n## Meaning\n\n## Impact\n", encoding="utf-8")
    problems = Runbooks(tmp_path).problems()
    assert "auth.md: lacks section(s) Diagnosis, Mitigation, Escalation" in problems
    assert "vendor_5xx.md: missing" in problems
    assert len(problems) == len(REQUIRED)


def test_missing_sections_wants_level_two_headings() -> None:
    """A section named in prose or at another level does not count."""
    text = "# x\n\nMeaning: see below\n\n### Impact\n\n## Diagnosis\n## Mitigation\n## Escalation\n"
    assert missing_sections(text) == ["Meaning", "Impact"]


@pytest.mark.parametrize("name", ["../etc/passwd", "Auth", "a/b", "", "x" * 65, "README"])
def test_names_that_are_not_runbooks_are_refused(tmp_path: Path, name: str) -> None:
    """Names come from URLs: anything but lower-case words is refused before a file is read."""
    (tmp_path / "README.md").write_text("# index", encoding="utf-8")
    with pytest.raises(RunbookNotFound):
        Runbooks(tmp_path).markdown(name)


def test_html_escapes_raw_html(tmp_path: Path) -> None:
    """Raw HTML in a runbook is shown, never run."""
    (tmp_path / "auth.md").write_text("# auth\n\n<script>alert(1)</script>\n", encoding="utf-8")
    html = Runbooks(tmp_path).html("auth")
    assert "<script>" not in html and "&lt;script&gt;" in html
    assert "<h1>auth</h1>" in html


def test_summary_is_the_first_sentence_of_the_lead() -> None:
    assert summary("# auth\n\nA vendor refused it. Then more.\n\n## Meaning\n") == (
        "A vendor refused it."
    )


def write_complete(directory: Path, names: tuple[str, ...] = REQUIRED) -> None:
    directory.mkdir(exist_ok=True)
    for name in names:
        (directory / f"{name}.md").write_text(COMPLETE.format(name=name), encoding="utf-8")


def config_with_runbooks(tmp_path: Path, runbooks: Path) -> Path:
    path = tmp_path / "sw.yaml"
    path.write_text(
        f"probe_domain: probe.example.com\nrunbooks_dir: {runbooks.name}\n", encoding="utf-8"
    )
    return path


def test_cli_list_and_show_use_the_configs_runbooks_dir(tmp_path: Path) -> None:
    """`runbooks list` prints name and summary and exits 0 when complete; `show` prints one."""
    write_complete(tmp_path / "ours")
    config = config_with_runbooks(tmp_path, tmp_path / "ours")
    listed = CliRunner().invoke(app, ["runbooks", "list", "--config", str(config)])
    assert listed.exit_code == 0, listed.output
    assert "vendor_5xx  " in listed.output and "What vendor_5xx is." in listed.output
    shown = CliRunner().invoke(app, ["runbooks", "show", "auth", "--config", str(config)])
    assert shown.exit_code == 0 and shown.output == COMPLETE.format(name="auth")


def test_cli_list_fails_on_an_incomplete_set(tmp_path: Path) -> None:
    """A missing cause is reported with its path, and the exit code says so."""
    write_complete(tmp_path / "ours", tuple(n for n in REQUIRED if n != "auth"))
    config = config_with_runbooks(tmp_path, tmp_path / "ours")
    result = CliRunner().invoke(app, ["runbooks", "list", "--config", str(config)])
    assert result.exit_code == 1
    assert f"{tmp_path / 'ours'}/auth.md: missing" in result.output


def test_cli_show_unknown_exits_2() -> None:
    result = CliRunner().invoke(app, ["runbooks", "show", "nope"])
    assert result.exit_code == 2
    assert "no runbook 'nope'" in result.output
