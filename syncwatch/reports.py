"""Monthly credit claims: one per contract, as CSV, JSON or a printable HTML document.

Each claim is ``sla.evaluate`` over exactly the evidence ``syncwatch export events`` writes for
the month (``evidence.evidence_window``), plus what a vendor manager attaches to it: the API
success rate and quota use of the vendor's calls in the period, and how to recompute the claim.
So a claim and ``sla evaluate`` on its evidence file can never disagree.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from fractions import Fraction
from typing import Any

from jinja2 import Environment, PackageLoader, select_autoescape

from syncwatch.config import Config, Contract
from syncwatch.config.accounts import VENDOR_TITLES
from syncwatch.evidence import evidence_window, stored_events, stored_folds
from syncwatch.sla import (
    CallEvent,
    Event,
    Period,
    SlaResult,
    evaluate,
    month_period,
    uptime_to_date,
)
from syncwatch.sla.folded import fuller
from syncwatch.sla.intervals import (
    VENDOR_CLASSES,
    Bucket,
    Interval,
    bucket_events,
    merge_buckets,
    raw_intervals,
)
from syncwatch.sla.periods import excluded_mask
from syncwatch.store import Store

CSV_COLUMNS = (
    "contract",
    "vendor",
    "month",
    "timezone",
    "period_start",
    "period_end",
    "eligible_minutes",
    "downtime_minutes",
    "unknown_minutes",
    "excluded_minutes",
    "uptime_percent",
    "objective_percent",
    "met",
    "credit_percent",
    "credit_amount",
    "currency",
    "claim_deadline",
    "consecutive_misses",
    "termination_right",
    "incidents",
    "mttr_minutes",
    "api_calls",
    "api_success_percent",
)


@dataclass(frozen=True)
class Claim:
    """A contract's month and the context a claim needs beside the arithmetic."""

    contract: Contract
    result: SlaResult
    api_calls: int
    api_success: Fraction | None
    """ok / (ok + vendor-attributed failures) of the vendor's calls in the period."""
    peak_quota: tuple[int, int] | None
    """(used, limit) of the highest daily quota reading of the vendor's accounts."""

    def as_row(self) -> dict[str, Any]:
        data = self.result.to_json()
        row = {key: data.get(key) for key in CSV_COLUMNS}
        row["vendor"] = self.contract.vendor
        row["incidents"] = len(self.result.incidents)
        row["api_calls"] = self.api_calls
        row["api_success_percent"] = (
            None if self.api_success is None else round(float(self.api_success * 100), 4)
        )
        return row

    def as_json(self) -> dict[str, Any]:
        return {
            **self.result.to_json(),
            "vendor": self.contract.vendor,
            "api_calls": self.api_calls,
            "api_success_percent": self.as_row()["api_success_percent"],
            "peak_quota": None
            if self.peak_quota is None
            else {"used": self.peak_quota[0], "limit": self.peak_quota[1]},
        }


def build_claims(config: Config, store: Store, month: str) -> list[Claim]:
    """Every configured contract's claim for ``month``, from the store's evidence: raw events,
    and the folds of months past raw retention (``retention.py``)."""
    since, until = evidence_window(config.contracts, month)
    events = stored_events(store, since, until)
    readings = store.quota_figures_between(since, until)
    folds = stored_folds(store, config.contracts, month)
    claims = []
    for contract in config.contracts:
        folded = folds.get(contract.name, {})
        result = evaluate(contract, month, events, folds=folded)
        calls = [
            event
            for event in events
            if isinstance(event, CallEvent)
            and event.vendor == contract.vendor
            and result.period_start <= event.at < result.period_end
        ]
        ok = sum(1 for call in calls if call.ok)
        failed = sum(1 for call in calls if call.error_class in VENDOR_CLASSES)
        quota = peak_quota(config, contract, result, readings)
        fold = folded.get(month)
        if fold is not None:  # the month's older part, past raw retention
            ok, failed = ok + fold.calls_ok, failed + fold.calls_vendor_failed
            calls_made = len(calls) + fold.calls
            quota = fuller(fold.peak_quota, quota)  # older first, as in time order
        else:
            calls_made = len(calls)
        success = Fraction(ok, ok + failed) if ok + failed else None
        claims.append(Claim(contract, result, calls_made, success, quota))
    return claims


