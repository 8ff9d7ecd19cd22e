"""The status board: "is every sync healthy right now?" answered from the store, cheaply.

``/status`` (for people) and ``/api/v1/...`` (for scripts) read one snapshot: per integration the
last probe, the trailing day's latency percentiles, success ratio and outcomes, and what is in
flight; per contract the month-to-date figures the SLA loop cached; open and recently resolved
incidents; and every account's latest quota figures against its warning level.

The handlers run on the daemon's event loop, so the snapshot is built at most once per
``ttl_s`` of the injected clock's monotonic time: a page refreshing itself in twenty tabs, or a
scrape storm on the API, costs one set of queries per TTL. One set is five reads:

1. the trailing day's concluded probes (index ``probes_by_time``), aggregated here in Python;
2. the unfinished probes (partial index ``probes_unfinished``), for the in-flight counts;
3. ``quota_latest`` (one row per account and window);
4. the open incidents (partial index ``incidents_unresolved``);
5. the most recent incidents (``LIMIT``), for the resolved ones;

plus, only for an integration without a concluded probe in the day (new, or stalled), one
indexed ``LIMIT 1`` look for its last probe. The cost grows with the day's probes: about 1,700
rows per integration probed every minute, read in well under the TTL for tens of integrations.
Past that, hourly rollups (issue #7) replace read 1.

The day's probe read is the one query that ``store.py`` does not offer yet (it needs the probe
id and end times); it sits in ``_day_probes`` and ``_last_probe`` below, next to the store's
connection like ``incident_store.py``, until the store grows the method.
"""

from __future__ import annotations

import sqlite3
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, NamedTuple

from syncwatch.clock import Clock
from syncwatch.config import Config, Integration
from syncwatch.errors import StoreError
from syncwatch.events import QuotaReading
from syncwatch.incident_store import IncidentStore, incident_json
from syncwatch.incidents import Incident
from syncwatch.lifecycle import OUTCOMES
from syncwatch.metrics import ContractFigures
from syncwatch.quota import READING_TRUSTED_FOR
from syncwatch.sla.result import nearest_rank
from syncwatch.store import Store, from_db_time

WINDOW = timedelta(hours=24)
"""The trailing window of the per-integration figures."""
DEFAULT_TTL_S = 5.0
"""How long one snapshot is served before the store is read again."""
DEFAULT_RESOLVED = 10
"""How many recently resolved incidents the board shows."""


class _Probe(NamedTuple):
    """One concluded probe as the board reads it (a plain tuple row, cheap to build)."""

    probe_id: str
    integration: str
    template: str
    outcome: str
    error_class: str | None
    scheduled_at: str
    verified_at: str | None
    finished_at: str | None
    latency_s: float | None


@dataclass
class _Day:
    """One integration's trailing day, accumulated row by row."""

    outcomes: Counter[str] = field(default_factory=Counter)
    latencies: list[float] = field(default_factory=list)
    last: _Probe | None = None

    def add(self, probe: _Probe) -> None:
        self.outcomes[probe.outcome] += 1
        if probe.latency_s is not None:
            self.latencies.append(probe.latency_s)
        self.last = probe  # rows arrive oldest first


