"""Reading a few families out of a Prometheus text exposition, and quantiles of histograms.

A scrape of ten thousand integrations is hundreds of thousands of lines; the benchmark needs a
handful of families, so lines are picked by name before any label is parsed (prometheus_client's
full parser would spend seconds of the machine the daemon is being measured on).
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Sequence

_LABEL = re.compile(r'(\w+)="((?:[^"\\]|\\.)*)"')

Series = list[tuple[dict[str, str], float]]


def pick(text: str, names: Iterable[str]) -> dict[str, Series]:
    """The samples of ``names`` (sample names, e.g. ``x_bucket``) with their labels."""
    wanted = set(names)
    found: dict[str, Series] = {name: [] for name in wanted}
    for line in text.splitlines():
        if not line or line[0] == "#":
            continue
        brace = line.find("{")
        space = line.find(" ")
        end = brace if 0 <= brace < space else space
        name = line[:end]
        if name not in wanted:
            continue
        labels: dict[str, str] = {}
        if end == brace:
            close = line.rindex("}")
            labels = dict(_LABEL.findall(line[brace + 1 : close]))
            value = line[close + 1 :].split()[0]
        else:
            value = line[space + 1 :].split()[0]
        found[name].append((labels, float(value)))
    return found


def total(series: Series, **labels: str) -> float:
    """The sum of the samples whose labels include ``labels``."""
    return sum(v for got, v in series if all(got.get(k) == want for k, want in labels.items()))


def buckets(series: Series) -> list[tuple[float, float]]:
    """A histogram's ``_bucket`` samples as (upper bound, cumulative count), by bound."""
    return sorted((float(labels["le"]), value) for labels, value in series)


def difference(
    later: Sequence[tuple[float, float]], earlier: Sequence[tuple[float, float]]
) -> list[tuple[float, float]]:
    """The observations between two readings of one histogram's buckets."""
    before = dict(earlier)
    return [(bound, count - before.get(bound, 0.0)) for bound, count in later]


def bucket_counts(values: Iterable[float], bounds: Sequence[float]) -> list[tuple[float, float]]:
    """Raw observations as cumulative buckets with ``bounds`` (plus +Inf), as a Histogram has."""
    ordered = sorted(values)
    result, i = [], 0
    for bound in [*bounds, math.inf]:
        while i < len(ordered) and ordered[i] <= bound:
            i += 1
        result.append((float(bound), float(i)))
    return result


def quantile(q: float, cumulative: Sequence[tuple[float, float]]) -> float | None:
    """``histogram_quantile`` as PromQL computes it: linear within the bucket the rank falls
    in; a rank in the +Inf bucket gives the largest finite bound. None without observations."""
    if not cumulative or cumulative[-1][1] <= 0:
        return None
    rank = q * cumulative[-1][1]
    lower_bound, lower_count = 0.0, 0.0
    for bound, count in cumulative:
        if count >= rank:
            if math.isinf(bound):
                return lower_bound
            if count == lower_count:
                return bound
            return lower_bound + (bound - lower_bound) * (rank - lower_count) / (
                count - lower_count
            )
        lower_bound, lower_count = bound, count
    return lower_bound
