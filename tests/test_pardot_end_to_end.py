"""Pardot → Salesforce end to end: the real daemon, the in-process sandbox, a virtual clock.

The demo config gains an Account Engagement account (its tokens from the demo's Salesforce org)
and a Pardot → Salesforce integration; its probes go in by ``upsertLatestByEmail`` or by a form
handler, Account Engagement's connector makes Salesforce Leads of the assigned prospects, the
daemon finds them with the same batched SOQL as the HubSpot probes, measures latency, records the
``x-api-usage`` figures and cleans both sides.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from daemon_support import SANDBOX, make_rig
from pardot_support import PARDOT_ACCOUNT, PARDOT_INTEGRATION, with_pardot

from syncwatch.sandbox.scenario import LatencySpec, PardotSpec, Scenario
from syncwatch.store import Store, from_db_time

HUBSPOT_INTEGRATION = "hubspot-to-salesforce"
INJECT = {"api": "upsert_prospect", "form_handler": "submit_form_handler"}


def scenario(**pardot: Any) -> Scenario:
    """The connector well inside the 10-minute objective, so every probe is ok."""
    spec = PardotSpec(sync_latency=LatencySpec(median=90, p95=240), **pardot)
    return Scenario(seed=5, pardot=spec)


def probes(store: Store, integration: str) -> list[dict[str, Any]]:
    rows = store.db.query("SELECT * FROM probes WHERE integration = ?", [integration])
    return list(rows)


@pytest.mark.parametrize("method", ["api", "form_handler"])
async def test_pardot_probes_arrive_in_salesforce_are_measured_and_cleaned(
    tmp_path: Path, method: str
) -> None:
    """Ten virtual minutes: every probe ok with a latency, usage read, nothing left behind."""
    rig = make_rig(tmp_path, scenario(), edit=with_pardot(tmp_path, SANDBOX, method))
    daemon = rig.daemon()
    assert daemon.adapters.daily_windows[PARDOT_ACCOUNT] == "daily"
    await rig.run_for(600, drain_s=900, daemon=daemon)

    rows = probes(rig.store, PARDOT_INTEGRATION)
    assert len(rows) == 10
    assert {row["outcome"] for row in rows} == {"ok"}
    assert all(0 < row["latency_s"] < 600 for row in rows)
    assert {row["state"] for row in rows} == {"cleaned"}
    refs = [row["source_ref"] for row in rows]
    if method == "form_handler":
        assert refs == [None] * 10, "a handler's redirect carries no prospect id"
    else:
        assert all(ref and ref.isdigit() for ref in refs)
    hubspot = Counter(row["outcome"] for row in probes(rig.store, HUBSPOT_INTEGRATION))
    assert hubspot == {"ok": 12}, "the demo's own integration is untouched"

    state = await rig.sandbox_state()
    assert [state[side]["synthetic"] for side in ("hubspot", "pardot", "salesforce")] == [0, 0, 0]
    assert state["pardot"]["recycled"] == 10
    assert state["sync"]["pending"] == 0

    calls = Counter(call["operation"] for call in rig.store.calls(PARDOT_ACCOUNT))
    assert calls[INJECT[method]] == 10
    assert calls["delete_prospect"] == 10
    assert calls["request_token"] == 1, "one token for the whole run"
    if method == "form_handler":
        assert calls["query_prospects"] >= 10, "no ids from a handler: found by email first"
    assert not [c for c in rig.store.calls(PARDOT_ACCOUNT) if c["error_class"]]

    reading = rig.store.quota_reading(PARDOT_ACCOUNT, "daily")
    assert reading is not None
    assert (reading.vendor, reading.limit) == ("pardot", 25_000)
    assert 0 < reading.used < 100


async def test_latency_matches_the_sandboxes_ground_truth(tmp_path: Path) -> None:
    """Measured latency = the Lead's CreatedDate minus the upsert's acceptance, within the
    second CreatedDate is truncated to (the sandbox keeps the true instants)."""
    rig = make_rig(tmp_path, scenario(), edit=with_pardot(tmp_path, SANDBOX))
    await rig.run_for(300, drain_s=900)
    truth = {r.email: r.created_at for r in rig.world.deleted_crm.values()}
    rows = [r for r in probes(rig.store, PARDOT_INTEGRATION) if r["outcome"] == "ok"]
    assert rows
    for row in rows:
        true_latency = (truth[row["email"]] - from_db_time(row["accepted_at"])).total_seconds()
        assert abs(row["latency_s"] - true_latency) <= 1.0


async def test_unassigned_prospects_are_lost_and_still_cleaned_at_the_source(
    tmp_path: Path,
) -> None:
    """No assignment rule: the connector creates no Lead, so probes end ``lost`` at the
    timeout, and their prospects are deleted all the same."""
    rig = make_rig(tmp_path, scenario(assign_on_create=False), edit=with_pardot(tmp_path, SANDBOX))
    await rig.run_for(180, drain_s=3 * 3600)
    rows = probes(rig.store, PARDOT_INTEGRATION)
    assert rows and {row["outcome"] for row in rows} == {"lost"}
    assert {row["error_class"] for row in rows} == {"sync_lost"}
    state = await rig.sandbox_state()
    assert state["pardot"]["synthetic"] == 0
