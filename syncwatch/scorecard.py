"""The weekly scorecard: each integration's ISO week at a glance (DESIGN §7 items 10-11, §8).

A contract's claim answers "what does the vendor owe us this month"; the scorecard answers the
operations review's "how did each integration do this week": its breaches (incidents) with
their causes and who was at fault, MTTR, each template's latency against its objective, probe
outcomes, and what the monitor spent of each account's quota.

The week is an ISO week in UTC, Monday 00:00 to the next Monday 00:00 (``2026-W01`` starts on
Monday 2025-12-29). ``Scorecard.build`` is pure, values in and values out; ``load_scorecard``
reads its inputs from the store; ``scorecard_render.py`` writes it out. Choices DESIGN leaves
open:

- a breach lasts from ``started_at`` to ``recovered_at``, clipped to the week; one still open
  counts up to ``as_of`` (when the report was made) or the week's end, whichever is first;
- MTTR is the mean full duration (``recovered_at - started_at``) of the incidents whose
  recovery was confirmed (``resolved_at``) within the week, wherever they started;
- a probe belongs to the week it was scheduled in, like the evidence file's ``started_at``;
- the success ratio is ``ok`` of every probe except ``skipped`` ones (a probe the quota guard
  skipped says nothing about the integration).
"""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from fractions import Fraction
from typing import NamedTuple

from syncwatch.config import Config
from syncwatch.incident_store import IncidentStore
from syncwatch.incidents import Incident
from syncwatch.lifecycle import OUTCOMES
from syncwatch.sla import nearest_rank
from syncwatch.store import Store, from_db_time

ALL = "(all)"
"""The total line's name: parentheses cannot occur in a configured name."""
_WEEK = re.compile(r"(\d{4})-W(\d{2})")
_EXAMPLE = "write YYYY-Www, e.g. 2026-W45"


@dataclass(frozen=True)
class Week:
    """One ISO week, Monday 00:00 UTC to the next Monday 00:00 UTC."""

    year: int
    number: int

    @property
    def label(self) -> str:
        return f"{self.year}-W{self.number:02d}"

    @property
    def start(self) -> datetime:
        return datetime.combine(date.fromisocalendar(self.year, self.number, 1), time(), UTC)

    @property
    def end(self) -> datetime:
        return self.start + timedelta(days=7)


def parse_week(text: str) -> Week:
    """``2026-W45`` → ``Week(2026, 45)``; ValueError saying what to write otherwise."""
    match = _WEEK.fullmatch(text)
    if match is None or not 1970 <= int(match[1]) <= 9998:
        raise ValueError(f"{text!r} is not an ISO week; {_EXAMPLE}")
    year, number = int(match[1]), int(match[2])
    weeks = date(year, 12, 28).isocalendar().week  # 28 December is always in the last week
    if not 1 <= number <= weeks:
        raise ValueError(f"{text!r} is not an ISO week: {year} has W01 to W{weeks}; {_EXAMPLE}")
    return Week(year, number)


class ProbeResult(NamedTuple):
    """A concluded probe, as the scorecard needs it."""

    integration: str
    template: str
    scheduled_at: datetime
    outcome: str
    latency_s: float | None


# -- rows ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class BreachRow:
    """Incidents of one integration and cause overlapping the week; ``open`` are unresolved."""

    integration: str
    cause: str
    attribution: str
    incidents: int
    open: int
    breach_minutes: float
    runbook_url: str


@dataclass(frozen=True)
class MttrRow:
    integration: str
    resolved: int
    mttr_minutes: float | None


@dataclass(frozen=True)
class LatencyRow:
    """One template's probes with a latency, against its ``latency_objective``."""

    integration: str
    template: str
    probes: int
    p50_s: float | None
    p95_s: float | None
    objective_s: float | None
    within: Fraction | None
    met: bool | None


@dataclass(frozen=True)
class OutcomeRow:
    integration: str
    counts: Mapping[str, int]
    success: Fraction | None
    """ok / every probe that was not skipped."""


@dataclass(frozen=True)
class QuotaRow:
    """The monitor's own calls to one account, and the account's lowest daily remaining."""

    account: str
    vendor: str
    calls: int
    lowest_remaining: int | None
    daily_limit: int | None
    """The limit of the reading that was lowest."""
    warning_level: int | None

    @property
    def below_warning(self) -> bool | None:
        if self.lowest_remaining is None or self.warning_level is None:
            return None
        return self.lowest_remaining < self.warning_level


