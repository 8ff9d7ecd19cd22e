"""A contract month folded into what its evidence adds up to, for months past raw retention.

Raw probes and calls are kept ``retention.raw_days``; a year of claims must still be exact. Every
figure of DESIGN §7 is a function of the month's interval buckets (``Bucket``: counts, flags and
classes, which add up associatively) and, for the latency objective, of the nearest-rank
percentile of the covered probes. So a whole month folds into its non-empty buckets and its
latency result, and ``evaluate`` over a fold gives exactly what it gives over the raw events.

Folding bakes in the terms that decide *which* events land in *which* bucket (vendor,
integrations, interval, time zone, the probe rules, the latency objective): those are recorded as
the fold's ``terms``, and a fold is only used under the same terms. Everything applied at
evaluation (maintenance, business calendar, error-rate threshold, consecutive rule, unknown
policy, tiers, fee) may change freely.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from syncwatch.config.contracts import Contract
from syncwatch.errors import SyncwatchError
from syncwatch.sla.intervals import Bucket, CallEvent, Event, bucket_events
from syncwatch.sla.periods import month_period

FOLD_TERMS = ("vendor", "integrations", "interval_minutes", "timezone", "latency_objective")
"""The contract keys a fold depends on (and ``downtime.lost_probe``/``latency_above_s``)."""


class FoldTermsChanged(SyncwatchError):
    """A folded month was folded under other contract terms; its raw events are gone."""


@dataclass(frozen=True)
class FoldedLatency:
    """The latency objective's result over the month's covered probes, as ``_latency`` gives."""

    observed_s: float | None
    probes: int


@dataclass(frozen=True)
class FoldedMonth:
    contract: str
    month: str
    terms: dict[str, Any]
    buckets: dict[int, Bucket]
    latency: FoldedLatency | None
    calls: int = 0
    """Calls to the contract's vendor in the period (the claim's ``api_calls``)."""
    calls_ok: int = 0
    calls_vendor_failed: int = 0
    peak_quota: tuple[int, int] | None = None
    """(used, limit) of the highest daily quota reading of the vendor's accounts."""


def fold_terms(contract: Contract) -> dict[str, Any]:
    """The terms a fold is valid under, as plain JSON-able data (compared, and shown on error)."""
    data = contract.model_dump(mode="json")
    terms = {key: data[key] for key in FOLD_TERMS}
    terms["integrations"] = sorted(terms["integrations"])
    terms["lost_probe"] = data["downtime"]["lost_probe"]
    terms["latency_above_s"] = data["downtime"]["latency_above_s"]
    return terms


def fold_month(
    contract: Contract,
    month: str,
    events: Iterable[Event],
    latency: FoldedLatency | None,
    peak_quota: tuple[int, int] | None = None,
) -> FoldedMonth:
    """The month's events, folded: its buckets and call counts (``latency`` is the result of
    the objective computed by ``evaluate`` over the same events)."""
    period = month_period(contract, month)
    kept = list(events)
    calls = [
        event
        for event in kept
        if isinstance(event, CallEvent)
        and event.vendor == contract.vendor
        and period.start <= event.at < period.end
    ]
    buckets = bucket_events(contract, period, kept)
    return FoldedMonth(
        contract=contract.name,
        month=month,
        terms=fold_terms(contract),
        buckets=buckets,
        latency=latency,
        calls=len(calls),
        calls_ok=sum(1 for call in calls if call.ok),
        calls_vendor_failed=sum(b.vendor_failures for b in buckets.values()),
        peak_quota=peak_quota,
    )


def usable_folds(contract: Contract, folds: Mapping[str, FoldedMonth]) -> dict[str, FoldedMonth]:
    """The contract's folds, checked against its current terms."""
    terms = fold_terms(contract)
    usable = {}
    for month, fold in folds.items():
        if fold.contract != contract.name:
            continue
        if fold.terms != terms:
            changed = sorted(key for key in terms if fold.terms.get(key) != terms[key])
            raise FoldTermsChanged(
                f"contract {contract.name!r}: {month} is past raw retention and was folded "
                f"under other terms ({', '.join(changed)} changed since); its figures can only "
                "be recomputed under the terms it was folded with"
            )
        usable[month] = fold
    return usable


# -- (de)serialising, for the store and evidence files ------------------------------------------


def bucket_json(bucket: Bucket) -> dict[str, Any]:
    return {
        "ok": bucket.ok,
        "vendor_failures": bucket.vendor_failures,
        "evidence": bucket.evidence,
        "probe_down": bucket.probe_down,
        "classes": dict(sorted(bucket.classes.items())),
    }


def bucket_from_json(raw: Mapping[str, Any]) -> Bucket:
    return Bucket(
        ok=int(raw["ok"]),
        vendor_failures=int(raw["vendor_failures"]),
        evidence=bool(raw["evidence"]),
        probe_down=bool(raw["probe_down"]),
        classes=Counter({str(k): int(v) for k, v in dict(raw["classes"]).items()}),
    )


def fold_json(fold: FoldedMonth) -> dict[str, Any]:
    """One evidence line (``kind: folded_month``); ``fold_from_json`` reads it back."""
    return {
        "kind": "folded_month",
        "contract": fold.contract,
        "month": fold.month,
        "terms": fold.terms,
        "latency": None
        if fold.latency is None
        else {"observed_s": fold.latency.observed_s, "probes": fold.latency.probes},
        "calls": fold.calls,
        "calls_ok": fold.calls_ok,
        "calls_vendor_failed": fold.calls_vendor_failed,
        "peak_quota": None if fold.peak_quota is None else list(fold.peak_quota),
        "intervals": {str(index): bucket_json(b) for index, b in sorted(fold.buckets.items())},
    }


def fold_from_json(raw: Mapping[str, Any]) -> FoldedMonth:
    """Raises KeyError/TypeError/ValueError on a malformed line (the caller names the line)."""
    latency = raw["latency"]
    quota = raw["peak_quota"]
    return FoldedMonth(
        contract=str(raw["contract"]),
        month=str(raw["month"]),
        terms=dict(raw["terms"]),
        buckets={int(k): bucket_from_json(v) for k, v in dict(raw["intervals"]).items()},
        latency=None
        if latency is None
        else FoldedLatency(
            None if latency["observed_s"] is None else float(latency["observed_s"]),
            int(latency["probes"]),
        ),
        calls=int(raw["calls"]),
        calls_ok=int(raw["calls_ok"]),
        calls_vendor_failed=int(raw["calls_vendor_failed"]),
        peak_quota=None if quota is None else (int(quota[0]), int(quota[1])),
    )


def fold_line(fold: FoldedMonth) -> str:
    return json.dumps(fold_json(fold), separators=(",", ":"), sort_keys=True) + "\n"
