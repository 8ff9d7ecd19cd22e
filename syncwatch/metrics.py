"""Prometheus metrics on an injected registry (DESIGN §9 names, §14.7 habits).

Every label value comes from a bounded set: integration, template, account and contract names
from the config; outcomes and error classes from DESIGN §2 and §6; operations from the vendor
adapters' code. A probe id or an email is never a label: each distinct label value is a new
time series held in Prometheus's memory forever after, so one series per probe would grow
without bound and bury the signal. Per-probe detail lives in the store and the ``/api``.

Label sets known from the config are zero-initialised at construction, so ``rate()`` and alert
rules see a series before its first failure instead of a gap (a counter that appears at 1 hides
its first increase). Values that do not exist yet (quota figures, SLA ratios, the last probe's
time) stay absent rather than reading as a false zero.

Scrapes render synchronously on the daemon's event loop, so nothing here does I/O: the daemon
pushes figures in as they happen, and SLA ratios are cached figures read at scrape time. The
families with series per integration (or per account) are ``syncwatch.exposition``'s, which
render ~45,000 samples at 1,000 integrations in milliseconds where prometheus_client took ~0.4 s;
the few global ones stay prometheus_client's. The registry is passed in, never the global one,
so tests and two daemons in one process never share counters.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from decimal import Decimal

from prometheus_client import CollectorRegistry, Gauge, Histogram, disable_created_metrics
from prometheus_client.core import GaugeMetricFamily, Metric

from syncwatch import __version__
from syncwatch.config import Config
from syncwatch.errors import ATTRIBUTION, ERROR_CLASSES
from syncwatch.events import ApiCall, QuotaFigure
from syncwatch.exposition import Exposition

# No ``_created`` series: a third of the exposition at 1,000 integrations (bench/RESULTS.md),
# and neither the rules, the dashboard nor Prometheus without its created-timestamps feature
# reads them. Process-wide, as prometheus_client keeps it.
disable_created_metrics()  # type: ignore[no-untyped-call]  # unannotated in prometheus_client

OUTCOMES: tuple[str, ...] = ("ok", "slow", "lost", "rejected", "mismatch", "misrouted", "skipped")
"""DESIGN §2: every outcome a probe can end with."""
OTHER = "other"
"""Stands in for a value outside its bounded set: counted, never a new unbounded label value."""
MAX_OPERATIONS_PER_VENDOR = 64
"""Operations are a short fixed list per vendor adapter; past this, something is mislabelled."""
_OPERATION = re.compile(r"[A-Za-z0-9_.:-]{1,64}")

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
"""What ``generate_latest`` writes: the classic text format 0.0.4. ``CONTENT_TYPE_LATEST`` in
prometheus-client 0.22+ advertises version 1.0.0 (UTF-8 names allowed), which this output is
only when negotiated; the library's own ``choose_encoder`` pairs plain output with 0.0.4."""

SYNC_LATENCY_BUCKETS: tuple[float, ...] = (
    5, 10, 15, 30, 45, 60, 90, 120, 180, 300, 600, 900, 1800, 3600, 7200,
)  # fmt: skip
"""Seconds. Lead syncs take from seconds (HubSpot's native connector) to an hour or more
(batched connectors on a 5-15 minute cycle, Marketo's sync backlog), and contracts state
objectives at round minutes (5 min, 1 h); finer buckets below 5 s would only add series.
Every configured ``latency_objective`` is added as a bucket too, so "share of probes within
objective" is an exact bucket read, not an interpolation."""

API_DURATION_BUCKETS: tuple[float, ...] = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)
"""Seconds. Vendor REST calls answer in 50 ms to a few seconds; 30 s is the call timeout."""

LOOP_LAG_BUCKETS: tuple[float, ...] = (
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10,
)  # fmt: skip
"""Seconds. A healthy loop wakes a sleeper within a millisecond or two; past 100 ms every
timing the daemon takes (API call durations, the clock-offset bounds) and every scrape is late
by as much, and past a few seconds ``/healthz`` stops answering."""


