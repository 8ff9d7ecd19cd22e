"""Helpers shared by the Dynamics 365 tests: accounts, fixtures, configs with Dynamics pairs."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

from syncwatch.config.accounts import DynamicsAccount
from syncwatch.sandbox.scenario import Scenario
from syncwatch.sandbox.world import World

REPO = Path(__file__).resolve().parent.parent
FIXTURES = Path(__file__).resolve().parent / "fixtures" / "dynamics"
SECRET = "dyn-secret-Q8~x7c2e41f09b3a5d"
CLIENT_ID = "51f81489-12ee-4a9e-aaae-a2591f45987d"
TENANT = "contoso.onmicrosoft.com"
DOMAIN = "probe.syncwatch.example"
ENVIRONMENT = "https://contoso.crm.dynamics.com"
TOKEN_URL = f"https://login.microsoftonline.com/{TENANT}/oauth2/v2.0/token"
LEADS = f"{ENVIRONMENT}/api/data/v9.2/leads"


def fixture(name: str) -> Any:
    return json.loads((FIXTURES / name).read_text(encoding="utf-8"))


def dynamics_account(secret_file: Path, **overrides: Any) -> DynamicsAccount:
    raw = {
        "name": "dynamics-test",
        "vendor": "dynamics",
        "base_url": ENVIRONMENT,
        "tenant_id": TENANT,
        "client_id": CLIENT_ID,
        "client_secret": {"file": str(secret_file)},
        **overrides,
    }
    return DynamicsAccount.model_validate(raw)


def sandbox_account(secret_file: Path, origin: str = "http://sandbox.test") -> DynamicsAccount:
    return dynamics_account(secret_file, base_url=f"{origin}/dynamics", auth_url=f"{origin}/entra")


def add_lead(world: World, email: str, **fields: Any) -> str:
    """A lead straight into the sandbox's Dataverse, created now; its id."""
    columns = {"emailaddress1": email, "lastname": "Probe", **fields}
    owner = world.scenario.dynamics.default_owner_id
    record = world.new_dataverse_record(
        "lead", {**columns, "_ownerid_value": owner}, world.clock.now(), "api"
    )
    return record.id


# -- HubSpot → Dynamics and Marketo → Dynamics beside the demo's accounts ----------------------

HUBSPOT_TEMPLATE = """\
# A demo request through HubSpot; HubSpot's Dynamics 365 integration makes the lead.
name: hubspot-dynamics-request
description: Tier 1 lead through HubSpot; due in Dynamics 365 within 5 minutes.
fields:
  firstname: Syncwatch
  lastname: "Probe {probe_id}"
  company: Syncwatch Synthetic Lead
  phone: "+1 555 0100"
  jobtitle: Head of Operations
  country: "US"
expect:
  emailaddress1: "{email}"
  firstname: Syncwatch
  lastname: "Probe {probe_id}"
  companyname: Syncwatch Synthetic Lead
  telephone1: "+1 555 0100"
  jobtitle: Head of Operations
  address1_country: "US"
"""
MARKETO_TEMPLATE = """\
# A demo request through Marketo; "Sync Person to Microsoft" makes the Dynamics lead.
name: marketo-dynamics-request
description: Tier 1 lead through Marketo; due in Dynamics 365 within 5 minutes.
fields:
  firstName: Syncwatch
  lastName: "Probe {probe_id}"
  company: Syncwatch Synthetic Lead
  phone: "+1 555 0100"
  title: Head of Operations
  country: "US"
expect:
  emailaddress1: "{email}"
  firstname: Syncwatch
  lastname: "Probe {probe_id}"
  companyname: Syncwatch Synthetic Lead
  telephone1: "+1 555 0100"
  jobtitle: Head of Operations
  address1_country: "US"
"""
DYNAMICS_ACCOUNT = "dynamics-demo"
MARKETO_ACCOUNT = "marketo-demo"
HUBSPOT_PAIR = "hubspot-to-dynamics"
MARKETO_PAIR = "marketo-to-dynamics"


def dynamics_scenario(**overrides: Any) -> Scenario:
    """Both connectors writing to Dynamics, a little inside the 5-minute objective."""
    latency = {"median": 40, "p95": 120}
    raw = {
        "seed": 5,
        "sync": {"destination": "dynamics", "latency": latency},
        "marketo": {"sync_to": "dynamics", "sync_latency": latency},
        **overrides,
    }
    return Scenario.model_validate(raw)