def peak_quota(
    config: Config,
    contract: Contract,
    result: SlaResult,
    readings: Sequence[tuple[datetime, str, int, int]],
) -> tuple[int, int] | None:
    """(used, limit) of the fullest daily reading of the vendor's accounts in the period."""
    accounts = {a.name for a in config.accounts if a.vendor == contract.vendor}
    figures = [
        (used, limit)
        for at, account, used, limit in readings
        if account in accounts and result.period_start <= at < result.period_end
    ]
    peak: tuple[int, int] | None = None
    for figure in figures:
        peak = fuller(peak, figure)
    return peak


# -- rendering ----------------------------------------------------------------------------------


def render_json(claims: Sequence[Claim]) -> str:
    return json.dumps([claim.as_json() for claim in claims], indent=2) + "\n"


def render_csv(claims: Sequence[Claim]) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=CSV_COLUMNS, lineterminator="\n")
    writer.writeheader()
    for claim in claims:
        writer.writerow(claim.as_row())
    return out.getvalue()


def render_html(
    claims: Sequence[Claim], month: str, generated_at: datetime, config_path: str
) -> str:
    """A printable document per contract; Jinja2 with autoescape (names come from config)."""
    environment = Environment(
        loader=PackageLoader("syncwatch", "templates"),
        autoescape=select_autoescape(["html"]),
        keep_trailing_newline=True,
    )
    template = environment.get_template("claim.html")
    return template.render(
        claims=[_view(claim) for claim in claims],
        month=month,
        generated_at=generated_at.strftime("%Y-%m-%d %H:%M UTC"),
        config_path=config_path,
    )


def _view(claim: Claim) -> dict[str, Any]:
    """The figures a person reads, formatted once here so the template stays logic-free."""
    result, zone = claim.result, claim.contract.zone
    local = "%Y-%m-%d %H:%M %Z"
    uptime = "n/a (no evidence)" if result.uptime is None else f"{float(result.uptime * 100):.4f} %"
    latency = result.latency
    vendor = claim.contract.vendor
    return {
        "contract": claim.contract,
        "vendor": VENDOR_TITLES.get(vendor, vendor.capitalize()),
        "result": result,
        "period": f"{result.period_start.astimezone(zone).strftime(local)} to "
        f"{result.period_end.astimezone(zone).strftime(local)}",
        "uptime": uptime,
        "verdict": {True: "met", False: "missed", None: "not determined"}[result.met],
        "incidents": [
            {
                "start": incident.start.astimezone(zone).strftime(local),
                "end": incident.end.astimezone(zone).strftime(local),
                "minutes": incident.minutes,
                "cause": incident.dominant_error_class or "",
                "counts": ", ".join(f"{k} {v}" for k, v in sorted(incident.counts.items())),
            }
            for incident in result.incidents
        ],
        "latency": latency,
        "mttr": "n/a" if result.mttr_minutes is None else f"{result.mttr_minutes:.1f} min",
        "api_success": "n/a"
        if claim.api_success is None
        else f"{float(claim.api_success * 100):.3f} %",
        "api_calls": claim.api_calls,
        "quota": "n/a"
        if claim.peak_quota is None
        else f"{claim.peak_quota[0]:,} of {claim.peak_quota[1]:,} (daily, at its highest)",
    }


def month_to_date(
    config: Config, events: list[Event], now: datetime
) -> dict[str, tuple[float | None, float | None]]:
    """Each contract's (uptime ratio, credit ratio) for its local month up to ``now``: the
    figures behind ``syncwatch_uptime_ratio`` and ``syncwatch_service_credit_ratio``. Pure, so
    the daemon runs it off its event loop."""
    figures: dict[str, tuple[float | None, float | None]] = {}
    for contract in config.contracts:
        result = evaluate(contract, _local_month(contract, now), events, until=now)
        if result.uptime is None:
            figures[contract.name] = (None, None)
        else:
            figures[contract.name] = (float(result.uptime), float(result.credit_percent / 100))
    return figures