class ContractFigures:
    """Month-to-date uptime and service-credit ratios per contract, read at scrape time.

    The SLA arithmetic runs elsewhere (on a schedule, off the scrape path) and caches its result
    here; ``collect`` only copies numbers. A contract without a figure has no series at all:
    an absent series is what PromQL's ``absent()`` and ``unless`` detect, whereas a NaN sample is
    present yet compares false with every threshold, so ``uptime_ratio < 0.999`` would stay
    silent while looking healthy on a dashboard, and it turns any ``avg``/``min`` across
    contracts into NaN.
    """

    def __init__(self) -> None:
        self._figures: dict[str, tuple[float | None, float | None]] = {}

    def set_contract_figures(
        self, contract: str, uptime_ratio: float | None, credit_ratio: float | None
    ) -> None:
        """Replace one contract's cached ratios (0-1); None or a non-finite value hides it."""
        self._figures[contract] = (_finite(uptime_ratio), _finite(credit_ratio))

    def figures(self) -> dict[str, tuple[float | None, float | None]]:
        """(uptime, credit) ratios per contract as cached; the status page shows these."""
        return dict(self._figures)

    def describe(self) -> Iterable[Metric]:
        """The families this collector yields, so registering it never calls ``collect``."""
        return self._families({})

    def collect(self) -> Iterable[Metric]:
        """The cached figures as two gauge families; cheap, no I/O, safe on the event loop."""
        return self._families(dict(self._figures))

    @staticmethod
    def _families(figures: dict[str, tuple[float | None, float | None]]) -> list[Metric]:
        uptime = GaugeMetricFamily(
            "syncwatch_uptime_ratio",
            "Month-to-date uptime of the contract as a 0-1 ratio, by its downtime rule.",
            labels=["contract"],
        )
        credit = GaugeMetricFamily(
            "syncwatch_service_credit_ratio",
            "Month-to-date service credit owed as a 0-1 ratio of the monthly fee.",
            labels=["contract"],
        )
        for contract, (uptime_ratio, credit_ratio) in sorted(figures.items()):
            if uptime_ratio is not None:
                uptime.add_metric([contract], uptime_ratio)
            if credit_ratio is not None:
                credit.add_metric([contract], credit_ratio)
        return [uptime, credit]