# -- the scorecard ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Scorecard:
    """One week's figures, per integration (per template for latency, per account for quota),
    with the all-integrations total lines where adding up means something."""

    week: Week
    as_of: datetime
    breaches: tuple[BreachRow, ...]
    breach_total: BreachRow
    mttr: tuple[MttrRow, ...]
    mttr_total: MttrRow
    latency: tuple[LatencyRow, ...]
    outcomes: tuple[OutcomeRow, ...]
    outcome_total: OutcomeRow
    quota: tuple[QuotaRow, ...]
    quota_total: QuotaRow

    @classmethod
    def build(
        cls,
        config: Config,
        week: Week,
        probes: Iterable[ProbeResult],
        incidents: Iterable[Incident],
        calls: Mapping[str, int],
        quota_figures: Iterable[tuple[datetime, str, int, int]],
        as_of: datetime,
    ) -> Scorecard:
        """The week's scorecard. Inputs may reach outside the week (the loader reads incidents
        from before it, to find those resolved in it); each figure takes only what is its own.
        ``calls`` is the monitor's calls per account; ``quota_figures`` are ``(at, account,
        used, limit)`` daily readings; ``as_of`` ends the breaches still open."""
        probes = [p for p in probes if week.start <= p.scheduled_at < week.end]
        incidents = [i for i in incidents if overlaps(i, week) or _resolved_in(i, week)]
        names = _names([i.name for i in config.integrations], [i.integration for i in incidents])
        names = _names(names, [p.integration for p in probes])
        breaches = _breaches(names, incidents, week, as_of)
        mttr = [
            _mttr(name, [i for i in incidents if i.integration == name], week) for name in names
        ]
        outcomes = [_outcomes(name, [p for p in probes if p.integration == name]) for name in names]
        quota = _quota(config, calls, quota_figures, week)
        return cls(
            week=week,
            as_of=as_of,
            breaches=tuple(breaches),
            breach_total=BreachRow(
                ALL,
                ALL,
                "",
                sum(row.incidents for row in breaches),
                sum(row.open for row in breaches),
                sum(row.breach_minutes for row in breaches),
                "",
            ),
            mttr=tuple(mttr),
            mttr_total=_mttr(ALL, incidents, week),
            latency=tuple(_latency(config, names, probes)),
            outcomes=tuple(outcomes),
            outcome_total=_outcomes(ALL, probes),
            quota=tuple(quota),
            quota_total=QuotaRow(ALL, "", sum(row.calls for row in quota), None, None, None),
        )


def _names(known: Sequence[str], seen: Iterable[str]) -> list[str]:
    """Configured names in config order, then any others the store still holds, sorted."""
    return [*known, *sorted(set(seen) - set(known))]


def overlaps(incident: Incident, week: Week) -> bool:
    """Whether the breach, ``[started_at, recovered_at)``, has a moment inside the week."""
    recovered = incident.recovered_at
    return incident.started_at < week.end and (recovered is None or recovered > week.start)


def _resolved_in(incident: Incident, week: Week) -> bool:
    return incident.resolved_at is not None and week.start <= incident.resolved_at < week.end


def breach_minutes(incident: Incident, week: Week, as_of: datetime) -> float:
    """Minutes of the breach inside the week; an open one runs to ``as_of``."""
    end = incident.recovered_at if incident.recovered_at is not None else as_of
    overlap = min(end, week.end) - max(incident.started_at, week.start)
    return max(overlap, timedelta(0)) / timedelta(minutes=1)


def _breaches(
    names: Sequence[str], incidents: Iterable[Incident], week: Week, as_of: datetime
) -> list[BreachRow]:
    grouped: dict[tuple[str, str], list[Incident]] = defaultdict(list)
    for incident in filter(lambda i: overlaps(i, week), incidents):
        grouped[incident.integration, incident.cause].append(incident)
    order = {name: position for position, name in enumerate(names)}
    return [
        BreachRow(
            integration,
            cause,
            "/".join(sorted({i.attribution for i in group})),
            len(group),
            sum(1 for i in group if i.is_open),
            sum(breach_minutes(i, week, as_of) for i in group),
            group[-1].runbook_url,
        )
        for (integration, cause), group in sorted(
            grouped.items(), key=lambda item: (order[item[0][0]], item[0][1])
        )
    ]


