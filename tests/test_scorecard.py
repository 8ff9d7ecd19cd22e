"""The weekly scorecard: ISO weeks, and hand-checked tables for each figure (breaches clipped to
the week, MTTR, nearest-rank latency, success ratio without skipped probes, quota), its three
renderings, and ``report scorecard`` end to end on a real database filled the daemon's way."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from fractions import Fraction
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import Result
from daemon_support import build_config, demo_raw
from typer.testing import CliRunner

from syncwatch.cli import app
from syncwatch.config import Config
from syncwatch.events import ApiCall
from syncwatch.incident_store import IncidentStore
from syncwatch.incidents import (
    CAUSE_ATTRIBUTION,
    Incident,
    Policy,
    Step,
    Track,
    incident_key,
    observe,
    probe_observation,
    runbook_url,
)
from syncwatch.scorecard import (
    ALL,
    ProbeResult,
    Scorecard,
    Week,
    breach_minutes,
    load_scorecard,
    overlaps,
    parse_week,
    recovery_lookback,
)
from syncwatch.scorecard_render import CSV_COLUMNS, render_csv, render_json, render_md
from syncwatch.store import Store

INTEGRATION = "hubspot-to-salesforce"
RUNBOOKS = "https://rb.example/"
WEEK = Week(2026, 45)
MON = datetime(2026, 11, 2, tzinfo=UTC)
"""2026-W45 starts on Monday 2 November 2026."""
NEXT_MON = MON + timedelta(days=7)
AFTER = datetime(2026, 11, 20, tzinfo=UTC)
"""An ``as_of`` long after the week: open breaches run to the week's end."""


def at(day: int, hour: int, minute: int = 0) -> datetime:
    """A moment of November 2026 (day 1 is the Sunday before the week, 9 the Monday after)."""
    return datetime(2026, 11, day, hour, minute, tzinfo=UTC)


def incident(
    started: datetime,
    recovered: datetime | None = None,
    resolved: datetime | None = None,
    cause: str = "vendor_5xx",
    integration: str = INTEGRATION,
) -> Incident:
    return Incident(
        key=incident_key(integration, "probes", started),
        integration=integration,
        track="probes",
        cause=cause,
        attribution=CAUSE_ATTRIBUTION[cause],
        runbook_url=runbook_url(cause, RUNBOOKS),
        started_at=started,
        opened_at=started + timedelta(minutes=10),
        recovered_at=recovered,
        resolved_at=resolved,
        bad=2,
    )


@pytest.fixture(scope="module")
def config(tmp_path_factory: pytest.TempPathFactory) -> Config:
    """config/demo.yaml: one integration, demo-request (objective 5m) and content-download
    (1h); accounts hubspot-demo (reserve 1000: warns below 2000) and salesforce-demo (1000)."""
    tmp = tmp_path_factory.mktemp("config")
    return build_config(demo_raw(tmp), tmp)


def card(
    config: Config,
    probes: list[ProbeResult] | None = None,
    incidents: list[Incident] | None = None,
    calls: dict[str, int] | None = None,
    figures: list[tuple[datetime, str, int, int]] | None = None,
    as_of: datetime = AFTER,
) -> Scorecard:
    return Scorecard.build(
        config, WEEK, probes or [], incidents or [], calls or {}, figures or [], as_of
    )


# -- weeks --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "monday", "next_monday"),
    [
        ("2026-W45", date(2026, 11, 2), date(2026, 11, 9)),
        ("2026-W01", date(2025, 12, 29), date(2026, 1, 5)),  # ISO year 2026 starts in 2025
        ("2026-W53", date(2026, 12, 28), date(2027, 1, 4)),  # 1 Jan 2026 is a Thursday
        ("2027-W01", date(2027, 1, 4), date(2027, 1, 11)),
        ("2020-W53", date(2020, 12, 28), date(2021, 1, 4)),
        ("2025-W52", date(2025, 12, 22), date(2025, 12, 29)),
        ("2024-W09", date(2024, 2, 26), date(2024, 3, 4)),  # across a leap day
    ],
)
def test_a_week_runs_monday_to_monday_in_utc(text: str, monday: date, next_monday: date) -> None:
    """An ISO week is Monday 00:00 UTC to the next Monday 00:00 UTC, in the ISO year's
    numbering: week 1 may start in December, week 53 exists in long years only."""
    week = parse_week(text)
    assert week.label == text
    assert week.start == datetime(monday.year, monday.month, monday.day, tzinfo=UTC)
    assert week.end == datetime(next_monday.year, next_monday.month, next_monday.day, tzinfo=UTC)
    assert week.end - week.start == timedelta(days=7)


