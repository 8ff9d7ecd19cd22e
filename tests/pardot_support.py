"""Helpers shared by the Account Engagement (Pardot) tests: accounts, fixtures, a config edit.

The generic seams (a call recorder, a recording transport, driving work on the virtual clock)
are Marketo's helpers, shared rather than copied.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

from syncwatch.config.accounts import PardotAccount
from syncwatch.sandbox.scenario import FormHandlerSpec, PardotSpec

REPO = Path(__file__).resolve().parent.parent
FIXTURES = Path(__file__).resolve().parent / "fixtures" / "pardot"
SECRET = "sf-connected-app-secret-7c41d0a2b9e8"
CLIENT_ID = "3MVG9syncwatchPardotConsumerKey"
BUSINESS_UNIT = PardotSpec().business_unit_id
DOMAIN = "probe.syncwatch.example"
PREFIX = "/pardot"
HANDLER_PATH = FormHandlerSpec().path
ERRORS: dict[str, Any] = json.loads((FIXTURES / "error-codes.json").read_text(encoding="utf-8"))


def fixture(name: str) -> Any:
    return json.loads((FIXTURES / name).read_text(encoding="utf-8"))


def pardot_account(
    secret_file: Path, origin: str = "http://sandbox.test", **overrides: Any
) -> PardotAccount:
    """An account on the sandbox: API under ``/pardot``, tokens from ``/salesforce``."""
    raw = {
        "name": "pardot-test",
        "vendor": "pardot",
        "base_url": f"{origin}{PREFIX}",
        "auth_url": f"{origin}/salesforce",
        "business_unit_id": BUSINESS_UNIT,
        "auth": {
            "flow": "client_credentials",
            "client_id": CLIENT_ID,
            "client_secret": {"file": str(secret_file)},
        },
        **overrides,
    }
    return PardotAccount.model_validate(raw)


def error_body(code: int) -> dict[str, Any]:
    body: dict[str, Any] = ERRORS["bodies"][str(code)]
    return body


def error_status(code: int) -> int:
    status: int = ERRORS["statuses"].get(str(code), 400)
    return status


# -- a Pardot → Salesforce integration beside the demo's ----------------------------------------

PARDOT_TEMPLATE = """\
# A demo request sent to Account Engagement (v5 prospect field names, which the default form
# handler also uses as its external names); its Salesforce connector makes the Lead.
name: pardot-demo-request
description: Tier 1 lead through Account Engagement; due in Salesforce within 10 minutes.
fields:
  firstName: Syncwatch
  lastName: "Probe {probe_id}"
  company: Syncwatch Synthetic Lead
  phone: "+1 555 0100"
  jobTitle: Head of Operations
  country: "US"
expect:
  Email: "{email}"
  FirstName: Syncwatch
  LastName: "Probe {probe_id}"
  Company: Syncwatch Synthetic Lead
  Phone: "+1 555 0100"
  Title: Head of Operations
  Country: "US"
"""
PARDOT_INTEGRATION = "pardot-to-salesforce"
PARDOT_ACCOUNT = "pardot-demo"


def with_pardot(
    tmp_path: Path, origin: str, method: str = "api"
) -> Callable[[dict[str, Any]], None]:
    """A config edit: an Account Engagement account (tokens from the demo's Salesforce org) and
    a Pardot → Salesforce integration, with the repository's templates plus a Pardot one."""
    probes = tmp_path / "probes"
    probes.mkdir(exist_ok=True)
    for path in (REPO / "probes").glob("*.yaml"):
        shutil.copy(path, probes / path.name)
    (probes / "pardot-demo-request.yaml").write_text(PARDOT_TEMPLATE, encoding="utf-8")
    secret = tmp_path / "pardot-secret"
    secret.write_text(f"{SECRET}\n", encoding="utf-8")
    source: dict[str, Any] = {"account": PARDOT_ACCOUNT, "method": method}
    if method == "form_handler":
        source["form_handler_url"] = f"{origin}{PREFIX}/{HANDLER_PATH}"

    def edit(raw: dict[str, Any]) -> None:
        raw["probe_templates"] = str(probes)
        raw["accounts"].append(
            {
                "name": PARDOT_ACCOUNT,
                "vendor": "pardot",
                "base_url": f"{origin}{PREFIX}",
                "auth_url": f"{origin}/salesforce",
                "business_unit_id": BUSINESS_UNIT,
                "auth": {
                    "flow": "client_credentials",
                    "client_id": CLIENT_ID,
                    "client_secret": {"file": str(secret)},
                },
                "quota": {"reserve": 1000, "max_share": 0.02},
            }
        )
        raw["integrations"].append(
            {
                "name": PARDOT_INTEGRATION,
                "source": source,
                "destination": {"account": "salesforce-demo", "object": "Lead"},
                "templates": [
                    {"template": "pardot-demo-request", "every": "1m", "latency_objective": "10m"}
                ],
                "timeout": "2h",
                "poll": {"first_after": "2m", "every": "30s"},
            }
        )

    return edit
