"""Counter, gauge and histogram families that render their own text exposition, fast.

Why not prometheus_client for these: a scrape at 1,000 integrations is ~45,000 samples, and
the library spends ~4 us per sample collecting (a ``Sample`` tuple and a labels dict each) and
~4 us formatting it (sorting and escaping every label again), about 0.4 s on the daemon's event
loop per scrape (bench/RESULTS.md). Label sets here are fixed once created, so each series
keeps the ``name{labels} `` prefix it will always be printed with, computed once, and the text
of its last rendering, which stays valid until the series changes. A scrape then formats only
the series updated since the previous one and joins the rest as they are.

The output is the library's byte for byte (text format 0.0.4, labels sorted by name, values
as ``floatToGoString`` writes them, histogram buckets cumulative with ``_count`` then ``_sum``,
no ``_created``), so dashboards, rules and promtool see no difference; the tests compare both.
Each family is also a registry collector whose ``collect()`` builds the library's
``Metric`` objects, so ``generate_latest(registry)`` still shows everything.

Not thread-safe, unlike the library's locked values: the daemon updates and renders its metrics
on its one event loop, and a lock per update would cost more than the update itself.
"""

from __future__ import annotations

import bisect
import math
import re
from collections.abc import Callable, Iterable, Sequence
from functools import partial
from itertools import accumulate
from typing import TypeVar

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString

LabelValues = tuple[str, ...]
"""One series' label values, in the order of its family's label names."""

_METRIC_NAME = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")
_LABEL_NAME = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")
_Collector = TypeVar("_Collector", bound=Collector)
_REPR_FROM, _REPR_BELOW = -math.inf, 1e6
"""Where ``repr`` of a float is already Go's formatting (``format_value``); inlined below."""


def escape_label_value(value: str) -> str:
    """A label value as the text format quotes it: backslash, double quote and newline escaped."""
    return value.replace("\\", r"\\").replace("\n", r"\n").replace('"', r"\"")


def format_value(value: float) -> str:
    """A sample value as prometheus_client writes it (Go's float formatting).

    ``repr`` is already that for every value below 1e6 (counts, ratios, seconds); larger ones
    (Unix timestamps), infinities and NaN take the library's own function.
    """
    if _REPR_FROM < value < _REPR_BELOW:  # false for NaN
        return repr(float(value))  # an int would print without its ".0"
    text: str = floatToGoString(value)  # type: ignore[no-untyped-call]  # unannotated upstream
    return text


def _label_pairs(names: Sequence[str], values: LabelValues) -> list[str]:
    """``name="value"`` for each label, sorted by name as prometheus_client prints them."""
    return [
        f'{name}="{escape_label_value(value)}"'
        for name, value in sorted(zip(names, values, strict=True))
    ]


def _header(name: str, documentation: str, kind: str) -> str:
    """The HELP and TYPE lines of a family, HELP escaped as the text format requires."""
    escaped = documentation.replace("\\", r"\\").replace("\n", r"\n")
    return f"# HELP {name} {escaped}\n# TYPE {name} {kind}\n"


class _Family:
    """What every family shares: its name, label names, header and label-set checks."""

    kind = ""

    def __init__(self, name: str, documentation: str, label_names: Sequence[str]) -> None:
        if not _METRIC_NAME.fullmatch(name):
            raise ValueError(f"invalid metric name {name!r}")
        for label in label_names:
            if not _LABEL_NAME.fullmatch(label) or label.startswith("__"):
                raise ValueError(f"invalid label name {label!r} for {name}")
        if len(set(label_names)) != len(label_names):
            raise ValueError(f"duplicate label names for {name}")
        self.name = name
        self.documentation = documentation
        self.label_names = tuple(label_names)
        self._header = _header(name, documentation, self.kind)

    def _check(self, labels: LabelValues) -> None:
        """A wrong label count is a bug here, not data: fail at the first series it creates."""
        if len(labels) != len(self.label_names) or not all(isinstance(v, str) for v in labels):
            raise ValueError(f"{self.name} takes {len(self.label_names)} string label values")

    def describe(self) -> Iterable[Metric]:
        """The family without samples, so registering it on a registry never collects it."""
        return [self._metric()]

    def _metric(self) -> Metric:
        raise NotImplementedError


class _Scalar:
    """One counter or gauge series: its constant prefix, its value and its rendered line."""

    __slots__ = ("line", "prefix", "value")

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix
        self.value = 0.0
        self.line: str | None = None
        """The last rendering; None once the value changed since (the hot path only clears it)."""

    def render(self) -> str:
        """Format the line anew and keep it until the value changes again."""
        value = self.value  # format_value inlined: this runs once per changed sample
        text = repr(value) if _REPR_FROM < value < _REPR_BELOW else format_value(value)
        self.line = f"{self.prefix}{text}\n"
        return self.line


