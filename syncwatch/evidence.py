"""The evidence file: probe results and API calls as JSON Lines (DESIGN §7).

``syncwatch export events`` writes it from the store and ``syncwatch sla evaluate`` reads it, so
anyone holding a claim's evidence file can recompute the claim. Reading is strict: a line that is
not exactly an event is reported as ``file:line: reason`` and nothing is evaluated, because a
claim computed from half its evidence is worse than none. Parsed by hand rather than through a
model: a month of one-minute events for ten integrations is half a million lines.
"""

from __future__ import annotations

import gc
import json
import sys
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, NoReturn

from syncwatch.config import Contract
from syncwatch.errors import ATTRIBUTION, ConfigError
from syncwatch.events import ApiCall
from syncwatch.lifecycle import OUTCOMES
from syncwatch.rollup_store import RollupStore
from syncwatch.sla import CallEvent, Event, ProbeEvent, month_period, parse_month
from syncwatch.sla.folded import FoldedMonth, fold_from_json, fold_line
from syncwatch.sla.periods import previous_month
from syncwatch.store import Store, from_db_time

MAX_LISTED = 20
"""Problems listed before the rest are only counted."""
_PROBE_KEYS = {"kind", "integration", "started_at", "outcome", "error_class", "latency_s"}
_CALL_KEYS = {"kind", "integration", "vendor", "at", "ok", "status", "error_class", "operation"}
_LARGEST = sys.float_info.max


@dataclass(frozen=True)
class Evidence:
    """An evidence file: raw events, and the folds of months past raw retention."""

    events: list[Event]
    folds: dict[str, dict[str, FoldedMonth]]
    """By contract, then month (``sla.folded``)."""


def read_events(path: Path) -> list[Event]:
    """Every event in ``path`` (a file without folded months); see ``read_evidence``."""
    evidence = read_evidence(path)
    if evidence.folds:
        raise ConfigError([f"{path}: holds folded months; read it with read_evidence"])
    return evidence.events


def read_evidence(path: Path) -> Evidence:
    """Every event and fold in ``path``; ConfigError lists each bad line as ``file:line:
    reason``."""
    try:
        handle = path.open(encoding="utf-8-sig")  # a byte-order mark is not an error
    except OSError as exc:
        raise ConfigError([f"{path}: cannot read the events file: {exc.strerror}"]) from exc
    events: list[Event] = []
    folds: dict[str, dict[str, FoldedMonth]] = {}
    problems: list[str] = []
    append = events.append
    # Half a million small objects that all survive: the cyclic collector would walk them again
    # and again for nothing (about a fifth of the time), and events hold no cycles.
    collecting = gc.isenabled()
    gc.disable()
    try:
        with handle:
            for number, line in enumerate(handle, start=1):
                if not line.strip():
                    continue
                try:
                    parsed = parse_line(line)
                except ValueError as exc:
                    problems.append(f"{path}:{number}: {exc}")
                    continue
                if isinstance(parsed, FoldedMonth):
                    folds.setdefault(parsed.contract, {})[parsed.month] = parsed
                else:
                    append(parsed)
    except UnicodeDecodeError:
        problems.append(f"{path}: not UTF-8 text")
    finally:
        if collecting:
            gc.enable()
    if problems:
        extra = len(problems) - MAX_LISTED
        raise ConfigError(problems[:MAX_LISTED] + ([f"... and {extra} more"] if extra > 0 else []))
    return Evidence(events, folds)


def _fold(raw: dict[str, Any]) -> FoldedMonth:
    """A ``kind: folded_month`` line, as ``fold_line`` writes it."""
    try:
        parse_month(str(raw["month"]))
        return fold_from_json(raw)
    except (KeyError, TypeError, ValueError, AttributeError, IndexError) as exc:
        reason = f"missing {exc}" if isinstance(exc, KeyError) else str(exc)
        raise ValueError(f"a folded month must be exactly what export writes ({reason})") from None


_Scanner = Callable[[str, int], tuple[Any, int]]
_scan: _Scanner = json.JSONDecoder().scan_once  # type: ignore[attr-defined]  # not in typeshed
"""The C scanner behind ``json.loads``, called directly: half the time per line, and exactly
the same grammar (only the caller's whitespace handling and end check are redone below)."""
_JSON_SPACE = " \t\n\r"