@dataclass
class _ContractMonth:
    """One contract's month so far: buckets of the events that can no longer change."""

    month: str
    period: Period
    mask: bytearray
    settled: dict[int, Bucket] = field(default_factory=dict)
    settled_until: datetime | None = None
    head: list[Interval] = field(default_factory=list)
    """Raw statuses of the intervals wholly before ``settled_until``: final."""


class MonthToDate:
    """Month-to-date uptime and credit per contract, kept up to date incrementally.

    Recomputing the month from every stored event each refresh grows with the month (and made
    a simulated month quadratic). Events older than ``settle`` cannot change any more (a probe
    has its outcome by its integration's timeout; a call is recorded when it returns), so they
    are bucketed once and kept; each refresh reads and buckets only the last ``settle``. The
    figures are exactly ``month_to_date``'s (a test compares them over a simulated run).
    """

    def __init__(self, config: Config) -> None:
        self.config = config
        slowest = max((i.timeout for i in config.integrations), default=0.0)
        self.settle = timedelta(seconds=slowest) + SETTLE_MARGIN
        self._months: dict[str, _ContractMonth] = {}

    def read(self, store: Store, now: datetime) -> list[Event]:
        """The events a refresh at ``now`` needs (on the daemon's loop: the store's thread)."""
        starts = [self._month(contract, now).settled_until for contract in self.config.contracts]
        if not starts:
            return []
        periods = [self._months[c.name].period for c in self.config.contracts]
        since = min(start or period.start for start, period in zip(starts, periods, strict=True))
        return stored_events(store, since, now)

    def compute(
        self, events: list[Event], now: datetime
    ) -> dict[str, tuple[float | None, float | None]]:
        """(uptime, credit) ratios per contract; pure apart from the cache (off the loop)."""
        settle_at = now - self.settle
        figures: dict[str, tuple[float | None, float | None]] = {}
        for contract in self.config.contracts:
            state = self._month(contract, now)
            since = state.settled_until or state.period.start
            fresh = [e for e in events if _moment(e) >= since]
            if settle_at > since:
                settled = [e for e in fresh if _moment(e) < settle_at]
                merge_buckets(state.settled, bucket_events(contract, state.period, settled))
                state.settled_until = settle_at
                fresh = [e for e in fresh if _moment(e) >= settle_at]
                _extend_head(contract, state)
            buckets = dict(state.settled)
            merge_buckets(buckets, bucket_events(contract, state.period, fresh))
            uptime, credit = uptime_to_date(
                contract, state.period, state.mask, buckets, now, state.head
            )
            figures[contract.name] = (
                (None, None) if uptime is None else (float(uptime), float(credit / 100))
            )
        return figures

    def _month(self, contract: Contract, now: datetime) -> _ContractMonth:
        month = _local_month(contract, now)
        state = self._months.get(contract.name)
        if state is None or state.month != month:
            period = month_period(contract, month)
            state = _ContractMonth(month, period, excluded_mask(contract, period))
            self._months[contract.name] = state
        return state


SETTLE_MARGIN = timedelta(minutes=10)
"""Beyond the slowest timeout: a call's time is when it was sent, recorded when it returns."""


def _extend_head(contract: Contract, state: _ContractMonth) -> None:
    """Fix the raw status of every interval that ended before ``settled_until``."""
    assert state.settled_until is not None
    width = timedelta(minutes=contract.interval_minutes)
    whole = max(0, (state.settled_until - state.period.start) // width)
    if whole > len(state.head):
        state.head.extend(
            raw_intervals(contract, state.period, state.mask, state.settled, len(state.head), whole)
        )


def _moment(event: Event) -> datetime:
    return event.at if isinstance(event, CallEvent) else event.started_at


def _local_month(contract: Contract, now: datetime) -> str:
    return now.astimezone(contract.zone).strftime("%Y-%m")
