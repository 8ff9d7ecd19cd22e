"""Eloqua → Salesforce end to end: the real daemon, the in-process sandbox, a virtual clock.

The demo config gains an Eloqua account and an Eloqua → Salesforce integration; the daemon
discovers the pod at the sandbox's ``/eloqua-login/id``, creates probe contacts there, the
pretend Salesforce Integration app's "Create Lead" action makes Salesforce Leads, the daemon
finds them with the same batched SOQL as the HubSpot probes, measures latency, and cleans both
sides. Eloqua reports no quota: the account's figures are the monitor's own calls.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

from daemon_support import SANDBOX, make_rig
from eloqua_support import ELOQUA_ACCOUNT, ELOQUA_INTEGRATION, with_eloqua

from syncwatch.sandbox.scenario import EloquaSpec, FaultSpec, LatencySpec, Scenario
from syncwatch.store import Store, from_db_time

HUBSPOT_INTEGRATION = "hubspot-to-salesforce"


def scenario(**faults: Any) -> Scenario:
    """Eloqua's integration well inside the 10-minute objective, so every probe is ok."""
    spec = EloquaSpec(sync_latency=LatencySpec(median=60, p95=240))
    listed = [FaultSpec.model_validate(faults)] if faults else []
    return Scenario(seed=5, eloqua=spec, faults=listed)


def probes(store: Store, integration: str) -> list[dict[str, Any]]:
    rows = store.db.query("SELECT * FROM probes WHERE integration = ?", [integration])
    return list(rows)


async def test_eloqua_probes_arrive_in_salesforce_are_measured_and_cleaned(tmp_path: Path) -> None:
    """Ten virtual minutes: every Eloqua probe ok with a latency, one discovery, nothing left."""
    rig = make_rig(tmp_path, scenario(), edit=with_eloqua(tmp_path, SANDBOX))
    daemon = rig.daemon()
    assert daemon.adapters.daily_windows[ELOQUA_ACCOUNT] == "daily"
    await rig.run_for(600, drain_s=900, daemon=daemon)

    rows = probes(rig.store, ELOQUA_INTEGRATION)
    assert len(rows) == 10
    assert {row["outcome"] for row in rows} == {"ok"}
    assert all(0 < row["latency_s"] < 600 for row in rows)
    assert {row["state"] for row in rows} == {"cleaned"}
    assert all(row["source_ref"] and row["source_ref"].isdigit() for row in rows)
    hubspot = Counter(row["outcome"] for row in probes(rig.store, HUBSPOT_INTEGRATION))
    assert hubspot == {"ok": 12}, "the demo's own integration is untouched"

    state = await rig.sandbox_state()
    assert [state[side]["synthetic"] for side in ("eloqua", "salesforce")] == [0, 0]
    assert state["sync"]["pending"] == 0

    assert rig.store.quota_reading(ELOQUA_ACCOUNT, "daily") is None, "Eloqua reports no quota"
    calls = Counter(call["operation"] for call in rig.store.calls(ELOQUA_ACCOUNT))
    assert calls["discover_base_url"] == 1, "the pod is discovered once and kept"
    assert (calls["create_contact"], calls["delete_contact"]) == (10, 10)
    assert calls["search_contacts"] >= 1, "the start-up sweep"
    assert sum(calls.values()) / len(rows) < 2.5
    assert not [c for c in rig.store.calls(ELOQUA_ACCOUNT) if c["error_class"]]


async def test_latency_matches_the_sandboxes_ground_truth(tmp_path: Path) -> None:
    """Measured latency = Salesforce's CreatedDate minus Eloqua's acceptance, within the second
    CreatedDate is truncated to (the sandbox keeps the true instants)."""
    rig = make_rig(tmp_path, scenario(), edit=with_eloqua(tmp_path, SANDBOX))
    await rig.run_for(300, drain_s=900)
    truth = {r.email: r.created_at for r in rig.world.deleted_crm.values()}
    rows = [r for r in probes(rig.store, ELOQUA_INTEGRATION) if r["outcome"] == "ok"]
    assert rows
    for row in rows:
        true_latency = (truth[row["email"]] - from_db_time(row["accepted_at"])).total_seconds()
        assert abs(row["latency_s"] - true_latency) <= 1.0


async def test_an_eloqua_outage_rejects_probes_as_the_vendors_and_leaves_nothing(
    tmp_path: Path,
) -> None:
    """Three minutes of 503 from the pod: those probes are ``rejected`` with ``vendor_5xx``
    (a create is never resent), the others are ok, and clean-up still empties both sides."""
    outage = {"kind": "outage", "vendor": "eloqua", "after": "150s", "for": "3m"}
    rig = make_rig(tmp_path, scenario(**outage), edit=with_eloqua(tmp_path, SANDBOX))
    await rig.run_for(600, drain_s=900)

    outcomes = Counter(
        (row["outcome"], row["error_class"]) for row in probes(rig.store, ELOQUA_INTEGRATION)
    )
    assert outcomes[("rejected", "vendor_5xx")] >= 2
    assert outcomes[("ok", None)] >= 5
    assert set(outcomes) == {("rejected", "vendor_5xx"), ("ok", None)}
    state = await rig.sandbox_state()
    assert [state[side]["synthetic"] for side in ("eloqua", "salesforce")] == [0, 0]
