"""Helpers shared by the Eloqua tests: accounts, fixtures, and an Eloqua → Salesforce config edit.

The fixtures in tests/fixtures/eloqua are Oracle's documented bodies: ``id.json`` (Determining
base URLs), ``id-not-authenticated.json`` (its failure answer), ``contact-created.json`` (the
HTTP verbs page's contact, as the create's 201 returns a Contact), ``contacts-minimal.json`` (the
request-depth page's minimal contact inside the Swagger's QueryResultContact), and in
``validation-errors.json`` the validation-errors page's "sandwich" example and the 2012 topliners
examples. ``email-taken`` there is not documented (the shape of a 409 for an existing email is
unconfirmed): it is built from the documented ``ObjectValidationError`` and
``UniquenessRequirement``.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

from syncwatch.config.accounts import EloquaAccount

REPO = Path(__file__).resolve().parent.parent
FIXTURES = Path(__file__).resolve().parent / "fixtures" / "eloqua"
COMPANY = "SyncwatchCo"
USERNAME = "api.syncwatch"
PASSWORD = "elq-pass-7Hq2xV9wLm4Z"
DOMAIN = "probe.syncwatch.example"
LOGIN_PREFIX = "/eloqua-login"
POD_PREFIX = "/eloqua"


def fixture(name: str) -> Any:
    return json.loads((FIXTURES / name).read_text(encoding="utf-8"))


def eloqua_account(password_file: Path, **overrides: Any) -> EloquaAccount:
    raw = {
        "name": "eloqua-test",
        "vendor": "eloqua",
        "company": COMPANY,
        "username": USERNAME,
        "password": {"file": str(password_file)},
        "login_url": f"http://sandbox.test{LOGIN_PREFIX}",
        **overrides,
    }
    return EloquaAccount.model_validate(raw)


# -- an Eloqua → Salesforce integration beside the demo's ------------------------------------------

ELOQUA_TEMPLATE = """\
# A demo request created as an Eloqua contact (REST 1.0 property names); the Salesforce
# Integration app's "Create Lead" action makes the Lead.
name: eloqua-demo-request
description: Tier 1 lead through Eloqua; due in Salesforce within 10 minutes.
fields:
  firstName: Syncwatch
  lastName: "Probe {probe_id}"
  accountName: Syncwatch Synthetic Lead
  businessPhone: "+1 555 0100"
  title: Head of Operations
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
ELOQUA_INTEGRATION = "eloqua-to-salesforce"
ELOQUA_ACCOUNT = "eloqua-demo"


def with_eloqua(tmp_path: Path, origin: str) -> Callable[[dict[str, Any]], None]:
    """A config edit: an Eloqua account (its pod discovered at the sandbox's ``/eloqua-login``)
    and an Eloqua → Salesforce integration on the demo's Salesforce account, with the
    repository's templates plus an Eloqua one."""
    probes = tmp_path / "probes"
    probes.mkdir(exist_ok=True)
    for path in (REPO / "probes").glob("*.yaml"):
        shutil.copy(path, probes / path.name)
    (probes / "eloqua-demo-request.yaml").write_text(ELOQUA_TEMPLATE, encoding="utf-8")
    secret = tmp_path / "eloqua-password"
    secret.write_text(f"{PASSWORD}\n", encoding="utf-8")

    def edit(raw: dict[str, Any]) -> None:
        raw["probe_templates"] = str(probes)
        raw["accounts"].append(
            {
                "name": ELOQUA_ACCOUNT,
                "vendor": "eloqua",
                "company": COMPANY,
                "username": USERNAME,
                "password": {"file": str(secret)},
                "login_url": f"{origin}{LOGIN_PREFIX}",
                "quota": {"reserve": 0, "max_share": 0.01},
            }
        )
        raw["integrations"].append(
            {
                "name": ELOQUA_INTEGRATION,
                "source": {"account": ELOQUA_ACCOUNT, "method": "contacts_api"},
                "destination": {"account": "salesforce-demo", "object": "Lead"},
                "templates": [
                    {"template": "eloqua-demo-request", "every": "1m", "latency_objective": "10m"}
                ],
                "timeout": "2h",
                "poll": {"first_after": "90s", "every": "30s"},
            }
        )

    return edit