def test_2026_has_53_iso_weeks_and_2025_52() -> None:
    """The calendar facts the tables above rely on, asked of the standard library."""
    assert date.fromisocalendar(2026, 53, 1) == date(2026, 12, 28)
    with pytest.raises(ValueError):
        date.fromisocalendar(2025, 53, 1)


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("2026-45", "is not an ISO week; write YYYY-Www, e.g. 2026-W45"),
        ("2026W45", "is not an ISO week; write YYYY-Www, e.g. 2026-W45"),
        ("2026-w45", "is not an ISO week; write YYYY-Www, e.g. 2026-W45"),
        ("2026-W5", "is not an ISO week; write YYYY-Www, e.g. 2026-W45"),
        ("2026-W45-1", "is not an ISO week; write YYYY-Www, e.g. 2026-W45"),
        ("26-W45", "is not an ISO week; write YYYY-Www, e.g. 2026-W45"),
        ("1969-W10", "is not an ISO week; write YYYY-Www, e.g. 2026-W45"),
        ("", "is not an ISO week; write YYYY-Www, e.g. 2026-W45"),
        ("2026-W54", "is not an ISO week: 2026 has W01 to W53; write YYYY-Www, e.g. 2026-W45"),
        ("2026-W00", "is not an ISO week: 2026 has W01 to W53; write YYYY-Www, e.g. 2026-W45"),
        ("2025-W53", "is not an ISO week: 2025 has W01 to W52; write YYYY-Www, e.g. 2026-W45"),
    ],
)
def test_a_bad_week_is_refused_saying_what_to_write(text: str, reason: str) -> None:
    """Only ``YYYY-Www`` with a week the ISO year has; the message names the value."""
    with pytest.raises(ValueError) as caught:
        parse_week(text)
    assert str(caught.value) == f"{text!r} {reason}"


# -- breaches -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("started", "recovered", "as_of", "minutes"),
    [
        (at(1, 23, 30), at(2, 0, 45), AFTER, 45),  # straddles the start: Sunday 23:30 → 00:45
        (at(8, 23, 40), at(9, 0, 30), AFTER, 20),  # straddles the end: 23:40 → Monday 00:30
        (at(3, 10), at(3, 10, 30), AFTER, 30),  # inside
        (at(1, 12), at(10, 12), AFTER, 7 * 24 * 60),  # covers the whole week
        (at(1, 23), at(2, 0), AFTER, 0),  # recovered exactly as the week starts
        (at(8, 23), None, AFTER, 60),  # still open: runs to the week's end
        (at(5, 12), None, at(5, 12, 30), 30),  # open, report made mid-week: runs to as_of
    ],
    ids=["start", "end", "inside", "whole-week", "touching", "open", "open-mid-week"],
)
def test_breach_minutes_are_clipped_to_the_week(
    started: datetime, recovered: datetime | None, as_of: datetime, minutes: int
) -> None:
    """Only the part of a breach inside the week counts; an open one ends at ``as_of`` or the
    week's end, whichever is first."""
    item = incident(started, recovered, None if recovered is None else recovered)
    assert breach_minutes(item, WEEK, as_of) == minutes


def test_an_incident_recovered_as_the_week_starts_is_not_a_breach_of_it(config: Config) -> None:
    """A breach is ``[started_at, recovered_at)``: one that ends at Monday 00:00 belongs to
    the week before, and makes no row."""
    touching = incident(at(1, 23), at(2, 0), at(2, 0, 10))
    assert not overlaps(touching, WEEK)
    assert card(config, incidents=[touching]).breaches == ()


def test_breaches_by_integration_and_cause_with_a_total(config: Config) -> None:
    """Incidents overlapping the week grouped by integration and cause, with attribution,
    count, clipped minutes and how many are open; the total adds them up."""
    incidents = [
        incident(at(1, 23, 30), at(2, 0, 45), at(2, 0, 55)),  # 45 of its 75 min
        incident(at(3, 10), at(3, 10, 30), at(3, 10, 40)),  # 30
        incident(at(4, 9), at(4, 9, 20), at(4, 9, 30), cause="mismatch"),  # 20, customer
        incident(at(8, 23), cause="latency"),  # open: 60 to the week's end
        incident(at(10, 9), cause="latency"),  # after the week: not here
        incident(at(5, 8), at(5, 9), at(5, 9, 5), integration="retired"),  # not configured
    ]
    rows = [
        (r.integration, r.cause, r.attribution, r.incidents, r.open, r.breach_minutes)
        for r in card(config, incidents=incidents).breaches
    ]
    assert rows == [
        (INTEGRATION, "latency", "vendor", 1, 1, 60),
        (INTEGRATION, "mismatch", "customer", 1, 0, 20),
        (INTEGRATION, "vendor_5xx", "vendor", 2, 0, 75),
        ("retired", "vendor_5xx", "vendor", 1, 0, 60),
    ]
    total = card(config, incidents=incidents).breach_total
    assert (total.integration, total.incidents, total.open, total.breach_minutes) == (
        ALL, 5, 1, 215,
    )  # fmt: skip
    assert card(config, incidents=incidents).breaches[0].runbook_url == RUNBOOKS + "latency"


