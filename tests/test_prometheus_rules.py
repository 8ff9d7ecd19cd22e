"""Alert rules (config/prometheus): promtool accepts and unit-tests them, every alert carries
what on-call needs, every runbook link lands on a runbook, and every metric they read is one
syncwatch exposes, in a /metrics body promtool's own lint accepts."""

from __future__ import annotations

import re
from typing import Any

import pytest
import yaml
from metrics_support import REPO, referenced_metrics, rendered_metrics, run_promtool, unexposed

from syncwatch.errors import ERROR_CLASSES

RULES = REPO / "config" / "prometheus" / "syncwatch-rules.yml"
RULE_TESTS = sorted((REPO / "config" / "prometheus" / "tests").glob("*.yml"))
RUNBOOKS = REPO / "runbooks"
SEVERITIES = {"critical", "warning", "info"}
RUNBOOK_URL = re.compile(
    r"http://\{\{ \$labels\.instance \}\}/runbooks/"
    r"(?:(?P<cause>[a-z0-9_]+)|\{\{ \$labels\.(?P<label>[a-z_]+) \}\})"
)
# Template queries in annotations (`printf "metric{...}" ... | query`) read metrics too.
_TEMPLATE_QUERY = re.compile(r'printf\s+"((?:[^"\\]|\\.)*)"[^}]*\|\s*query')


def _rules() -> list[dict[str, Any]]:
    data = yaml.safe_load(RULES.read_text())
    return [rule for group in data["groups"] for rule in group["rules"]]


def _rule_id(rule: dict[str, Any]) -> str:
    name = rule.get("alert") or rule["record"]
    window = rule.get("labels", {}).get("long")
    return f"{name}[{window}]" if window else str(name)


def _alerts() -> list[dict[str, Any]]:
    return [rule for rule in _rules() if "alert" in rule]


def _rule_tests() -> list[dict[str, Any]]:
    return [test for path in RULE_TESTS for test in yaml.safe_load(path.read_text())["tests"]]


def _label_values(rule: dict[str, Any], label: str) -> tuple[str, ...]:
    """The values a templated `{{ $labels.<label> }}` can take in the rule's alerts.

    A positive matcher in the expression bounds it (`outcome=~"mismatch|misrouted"`);
    otherwise an error class can be any of them, exclusions included, since a matcher
    edited later must not point an alert at a missing runbook.
    """
    matcher = re.search(rf'\b{label}\s*(=~|=)\s*"([^"]*)"', rule["expr"])
    if matcher is not None:
        return tuple(matcher.group(2).split("|"))
    if label == "error_class":
        return ERROR_CLASSES
    raise AssertionError(f"{rule['alert']}: cannot enumerate the values of {label}")


def _runbook_causes() -> list[tuple[str, str]]:
    """(alert, cause) for every runbook any alert can link to."""
    causes: set[tuple[str, str]] = set()
    for rule in _alerts():
        found = RUNBOOK_URL.fullmatch(rule["annotations"]["runbook_url"])
        assert found is not None, f"{rule['alert']}: runbook_url has not the shape under test"
        if found.group("cause"):
            causes.add((rule["alert"], found.group("cause")))
        else:
            causes.update((rule["alert"], v) for v in _label_values(rule, found.group("label")))
    return sorted(causes)


def _output(result: Any) -> str:
    return f"exit {result.returncode}\nstdout:\n{result.stdout}\nstderr:\n{result.stderr}"


def test_promtool_check_rules_lints_clean() -> None:
    """`promtool check rules --lint=all` accepts the rules file with no lint finding."""
    result = run_promtool("check", "rules", "--lint=all", "--lint-fatal", str(RULES))
    assert result.returncode == 0, _output(result)
    assert "SUCCESS" in result.stdout, _output(result)


def test_promtool_unit_tests_pass() -> None:
    """Every promtool unit test in config/prometheus/tests passes."""
    assert RULE_TESTS, "no promtool unit tests found"
    result = run_promtool("test", "rules", *(str(path) for path in RULE_TESTS))
    assert result.returncode == 0, _output(result)