class Metrics:
    """Every syncwatch metric, registered on ``registry`` and zero-initialised from ``config``.

    The daemon calls the methods below as things happen; each is a few dict lookups and never
    raises on a label value it has not seen (an unknown integration simply gets its series).
    """

    def __init__(
        self,
        config: Config,
        registry: CollectorRegistry,
        daily_windows: Mapping[str, str] | None = None,
    ) -> None:
        """``daily_windows`` names each account's daily quota window (the vendor's own name),
        for the quota warning level; accounts not in it get no warning series."""
        self.registry = registry
        self._exposition = Exposition(registry)
        self._operations: dict[str, set[str]] = {}
        self._initialised: set[tuple[str, str, str]] = set()
        self._overdue_seen: dict[tuple[str, str], int] = {}
        self._durations: dict[tuple[str, str], Histogram] = {}
        self._quota_children: dict[tuple[str, str], tuple[Gauge, Gauge]] = {}
        """Children of the library's metrics by label values, looked up once: ``labels()``
        validates and locks on every call, and every vendor call sets two or three of them."""
        self._create_probe_metrics(_latency_buckets(config))
        self._create_api_metrics()
        self._create_status_metrics()
        self._create_objective_metrics()
        self.contracts = self._exposition.library(ContractFigures())
        for integration in config.integrations:
            self._init_integration(
                integration.name, [run.template for run in integration.templates]
            )
        self._set_objectives(config, daily_windows or {})

    def _library_gauge(self, name: str, documentation: str, labels: Sequence[str]) -> Gauge:
        """A gauge with few series (global, per account or contract): the library's will do,
        and other modules set it through the library's API."""
        return self._exposition.library(Gauge(name, documentation, labels, registry=None))

    def _create_probe_metrics(self, latency_buckets: Sequence[float]) -> None:
        probe = ["integration", "template"]
        self.probes = self._exposition.counter(
            "syncwatch_probes_total", "Probes finished, by outcome.", [*probe, "outcome"]
        )
        self.probe_failures = self._exposition.counter(
            "syncwatch_probe_failures_total",
            "Probes that failed with an error class, by class and who is at fault.",
            [*probe, "error_class", "attribution"],
        )
        self.sync_latency = self._exposition.histogram(
            "syncwatch_sync_latency_seconds",
            "Source acceptance to destination creation, per detected probe.",
            probe,
            latency_buckets,
        )
        self.in_flight = self._exposition.gauge(
            "syncwatch_probes_in_flight", "Probes injected and not yet finished.", ["integration"]
        )
        self.overdue = self._exposition.gauge(
            "syncwatch_probes_overdue",
            "Probes in flight for longer than their template's latency objective.",
            probe,
        )
        self.last_probe = self._exposition.gauge(
            "syncwatch_last_probe_timestamp_seconds",
            "Unix time the integration's last probe finished; absent until one has.",
            ["integration"],
        )

    def _create_api_metrics(self) -> None:
        self.api_requests = self._exposition.counter(
            "syncwatch_api_requests_total",
            "HTTP requests to vendors, by result: ok or the error class.",
            ["vendor", "account", "operation", "result"],
        )
        self.api_duration = self._exposition.library(
            Histogram(
                "syncwatch_api_request_duration_seconds",
                "Duration of one HTTP request to a vendor, retries counted separately.",
                ["vendor", "operation"],
                buckets=API_DURATION_BUCKETS,
                registry=None,
            )
        )
        self.quota_used = self._library_gauge(
            "syncwatch_api_quota_used",
            "Calls used in the quota window, as the vendor last reported.",
            ["account", "window"],
        )
        self.quota_limit = self._library_gauge(
            "syncwatch_api_quota_limit",
            "Calls allowed in the quota window, as the vendor last reported.",
            ["account", "window"],
        )

    def _create_status_metrics(self) -> None:
        self.incidents_open = self._library_gauge(
            "syncwatch_incidents_open",
            "Open incidents, by integration and cause.",
            ["integration", "cause"],
        )
        self.build_info = self._library_gauge(
            "syncwatch_build_info",
            "Always 1; the version label says which syncwatch is running.",
            ["version"],
        )
        self.build_info.labels(__version__).set(1)
        self.loop_lag = self._exposition.library(
            Histogram(
                "syncwatch_event_loop_lag_seconds",
                "How late the daemon's event loop wakes a periodic sleeper: time spent queued "
                "behind other work.",
                buckets=LOOP_LAG_BUCKETS,
                registry=None,
            )
        )

    def _create_objective_metrics(self) -> None:
        """What the config promises, as gauges, so alert rules compare against the operator's
        own objectives instead of numbers copied into the rules file."""
        probe = ["integration", "template"]
        self.latency_objective = self._exposition.gauge(
            "syncwatch_latency_objective_seconds",
            "The template's latency objective: slower probes end slow.",
            probe,
        )
        self.probe_interval = self._exposition.gauge(
            "syncwatch_probe_interval_seconds",
            "How often the template is probed (its schedule's every).",
            probe,
        )
        self.probe_timeout = self._exposition.gauge(
            "syncwatch_probe_timeout_seconds",
            "After this a probe not found at the destination ends lost.",
            ["integration"],
        )
        self.success_objective = self._exposition.gauge(
            "syncwatch_probe_success_objective_ratio",
            "The share of probes that should end ok (the burn-rate alerts' SLO).",
            ["integration"],
        )
        self.uptime_objective = self._library_gauge(
            "syncwatch_uptime_objective_ratio",
            "The contract's uptime objective as a 0-1 ratio.",
            ["contract"],
        )
        self.quota_warning = self._library_gauge(
            "syncwatch_api_quota_warning_remaining",
            "Remaining calls in the daily window under which the account's quota is low.",
            ["account", "window"],
        )
        self.notifications_pending = self._library_gauge(
            "syncwatch_notifications_pending",
            "Incident notifications queued for the target and not yet delivered.",
            ["target"],
        )

    def _set_objectives(self, config: Config, daily_windows: Mapping[str, str]) -> None:
        for integration in config.integrations:
            name = integration.name
            for run in integration.templates:
                self.latency_objective.set((name, run.template), run.latency_objective)
                self.probe_interval.set((name, run.template), run.every)
            self.probe_timeout.set((name,), integration.timeout)
            # Through Decimal: 99.9 / 100 in floats is 0.9990000000000001, which would make a
            # figure exactly at the objective compare as under it in the alert rules.
            ratio = Decimal(str(integration.success_objective_percent)) / 100
            self.success_objective.set((name,), float(ratio))
        for contract in config.contracts:
            self.uptime_objective.labels(contract.name).set(float(contract.objective_percent / 100))
        for account in config.accounts:
            if account.name in daily_windows:
                window = daily_windows[account.name]
                self.quota_warning.labels(account.name, window).set(account.quota.warning_level)
        for target in config.notifications:
            self.notifications_pending.labels(target.name).set(0)

    def _init_integration(self, integration: str, templates: Iterable[str]) -> None:
        """Create every series of one integration at zero (DESIGN §14.7)."""
        self.in_flight.series((integration,))
        for template in templates:
            self.overdue.series((integration, template))
            for outcome in OUTCOMES:
                self.probes.series((integration, template, outcome))
            for error_class in ERROR_CLASSES:
                attribution = ATTRIBUTION[error_class]
                self.probe_failures.series((integration, template, error_class, attribution))
            self.sync_latency.series((integration, template))

    def probe_finished(
        self,
        integration: str,
        template: str,
        outcome: str,
        error_class: str | None,
        latency_s: float | None,
        finished_at: datetime,
    ) -> None:
        """Count one finished probe; ``latency_s`` is None when it was never detected."""
        outcome = outcome if outcome in OUTCOMES else OTHER
        self.probes.inc((integration, template, outcome))
        if error_class is not None:
            error_class = error_class if error_class in ATTRIBUTION else OTHER
            attribution = ATTRIBUTION.get(error_class, OTHER)
            self.probe_failures.inc((integration, template, error_class, attribution))
        if latency_s is not None and math.isfinite(latency_s):
            # Negative values (clock-offset correction overshooting) would make _sum decrease.
            self.sync_latency.observe((integration, template), max(0.0, latency_s))
        self.last_probe.set((integration,), finished_at.timestamp())

    def call_recorded(self, call: ApiCall, other_windows: Sequence[QuotaFigure] = ()) -> None:
        """Count one vendor request and keep its quota figures; fits ``http.CallSink``.

        ``call.integration`` and ``call.probe_id`` are deliberately not labels (module docstring).
        """
        operation = self._operation(call.vendor, call.account, call.operation)
        result = "ok" if call.error_class is None else call.error_class
        result = result if result == "ok" or result in ATTRIBUTION else OTHER
        self.api_requests.inc((call.vendor, call.account, operation, result))
        if math.isfinite(call.duration_s):
            duration = self._durations.get((call.vendor, operation))
            if duration is None:
                duration = self._durations[call.vendor, operation] = self.api_duration.labels(
                    call.vendor, operation
                )
            duration.observe(max(0.0, call.duration_s))
        window, used, limit = call.quota_window, call.quota_used, call.quota_limit
        if window is not None and used is not None and limit is not None:
            self.quota_observed(call.account, window, used, limit)
        for figure in other_windows:
            self.quota_observed(call.account, figure.window, figure.used, figure.limit)

    def quota_observed(self, account: str, window: str, used: int, limit: int) -> None:
        """Keep the latest figure of one account's quota window (DESIGN §5)."""
        children = self._quota_children.get((account, window))
        if children is None:
            children = self._quota_children[account, window] = (
                self.quota_used.labels(account, window),
                self.quota_limit.labels(account, window),
            )
        children[0].set(used)
        children[1].set(limit)

    def set_overdue(self, counts: Mapping[tuple[str, str], int]) -> None:
        """Overdue probes by (integration, template); pairs not in ``counts`` go back to 0."""
        for pair in self._overdue_seen.keys() - counts.keys():
            self.overdue.set(pair, 0)
        for pair, count in counts.items():
            self.overdue.set(pair, count)
        self._overdue_seen = dict(counts)

    def loop_lag_observed(self, seconds: float) -> None:
        """One measurement of how late the event loop woke a sleeper (negative counts as 0)."""
        if math.isfinite(seconds):
            self.loop_lag.observe(max(0.0, seconds))

    def set_in_flight(self, integration: str, count: int) -> None:
        """How many of the integration's probes are between injection and their outcome."""
        self.in_flight.set((integration,), count)

    def set_contract_figures(
        self, contract: str, uptime_ratio: float | None, credit_ratio: float | None
    ) -> None:
        """Cache one contract's month-to-date ratios for the next scrape (None: no figure)."""
        self.contracts.set_contract_figures(contract, uptime_ratio, credit_ratio)

    def render(self) -> tuple[bytes, str]:
        """The exposition body and its content type, for ``GET /metrics``.

        The same text as ``generate_latest(self.registry)``, made in a fraction of the time:
        each family writes its own (``syncwatch.exposition``). Only the collectors created here
        are rendered; one registered on the registry by other code would be missing.
        """
        return self._exposition.render().encode(), CONTENT_TYPE

    def _operation(self, vendor: str, account: str, operation: str) -> str:
        """The operation label, bounded; its result series are zero-initialised on first use."""
        seen = self._operations.setdefault(vendor, set())
        if operation not in seen:
            if not _OPERATION.fullmatch(operation) or len(seen) >= MAX_OPERATIONS_PER_VENDOR:
                operation = OTHER
            seen.add(operation)
        if (vendor, account, operation) not in self._initialised:
            self._initialised.add((vendor, account, operation))
            for result in ("ok", *ERROR_CLASSES):
                self.api_requests.series((vendor, account, operation, result))
        return operation


def _latency_buckets(config: Config) -> list[float]:
    """The standard buckets plus one at every configured latency objective."""
    objectives = {run.latency_objective for item in config.integrations for run in item.templates}
    return sorted({float(bucket) for bucket in SYNC_LATENCY_BUCKETS} | objectives)


def _finite(value: float | None) -> float | None:
    return value if value is not None and math.isfinite(value) else None