# -- MTTR ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("incidents", "resolved", "mttr"),
    [
        ([], 0, None),
        (  # two resolved in the week: 30 and 90 minutes
            [
                incident(at(3, 10), at(3, 10, 30), at(3, 10, 32)),
                incident(at(4, 9), at(4, 10, 30), at(4, 10, 35)),
            ],
            2,
            60.0,
        ),
        (  # the same two, plus one still open and one confirmed after the week: left out
            [
                incident(at(3, 10), at(3, 10, 30), at(3, 10, 32)),
                incident(at(4, 9), at(4, 10, 30), at(4, 10, 35)),
                incident(at(6, 9)),
                incident(at(8, 23, 50), at(8, 23, 58), at(9, 0, 2)),
            ],
            2,
            60.0,
        ),
        (  # started the week before, resolved in it: its whole duration counts (75 min)
            [incident(at(1, 23, 30), at(2, 0, 45), at(2, 0, 55))],
            1,
            75.0,
        ),
        (  # recovered just before the week, confirmed in it: it is this week's (8 min)
            [incident(at(1, 23, 50), at(1, 23, 58), at(2, 0, 2))],
            1,
            8.0,
        ),
        ([incident(at(2, 9), at(2, 9, 10), at(2, 9, 20))], 1, 10.0),
    ],
    ids=["none", "two", "two-of-four", "started-before", "recovered-before", "one"],
)
def test_mttr_is_the_mean_duration_of_incidents_resolved_in_the_week(
    config: Config, incidents: list[Incident], resolved: int, mttr: float | None
) -> None:
    """MTTR = mean of recovered_at - started_at over incidents whose recovery was confirmed
    (resolved_at) within the week; None when none was."""
    scorecard = card(config, incidents=incidents)
    assert (scorecard.mttr_total.resolved, scorecard.mttr_total.mttr_minutes) == (resolved, mttr)
    [row] = scorecard.mttr
    assert (row.integration, row.resolved, row.mttr_minutes) == (INTEGRATION, resolved, mttr)


@pytest.mark.parametrize(("recover", "days"), [(2, 7.0), (100, 100 * (300 + 7200) / 86400)])
def test_the_loader_looks_back_far_enough_for_a_late_confirmation(
    tmp_path: Path, recover: int, days: float
) -> None:
    """An incident resolved in the week may have recovered before it: ``recover``
    observations, each at most the slowest schedule (5m) plus the timeout (2h) apart; at
    least a week."""
    raw = demo_raw(tmp_path)
    raw["incidents"]["recover"] = recover
    lookback = recovery_lookback(build_config(raw, tmp_path))
    assert lookback == timedelta(days=days)


def test_load_scorecard_finds_an_incident_recovered_before_the_week(config: Config) -> None:
    """From the store: recovered on Sunday 23:58, confirmed on Monday 00:02, so it is in this
    week's MTTR (but makes no breach row: the breach was over)."""
    store = Store.open(":memory:")
    late = incident(at(1, 23, 40), at(1, 23, 58), at(2, 0, 2))
    IncidentStore(store).apply(Step(Track(INTEGRATION, "probes"), late, resolved=True), [])
    scorecard = load_scorecard(config, store, WEEK, AFTER)
    store.close()
    assert scorecard.breaches == ()
    assert (scorecard.mttr_total.resolved, scorecard.mttr_total.mttr_minutes) == (1, 18.0)


# -- latency and outcomes -----------------------------------------------------------------------


def probe(
    template: str, latency: float | None, outcome: str = "ok", when: datetime = MON
) -> ProbeResult:
    return ProbeResult(INTEGRATION, template, when + timedelta(hours=1), outcome, latency)


