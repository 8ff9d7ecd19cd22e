"""The runbooks: one Markdown page per incident cause, found, checked and rendered.

On-call staff go from a page to the right runbook in one click, so every cause an incident can
have must have a page, and every page the same five sections in the same order (DESIGN §8):
**Meaning, Impact, Diagnosis, Mitigation, Escalation**. ``problems()`` says what is missing;
a test runs it over the shipped runbooks, and ``syncwatch runbooks list`` shows it too.

Where the pages are: ``runbooks_dir`` from the config when set (operators may keep their own,
with their escalation contacts), else the repository's ``runbooks/`` (a source checkout or an
editable install), else the copy a wheel installs under ``<prefix>/share/syncwatch/runbooks``
(pyproject's data-files; the container image has it there).
"""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass
from pathlib import Path

from markdown_it import MarkdownIt

from syncwatch.errors import SyncwatchError
from syncwatch.incidents import CAUSES

SECTIONS = ("Meaning", "Impact", "Diagnosis", "Mitigation", "Escalation")
ALERT_RUNBOOKS = ("error_budget_burn", "uptime_below_objective")
"""Pages for Prometheus alerts that are about a budget, not one cause."""
REQUIRED = (*CAUSES, *ALERT_RUNBOOKS)
NAME = re.compile(r"[a-z0-9_]{1,64}")
"""What a runbook name may be: it comes from URLs, so nothing that walks a path."""
_HEADING = re.compile(r"^## +(.+?)\s*$", re.MULTILINE)


class RunbookNotFound(SyncwatchError):
    """No runbook of that name (or not a valid name at all)."""


def default_directory() -> Path:
    """The shipped runbooks: the source tree's, else the installed copy."""
    checkout = Path(__file__).resolve().parents[1] / "runbooks"
    if checkout.is_dir():
        return checkout
    return Path(sys.prefix) / "share" / "syncwatch" / "runbooks"


@dataclass(frozen=True)
class Runbooks:
    directory: Path

    def names(self) -> list[str]:
        """Every runbook present, sorted (README.md is the index, not a runbook)."""
        if not self.directory.is_dir():
            return []
        return sorted(
            path.stem
            for path in self.directory.glob("*.md")
            if NAME.fullmatch(path.stem) and path.name != "README.md"
        )

    def markdown(self, name: str) -> str:
        """The page's Markdown; ``RunbookNotFound`` for an unknown or malformed name (the
        name comes from a URL, so it is checked before it touches the filesystem)."""
        if not NAME.fullmatch(name):
            raise RunbookNotFound(f"no runbook {name!r}: names are lower-case words and _")
        path = self.directory / f"{name}.md"
        try:
            return path.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise RunbookNotFound(f"no runbook {name!r} in {self.directory}") from None

    def html(self, name: str) -> str:
        """The page rendered to an HTML fragment (raw HTML in the Markdown is escaped)."""
        return render_markdown(self.markdown(name))

    def problems(self) -> list[str]:
        """What keeps these runbooks from serving every cause: missing pages or sections."""
        present = set(self.names())
        found = [f"{name}.md: missing" for name in REQUIRED if name not in present]
        for name in sorted(present):
            missing = missing_sections(self.markdown(name))
            if missing:
                found.append(f"{name}.md: lacks section(s) {', '.join(missing)}")
        return found


def missing_sections(markdown: str) -> list[str]:
    """The required sections absent from ``markdown`` (as ``## Heading`` lines)."""
    headings = {heading.strip() for heading in _HEADING.findall(markdown)}
    return [section for section in SECTIONS if section not in headings]


def title(markdown: str) -> str:
    """The page's first ``# heading``, or its first line."""
    for line in markdown.splitlines():
        if line.startswith("# "):
            return line[2:].strip()
    return markdown.strip().splitlines()[0] if markdown.strip() else ""


def summary(markdown: str) -> str:
    """The first sentence of the lead paragraph under the title: a one-line description."""
    paragraphs = [p.strip() for p in re.split(r"\n\s*\n", markdown) if p.strip()]
    lead = next((p for p in paragraphs if not p.startswith("#")), "")
    text = " ".join(lead.split())
    end = re.search(r"(?<=[.!?])\s", text)
    return text[: end.start()] if end else text


_RENDERER = MarkdownIt("commonmark", {"html": False, "linkify": False}).enable("table")


def render_markdown(markdown: str) -> str:
    return str(_RENDERER.render(markdown))