def _mttr(integration: str, incidents: Iterable[Incident], week: Week) -> MttrRow:
    durations = [i.duration for i in incidents if _resolved_in(i, week)]
    minutes = [d / timedelta(minutes=1) for d in durations if d is not None]
    return MttrRow(integration, len(minutes), sum(minutes) / len(minutes) if minutes else None)


def _latency(
    config: Config, names: Sequence[str], probes: Sequence[ProbeResult]
) -> list[LatencyRow]:
    """A row per configured template of each integration, then any other the store holds."""
    latencies: dict[tuple[str, str], list[float]] = defaultdict(list)
    for probe in probes:
        values = latencies[probe.integration, probe.template]
        if probe.latency_s is not None:
            values.append(probe.latency_s)
    rows: list[LatencyRow] = []
    for name in names:
        integration = config.integration(name)
        runs = integration.templates if integration else []
        objectives = {run.template: run.latency_objective for run in runs}
        templates = _names(list(objectives), [t for i, t in latencies if i == name])
        rows.extend(
            _latency_row(name, t, latencies.get((name, t), []), objectives.get(t))
            for t in templates
        )
    return rows


def _latency_row(
    integration: str, template: str, values: Sequence[float], objective: float | None
) -> LatencyRow:
    p95 = nearest_rank(values, 95)
    within = met = None
    if objective is not None and values:
        within = Fraction(sum(1 for value in values if value <= objective), len(values))
        met = p95 is not None and p95 <= objective
    return LatencyRow(
        integration, template, len(values), nearest_rank(values, 50), p95, objective, within, met
    )


def _outcomes(integration: str, probes: Iterable[ProbeResult]) -> OutcomeRow:
    seen = Counter(probe.outcome for probe in probes)
    counts = {outcome: seen.get(outcome, 0) for outcome in OUTCOMES}  # the store holds no other
    judged = sum(counts.values()) - counts["skipped"]
    success = Fraction(counts["ok"], judged) if judged else None
    return OutcomeRow(integration, counts, success)


def _quota(
    config: Config,
    calls: Mapping[str, int],
    figures: Iterable[tuple[datetime, str, int, int]],
    week: Week,
) -> list[QuotaRow]:
    """A row per configured account: the lowest ``limit - used`` of its daily readings."""
    lowest: dict[str, tuple[int, int]] = {}
    for at, name, used, limit in figures:
        remaining, best = max(0, limit - used), lowest.get(name)
        if week.start <= at < week.end and (best is None or remaining < best[0]):
            lowest[name] = (remaining, limit)
    rows = []
    for account in config.accounts:
        reading = lowest.get(account.name)
        rows.append(
            QuotaRow(
                account=account.name,
                vendor=account.vendor,
                calls=calls.get(account.name, 0),
                lowest_remaining=None if reading is None else reading[0],
                daily_limit=None if reading is None else reading[1],
                warning_level=account.quota.warning_level,
            )
        )
    return rows


# -- reading the store --------------------------------------------------------------------------


def load_scorecard(config: Config, store: Store, week: Week, as_of: datetime) -> Scorecard:
    """The week's scorecard from the store: probes, incidents, calls and quota readings."""
    since = week.start - recovery_lookback(config)
    incidents = IncidentStore(store).incidents_between(since, week.end)
    calls = {a.name: store.count_calls(a.name, week.start, week.end) for a in config.accounts}
    figures = store.quota_figures_between(week.start, week.end)
    probes = _stored_probes(store, week.start, week.end)
    return Scorecard.build(config, week, probes, incidents, calls, figures, as_of)


def recovery_lookback(config: Config) -> timedelta:
    """How long before the week an incident resolved in it can have recovered: ``recover``
    observations, each at most the slowest schedule plus the longest timeout apart (probes
    finish that far apart at worst), and never less than a week."""
    gaps = [max(r.every for r in i.templates) + i.timeout for i in config.integrations]
    worst = timedelta(seconds=config.incidents.recover * max(gaps, default=0.0))
    return max(worst, timedelta(days=7))


def _stored_probes(store: Store, since: datetime, until: datetime) -> list[ProbeResult]:
    """Concluded probes scheduled in [since, until), with their template."""
    return [
        ProbeResult(
            row["integration"],
            row["template"],
            from_db_time(row["scheduled_at"]),
            row["outcome"],
            row["latency_s"],
        )
        for row in store.concluded_probes_between(since, until)
    ]
