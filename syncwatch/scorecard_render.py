"""The weekly scorecard as Markdown, CSV or JSON (``syncwatch report scorecard --format``).

- **md**: GitHub-flavoured tables, one per section, for pasting into an issue, a pull request or
  a wiki page; ``—`` marks a figure that does not exist (no probes, nothing resolved).
- **csv**: one table for spreadsheets. Every row starts with ``week`` and ``section``
  (``breaches``, ``mttr``, ``latency``, ``outcomes``, ``quota``); the other columns are the union
  of the sections' figures, named as in the JSON, empty where a section has none. One header
  means a filter on ``section`` gives each table, and weeks can be appended under each other.
  Total lines have ``integration`` (or ``account``) ``(all)``.
- **json**: ``scorecard_json``: the week, then each section's ``rows`` and ``total``.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict
from datetime import UTC, datetime
from fractions import Fraction
from typing import Any

from syncwatch.durations import format_duration
from syncwatch.lifecycle import OUTCOMES
from syncwatch.scorecard import (
    ALL,
    BreachRow,
    LatencyRow,
    MttrRow,
    OutcomeRow,
    QuotaRow,
    Scorecard,
)

NONE = "—"
CSV_COLUMNS = (
    "week",
    "section",
    "integration",
    "template",
    "cause",
    "attribution",
    "account",
    "vendor",
    "incidents",
    "open",
    "breach_minutes",
    "runbook_url",
    "resolved",
    "mttr_minutes",
    "probes",
    "p50_s",
    "p95_s",
    "objective_s",
    "within_objective_percent",
    "met",
    *OUTCOMES,
    "success_percent",
    "calls",
    "lowest_remaining",
    "daily_limit",
    "warning_level",
    "below_warning",
)


def scorecard_json(card: Scorecard) -> dict[str, Any]:
    """Stable keys: every section has ``rows`` and ``total`` (null where none makes sense);
    percentages to 4 places, minutes to 2, times in UTC with ``Z``."""
    return {
        "week": card.week.label,
        "start": _iso(card.week.start),
        "end": _iso(card.week.end),
        "as_of": _iso(card.as_of),
        "breaches": _section(map(_breach, card.breaches), _breach(card.breach_total)),
        "mttr": _section(map(_mttr_json, card.mttr), _mttr_json(card.mttr_total)),
        "latency": _section(map(_latency_json, card.latency), None),
        "outcomes": _section(map(_outcome, card.outcomes), _outcome(card.outcome_total)),
        "quota": _section(map(_quota_json, card.quota), _quota_json(card.quota_total)),
    }


def _section(rows: Iterable[dict[str, Any]], total: dict[str, Any] | None) -> dict[str, Any]:
    return {"rows": list(rows), "total": total}


def _breach(row: BreachRow) -> dict[str, Any]:
    return {**asdict(row), "breach_minutes": round(row.breach_minutes, 2)}


def _mttr_json(row: MttrRow) -> dict[str, Any]:
    minutes = None if row.mttr_minutes is None else round(row.mttr_minutes, 2)
    return {**asdict(row), "mttr_minutes": minutes}


def _latency_json(row: LatencyRow) -> dict[str, Any]:
    data = asdict(row)
    del data["within"], data["met"]
    return {**data, "within_objective_percent": _percent(row.within), "met": row.met}


def _outcome(row: OutcomeRow) -> dict[str, Any]:
    return {
        "integration": row.integration,
        "counts": dict(row.counts),
        "probes": sum(row.counts.values()),
        "success_percent": _percent(row.success),
    }


def _quota_json(row: QuotaRow) -> dict[str, Any]:
    return {**asdict(row), "below_warning": row.below_warning}


def _percent(ratio: Fraction | None) -> float | None:
    return None if ratio is None else round(float(ratio * 100), 4)


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def render_json(card: Scorecard) -> str:
    return json.dumps(scorecard_json(card), indent=2) + "\n"


def render_csv(card: Scorecard) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=CSV_COLUMNS, lineterminator="\n")
    writer.writeheader()
    data = scorecard_json(card)
    for section in ("breaches", "mttr", "latency", "outcomes", "quota"):
        rows = data[section]["rows"] + [data[section]["total"] or {}]
        for row in filter(None, rows):
            counts = row.pop("counts", {})
            writer.writerow({"week": card.week.label, "section": section, **row, **counts})
    return out.getvalue()


# -- Markdown -----------------------------------------------------------------------------------


def render_md(card: Scorecard) -> str:
    week = card.week
    day = "%a %Y-%m-%d %H:%M UTC"
    lines = [
        f"# Scorecard {week.label}",
        "",
        f"ISO week {week.label}: {week.start.strftime(day)} to {week.end.strftime(day)}. "
        f"Breaches still open are counted up to {card.as_of.strftime('%Y-%m-%d %H:%M UTC')} "
        "or the week's end.",
    ]
    for title, table in (
        ("Breaches", _breaches(card)),
        ("MTTR", _mttr(card)),
        ("Latency objective", _latency(card)),
        ("Outcomes", _outcomes(card)),
        ("Quota", _quota(card)),
    ):
        lines += ["", f"## {title}", "", *table]
    return "\n".join(lines) + "\n"


def _breaches(card: Scorecard) -> list[str]:
    if not card.breaches:
        return ["No incident overlapped the week."]

    def row(item: BreachRow) -> list[str]:
        cause = f"[{item.cause}]({item.runbook_url})" if item.runbook_url else item.cause
        open_ = f"**{item.open}**" if item.open else "0"
        return [item.integration, cause, item.attribution, str(item.incidents), open_,
                f"{item.breach_minutes:.1f}"]  # fmt: skip

    return _table(
        ["integration", "cause", "attribution", "incidents", "open", "breach minutes"],
        "lllrrr",
        [row(item) for item in (*card.breaches, card.breach_total)],
    )


def _mttr(card: Scorecard) -> list[str]:
    rows = [
        [item.integration, str(item.resolved), _number(item.mttr_minutes, " min")]
        for item in (*card.mttr, card.mttr_total)
    ]
    return _table(["integration", "resolved in the week", "MTTR"], "lrr", rows)


def _latency(card: Scorecard) -> list[str]:
    rows = [
        [
            item.integration,
            item.template,
            str(item.probes),
            _number(item.p50_s, " s"),
            _number(item.p95_s, " s"),
            NONE if item.objective_s is None else format_duration(item.objective_s),
            _share(item.within),
            _yes_no(item.met),
        ]
        for item in card.latency
    ]
    header = ["integration", "template", "probes", "p50", "p95", "objective", "within", "met"]
    return _table(header, "llrrrrrl", rows)


def _outcomes(card: Scorecard) -> list[str]:
    def row(item: OutcomeRow) -> list[str]:
        counts = [str(item.counts.get(outcome, 0)) for outcome in OUTCOMES]
        return [item.integration, *counts, _share(item.success)]

    rows = [row(item) for item in (*card.outcomes, card.outcome_total)]
    return _table(["integration", *OUTCOMES, "success"], "l" + "r" * (len(OUTCOMES) + 1), rows)


def _quota(card: Scorecard) -> list[str]:
    def row(item: QuotaRow) -> list[str]:
        below = {True: "**yes**", False: "no", None: NONE}[item.below_warning]
        total = item.account == ALL
        return [
            item.account,
            item.vendor,
            str(item.calls),
            "" if total else _count(item.lowest_remaining),
            "" if total else _count(item.daily_limit),
            "" if total else _count(item.warning_level),
            "" if total else below,
        ]

    header = ["account", "vendor", "calls", "lowest remaining", "daily limit", "warning level",
              "below warning"]  # fmt: skip
    return _table(header, "llrrrrl", [row(item) for item in (*card.quota, card.quota_total)])


def _table(header: Sequence[str], align: str, rows: Sequence[Sequence[str]]) -> list[str]:
    """A GitHub-flavoured table; ``align`` is one ``l`` or ``r`` per column. Total lines
    (first cell ``(all)``) are set in bold."""
    rule = ["---:" if side == "r" else "---" for side in align]
    lines = [_line(header), _line(rule)]
    for cells in rows:
        lines.append(_line([f"**{ALL}**", *cells[1:]] if cells[0] == ALL else cells))
    return lines


def _line(cells: Sequence[str]) -> str:
    return "| " + " | ".join(cells) + " |"


def _number(value: float | None, unit: str) -> str:
    return NONE if value is None else f"{value:.1f}{unit}"


def _count(value: int | None) -> str:
    return NONE if value is None else f"{value:,}"


def _share(ratio: Fraction | None) -> str:
    return NONE if ratio is None else f"{float(ratio * 100):.2f} %"


def _yes_no(value: bool | None) -> str:
    return {True: "yes", False: "**no**", None: NONE}[value]


RENDERERS: dict[str, Callable[[Scorecard], str]] = {
    "md": render_md,
    "csv": render_csv,
    "json": render_json,
}
"""``--format`` → renderer."""