class _ScalarFamily(_Family):
    """Counters and gauges: one sample per label set, in the order the sets were created."""

    def __init__(self, name: str, documentation: str, label_names: Sequence[str]) -> None:
        super().__init__(name, documentation, label_names)
        self._series: dict[LabelValues, _Scalar] = {}

    def series(self, labels: LabelValues) -> None:
        """Create the series at 0 if it does not exist (zero-initialisation, DESIGN §14.7)."""
        if labels not in self._series:
            self._create(labels)

    def _create(self, labels: LabelValues) -> _Scalar:
        self._check(labels)
        pairs = _label_pairs(self.label_names, labels)
        prefix = f"{self.name}{{{','.join(pairs)}}} " if pairs else f"{self.name} "
        created = self._series[labels] = _Scalar(prefix)
        return created

    def text(self) -> str:
        """The family's exposition: header, then every series, re-formatting only changed ones."""
        return self._header + "".join([s.line or s.render() for s in self._series.values()])

    def values(self) -> dict[LabelValues, float]:
        """Every series' current value, for tests and diagnostics."""
        return {labels: series.value for labels, series in self._series.items()}

    def collect(self) -> Iterable[Metric]:
        """The family as prometheus_client ``Metric`` objects, for ``generate_latest(registry)``."""
        metric = self._metric()
        for labels, series in self._series.items():
            metric.add_metric(list(labels), series.value)
        return [metric]

    def _metric(self) -> CounterMetricFamily | GaugeMetricFamily:
        raise NotImplementedError


class CounterFamily(_ScalarFamily):
    """A counter with labels; its name ends in ``_total``, as its samples are exposed."""

    kind = "counter"

    def __init__(self, name: str, documentation: str, label_names: Sequence[str]) -> None:
        if not name.endswith("_total"):
            raise ValueError(f"counter {name!r} must end in _total")
        super().__init__(name, documentation, label_names)

    def inc(self, labels: LabelValues, amount: float = 1.0) -> None:
        """Add ``amount`` (not negative: a counter only goes up) to the series, creating it."""
        if amount < 0:
            raise ValueError(f"{self.name} can only increase, not by {amount}")
        series = self._series.get(labels) or self._create(labels)
        series.value += amount
        series.line = None

    def _metric(self) -> CounterMetricFamily:
        return CounterMetricFamily(self.name, self.documentation, labels=self.label_names)


class GaugeFamily(_ScalarFamily):
    """A gauge with labels."""

    kind = "gauge"

    def set(self, labels: LabelValues, value: float) -> None:
        """Set the series to ``value``, creating it."""
        series = self._series.get(labels) or self._create(labels)
        series.value = float(value)
        series.line = None

    def _metric(self) -> GaugeMetricFamily:
        return GaugeMetricFamily(self.name, self.documentation, labels=self.label_names)


class _Histogram:
    """One histogram series: per-bucket (not cumulative) counts, the sum, and its rendering.

    ``head`` and ``tail`` are a bucket line's text before and after the ``le`` value, so the
    family's shared bound texts complete every bucket line without a prefix per bucket.
    """

    __slots__ = ("count_prefix", "counts", "head", "line", "sum_prefix", "tail", "total")

    def __init__(self, head: str, tail: str, count_prefix: str, sum_prefix: str, size: int):
        self.head, self.tail = head, tail
        self.count_prefix, self.sum_prefix = count_prefix, sum_prefix
        self.counts = [0.0] * size
        self.total = 0.0
        self.line: str | None = None

    def cumulative(self) -> list[float]:
        """Observations at or under each bound, as the exposition's buckets count them."""
        return list(accumulate(self.counts))

    def render(self, bounds_text: Sequence[str]) -> str:
        """Format the series' block (buckets, count, sum) anew and keep it until it changes."""
        head, tail, cumulative = self.head, self.tail, self.cumulative()
        lines = [  # format_value inlined: counts are never negative nor NaN
            f"{head}{bound}{tail}{repr(count) if count < _REPR_BELOW else format_value(count)}\n"
            for bound, count in zip(bounds_text, cumulative, strict=True)
        ]
        lines.append(f"{self.count_prefix}{format_value(cumulative[-1])}\n")
        lines.append(f"{self.sum_prefix}{format_value(self.total)}\n")
        self.line = "".join(lines)
        return self.line


