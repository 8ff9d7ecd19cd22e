"""The config and sandbox scenario for N integrations probed once a minute (the scale figure).

Integrations are grouped into tenants: ``per_account`` integrations share one HubSpot account
(the source, by form) and one Salesforce account (the destination, Leads). A single pair cannot
carry a thousand integrations at 1/min: syncwatch holds each HubSpot account to the documented
lowest burst tier, 100 calls per 10 s (``vendors/hubspot.py`` ``RATES``), i.e. at most 600
injections a minute before any clean-up call. With 100 per account (the default), N = 100 is one
pair and N = 10,000 is a hundred.

Each tenant has its own HubSpot token (a file beside the config), so the sandbox's per-token
windows (the burst limit, search's 4 requests a second) are each tenant's own, as they would be.
The sandbox's daily allowances are single counters shared by every token, so they are set to
1,000,000 calls a day per tenant (HubSpot Enterprise's allowance): the quota guard stays on,
with its default 1% share, and has no reason to skip a probe in a short run. The pretend
connector is faster than the default scenario's (median 15 s, p95 45 s instead of 45 s and
150 s) so that the number of probes in flight settles within a minute of warm-up; the daemon
polls at first 15 s after acceptance and then every 15 s.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from syncwatch.sandbox.scenario import DEFAULT_FORM_GUID, Scenario

REPO = Path(__file__).resolve().parent.parent
PROBES = REPO / "probes"
PER_ACCOUNT = 100
"""Integrations per HubSpot + Salesforce account pair (a tenant)."""
EVERY = "1m"
CONNECTOR_MEDIAN_S = 15.0
CONNECTOR_P95_S = 45.0
POLL_FIRST_AFTER_S = 15.0
POLL_EVERY_S = 15.0
TIMEOUT = "10m"
DAILY_PER_TENANT = 1_000_000
SALESFORCE_SECRET_ENV = "SYNCWATCH_DEMO_SALESFORCE_SECRET"
SECRETS = {SALESFORCE_SECRET_ENV: "bench"}
"""The sandbox accepts any non-empty credentials; the variable is config/demo.yaml's."""


def tenants(n: int, per_account: int = PER_ACCOUNT) -> int:
    return max(1, -(-n // per_account))


def token_file(tenant: int) -> str:
    """The tenant's HubSpot token file, relative to the config (so, beside it)."""
    return f"hubspot-{tenant:03d}.token"


def scale_raw(
    n: int,
    sandbox_origin: str,
    listen: str,
    database: Path,
    per_account: int = PER_ACCOUNT,
) -> dict[str, Any]:
    """The syncwatch config for ``n`` integrations against the sandbox at ``sandbox_origin``."""
    accounts: list[dict[str, Any]] = []
    for k in range(tenants(n, per_account)):
        accounts.append(
            {
                "name": f"hubspot-{k:03d}",
                "vendor": "hubspot",
                "base_url": f"{sandbox_origin}/hubspot",
                "forms_url": f"{sandbox_origin}/hsforms",
                "portal_id": "20112233",
                "token": {"file": token_file(k)},
            }
        )
        accounts.append(
            {
                "name": f"salesforce-{k:03d}",
                "vendor": "salesforce",
                "base_url": f"{sandbox_origin}/salesforce",
                "auth": {
                    "flow": "client_credentials",
                    "client_id": "syncwatch-bench",
                    "client_secret": {"env": SALESFORCE_SECRET_ENV},
                },
            }
        )
    integrations = [
        {
            "name": f"scale-{i:05d}",
            "source": {
                "account": f"hubspot-{i // per_account:03d}",
                "method": "form",
                "form_guid": DEFAULT_FORM_GUID,
            },
            "destination": {"account": f"salesforce-{i // per_account:03d}", "object": "Lead"},
            "templates": [{"template": "demo-request", "every": EVERY, "latency_objective": "5m"}],
            "timeout": TIMEOUT,
            "poll": {"first_after": f"{POLL_FIRST_AFTER_S:g}s", "every": f"{POLL_EVERY_S:g}s"},
        }
        for i in range(n)
    ]
    return {
        "probe_domain": Scenario().probe_domain,
        "database": str(database),
        "listen": listen,
        "probe_templates": str(PROBES),
        "accounts": accounts,
        "integrations": integrations,
    }


def scale_scenario(n: int, seed: int = 1, per_account: int = PER_ACCOUNT) -> dict[str, Any]:
    """The sandbox scenario: allowances for every tenant, the faster connector, no faults."""
    count = tenants(n, per_account)
    return {
        "seed": seed,
        "hubspot": {"daily_limit": DAILY_PER_TENANT * count},
        "salesforce": {"daily_limit": DAILY_PER_TENANT * count},
        "sync": {"latency": {"median": f"{CONNECTOR_MEDIAN_S:g}s", "p95": f"{CONNECTOR_P95_S:g}s"}},
    }


def write_files(
    workdir: Path,
    n: int,
    sandbox_origin: str,
    listen: str,
    per_account: int = PER_ACCOUNT,
) -> tuple[Path, Path]:
    """Write ``syncwatch.yaml``, its token files and ``scenario.yaml`` into ``workdir``;
    returns the paths of the config and the scenario."""
    for tenant in range(tenants(n, per_account)):
        (workdir / token_file(tenant)).write_text(f"bench-token-{tenant:03d}\n", encoding="utf-8")
    config = workdir / "syncwatch.yaml"
    scenario = workdir / "scenario.yaml"
    raw = scale_raw(n, sandbox_origin, listen, workdir / "syncwatch.db", per_account)
    config.write_text(yaml.safe_dump(raw, sort_keys=False), encoding="utf-8")
    scenario.write_text(
        yaml.safe_dump(scale_scenario(n, per_account=per_account), sort_keys=False),
        encoding="utf-8",
    )
    return config, scenario