class StatusBoard:
    """Snapshots of the monitor's state for ``/status`` and the JSON API, cached for a TTL.

    ``contracts`` is the daemon's ``Metrics.contracts``: the SLA loop fills it off the event
    loop, and the board only copies its figures. ``daily_windows`` names each account's daily
    quota window (``Adapters.daily_windows``), the one its warning level applies to.
    """

    def __init__(
        self,
        config: Config,
        store: Store,
        clock: Clock,
        contracts: ContractFigures,
        *,
        daily_windows: Mapping[str, str] | None = None,
        ttl_s: float = DEFAULT_TTL_S,
        resolved: int = DEFAULT_RESOLVED,
    ) -> None:
        self.config = config
        self.store = store
        self.incidents = IncidentStore(store)
        self.clock = clock
        self.contracts = contracts
        self.accounts = {account.name: account for account in config.accounts}
        self.daily_windows = dict(daily_windows or {})
        self.ttl_s = ttl_s
        self.resolved = resolved
        self._cached: dict[str, Any] | None = None
        self._cached_at = 0.0

    def snapshot(self) -> dict[str, Any]:
        """The current board as JSON-able data; read from the store at most once per TTL.

        Raises ``StoreError`` when the store cannot be read (nothing is cached then, so the
        next request tries again)."""
        now = self.clock.monotonic()
        if self._cached is not None and now - self._cached_at < self.ttl_s:
            return self._cached
        try:
            snapshot = self._build(self.clock.now())
        except sqlite3.Error as exc:
            raise StoreError(f"cannot read the status from the store: {exc}") from exc
        self._cached, self._cached_at = snapshot, now
        return snapshot

    def _build(self, now: datetime) -> dict[str, Any]:
        days = self._days(now - WINDOW)
        in_flight = Counter(
            row["integration"] for row in self.store.unfinished_probes() if row["outcome"] is None
        )
        open_incidents = self.incidents.open_incidents()
        recent = self.incidents.recent_incidents(self.resolved + len(open_incidents))
        troubled = {incident.integration for incident in open_incidents}
        return {
            "generated_at": _iso(now),
            "window_hours": WINDOW.total_seconds() / 3600,
            "integrations": [
                self._integration(item, days[item.name], in_flight, troubled)
                for item in self.config.integrations
            ],
            "contracts": self._contracts(),
            "incidents": {
                "open": [_open_incident(incident, now) for incident in open_incidents],
                "resolved": [
                    incident_json(incident) for incident in recent if not incident.is_open
                ][: self.resolved],
            },
            "quota": self._quota(self.store.latest_quota(), now),
        }

    def _days(self, since: datetime) -> dict[str, _Day]:
        """Each configured integration's day; its last probe looked up if the day had none."""
        days = {item.name: _Day() for item in self.config.integrations}
        for probe in _day_probes(self.store, since):
            day = days.get(probe.integration)
            if day is not None:
                day.add(probe)
        for name, day in days.items():
            if day.last is None:
                day.last = _last_probe(self.store, name)
        return days

    def _integration(
        self, item: Integration, day: _Day, in_flight: Counter[str], troubled: set[str]
    ) -> dict[str, Any]:
        name, accounts = item.name, self.accounts
        judged = sum(count for outcome, count in day.outcomes.items() if outcome != "skipped")
        return {
            "name": name,
            "status": _integration_status(day.last, name in troubled),
            "source": {
                "account": item.source.account,
                "vendor": accounts[item.source.account].vendor,
                "method": item.source.method,
            },
            "destination": {
                "account": item.destination.account,
                "vendor": accounts[item.destination.account].vendor,
                "object": item.destination.object,
            },
            "last_probe": None if day.last is None else _probe_json(day.last),
            "latency_p50_s": nearest_rank(day.latencies, 50),
            "latency_p95_s": nearest_rank(day.latencies, 95),
            "latency_probes": len(day.latencies),
            "success_ratio": day.outcomes["ok"] / judged if judged else None,
            "probes": {outcome: day.outcomes[outcome] for outcome in OUTCOMES},
            "probes_total": sum(day.outcomes.values()),
            "in_flight": in_flight[name],
        }

    def _contracts(self) -> list[dict[str, Any]]:
        """Month-to-date figures from the cache; null until the SLA loop has computed them."""
        ratios = cached_ratios(self.contracts)
        rows = []
        for contract in self.config.contracts:
            uptime, credit = ratios.get(contract.name, (None, None))
            uptime_percent = None if uptime is None else round(uptime * 100, 6)
            objective = float(contract.objective_percent)
            rows.append(
                {
                    "name": contract.name,
                    "vendor": contract.vendor,
                    "integrations": list(contract.integrations),
                    "objective_percent": objective,
                    "uptime_percent": uptime_percent,
                    "credit_percent": None if credit is None else round(credit * 100, 6),
                    "met": None if uptime_percent is None else uptime_percent >= objective,
                }
            )
        return rows

    def _quota(self, readings: Sequence[QuotaReading], now: datetime) -> list[dict[str, Any]]:
        """Every account with its windows' latest figures; ``low`` judged on the daily one."""
        rows = []
        for account in self.config.accounts:
            mine = [reading for reading in readings if reading.account == account.name]
            daily_window = self.daily_windows.get(account.name)
            daily = next((r for r in mine if r.window == daily_window), None)
            level = account.quota.warning_level
            rows.append(
                {
                    "account": account.name,
                    "vendor": account.vendor,
                    "daily_window": daily_window,
                    "warning_level": level,
                    "low": None if daily is None else daily.remaining < level,
                    "stale": None
                    if daily is None
                    else now - daily.observed_at > READING_TRUSTED_FOR,
                    "windows": [_reading_json(reading) for reading in mine],
                }
            )
        return rows