def parse_event(line: str) -> Event:
    """One line as an event; ValueError says what is wrong with it."""
    parsed = parse_line(line)
    if isinstance(parsed, FoldedMonth):
        raise ValueError('"kind" must be "probe" or "call" here')
    return parsed


def parse_line(line: str) -> Event | FoldedMonth:
    """One line of an evidence file: an event, or a folded month; ValueError says why not."""
    text = line.strip(_JSON_SPACE)
    try:
        raw, end = _scan(text, 0)
    except (StopIteration, ValueError, RecursionError):  # RecursionError: [[[[… nested deep
        end = -1
    if end != len(text):
        raise ValueError("not a JSON object (truncated or not JSON)")
    if type(raw) is not dict:
        raise ValueError("not a JSON object")
    kind = raw.get("kind")
    if kind == "probe":
        return _probe(raw)
    if kind == "call":
        return _call(raw)
    if kind == "folded_month":
        return _fold(raw)
    raise ValueError('"kind" must be "probe", "call" or "folded_month"')


def _probe(raw: dict[str, Any]) -> ProbeEvent:
    if not raw.keys() <= _PROBE_KEYS:
        _unknown_key(raw, _PROBE_KEYS)
    outcome = raw.get("outcome")
    if type(outcome) is not str or outcome not in OUTCOMES:
        raise ValueError(f'"outcome" must be one of {", ".join(OUTCOMES)}')
    latency = raw.get("latency_s")
    if latency is not None:
        # type() rather than isinstance: true and false are ints to Python, not seconds.
        # The upper bound refuses inf and integers too large to be a float; NaN fails both.
        if type(latency) not in (int, float) or not 0 <= latency <= _LARGEST:
            raise ValueError('"latency_s" must be a number of seconds, at least 0, or null')
        latency = float(latency)
    return ProbeEvent(
        integration=_text(raw, "integration"),
        started_at=_moment(raw, "started_at"),
        outcome=outcome,
        error_class=_error_class(raw),
        latency_s=latency,
    )


def _call(raw: dict[str, Any]) -> CallEvent:
    if not raw.keys() <= _CALL_KEYS:
        _unknown_key(raw, _CALL_KEYS)
    ok = raw.get("ok")
    if type(ok) is not bool:
        raise ValueError('"ok" must be true or false')
    error_class = _error_class(raw)
    if not ok and error_class is None:
        raise ValueError('a failed call ("ok": false) needs its "error_class"')
    status = raw.get("status")
    if status is not None and type(status) is not int:
        raise ValueError('"status" must be an HTTP status code or null')
    integration = raw.get("integration")
    if integration is not None and type(integration) is not str:
        raise ValueError('"integration" must be text or null')
    return CallEvent(
        vendor=_text(raw, "vendor"),
        at=_moment(raw, "at"),
        ok=ok,
        error_class=error_class,
        status=status,
        integration=integration,
    )


def _unknown_key(raw: dict[str, Any], allowed: set[str]) -> NoReturn:
    unknown = sorted(set(raw) - allowed)
    raise ValueError(f"unknown key {unknown[0]!r} (allowed: {', '.join(sorted(allowed))})")


def _text(raw: dict[str, Any], key: str) -> str:
    value = raw.get(key)
    if type(value) is not str or not value:
        raise ValueError(f'"{key}" must be non-empty text')
    return value


def _moment(raw: dict[str, Any], key: str) -> datetime:
    value = raw.get(key)
    try:
        moment = datetime.fromisoformat(value) if type(value) is str else None
    except ValueError:
        moment = None
    if moment is None or moment.tzinfo is None:
        raise ValueError(
            f'"{key}" must be an ISO-8601 time with its offset, e.g. 2026-10-03T14:05:12Z'
        )
    return moment


def _error_class(raw: dict[str, Any]) -> str | None:
    value = raw.get("error_class")
    if value is not None and (type(value) is not str or value not in ATTRIBUTION):
        raise ValueError(f'"error_class" must be one of {", ".join(ATTRIBUTION)}, or null')
    return value


