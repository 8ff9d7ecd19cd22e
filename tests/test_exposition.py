"""The fast families write what prometheus_client's Counter, Gauge and Histogram would.

Each test feeds the same operations to a library metric and to its ``syncwatch.exposition``
twin on separate registries and compares the text: byte for byte, and parsed back as families
and samples, so a divergence in escaping, label order, value formatting, bucket semantics or
HELP/TYPE lines fails here rather than in a dashboard.
"""

from __future__ import annotations

import math
from typing import Any

import pytest
from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.utils import floatToGoString

from syncwatch.exposition import (
    CounterFamily,
    Exposition,
    GaugeFamily,
    HistogramFamily,
    format_value,
)

ODD_VALUES = ("plain", 'quo"te', "back\\slash", "new\nline", "ünïcødé", "", "a,b=c}{", "\\n")
"""Label values the text format must escape (backslash, quote, newline) or pass through."""
HELP = 'Help with "quotes", a \\ backslash\nand a newline.'
BUCKETS = (0.5, 1, 2.5, 10_000_000)
OBSERVED = (0.5, 0.50000001, 1, -3.0, 2.5, 7.0, 1e8, math.inf, 0.1 + 0.2, 0.0)
"""Values on a bound (le is inclusive), just over, negative, past every bound, +Inf."""
GAUGE_VALUES = (
    1_790_689_800.0, -2.5, 1e6, 999_999.9, math.inf, -math.inf, 1e-7, 0.1 + 0.2,
    123_456_789_012_345_678.0, -0.0, 3, math.nan,
)  # fmt: skip
"""Unix times and other values >= 1e6 (Go's exponent form), infinities, tiny, ints, NaN."""

# As syncwatch.metrics does on import: the library's references then have no _created series,
# which the fast families never write.
disable_created_metrics()  # type: ignore[no-untyped-call]  # unannotated in prometheus_client


def parsed(text: str) -> list[tuple[str, str, str, list[tuple[str, dict[str, str], str]]]]:
    """Families and samples as the reference parser reads them; values as text (NaN != NaN)."""
    return [
        (
            family.name,
            family.type,
            family.documentation,
            [(s.name, s.labels, repr(s.value)) for s in family.samples],
        )
        for family in text_string_to_metric_families(text)
    ]


def assert_same_exposition(library: CollectorRegistry, fast: Exposition) -> None:
    expected = generate_latest(library).decode()
    got = fast.render()
    assert parsed(got) == parsed(expected)
    assert got == expected
    assert generate_latest(fast.registry).decode() == expected  # the registry path agrees


def test_counters_match_prometheus_client_with_odd_label_values() -> None:
    library, fast = CollectorRegistry(), Exposition(CollectorRegistry())
    reference = Counter("t_requests_total", HELP, ["zone", "account"], registry=library)
    family = fast.counter("t_requests_total", HELP, ["zone", "account"])
    for i, value in enumerate(ODD_VALUES):
        labels = (value, ODD_VALUES[-1 - i])
        reference.labels(*labels)  # zero-initialised, then some counted
        family.series(labels)
        for amount in (1.0, 0.25) * i:
            reference.labels(*labels).inc(amount)
            family.inc(labels, amount)
    reference.labels("big", "x").inc(12_345_678)
    family.inc(("big", "x"), 12_345_678)
    assert_same_exposition(library, fast)


def test_gauges_match_prometheus_client_for_every_kind_of_value() -> None:
    library, fast = CollectorRegistry(), Exposition(CollectorRegistry())
    reference = Gauge("t_level", HELP, ["b", "a"], registry=library)
    family = fast.gauge("t_level", HELP, ["b", "a"])
    unlabelled = Gauge("t_single", "One series.", registry=library)
    single = fast.gauge("t_single", "One series.", [])
    for i, number in enumerate(GAUGE_VALUES):
        labels = (ODD_VALUES[i % len(ODD_VALUES)], str(i))
        reference.labels(*labels).set(number)
        family.set(labels, number)
    unlabelled.set(42)
    single.set((), 42)
    assert_same_exposition(library, fast)


