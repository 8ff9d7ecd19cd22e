"""The Grafana dashboard (config/grafana): it imports cleanly into any Grafana with a
Prometheus data source, and every query reads metrics syncwatch exposes and parses as PromQL."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from metrics_support import REPO, referenced_metrics, run_promtool, unexposed

DASHBOARD = REPO / "config" / "grafana" / "syncwatch-dashboard.json"
RULES = REPO / "config" / "prometheus" / "syncwatch-rules.yml"
DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}
# What Grafana substitutes before the query reaches Prometheus, for the PromQL syntax check.
_GRAFANA_VARIABLES = {"$__rate_interval": "5m", "$__interval": "1m", "$__range": "1h"}


def _dashboard() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(DASHBOARD.read_text())
    return data


def _panels(panels: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    """Every panel, including those inside collapsed rows."""
    for panel in panels:
        yield panel
        yield from _panels(panel.get("panels", []))


def _targets() -> list[tuple[str, dict[str, Any]]]:
    return [
        (panel["title"], target)
        for panel in _panels(_dashboard()["panels"])
        for target in panel.get("targets", [])
    ]


def _target_params() -> list[Any]:
    return [
        pytest.param(title, target, id=f"{title} {target['refId']}") for title, target in _targets()
    ]


def _variables() -> dict[str, dict[str, Any]]:
    return {variable["name"]: variable for variable in _dashboard()["templating"]["list"]}


def _variable_query(variable: dict[str, Any]) -> str:
    query = variable["query"]
    return str(query["query"] if isinstance(query, dict) else query)


def test_dashboard_has_a_prometheus_datasource_variable() -> None:
    """A `datasource` variable of Prometheus type, so import asks nothing and any data
    source can be picked; every panel and query uses it rather than a fixed uid."""
    variable = _variables()["datasource"]
    assert variable["type"] == "datasource" and variable["query"] == "prometheus"
    for panel in _panels(_dashboard()["panels"]):
        if panel["type"] != "row":
            assert panel["datasource"] == DATASOURCE, panel["title"]
    for title, target in _targets():
        assert target["datasource"] == DATASOURCE, title


@pytest.mark.parametrize("name", ["instance", "integration", "contract"])
def test_filter_variables_come_from_label_values(name: str) -> None:
    """instance, integration and contract list what Prometheus holds, on the chosen source."""
    variable = _variables()[name]
    assert variable["type"] == "query" and variable["datasource"] == DATASOURCE
    assert _variable_query(variable).startswith("label_values(")
    assert _variable_query(variable).rstrip().endswith(f", {name})")


def test_schema_version_and_unique_panel_ids() -> None:
    """A current schema, and no two panels share an id (Grafana would drop one on save)."""
    dashboard = _dashboard()
    assert dashboard["schemaVersion"] >= 36
    ids = [panel["id"] for panel in _panels(dashboard["panels"])]
    assert len(ids) == len(set(ids)), sorted(ids)


def test_every_target_has_a_unique_ref_id_in_its_panel() -> None:
    """refIds are unique within a panel, or Grafana shows only one of the queries."""
    for panel in _panels(_dashboard()["panels"]):
        refs = [target["refId"] for target in panel.get("targets", [])]
        assert len(refs) == len(set(refs)), panel["title"]


@pytest.mark.parametrize(("title", "target"), _target_params())
def test_target_reads_only_exposed_metrics(title: str, target: dict[str, Any]) -> None:
    """Every metric a panel's query reads is one syncwatch exposes."""
    assert referenced_metrics(target["expr"]), f"{title}: no metric in {target['expr']!r}"
    assert not unexposed(target["expr"]), f"{title}: reads metrics syncwatch does not expose"


@pytest.mark.parametrize("name", ["instance", "integration", "contract"])
def test_variable_reads_only_exposed_metrics(name: str) -> None:
    """The variables' label_values() queries read exposed metrics too."""
    query = _variable_query(_variables()[name])
    assert referenced_metrics(query) and not unexposed(query), query


def test_recording_rules_read_are_shipped() -> None:
    """Panels that read recording rules read ones config/prometheus/syncwatch-rules.yml records."""
    groups = yaml.safe_load(RULES.read_text())["groups"]
    recorded = {rule["record"] for group in groups for rule in group["rules"] if "record" in rule}
    read = {name for _title, target in _targets() for name in referenced_metrics(target["expr"])}
    assert {name for name in read if ":" in name} <= recorded


def test_every_query_parses_as_promql(tmp_path: Path) -> None:
    """Each query, with Grafana's variables substituted, is valid PromQL to promtool."""
    rules = []
    for index, (_title, target) in enumerate(_targets()):
        expr = target["expr"]
        for variable, value in _GRAFANA_VARIABLES.items():
            expr = expr.replace(variable, value)
        expr = re.sub(r"\$\{?\w+\}?", ".*", expr)  # $instance and friends sit in =~ matchers
        rules.append({"record": f"dashboard:query:{index}", "expr": expr})
    path = tmp_path / "dashboard-queries.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}))
    result = run_promtool("check", "rules", str(path))
    assert result.returncode == 0, f"{result.stdout}\n{result.stderr}"