def test_latency_p50_p95_by_nearest_rank_against_each_objective(config: Config) -> None:
    """demo-request (objective 300 s) has 20 probes at 20, 40, …, 400 s: p50 the 10th (200),
    p95 the ⌈19⌉th (380, not the interpolated 381), 15 of 20 within, so not met.
    content-download (3600 s): 100 and 3000 s, p50 the 1st, p95 the 2nd, met. A probe without
    a latency, or outside the week, is not counted; a template the config no longer has is
    shown without an objective."""
    probes = [probe("demo-request", 20.0 * n) for n in range(1, 21)]
    probes += [probe("demo-request", None, "lost"), probe("demo-request", 1.0, when=NEXT_MON)]
    probes += [probe("content-download", 3000.0), probe("content-download", 100.0)]
    probes += [probe("retired-template", 42.0)]
    rows = [
        (r.template, r.probes, r.p50_s, r.p95_s, r.objective_s, r.within, r.met)
        for r in card(config, probes=probes).latency
    ]
    assert rows == [
        ("demo-request", 20, 200.0, 380.0, 300.0, Fraction(3, 4), False),
        ("content-download", 2, 100.0, 3000.0, 3600.0, Fraction(1), True),
        ("retired-template", 1, 42.0, 42.0, None, None, None),
    ]


def test_a_template_without_probes_has_no_figures(config: Config) -> None:
    """A configured template with no probe this week: a row of nothing, not a zero."""
    rows = [(r.template, r.probes, r.p95_s, r.within, r.met) for r in card(config).latency]
    assert rows == [
        ("demo-request", 0, None, None, None),
        ("content-download", 0, None, None, None),
    ]


def test_success_ratio_leaves_skipped_probes_out(config: Config) -> None:
    """3 ok, 1 slow, 1 lost and 5 skipped: 3 of the 5 probes that ran, 60 %."""
    outcomes = ["ok"] * 3 + ["slow", "lost"] + ["skipped"] * 5
    probes = [probe("demo-request", None, outcome) for outcome in outcomes]
    scorecard = card(config, probes=probes)
    [row] = scorecard.outcomes
    assert row.success == Fraction(3, 5)
    assert dict(row.counts) == {
        "ok": 3, "slow": 1, "lost": 1, "rejected": 0, "mismatch": 0, "misrouted": 0, "skipped": 5,
    }  # fmt: skip
    assert scorecard.outcome_total.success == Fraction(3, 5)


@pytest.mark.parametrize(
    ("outcomes", "success"),
    [
        ([], None),
        (["skipped", "skipped"], None),
        (["ok"], Fraction(1)),
        (["rejected", "mismatch", "misrouted", "ok"], Fraction(1, 4)),
    ],
)
def test_success_ratio_table(config: Config, outcomes: list[str], success: Fraction | None) -> None:
    """No probe that ran means no ratio (not 0 % and not 100 %)."""
    probes = [probe("demo-request", None, outcome) for outcome in outcomes]
    assert card(config, probes=probes).outcome_total.success == success


# -- quota --------------------------------------------------------------------------------------


def test_quota_lowest_remaining_of_the_week_against_the_warning_level(config: Config) -> None:
    """hubspot-demo's lowest daily remaining in the week is 1,500 (a lower one before the week
    does not count), under its warning level 2,000; salesforce-demo read no quota."""
    figures = [
        (at(3, 9), "hubspot-demo", 500, 1_000_000),
        (at(4, 9), "hubspot-demo", 998_500, 1_000_000),
        (at(5, 9), "hubspot-demo", 10_000, 1_000_000),
        (at(1, 9), "hubspot-demo", 999_999, 1_000_000),
    ]
    scorecard = card(config, calls={"hubspot-demo": 7, "salesforce-demo": 3}, figures=figures)
    rows = [
        (r.account, r.vendor, r.calls, r.lowest_remaining, r.daily_limit, r.warning_level,
         r.below_warning)
        for r in scorecard.quota
    ]  # fmt: skip
    assert rows == [
        ("hubspot-demo", "hubspot", 7, 1500, 1_000_000, 2000, True),
        ("salesforce-demo", "salesforce", 3, None, None, 1000, None),
    ]
    assert scorecard.quota_total.calls == 10


# -- renderings ---------------------------------------------------------------------------------


@pytest.fixture
def small(config: Config) -> Scorecard:
    """One resolved and one open incident, four probes, one quota reading."""
    incidents = [
        incident(at(3, 10), at(3, 10, 30), at(3, 10, 40)),
        incident(at(8, 23), cause="latency"),
    ]
    probes = [probe("demo-request", 60.0), probe("demo-request", 400.0, "slow")]
    probes += [probe("demo-request", None, "rejected"), probe("content-download", None, "skipped")]
    figures = [(at(3, 9), "hubspot-demo", 998_500, 1_000_000)]
    return card(config, probes, incidents, {"hubspot-demo": 12, "salesforce-demo": 4}, figures)