class HistogramFamily(_Family):
    """A histogram with labels; ``buckets`` are upper bounds, +Inf added when missing."""

    kind = "histogram"

    def __init__(
        self,
        name: str,
        documentation: str,
        label_names: Sequence[str],
        buckets: Sequence[float],
    ) -> None:
        super().__init__(name, documentation, label_names)
        if "le" in label_names:
            raise ValueError(f"{name}: le is the histogram's own bucket label")
        bounds = [float(bound) for bound in buckets]
        if bounds != sorted(bounds) or len(set(bounds)) != len(bounds):
            raise ValueError(f"{name}: buckets must be strictly increasing")
        if not bounds or bounds[-1] != math.inf:
            bounds.append(math.inf)
        self.bounds = tuple(bounds)
        self._bounds_text = tuple(format_value(bound) for bound in bounds)
        self._series: dict[LabelValues, _Histogram] = {}

    def series(self, labels: LabelValues) -> None:
        """Create the series with empty buckets if it does not exist (DESIGN §14.7)."""
        if labels not in self._series:
            self._create(labels)

    def _create(self, labels: LabelValues) -> _Histogram:
        self._check(labels)
        pairs = sorted(zip(self.label_names, labels, strict=True))
        before = [f'{k}="{escape_label_value(v)}",' for k, v in pairs if k < "le"]
        after = [f',{k}="{escape_label_value(v)}"' for k, v in pairs if k > "le"]
        plain = _label_pairs(self.label_names, labels)
        labels_text = f"{{{','.join(plain)}}}" if plain else ""
        created = self._series[labels] = _Histogram(
            head=f'{self.name}_bucket{{{"".join(before)}le="',
            tail=f'"{"".join(after)}}} ',
            count_prefix=f"{self.name}_count{labels_text} ",
            sum_prefix=f"{self.name}_sum{labels_text} ",
            size=len(self.bounds),
        )
        return created

    def observe(self, labels: LabelValues, value: float) -> None:
        """Count one observation in the first bucket whose bound is >= ``value``; NaN raises
        (it would turn ``_sum`` into NaN for good, and belongs to no bucket)."""
        if value != value:
            raise ValueError(f"{self.name} cannot observe NaN")
        series = self._series.get(labels) or self._create(labels)
        series.counts[bisect.bisect_left(self.bounds, value)] += 1.0
        series.total += value
        series.line = None

    def text(self) -> str:
        """The family's exposition: header, then every series' buckets, ``_count`` and ``_sum``."""
        bounds_text = self._bounds_text
        return self._header + "".join(
            [s.line or s.render(bounds_text) for s in self._series.values()]
        )

    def collect(self) -> Iterable[Metric]:
        """The family as a prometheus_client ``Metric``, for ``generate_latest(registry)``."""
        metric = self._metric()
        for labels, series in self._series.items():
            buckets = list(zip(self._bounds_text, series.cumulative(), strict=True))
            metric.add_metric(list(labels), buckets, series.total)
        return [metric]

    def _metric(self) -> HistogramMetricFamily:
        return HistogramMetricFamily(self.name, self.documentation, labels=self.label_names)


class Exposition:
    """The families of one registry in the order they were added, and their text together.

    ``generate_latest(registry)`` would collect the fast families through their slow
    ``collect()``; this asks each family for its text instead: the fast ones their own, the
    prometheus_client collectors (global series, a handful of samples) the library's.
    """

    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry
        self._texts: list[Callable[[], str]] = []

    def counter(self, name: str, documentation: str, label_names: Sequence[str]) -> CounterFamily:
        family = CounterFamily(name, documentation, label_names)
        self._add(family, family.text)
        return family

    def gauge(self, name: str, documentation: str, label_names: Sequence[str]) -> GaugeFamily:
        family = GaugeFamily(name, documentation, label_names)
        self._add(family, family.text)
        return family

    def histogram(
        self, name: str, documentation: str, label_names: Sequence[str], buckets: Sequence[float]
    ) -> HistogramFamily:
        family = HistogramFamily(name, documentation, label_names, buckets)
        self._add(family, family.text)
        return family

    def library(self, collector: _Collector) -> _Collector:
        """Register a prometheus_client collector (created with ``registry=None``), formatted by
        the library at each scrape."""
        self._add(collector, partial(_library_text, collector))
        return collector

    def _add(self, collector: Collector, text: Callable[[], str]) -> None:
        self.registry.register(collector)
        self._texts.append(text)

    def render(self) -> str:
        """Every family's text, as ``generate_latest`` would write the registry: only what was
        added here, so a collector registered on the registry directly would be missing."""
        return "".join([text() for text in self._texts])


def _library_text(collector: Collector) -> str:
    """One library collector's text; its few samples make the library's cost negligible."""
    return generate_latest(collector).decode()
