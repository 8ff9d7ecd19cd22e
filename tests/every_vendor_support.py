"""One config with every account kind the registry knows, against the in-process sandbox.

Four integrations use every adapter: HubSpot (form) → Salesforce Lead, Marketo → Dynamics 365
lead, Account Engagement (Pardot, JWT bearer) → HubSpot contacts, Eloqua → Salesforce Lead; and
every notification target kind. The secrets are recognisable fakes (``SECRETS``) written to
files, and the sandbox is pinned to them, so a wrong one is refused as a real vendor would.
"""

from __future__ import annotations

import shutil
from functools import cache
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from dynamics_support import MARKETO_TEMPLATE as MARKETO_DYNAMICS_TEMPLATE
from eloqua_support import ELOQUA_TEMPLATE
from pardot_support import BUSINESS_UNIT

from syncwatch.config import Config, config_from_data
from syncwatch.sandbox.scenario import DEFAULT_FORM_GUID, Scenario
from syncwatch.simulation import scenario_for

REPO = Path(__file__).resolve().parent.parent
DOMAIN = "probe.syncwatch.example"
SALESFORCE_CLIENT_ID = "3MVG9-syncwatch-connected-app"
MARKETO_CLIENT_ID = "syncwatch-launchpoint"
ELOQUA_COMPANY = "SyncwatchCo"
ELOQUA_USER = "api.syncwatch"
TENANT = "contoso.onmicrosoft.com"
DYNAMICS_CLIENT_ID = "51f81489-12ee-4a9e-aaae-a2591f45987d"
PAGERDUTY_KEY = "R0UTINGKEYSECRETpagerduty0000042"
"""PagerDuty routing keys are 32 characters."""

PARDOT_HUBSPOT_TEMPLATE = """\
# A demo request sent to Account Engagement; a middleware connector makes the HubSpot contact.
name: pardot-hubspot-request
description: Tier 1 lead through Account Engagement; due in HubSpot within 10 minutes.
fields:
  firstName: Syncwatch
  lastName: "Probe {probe_id}"
  company: Syncwatch Synthetic Lead
  phone: "+1 555 0100"
  jobTitle: Head of Operations
  country: "US"
expect:
  email: "{email}"
  firstname: Syncwatch
  lastname: "Probe {probe_id}"
  company: Syncwatch Synthetic Lead
  phone: "+1 555 0100"
  jobtitle: Head of Operations
  country: "US"
"""
TEMPLATES = {
    "marketo-dynamics-request": MARKETO_DYNAMICS_TEMPLATE,
    "pardot-hubspot-request": PARDOT_HUBSPOT_TEMPLATE,
    "eloqua-demo-request": ELOQUA_TEMPLATE,
}

HUBSPOT_PAIR = "hubspot-to-salesforce"
MARKETO_PAIR = "marketo-to-dynamics"
PARDOT_PAIR = "pardot-to-hubspot"
ELOQUA_PAIR = "eloqua-to-salesforce"
PAIRS = (HUBSPOT_PAIR, MARKETO_PAIR, PARDOT_PAIR, ELOQUA_PAIR)


