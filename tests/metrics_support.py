"""What syncwatch exposes on /metrics, which metrics a PromQL expression reads, and promtool.

Shared by the alert-rule and dashboard tests, which both check that every metric they query is
one the daemon really exposes: a typo or a renamed metric in a rule never errors in Prometheus,
it just selects nothing, and an alert that can never fire looks exactly like a healthy system.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from datetime import UTC, datetime
from functools import cache
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry

from syncwatch.config import load_config
from syncwatch.events import ApiCall
from syncwatch.metrics import Metrics

REPO = Path(__file__).resolve().parent.parent
DEMO_CONFIG = REPO / "config" / "demo.yaml"
AT = datetime(2026, 10, 5, 9, 30, tzinfo=UTC)

SERIES_SUFFIXES = {
    # The series names each exposition TYPE yields in text format 0.0.4. A counter's TYPE line
    # already carries its _total; _created appears as its own gauge family, so needs no entry.
    "counter": ("",),
    "gauge": ("",),
    "untyped": ("",),
    "histogram": ("_bucket", "_count", "_sum"),
    "summary": ("", "_count", "_sum"),
}
_TYPE_LINE = re.compile(r"^# TYPE (\S+) (\S+)$", re.MULTILINE)

# PromQL words that look like metric names but are not: operators, modifiers, aggregation
# names (which may be followed by `by (...)` rather than a parenthesis) and number literals.
_KEYWORDS = frozenset(
    {
        "and", "or", "unless", "by", "without", "on", "ignoring", "group_left", "group_right",
        "bool", "offset", "atan2", "inf", "nan", "start", "end",
        "sum", "min", "max", "avg", "group", "stddev", "stdvar", "count", "count_values",
        "bottomk", "topk", "quantile", "limitk", "limit_ratio",
    }
)  # fmt: skip
_STRING = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`')
_GROUPING = re.compile(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)")
_IDENTIFIER = re.compile(r"(?<![\w:.$])[A-Za-z_:][\w:]*")
_LABEL_VALUES = re.compile(r"^\s*label_values\((?P<expr>.*),\s*[A-Za-z_]\w*\s*\)\s*$", re.DOTALL)


def promtool() -> str:
    """The promtool binary; a clear failure (not a skip) when it is missing, since CI has it."""
    path = shutil.which("promtool")
    if path is None:
        pytest.fail(
            "promtool is not on PATH. Install it with scripts/install-tools (Debian's prometheus "
            "package), or take the promtool binary from a Prometheus release tarball "
            "(https://prometheus.io/download/).",
            pytrace=False,
        )
    return path


def run_promtool(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    """Run promtool from the repository root, capturing its output for assertion messages."""
    return subprocess.run(
        [promtool(), *args],
        cwd=REPO,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


@cache
def rendered_metrics() -> str:
    """The /metrics body of a daemon on the demo config after one probe and one API call.

    The events make the families that stay absent until something happens (last probe time,
    quota figures, contract ratios) carry samples, so the lint sees real lines, not only
    HELP and TYPE.
    """
    config = load_config(DEMO_CONFIG)
    metrics = Metrics(config, CollectorRegistry())
    integration = config.integrations[0]
    template = integration.templates[0].template
    metrics.probe_finished(integration.name, template, "ok", None, 42.0, AT)
    metrics.probe_finished(integration.name, template, "rejected", "vendor_5xx", None, AT)
    account = config.accounts[0]
    metrics.call_recorded(
        ApiCall(
            at=AT,
            vendor=account.vendor,
            account=account.name,
            operation="submit_form",
            status=200,
            duration_s=0.2,
        )
    )
    metrics.quota_observed(account.name, "daily", 1200, 250_000)
    for contract in config.contracts:
        metrics.set_contract_figures(contract.name, 0.9995, 0.0)
    body, _content_type = metrics.render()
    return body.decode()


@cache
def exposed_series_names() -> frozenset[str]:
    """Every series name a query can select on the daemon's /metrics, from its TYPE lines.

    From the TYPE lines rather than the samples: several families are rightly absent until
    their first value (DESIGN §14.7), yet a rule reading them is correct.
    """
    names: set[str] = set()
    for family, kind in _TYPE_LINE.findall(rendered_metrics()):
        names.update(family + suffix for suffix in SERIES_SUFFIXES[kind])
    return frozenset(names)


def referenced_metrics(expr: str) -> set[str]:
    """The metric names an expression selects (Grafana's `label_values(expr, label)` too).

    A small lexer, not a parser: strings, label matchers, range brackets and grouping label
    lists are blanked out, and what remains that is an identifier, not a keyword and not
    called like a function, is a metric name.
    """
    variable_query = _LABEL_VALUES.match(expr)
    if variable_query is not None:
        expr = variable_query.group("expr")
    text = _STRING.sub('""', expr)
    text = re.sub(r"\{[^}]*\}", "{}", text)
    text = re.sub(r"\[[^\]]*\]", "[]", text)
    text = _GROUPING.sub(r"\1", text)
    names = set()
    for match in _IDENTIFIER.finditer(text):
        if text[match.end() :].lstrip().startswith("("):
            continue  # a function call, or an aggregation written without `by`
        if match.group() not in _KEYWORDS:
            names.add(match.group())
    return names


def unexposed(expr: str) -> set[str]:
    """Metrics the expression reads that syncwatch does not expose.

    Exempt: recording rules (`syncwatch:...`, checked against the rules file where they are
    read) and Prometheus's own `up`.
    """
    return {
        name
        for name in referenced_metrics(expr)
        if ":" not in name and name != "up" and name not in exposed_series_names()
    }