SMALL_MD = """\
# Scorecard 2026-W45

ISO week 2026-W45: Mon 2026-11-02 00:00 UTC to Mon 2026-11-09 00:00 UTC. Breaches still open \
are counted up to 2026-11-20 00:00 UTC or the week's end.

## Breaches

| integration | cause | attribution | incidents | open | breach minutes |
| --- | --- | --- | ---: | ---: | ---: |
| hubspot-to-salesforce | [latency](https://rb.example/latency) | vendor | 1 | **1** | 60.0 |
| hubspot-to-salesforce | [vendor_5xx](https://rb.example/vendor_5xx) | vendor | 1 | 0 | 30.0 |
| **(all)** | (all) |  | 2 | **1** | 90.0 |

## MTTR

| integration | resolved in the week | MTTR |
| --- | ---: | ---: |
| hubspot-to-salesforce | 1 | 30.0 min |
| **(all)** | 1 | 30.0 min |

## Latency objective

| integration | template | probes | p50 | p95 | objective | within | met |
| --- | --- | ---: | ---: | ---: | ---: | ---: | --- |
| hubspot-to-salesforce | demo-request | 2 | 60.0 s | 400.0 s | 5m | 50.00 % | **no** |
| hubspot-to-salesforce | content-download | 0 | — | — | 1h | — | — |

## Outcomes

| integration | ok | slow | lost | rejected | mismatch | misrouted | skipped | success |
| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |
| hubspot-to-salesforce | 1 | 1 | 0 | 1 | 0 | 0 | 1 | 33.33 % |
| **(all)** | 1 | 1 | 0 | 1 | 0 | 0 | 1 | 33.33 % |

## Quota

| account | vendor | calls | lowest remaining | daily limit | warning level | below warning |
| --- | --- | ---: | ---: | ---: | ---: | --- |
| hubspot-demo | hubspot | 12 | 1,500 | 1,000,000 | 2,000 | **yes** |
| salesforce-demo | salesforce | 4 | — | — | 1,000 | — |
| **(all)** |  | 16 |  |  |  |  |
"""


def test_markdown_is_one_table_per_section(small: Scorecard) -> None:
    """The Markdown, checked by hand in full: runbook links on causes, open breaches and
    missed objectives in bold, ``—`` for figures that do not exist, bold total lines."""
    assert render_md(small) == SMALL_MD


def test_markdown_says_so_when_nothing_broke(config: Config) -> None:
    """A week without incidents says so instead of printing an empty table."""
    text = render_md(card(config))
    assert "## Breaches\n\nNo incident overlapped the week.\n\n## MTTR" in text


def test_csv_is_one_table_with_a_section_column(small: Scorecard) -> None:
    """One header for every section; each row names its week and section, totals are
    ``(all)``, figures absent from a section are empty cells."""
    rows = list(csv.DictReader(io.StringIO(render_csv(small))))
    assert tuple(rows[0]) == CSV_COLUMNS
    assert [(r["section"], r["integration"] or r["account"]) for r in rows] == [
        ("breaches", INTEGRATION),
        ("breaches", INTEGRATION),
        ("breaches", ALL),
        ("mttr", INTEGRATION),
        ("mttr", ALL),
        ("latency", INTEGRATION),
        ("latency", INTEGRATION),
        ("outcomes", INTEGRATION),
        ("outcomes", ALL),
        ("quota", "hubspot-demo"),
        ("quota", "salesforce-demo"),
        ("quota", ALL),
    ]
    assert {r["week"] for r in rows} == {"2026-W45"}
    latency = rows[5]
    assert {k: v for k, v in latency.items() if v} == {
        "week": "2026-W45", "section": "latency", "integration": INTEGRATION,
        "template": "demo-request", "probes": "2", "p50_s": "60.0", "p95_s": "400.0",
        "objective_s": "300.0", "within_objective_percent": "50.0", "met": "False",
    }  # fmt: skip
    outcomes = rows[7]
    assert (outcomes["ok"], outcomes["skipped"], outcomes["success_percent"]) == (
        "1",
        "1",
        "33.3333",
    )
    assert (rows[0]["cause"], rows[0]["open"], rows[0]["breach_minutes"]) == (
        "latency",
        "1",
        "60.0",
    )
    assert (rows[9]["lowest_remaining"], rows[9]["below_warning"]) == ("1500", "True")


