"""Helpers shared by the HubSpot CRM destination tests: a Marketo → HubSpot pair beside the
demo's accounts, its probe template and a scenario whose Marketo connector writes to HubSpot."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

from syncwatch.sandbox.scenario import HubSpotSpec, Scenario

REPO = Path(__file__).resolve().parent.parent
HUBSPOT_ACCOUNT = "hubspot-demo"
MARKETO_ACCOUNT = "marketo-demo"
MARKETO_PAIR = "marketo-to-hubspot"
DEMO_PAIR = "hubspot-to-salesforce"
OWNER = HubSpotSpec().default_owner_id
TEMPLATE = f"""\
# A demo request through Marketo; a middleware connector makes the HubSpot contact.
name: marketo-hubspot-request
description: Tier 1 lead through Marketo; due in HubSpot within 5 minutes.
fields:
  firstName: Syncwatch
  lastName: "Probe {{probe_id}}"
  company: Syncwatch Synthetic Lead
  phone: "+1 555 0100"
  title: Head of Operations
  country: "US"
owner: "{OWNER}"
expect:
  email: "{{email}}"
  firstname: Syncwatch
  lastname: "Probe {{probe_id}}"
  company: Syncwatch Synthetic Lead
  phone: "+1 555 0100"
  jobtitle: Head of Operations
  country: "US"
"""


def hubspot_scenario(**overrides: Any) -> Scenario:
    """Marketo's connector writing HubSpot contacts, a little inside the 5-minute objective."""
    latency = {"median": 40, "p95": 120}
    raw = {"seed": 5, "marketo": {"sync_to": "hubspot", "sync_latency": latency}, **overrides}
    return Scenario.model_validate(raw)


def _templates(tmp_path: Path) -> Path:
    probes = tmp_path / "probes"
    probes.mkdir(exist_ok=True)
    for path in (REPO / "probes").glob("*.yaml"):
        shutil.copy(path, probes / path.name)
    (probes / "marketo-hubspot-request.yaml").write_text(TEMPLATE, encoding="utf-8")
    return probes


def pair() -> dict[str, Any]:
    return {
        "name": MARKETO_PAIR,
        "source": {"account": MARKETO_ACCOUNT, "method": "leads"},
        "destination": {"account": HUBSPOT_ACCOUNT, "object": "contacts"},
        "templates": [
            {"template": "marketo-hubspot-request", "every": "1m", "latency_objective": "5m"}
        ],
        "timeout": "2h",
        "poll": {"first_after": "45s", "every": "30s"},
    }


def with_hubspot_destination(
    tmp_path: Path, origin: str, *, keep_demo: bool = False
) -> Callable[[dict[str, Any]], None]:
    """A config edit: the demo's HubSpot account (without ``portal_id`` unless the demo's form
    pair is kept) as the destination of a Marketo → HubSpot pair; with ``keep_demo`` the same
    account stays the source of the demo's HubSpot → Salesforce pair too."""
    probes = _templates(tmp_path)
    (tmp_path / "marketo-secret").write_text("test-marketo-secret\n", encoding="utf-8")

    def edit(raw: dict[str, Any]) -> None:
        hubspot = next(a for a in raw["accounts"] if a["name"] == HUBSPOT_ACCOUNT)
        marketo = {
            "name": MARKETO_ACCOUNT,
            "vendor": "marketo",
            "base_url": f"{origin}/marketo",
            "client_id": "syncwatch-demo",
            "client_secret": {"file": str(tmp_path / "marketo-secret")},
            "quota": {"reserve": 1000, "max_share": 0.01},
        }
        raw["probe_templates"] = str(probes)
        if keep_demo:
            raw["accounts"].append(marketo)
            raw["integrations"].append(pair())
            return
        del hubspot["portal_id"], hubspot["forms_url"]
        raw["accounts"] = [hubspot, marketo]
        raw["integrations"] = [pair()]
        raw["contracts"], raw["notifications"] = [], []

    return edit


def add_hubspot_destination(tmp_path: Path) -> Callable[[dict[str, Any]], None]:
    """A config edit that only adds a Marketo → HubSpot pair (the Marketo account must be there
    already, e.g. from ``marketo_support.with_marketo``)."""
    probes = _templates(tmp_path)

    def edit(raw: dict[str, Any]) -> None:
        raw["probe_templates"] = str(probes)
        raw["integrations"].append(pair())

    return edit