@pytest.mark.parametrize(
    "label_names",
    [["integration", "template"], ["operation", "vendor"], ["account", "cause"], []],
    ids=["le-between", "le-first", "le-last", "no-labels"],
)
def test_histograms_match_prometheus_client(label_names: list[str]) -> None:
    """Buckets cumulative and inclusive, _count then _sum, le in its sorted place."""
    library, fast = CollectorRegistry(), Exposition(CollectorRegistry())
    reference = Histogram("t_seconds", HELP, label_names, buckets=BUCKETS, registry=library)
    family = fast.histogram("t_seconds", HELP, label_names, BUCKETS)
    label_sets = [tuple(ODD_VALUES[i + k] for k in range(len(label_names))) for i in range(3)]
    for n, labels in enumerate(dict.fromkeys(label_sets)):
        child: Any = reference.labels(*labels) if labels else reference
        family.series(labels)
        for amount in OBSERVED[: 4 + 3 * n]:
            child.observe(amount)
            family.observe(labels, amount)
    assert_same_exposition(library, fast)


def test_a_series_changed_after_a_scrape_shows_its_new_value_at_the_next() -> None:
    """Cached lines are re-rendered for changed series only, and never go stale."""
    library, fast = CollectorRegistry(), Exposition(CollectorRegistry())
    counter = Counter("t_events_total", "Events.", ["kind"], registry=library)
    gauge = Gauge("t_depth", "Depth.", ["kind"], registry=library)
    histogram = Histogram("t_wait_seconds", "Wait.", ["kind"], buckets=BUCKETS, registry=library)
    fast_counter = fast.counter("t_events_total", "Events.", ["kind"])
    fast_gauge = fast.gauge("t_depth", "Depth.", ["kind"])
    fast_histogram = fast.histogram("t_wait_seconds", "Wait.", ["kind"], BUCKETS)
    for scrape in range(4):
        for kind in ("a", "b", "c")[: scrape + 1]:  # a new series appears after each scrape
            if kind != "b" or scrape % 2 == 1:  # "b" is left unchanged every other scrape
                counter.labels(kind).inc()
                fast_counter.inc((kind,))
                gauge.labels(kind).set(scrape * 10)
                fast_gauge.set((kind,), scrape * 10)
                histogram.labels(kind).observe(scrape)
                fast_histogram.observe((kind,), scrape)
        assert_same_exposition(library, fast)
    assert fast_counter.values() == {("a",): 4.0, ("b",): 2.0, ("c",): 2.0}


def test_format_value_is_prometheus_clients() -> None:
    """The repr shortcut agrees with floatToGoString on both sides of where it stops."""
    for number in (*GAUGE_VALUES, 999_999.99, 1_000_000.5, 5e-324, -1e300, 1e16, 2**53):
        expected: str = floatToGoString(number)  # type: ignore[no-untyped-call]
        assert format_value(number) == expected, number


def test_bad_names_labels_and_values_are_refused() -> None:
    """Mistakes a prometheus_client metric would refuse are refused too, not rendered broken."""
    with pytest.raises(ValueError, match="must end in _total"):
        CounterFamily("t_requests", "x", [])
    with pytest.raises(ValueError, match="invalid metric name"):
        GaugeFamily("t-level", "x", [])
    for labels in (["le"], ["__reserved"], ["a", "a"], ["bad-name"]):
        with pytest.raises(ValueError):
            HistogramFamily("t_seconds", "x", labels, BUCKETS)
    with pytest.raises(ValueError, match="strictly increasing"):
        HistogramFamily("t_seconds", "x", [], (2, 1))
    counter = CounterFamily("t_requests_total", "x", ["a"])
    with pytest.raises(ValueError, match="only increase"):
        counter.inc(("x",), -1)
    with pytest.raises(ValueError, match="1 string label values"):
        counter.inc(("x", "y"))
    with pytest.raises(ValueError, match="NaN"):
        HistogramFamily("t_seconds", "x", [], BUCKETS).observe((), math.nan)