def test_json_has_stable_keys(small: Scorecard, config: Config) -> None:
    """Every section has ``rows`` and ``total``; a row's keys do not depend on its figures
    (an empty week has the same keys as a busy one)."""
    data = json.loads(render_json(small))
    empty = json.loads(render_json(card(config)))

    def shape(value: Any) -> Any:
        if isinstance(value, dict):
            return {key: shape(item) for key, item in value.items()}
        if isinstance(value, list):
            return shape(value[0]) if value else []
        return None

    assert list(data) == ["week", "start", "end", "as_of", "breaches", "mttr", "latency",
                          "outcomes", "quota"]  # fmt: skip
    assert (data["week"], data["start"], data["end"]) == (
        "2026-W45", "2026-11-02T00:00:00Z", "2026-11-09T00:00:00Z",
    )  # fmt: skip
    for section in ("mttr", "latency", "outcomes", "quota"):
        assert shape(data[section]) == shape(empty[section]), section
    assert list(data["breaches"]["rows"][0]) == [
        "integration", "cause", "attribution", "incidents", "open", "breach_minutes",
        "runbook_url",
    ]  # fmt: skip
    assert data["latency"]["total"] is None
    assert data["mttr"]["total"] == {"integration": ALL, "resolved": 1, "mttr_minutes": 30.0}
    assert data["outcomes"]["rows"][0]["success_percent"] == 33.3333


# -- end to end: a database filled the daemon's way ---------------------------------------------

OBSERVED = [  # (time, template, outcome, error class, latency): every probe the daemon saw
    (at(1, 23, 30), "demo-request", "lost", "sync_lost", None),  # before the week
    (at(1, 23, 40), "demo-request", "lost", "sync_lost", None),  # opens #1 (started 23:30)
    (at(2, 0, 10), "demo-request", "ok", None, 60.0),  # #1 recovered: 40 min, 10 in the week
    (at(2, 0, 20), "demo-request", "ok", None, 60.0),  # #1 resolved
    (at(3, 10), "demo-request", "rejected", "vendor_5xx", None),
    (at(3, 10, 10), "demo-request", "rejected", "vendor_5xx", None),  # opens #2 (10:00)
    (at(3, 10, 20), "demo-request", "rejected", "vendor_5xx", None),
    (at(3, 10, 30), "demo-request", "ok", None, 60.0),  # #2 recovered: 30 min
    (at(3, 10, 40), "demo-request", "ok", None, 60.0),
    (at(5, 12), "demo-request", "mismatch", None, 90.0),
    (at(5, 12, 10), "demo-request", "mismatch", None, 90.0),  # opens #3, the customer's
    (at(5, 12, 20), "demo-request", "ok", None, 60.0),  # #3 recovered: 20 min
    (at(5, 12, 30), "demo-request", "ok", None, 60.0),
    (at(8, 23), "demo-request", "slow", None, 400.0),
    (at(8, 23, 10), "demo-request", "slow", None, 400.0),  # opens #4: still open
]
UNOBSERVED = [  # probes that make no incident observation
    (at(4, 8), "content-download", "skipped", "quota_guard", None),
    (at(4, 8, 10), "content-download", "skipped", "quota_guard", None),
    (at(4, 9), "content-download", "ok", None, 1200.0),
    (at(4, 10), "content-download", "ok", None, 1500.0),
]
CALLS = [  # (time, account, vendor, used, limit): each call read the daily quota
    (at(1, 9), "hubspot-demo", "hubspot", 999_999, 1_000_000),  # before the week
    (at(2, 9), "hubspot-demo", "hubspot", 1_000, 1_000_000),
    (at(3, 9), "hubspot-demo", "hubspot", 999_000, 1_000_000),  # 1,000 left: under 2,000
    (at(6, 9), "hubspot-demo", "hubspot", 5_000, 1_000_000),
    (at(3, 9), "salesforce-demo", "salesforce", 100, 15_000),
    (at(6, 9), "salesforce-demo", "salesforce", 200, 15_000),  # 14,800 left
]


def fill(store: Store) -> None:
    """Probes inserted then concluded, each observed through the incident state machine and
    saved by ``IncidentStore.apply``, and calls recorded with their quota figure."""
    incidents, track = IncidentStore(store), Track(INTEGRATION, "probes")
    for number, (when, template, outcome, error_class, latency) in enumerate(OBSERVED + UNOBSERVED):
        probe_id = f"p{number}"
        store.insert_probe(
            {"probe_id": probe_id, "integration": INTEGRATION, "template": template,
             "email": f"syncwatch+{probe_id}@probe.syncwatch.example", "state": "scheduled",
             "scheduled_at": when}
        )  # fmt: skip
        store.update_probe(probe_id, state="cleaned", outcome=outcome, error_class=error_class,
                           latency_s=latency, finished_at=when)  # fmt: skip
        if number < len(OBSERVED):
            seen = probe_observation(INTEGRATION, outcome, error_class, when)
            step = observe(track, seen, Policy(), lambda cause: runbook_url(cause, RUNBOOKS))
            incidents.apply(step, [])
            track = step.track
    for when, account, vendor, used, limit in CALLS:
        store.record_call(
            ApiCall(when, vendor, account, "query", 200, 0.1, quota_used=used, quota_limit=limit,
                    quota_window="daily")
        )  # fmt: skip