def cached_ratios(contracts: ContractFigures) -> dict[str, tuple[float | None, float | None]]:
    """(uptime, credit) ratios per contract, as the next scrape will show them."""
    return contracts.figures()


def incident_rows(snapshot: Mapping[str, Any], status: str) -> list[dict[str, Any]]:
    """The snapshot's incidents for ``?status=``: ``open``, or ``all`` (open, then resolved)."""
    incidents = snapshot["incidents"]
    rows: list[dict[str, Any]] = list(incidents["open"])
    if status == "all":
        rows.extend(incidents["resolved"])
    return rows


def _day_probes(store: Store, since: datetime) -> list[_Probe]:
    return [_probe(row) for row in store.concluded_probes_since(since)]


def _last_probe(store: Store, integration: str) -> _Probe | None:
    row = store.last_concluded_probe(integration)
    return None if row is None else _probe(row)


def _probe(row: Mapping[str, Any]) -> _Probe:
    return _Probe(*(row[name] for name in _Probe._fields))


# -- JSON shapes -------------------------------------------------------------------------------


def _probe_json(probe: _Probe) -> dict[str, Any]:
    """``finished_at``: when the outcome was known (verification), else when the probe's life
    ended (after clean-up); null while a lost or rejected probe waits for its clean-up."""
    finished = probe.verified_at or probe.finished_at
    return {
        "probe_id": probe.probe_id,
        "template": probe.template,
        "outcome": probe.outcome,
        "error_class": probe.error_class,
        "started_at": _iso(from_db_time(probe.scheduled_at)),
        "finished_at": None if finished is None else _iso(from_db_time(finished)),
        "latency_s": probe.latency_s,
    }


def _integration_status(last: _Probe | None, incident_open: bool) -> str:
    """One word for the board: ``incident``, ``ok``, ``failing`` or ``unknown``."""
    if incident_open:
        return "incident"
    if last is None or last.outcome == "skipped":
        return "unknown"
    return "ok" if last.outcome == "ok" else "failing"


def _open_incident(incident: Incident, now: datetime) -> dict[str, Any]:
    """An open incident with how long its breach has lasted so far."""
    return {**incident_json(incident), "elapsed_s": (now - incident.started_at).total_seconds()}


def _reading_json(reading: QuotaReading) -> dict[str, Any]:
    return {
        "window": reading.window,
        "used": reading.used,
        "limit": reading.limit,
        "remaining": reading.remaining,
        "observed_at": _iso(reading.observed_at),
    }


def _iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


# -- for people: the filters the /status template formats figures with ---------------------


def percent(value: float | None, digits: int = 1) -> str:
    """A percentage already in percent (``99.5`` → ``99.5 %``); ``n/a`` when unknown."""
    return "n/a" if value is None else f"{value:.{digits}f} %"


def ratio_percent(value: float | None, digits: int = 1) -> str:
    """A 0-1 ratio as a percentage (``0.995`` → ``99.5 %``)."""
    return percent(None if value is None else value * 100, digits)


def seconds(value: float | None) -> str:
    """A latency the way on-call people say it: ``42 s``, ``6.5 min``, ``2.1 h``."""
    if value is None:
        return "n/a"
    if value < 120:
        return f"{value:.0f} s" if value >= 10 else f"{value:.1f} s"
    if value < 2 * 3600:
        return f"{value / 60:.1f} min"
    return f"{value / 3600:.1f} h"


def duration(value: float | None) -> str:
    """How long something lasted: ``45 s``, ``12 min``, ``3 h 05 min``, ``2 d 4 h``."""
    if value is None:
        return "n/a"
    total = round(value)
    days, rest = divmod(total, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days} d {hours} h"
    if hours:
        return f"{hours} h {minutes:02d} min"
    return f"{minutes} min" if minutes else f"{secs} s"


def moment(value: str | None) -> str:
    """An ISO UTC time from the snapshot as ``2026-10-05 09:59 UTC``."""
    return "n/a" if value is None else f"{value[:10]} {value[11:16]} UTC"


FILTERS = {
    "percent": percent,
    "ratio_percent": ratio_percent,
    "seconds": seconds,
    "duration": duration,
    "moment": moment,
}
"""Registered on the web app's Jinja environment."""