def event_lines(events: Iterable[Event]) -> Iterator[str]:
    """Events as JSON Lines, in the shape ``read_events`` takes back."""
    for event in events:
        if isinstance(event, ProbeEvent):
            record: dict[str, Any] = {
                "kind": "probe",
                "integration": event.integration,
                "started_at": _z(event.started_at),
                "outcome": event.outcome,
            }
            if event.error_class is not None:
                record["error_class"] = event.error_class
            if event.latency_s is not None:
                record["latency_s"] = event.latency_s
        else:
            record = {"kind": "call", "vendor": event.vendor, "at": _z(event.at), "ok": event.ok}
            for key in ("status", "error_class", "integration"):
                if getattr(event, key) is not None:
                    record[key] = getattr(event, key)
        yield json.dumps(record, separators=(",", ":")) + "\n"


def _z(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def evidence_window(contracts: Iterable[Contract], month: str) -> tuple[datetime, datetime]:
    """The UTC range whose events decide ``month`` for every contract.

    It covers each contract's local month and, before it, as many months as its termination
    right looks back (``termination_after``), so consecutive misses are decided by the same
    evidence everywhere: ``export events`` writes exactly this range, and ``report credits``
    reads exactly this range from the store. That is what makes the two agree.
    """
    contracts = list(contracts)
    if not contracts:
        year, number = parse_month(month)
        following = (year + number // 12, number % 12 + 1)
        return datetime(year, number, 1, tzinfo=UTC), datetime(*following, 1, tzinfo=UTC)
    starts, ends = [], []
    for contract in contracts:
        starts.append(month_period(contract, window_months(contract, month)[0]).start)
        ends.append(month_period(contract, month).end)
    return min(starts), max(ends)


def evidence_lines(store: Store, contracts: Iterable[Contract], month: str) -> Iterator[str]:
    """What ``syncwatch export events`` writes for ``month``: the raw events of its evidence
    window, then a ``folded_month`` line per contract month past raw retention."""
    contracts = list(contracts)
    since, until = evidence_window(contracts, month)
    yield from event_lines(stored_events(store, since, until))
    for months in stored_folds(store, contracts, month).values():
        yield from (fold_line(fold) for fold in months.values())


def window_months(contract: Contract, month: str) -> list[str]:
    """The contract's months ``evidence_window`` covers, oldest first."""
    months = [month]
    for _ in range((contract.termination_after or 1) - 1):
        months.insert(0, previous_month(months[0]))
    return months


def stored_folds(
    store: Store, contracts: Iterable[Contract], month: str
) -> dict[str, dict[str, FoldedMonth]]:
    """The folded months (past raw retention) in ``month``'s evidence window, by contract:
    the same months ``evidence_window`` covers, so claims and exports agree."""
    rollups = RollupStore(store)
    kept: dict[str, dict[str, FoldedMonth]] = {}
    for contract in contracts:
        found = rollups.folds(contract.name, window_months(contract, month))
        if found:
            kept[contract.name] = found
    return kept


def stored_events(store: Store, since: datetime, until: datetime) -> list[Event]:
    """The store's concluded probes and calls in [since, until) as evidence events."""
    events: list[Event] = [probe_event(row) for row in store.concluded_probes_between(since, until)]
    events.extend(call_event(row) for row in store.calls_between(since, until))
    return events


def probe_event(row: Mapping[str, Any]) -> ProbeEvent:
    """A stored probe (with an outcome) as evidence."""
    return ProbeEvent(
        integration=row["integration"],
        started_at=from_db_time(row["scheduled_at"]),
        outcome=row["outcome"],
        error_class=row["error_class"],
        latency_s=row["latency_s"],
    )


def call_event(row: Mapping[str, Any]) -> CallEvent:
    """A stored API call as evidence."""
    return CallEvent(
        vendor=row["vendor"],
        at=from_db_time(row["at"]),
        ok=row["error_class"] is None,
        error_class=row["error_class"],
        status=row["status"],
        integration=row["integration"],
    )


def api_call_event(call: ApiCall) -> CallEvent:
    """An API call as evidence, straight from the HTTP layer: what ``call_event`` makes of the
    row the store writes for it (the daemon's month to date, without reading the row back)."""
    return CallEvent(
        vendor=call.vendor,
        at=call.at,
        ok=call.error_class is None,
        error_class=call.error_class,
        status=call.status,
        integration=call.integration,
    )