@pytest.fixture
def config_file(tmp_path: Path) -> Iterator[Path]:
    """The demo config whose database holds four incidents around 2026-W45 (one straddling
    its start, one still open at its end), 19 probes and 6 calls."""
    raw = demo_raw(tmp_path)
    path = tmp_path / "syncwatch.yaml"
    path.write_text(yaml.safe_dump(raw), encoding="utf-8")
    store = Store.open(raw["database"])
    fill(store)
    assert len(IncidentStore(store).incidents_between(MON, NEXT_MON)) == 4
    store.close()
    yield path


def invoke(*args: str | Path) -> Result:
    return CliRunner().invoke(app, [str(arg) for arg in args])


def scorecard(config_file: Path, output_format: str) -> Result:
    result = invoke("report", "scorecard", "--config", config_file, "--week", "2026-W45",
                    "--format", output_format)  # fmt: skip
    assert result.exit_code == 0, result.output
    return result


def test_report_scorecard_json_from_a_real_database(config_file: Path) -> None:
    """By hand: breaches 10 (sync_lost, clipped at Monday 00:00) + 30 + 20 + 60 (open, to the
    week's end) = 120 minutes; MTTR (40 + 30 + 20) / 3 = 30; demo-request latencies six of
    60, two of 90, two of 400: p50 60, p95 400, 8 of 10 within 300 s; 8 ok of 15 that ran."""
    data = json.loads(scorecard(config_file, "json").stdout)
    breaches = {row["cause"]: row for row in data["breaches"]["rows"]}
    assert {cause: (row["attribution"], row["incidents"], row["open"], row["breach_minutes"])
            for cause, row in breaches.items()} == {
        "sync_lost": ("vendor", 1, 0, 10.0),
        "vendor_5xx": ("vendor", 1, 0, 30.0),
        "mismatch": ("customer", 1, 0, 20.0),
        "latency": ("vendor", 1, 1, 60.0),
    }  # fmt: skip
    assert data["breaches"]["total"]["breach_minutes"] == 120.0
    assert data["breaches"]["total"]["open"] == 1
    assert data["mttr"]["rows"] == [
        {"integration": INTEGRATION, "resolved": 3, "mttr_minutes": 30.0}
    ]
    latency = {row["template"]: row for row in data["latency"]["rows"]}
    assert {k: latency["demo-request"][k] for k in ("probes", "p50_s", "p95_s", "objective_s",
            "within_objective_percent", "met")} == {
        "probes": 10, "p50_s": 60.0, "p95_s": 400.0, "objective_s": 300.0,
        "within_objective_percent": 80.0, "met": False,
    }  # fmt: skip
    assert latency["content-download"]["p95_s"] == 1500.0
    assert latency["content-download"]["met"] is True
    outcomes = data["outcomes"]["total"]
    assert outcomes["counts"] == {"ok": 8, "slow": 2, "lost": 0, "rejected": 3, "mismatch": 2,
                                  "misrouted": 0, "skipped": 2}  # fmt: skip
    assert outcomes["probes"] == 17
    assert outcomes["success_percent"] == 53.3333  # 8/15
    quota = {row["account"]: row for row in data["quota"]["rows"]}
    assert (quota["hubspot-demo"]["calls"], quota["hubspot-demo"]["lowest_remaining"]) == (3, 1000)
    assert quota["hubspot-demo"]["below_warning"] is True
    assert (quota["salesforce-demo"]["calls"], quota["salesforce-demo"]["lowest_remaining"]) == (
        2, 14_800,
    )  # fmt: skip
    assert quota["salesforce-demo"]["below_warning"] is False
    assert data["quota"]["total"]["calls"] == 5


def test_report_scorecard_markdown_from_a_real_database(config_file: Path) -> None:
    """The default format is Markdown on stdout, with the same figures."""
    result = invoke("report", "scorecard", "--config", config_file, "--week", "2026-W45")
    assert result.exit_code == 0, result.output
    text = result.stdout
    assert text.startswith("# Scorecard 2026-W45\n")
    assert f"| {INTEGRATION} | [sync_lost]({RUNBOOKS}sync_lost) | vendor | 1 | 0 | 10.0 |" in text
    assert "| **(all)** | (all) |  | 4 | **1** | 120.0 |" in text
    assert f"| {INTEGRATION} | 3 | 30.0 min |" in text
    assert (
        f"| {INTEGRATION} | demo-request | 10 | 60.0 s | 400.0 s | 5m | 80.00 % | **no** |" in text
    )
    assert f"| {INTEGRATION} | 8 | 2 | 0 | 3 | 2 | 0 | 2 | 53.33 % |" in text
    assert "| hubspot-demo | hubspot | 3 | 1,000 | 1,000,000 | 2,000 | **yes** |" in text