@pytest.mark.parametrize("alertname", sorted({rule["alert"] for rule in _alerts()}))
def test_every_alert_is_tested_firing_and_silent(alertname: str) -> None:
    """Each alert has a unit test where it fires and one where it must not."""
    cases = [
        case
        for test in _rule_tests()
        for case in test.get("alert_rule_test", [])
        if case["alertname"] == alertname
    ]
    assert any(case.get("exp_alerts") for case in cases), f"{alertname} never tested firing"
    assert any(not case.get("exp_alerts") for case in cases), f"{alertname} never tested silent"


@pytest.mark.parametrize("record", sorted({r["record"] for r in _rules() if "record" in r}))
def test_every_recording_rule_is_tested(record: str) -> None:
    """Each recording rule's value is asserted by a promql_expr_test."""
    exprs = [case["expr"] for test in _rule_tests() for case in test.get("promql_expr_test", [])]
    assert any(record in expr for expr in exprs), f"{record} has no promql_expr_test"


@pytest.mark.parametrize("rule", _alerts(), ids=_rule_id)
def test_alert_carries_severity_and_annotations(rule: dict[str, Any]) -> None:
    """severity is critical, warning or info; summary is a static sentence ending in a period;
    description is templated; runbook_url is http://<instance>/runbooks/<cause>."""
    assert rule["labels"]["severity"] in SEVERITIES
    annotations = rule["annotations"]
    summary = annotations["summary"]
    assert summary.endswith(".") and "{{" not in summary, summary
    assert "{{" in annotations["description"], "description should name the labels it is about"
    assert RUNBOOK_URL.fullmatch(annotations["runbook_url"]), annotations["runbook_url"]


@pytest.mark.parametrize("rule", _rules(), ids=_rule_id)
def test_aggregations_keep_instance(rule: dict[str, Any]) -> None:
    """Every `by (...)` and `on (...)` keeps instance, which the runbook_url is built from."""
    for clause in re.findall(r"\b(?:by|on)\s*\(([^)]*)\)", rule["expr"]):
        labels = {label.strip() for label in clause.split(",")}
        assert "instance" in labels, f"{_rule_id(rule)}: ({clause}) drops instance"


@pytest.mark.parametrize(("alertname", "cause"), _runbook_causes())
def test_runbook_exists(alertname: str, cause: str) -> None:
    """Every runbook an alert can link to is a file in runbooks/ the daemon can serve."""
    path = RUNBOOKS / f"{cause}.md"
    assert path.is_file(), f"{alertname} links to /runbooks/{cause}, but {path} is missing"


@pytest.mark.parametrize("rule", _rules(), ids=_rule_id)
def test_rule_reads_only_exposed_metrics(rule: dict[str, Any]) -> None:
    """Every metric a rule reads, in its expression or an annotation's query, is exposed."""
    queries = [rule["expr"]]
    for annotation in rule.get("annotations", {}).values():
        queries += _TEMPLATE_QUERY.findall(annotation)
    for query in queries:
        assert referenced_metrics(query), f"no metric found in {query!r}"
        assert not unexposed(query), f"{_rule_id(rule)} reads metrics syncwatch does not expose"


def test_recording_rules_read_are_defined() -> None:
    """Every recording rule an expression reads is recorded in this same file."""
    recorded = {rule["record"] for rule in _rules() if "record" in rule}
    read = {name for rule in _rules() for name in referenced_metrics(rule["expr"]) if ":" in name}
    assert read <= recorded, f"read but never recorded: {sorted(read - recorded)}"


def test_promtool_check_metrics_accepts_the_exposition() -> None:
    """`promtool check metrics` finds no problem in what /metrics serves."""
    result = run_promtool("check", "metrics", stdin=rendered_metrics())
    assert result.returncode == 0, _output(result)
    assert not result.stdout.strip() and not result.stderr.strip(), _output(result)


def test_rule_test_files_point_at_the_rules() -> None:
    """Each unit-test file loads the shipped rules file, not a copy."""
    for path in RULE_TESTS:
        rule_files = yaml.safe_load(path.read_text())["rule_files"]
        assert [(path.parent / name).resolve() for name in rule_files] == [RULES.resolve()]
