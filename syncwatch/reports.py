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
from dataclasses import dataclass
from datetime import datetime
from fractions import Fraction
from typing import Any

from jinja2 import Environment, PackageLoader, select_autoescape

from syncwatch.config import Config, Contract
from syncwatch.config.accounts import VENDOR_TITLES
from syncwatch.evidence import evidence_window, stored_events, stored_folds
from syncwatch.sla import CallEvent, SlaResult, evaluate
from syncwatch.sla.folded import fuller
from syncwatch.sla.intervals import VENDOR_CLASSES
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
