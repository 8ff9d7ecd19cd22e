"""The part of a contract month past raw retention, folded into what its evidence adds up to.

Raw probes and calls are kept ``retention.raw_days``; a year of claims must still be exact. Every
figure of DESIGN §7 is a function of the month's interval buckets (``Bucket``: counts, flags and
classes, which add up) and, for the latency objective, of the covered probes' latencies (a
nearest-rank percentile needs them all: 8 bytes a probe). So the events older than ``raw_days``
fold, an hour at a time, into per-interval buckets, latencies and call counts, and ``evaluate``
over a fold plus the raw events left gives exactly what it gives over all the raw events.

Folding bakes in the terms that decide *which* events land in *which* bucket (vendor,
integrations, interval, time zone, the probe rules): those are recorded as the fold's
``terms``, and a fold is only used under the same terms. Everything applied at evaluation
(maintenance, business calendar, error-rate threshold, consecutive rule, unknown policy, latency
objective, tiers, fee) may change freely.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

from syncwatch.config.contracts import Contract
from syncwatch.errors import SyncwatchError
from syncwatch.sla.intervals import Bucket, CallEvent, Event, ProbeEvent, bucket_events
from syncwatch.sla.periods import month_period

FOLD_TERMS = ("vendor", "integrations", "interval_minutes", "timezone")
"""The contract keys a fold depends on (and ``downtime.lost_probe``/``latency_above_s``)."""


class FoldTermsChanged(SyncwatchError):
    """A folded month was folded under other contract terms; its raw events are gone."""


@dataclass(frozen=True)
class FoldedMonth:
    """What a contract month's folded events add up to."""

    contract: str
    month: str
    terms: dict[str, Any]
    buckets: dict[int, Bucket]
    latencies: tuple[float, ...] = ()
    """``latency_s`` of the covered probes that had one."""
    calls: int = 0
    """Calls to the contract's vendor in the period (the claim's ``api_calls``)."""
    calls_ok: int = 0
    calls_vendor_failed: int = 0
    peak_quota: tuple[int, int] | None = None
    """(used, limit) of the fullest quota reading of the vendor's accounts."""


def fuller(a: tuple[int, int] | None, b: tuple[int, int] | None) -> tuple[int, int] | None:
    """The fuller of two (used, limit) quota readings, compared exactly."""
    if a is None or b is None:
        return a or b
    return b if Fraction(*b) > Fraction(*a) else a


def fold_terms(contract: Contract) -> dict[str, Any]:
    """The terms a fold is valid under, as plain JSON-able data (compared, and shown on error)."""
    data = contract.model_dump(mode="json")
    terms = {key: data[key] for key in FOLD_TERMS}
    terms["integrations"] = sorted(terms["integrations"])
    terms["lost_probe"] = data["downtime"]["lost_probe"]
    terms["latency_above_s"] = data["downtime"]["latency_above_s"]
    return terms


def fold_events(
    contract: Contract,
    month: str,
    events: Iterable[Event],
    peak_quota: tuple[int, int] | None = None,
) -> FoldedMonth:
    """The month's share of ``events``, folded (``peak_quota``: the vendor's fullest reading
    among them, which events do not carry)."""
    period = month_period(contract, month)
    covered = set(contract.integrations)
    kept = list(events)
    calls = [
        event
        for event in kept
        if isinstance(event, CallEvent)
        and event.vendor == contract.vendor
        and period.start <= event.at < period.end
    ]
    latencies = tuple(
        event.latency_s
        for event in kept
        if isinstance(event, ProbeEvent)
        and event.latency_s is not None
        and event.integration in covered
        and period.start <= event.started_at < period.end
    )
    buckets = bucket_events(contract, period, kept)
    return FoldedMonth(
        contract=contract.name,
        month=month,
        terms=fold_terms(contract),
        buckets=buckets,
        latencies=latencies,
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
        if fold.contract == contract.name:
            check_terms(contract.name, month, fold.terms, terms)
            usable[month] = fold
    return usable


def check_terms(
    contract: str, month: str, folded: Mapping[str, Any], now: Mapping[str, Any]
) -> None:
    """FoldTermsChanged unless a fold's terms are the contract's current ones."""
    if dict(folded) != dict(now):
        changed = sorted(key for key in now if folded.get(key) != now[key])
        raise FoldTermsChanged(
            f"contract {contract!r}: {month} is past raw retention and was folded under other "
            f"terms ({', '.join(changed)} changed since); its figures can only be recomputed "
            "under the terms it was folded with"
        )


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
        "calls": fold.calls,
        "calls_ok": fold.calls_ok,
        "calls_vendor_failed": fold.calls_vendor_failed,
        "peak_quota": None if fold.peak_quota is None else list(fold.peak_quota),
        "intervals": {str(index): bucket_json(b) for index, b in sorted(fold.buckets.items())},
        "latencies": list(fold.latencies),
    }


def fold_from_json(raw: Mapping[str, Any]) -> FoldedMonth:
    """Raises KeyError/TypeError/ValueError on a malformed line (the caller names the line)."""
    quota = raw["peak_quota"]
    return FoldedMonth(
        contract=str(raw["contract"]),
        month=str(raw["month"]),
        terms=dict(raw["terms"]),
        buckets={int(k): bucket_from_json(v) for k, v in dict(raw["intervals"]).items()},
        latencies=tuple(float(value) for value in raw["latencies"]),
        calls=int(raw["calls"]),
        calls_ok=int(raw["calls_ok"]),
        calls_vendor_failed=int(raw["calls_vendor_failed"]),
        peak_quota=None if quota is None else (int(quota[0]), int(quota[1])),
    )


def fold_line(fold: FoldedMonth) -> str:
    return json.dumps(fold_json(fold), separators=(",", ":"), sort_keys=True) + "\n"