@cache
def private_key_pem() -> str:
    """An RSA key for the JWT bearer flow, made once per test session."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode("ascii")


def secrets(origin: str) -> dict[str, str]:
    """Every secret the config refers to, by file name: recognisable, and each with characters
    a vendor would percent-encode in a URL or a form (``/``, ``+``, ``=``, ``&``, ``~``)."""
    return {
        "hubspot-token": "pat-na1-HUBSPOTSECRET-7f3a9c2e-41d0-4b8e-9a5c-1d2e3f4a5b6c",
        "salesforce-secret": "SFSECRET/client+secret=Zx81&w4",
        "marketo-secret": "MKTOSECRET/q+y=7&k~2 space",
        "eloqua-password": "ELQSECRET/pass+w0rd=&~x",
        "dynamics-secret": "DYNSECRET~Q8x7c2e41f.09b3a5d_entra+/=",
        "pardot-private-key": private_key_pem(),
        "webhook-url": f"{origin}/webhook/HOOKSECRETPATH7c41?token=HOOKSECRETQUERY9d2e",
        "slack-url": f"{origin}/slack/services/T0SLACK01/B0SLACK02/SLACKSECRETxoxb4f1e9a",
        "pagerduty-key": PAGERDUTY_KEY,
    }


def every_vendor_raw(tmp_path: Path, origin: str) -> dict[str, Any]:
    """The config as data, secrets in files under ``tmp_path``, templates copied beside them."""
    probes = tmp_path / "probes"
    probes.mkdir(exist_ok=True)
    for path in (REPO / "probes").glob("*.yaml"):
        shutil.copy(path, probes / path.name)
    for name, text in TEMPLATES.items():
        (probes / f"{name}.yaml").write_text(text, encoding="utf-8")
    for name, value in secrets(origin).items():
        (tmp_path / name).write_text(f"{value}\n", encoding="utf-8")

    def secret(name: str) -> dict[str, str]:
        return {"file": str(tmp_path / name)}

    def pair(name: str, source: dict[str, Any], destination: dict[str, Any], template: str) -> Any:
        return {
            "name": name,
            "source": source,
            "destination": destination,
            "templates": [{"template": template, "every": "2m", "latency_objective": "10m"}],
            "timeout": "2h",
            "poll": {"first_after": "60s", "every": "30s"},
        }

    return {
        "probe_domain": DOMAIN,
        "database": str(tmp_path / "syncwatch.db"),
        "probe_templates": str(probes),
        "accounts": [
            {
                "name": "hubspot-prod",
                "vendor": "hubspot",
                "base_url": f"{origin}/hubspot",
                "forms_url": f"{origin}/hsforms",
                "portal_id": "20112233",
                "token": secret("hubspot-token"),
            },
            {
                "name": "salesforce-prod",
                "vendor": "salesforce",
                "base_url": f"{origin}/salesforce",
                "auth": {
                    "flow": "client_credentials",
                    "client_id": SALESFORCE_CLIENT_ID,
                    "client_secret": secret("salesforce-secret"),
                },
                "quota": {"reserve": 500, "max_share": 0.05},
            },
            {
                "name": "marketo-prod",
                "vendor": "marketo",
                "base_url": f"{origin}/marketo",
                "client_id": MARKETO_CLIENT_ID,
                "client_secret": secret("marketo-secret"),
                "quota": {"reserve": 1000, "max_share": 0.03},
            },
            {
                "name": "pardot-prod",
                "vendor": "pardot",
                "base_url": f"{origin}/pardot",
                "auth_url": f"{origin}/salesforce",
                "business_unit_id": BUSINESS_UNIT,
                "auth": {
                    "flow": "jwt_bearer",
                    "client_id": SALESFORCE_CLIENT_ID,
                    "username": "integration@syncwatch.example",
                    "private_key": secret("pardot-private-key"),
                },
                "quota": {"reserve": 1000, "max_share": 0.02},
            },
            {
                "name": "eloqua-prod",
                "vendor": "eloqua",
                "company": ELOQUA_COMPANY,
                "username": ELOQUA_USER,
                "password": secret("eloqua-password"),
                "login_url": f"{origin}/eloqua-login",
            },
            {
                "name": "dynamics-prod",
                "vendor": "dynamics",
                "base_url": f"{origin}/dynamics",
                "auth_url": f"{origin}/entra",
                "tenant_id": TENANT,
                "client_id": DYNAMICS_CLIENT_ID,
                "client_secret": secret("dynamics-secret"),
            },
        ],
        "integrations": [
            pair(
                HUBSPOT_PAIR,
                {"account": "hubspot-prod", "method": "form", "form_guid": DEFAULT_FORM_GUID},
                {"account": "salesforce-prod", "object": "Lead"},
                "demo-request",
            ),
            pair(
                MARKETO_PAIR,
                {"account": "marketo-prod", "method": "leads"},
                {"account": "dynamics-prod", "object": "lead"},
                "marketo-dynamics-request",
            ),
            pair(
                PARDOT_PAIR,
                {"account": "pardot-prod", "method": "api"},
                {"account": "hubspot-prod", "object": "contacts"},
                "pardot-hubspot-request",
            ),
            pair(
                ELOQUA_PAIR,
                {"account": "eloqua-prod", "method": "contacts_api"},
                {"account": "salesforce-prod", "object": "Lead"},
                "eloqua-demo-request",
            ),
        ],
        "contracts": [
            {
                "name": f"{vendor}-sla",
                "vendor": vendor,
                "integrations": [integration],
                "timezone": "UTC",
                "objective_percent": 99.9,
                "monthly_fee": "1000.00",
            }
            for vendor, integration in (
                ("hubspot", HUBSPOT_PAIR),
                ("marketo", MARKETO_PAIR),
                ("pardot", PARDOT_PAIR),
                ("eloqua", ELOQUA_PAIR),
                ("salesforce", HUBSPOT_PAIR),
                ("dynamics", MARKETO_PAIR),
            )
        ],
        "notifications": [
            {"name": "ops-webhook", "kind": "webhook", "url": secret("webhook-url")},
            {"name": "ops-slack", "kind": "slack", "webhook_url": secret("slack-url")},
            {
                "name": "ops-pagerduty",
                "kind": "pagerduty",
                "routing_key": secret("pagerduty-key"),
                "events_url": f"{origin}/pagerduty/v2/enqueue",
            },
        ],
        "incidents": {"confirm": 2, "recover": 2},
    }


def every_vendor_config(tmp_path: Path, origin: str) -> Config:
    return config_from_data(every_vendor_raw(tmp_path, origin), tmp_path / "syncwatch.yaml")


def every_vendor_scenario(config: Config, origin: str, **raw: Any) -> Scenario:
    """The sandbox fitted to the config (connectors, forms, business unit), its accounts
    pinned to the config's secrets: anything else is refused as the vendor would."""
    fitted = scenario_for(config, Scenario.model_validate({"seed": 5, **raw}))
    values = secrets(origin)
    fitted.hubspot.token = values["hubspot-token"]
    fitted.salesforce.client_id = SALESFORCE_CLIENT_ID
    fitted.salesforce.client_secret = values["salesforce-secret"]
    fitted.marketo.client_id = MARKETO_CLIENT_ID
    fitted.marketo.client_secret = values["marketo-secret"]
    fitted.eloqua.company = ELOQUA_COMPANY
    fitted.eloqua.username = ELOQUA_USER
    fitted.eloqua.password = values["eloqua-password"]
    fitted.dynamics.tenant_id = TENANT
    fitted.dynamics.client_id = DYNAMICS_CLIENT_ID
    fitted.dynamics.client_secret = values["dynamics-secret"]
    return fitted