def test_report_scorecard_csv_to_a_file(config_file: Path, tmp_path: Path) -> None:
    """``--format csv --output F`` writes the one table to F and says so on stderr."""
    output = tmp_path / "scorecard.csv"
    result = invoke("report", "scorecard", "--config", config_file, "--week", "2026-W45",
                    "--format", "csv", "--output", output)  # fmt: skip
    assert result.exit_code == 0, result.output
    assert result.stdout == ""
    assert result.stderr.strip() == f"wrote {output}"
    rows = list(csv.DictReader(io.StringIO(output.read_text(encoding="utf-8"))))
    mttr = [row for row in rows if row["section"] == "mttr"]
    assert [(row["integration"], row["resolved"], row["mttr_minutes"]) for row in mttr] == [
        (INTEGRATION, "3", "30.0"),
        (ALL, "3", "30.0"),
    ]
    breaches = {row["cause"]: row["breach_minutes"] for row in rows if row["section"] == "breaches"}
    assert breaches == {"sync_lost": "10.0", "vendor_5xx": "30.0", "mismatch": "20.0",
                        "latency": "60.0", ALL: "120.0"}  # fmt: skip


def test_the_week_before_sees_the_straddling_breach_from_its_side(config_file: Path) -> None:
    """2026-W44 holds the first 30 minutes of the breach that straddles the boundary, and no
    MTTR: its recovery was confirmed in W45."""
    result = invoke("report", "scorecard", "--config", config_file, "--week", "2026-W44",
                    "--format", "json")  # fmt: skip
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    [row] = data["breaches"]["rows"]
    assert (row["cause"], row["breach_minutes"]) == ("sync_lost", 30.0)
    assert data["mttr"]["total"] == {"integration": ALL, "resolved": 0, "mttr_minutes": None}
    assert data["outcomes"]["total"]["counts"]["lost"] == 2


@pytest.mark.parametrize("week", ["2026-45", "2026-W54", "2025-W53", "W45"])
def test_a_bad_week_exits_2_naming_it(config_file: Path, week: str) -> None:
    """A week that is not ``YYYY-Www``, or that its year does not have, exits 2 on stderr."""
    result = invoke("report", "scorecard", "--config", config_file, "--week", week)
    assert result.exit_code == 2
    assert result.stdout == ""
    assert result.stderr.startswith(f"--week: {week!r} is not an ISO week")
    assert result.stderr.strip().endswith("write YYYY-Www, e.g. 2026-W45")


def test_a_missing_database_exits_2_and_creates_none(tmp_path: Path) -> None:
    """Before the daemon ever ran there is no database: exit 2 saying so, as report credits."""
    raw = demo_raw(tmp_path)
    path = tmp_path / "syncwatch.yaml"
    path.write_text(yaml.safe_dump(raw), encoding="utf-8")
    result = invoke("report", "scorecard", "--config", path, "--week", "2026-W45")
    assert result.exit_code == 2
    assert result.stderr.strip() == (
        f"{raw['database']}: no database yet (has `syncwatch run` been started?)"
    )
    assert not Path(raw["database"]).exists()


def test_a_foreign_database_exits_2(tmp_path: Path) -> None:
    """A file that is not a syncwatch database is refused, not migrated."""
    raw = demo_raw(tmp_path)
    Path(raw["database"]).write_text("not sqlite at all, just text\n" * 100)
    path = tmp_path / "syncwatch.yaml"
    path.write_text(yaml.safe_dump(raw), encoding="utf-8")
    result = invoke("report", "scorecard", "--config", path, "--week", "2026-W45")
    assert result.exit_code == 2
    assert "not a syncwatch database" in result.stderr


def test_a_missing_config_exits_2(tmp_path: Path) -> None:
    """A config file that does not exist exits 2 naming it."""
    missing = tmp_path / "nope.yaml"
    result = invoke("report", "scorecard", "--config", missing, "--week", "2026-W45")
    assert result.exit_code == 2
    assert str(missing) in result.stderr


def test_help_says_the_week_is_monday_to_monday_utc() -> None:
    """``--help`` lists the options and says what a week is."""
    result = invoke("report", "scorecard", "--help")
    assert result.exit_code == 0
    text = " ".join(result.stdout.split())
    for word in ("--config", "--week", "--format", "--output", "YYYY-Www"):
        assert word in text
    assert "Monday 00:00" in text and "UTC" in text