def with_dynamics(tmp_path: Path, origin: str) -> Callable[[dict[str, Any]], None]:
    """A config edit: the demo's HubSpot account, a Marketo and a Dynamics account, and the two
    Dynamics pairs (sharing one batched poll); the Salesforce pair and its contract go."""
    probes = tmp_path / "probes"
    probes.mkdir(exist_ok=True)
    for path in (REPO / "probes").glob("*.yaml"):
        shutil.copy(path, probes / path.name)
    (probes / "hubspot-dynamics-request.yaml").write_text(HUBSPOT_TEMPLATE, encoding="utf-8")
    (probes / "marketo-dynamics-request.yaml").write_text(MARKETO_TEMPLATE, encoding="utf-8")
    for name, value in (("marketo-secret", "test-marketo-secret"), ("dynamics-secret", SECRET)):
        (tmp_path / name).write_text(value + "\n", encoding="utf-8")

    def edit(raw: dict[str, Any]) -> None:
        hubspot = next(a for a in raw["accounts"] if a["vendor"] == "hubspot")
        raw["probe_templates"] = str(probes)
        raw["accounts"] = [hubspot, _marketo(tmp_path, origin), _dynamics(tmp_path, origin)]
        raw["integrations"] = [
            _pair(HUBSPOT_PAIR, {"account": hubspot["name"], "method": "form"}, "hubspot"),
            _pair(MARKETO_PAIR, {"account": MARKETO_ACCOUNT, "method": "leads"}, "marketo"),
        ]
        raw["integrations"][0]["source"]["form_guid"] = "5c1e8f2a-9b7d-4e3a-8c61-2f0d4b9a7e15"
        raw["contracts"], raw["notifications"] = [], []

    return edit


def _marketo(tmp_path: Path, origin: str) -> dict[str, Any]:
    return {
        "name": MARKETO_ACCOUNT,
        "vendor": "marketo",
        "base_url": f"{origin}/marketo",
        "client_id": "syncwatch-demo",
        "client_secret": {"file": str(tmp_path / "marketo-secret")},
        "quota": {"reserve": 1000, "max_share": 0.01},
    }


def _dynamics(tmp_path: Path, origin: str) -> dict[str, Any]:
    return {
        "name": DYNAMICS_ACCOUNT,
        "vendor": "dynamics",
        "base_url": f"{origin}/dynamics",
        "auth_url": f"{origin}/entra",
        "tenant_id": TENANT,
        "client_id": CLIENT_ID,
        "client_secret": {"file": str(tmp_path / "dynamics-secret")},
        "quota": {"reserve": 500, "max_share": 0.01},
    }


def _pair(name: str, source: dict[str, Any], template: str) -> dict[str, Any]:
    return {
        "name": name,
        "source": source,
        "destination": {"account": DYNAMICS_ACCOUNT, "object": "lead"},
        "templates": [
            {"template": f"{template}-dynamics-request", "every": "1m", "latency_objective": "5m"}
        ],
        "timeout": "2h",
        "poll": {"first_after": "45s", "every": "30s"},
    }


def add_dynamics(tmp_path: Path, origin: str) -> Callable[[dict[str, Any]], None]:
    """A config edit that only adds: a Dynamics account and a HubSpot → Dynamics pair on the
    demo's HubSpot account (for tests that want every vendor in one config)."""
    probes = tmp_path / "probes"
    probes.mkdir(exist_ok=True)
    for path in (REPO / "probes").glob("*.yaml"):
        shutil.copy(path, probes / path.name)
    (probes / "hubspot-dynamics-request.yaml").write_text(HUBSPOT_TEMPLATE, encoding="utf-8")
    (tmp_path / "dynamics-secret").write_text(SECRET + "\n", encoding="utf-8")

    def edit(raw: dict[str, Any]) -> None:
        hubspot = next(a for a in raw["accounts"] if a["vendor"] == "hubspot")
        raw["probe_templates"] = str(probes)
        raw["accounts"].append(_dynamics(tmp_path, origin))
        pair = _pair(
            HUBSPOT_PAIR, {"account": hubspot["name"], "method": "contacts_api"}, "hubspot"
        )
        raw["integrations"].append(pair)

    return edit
