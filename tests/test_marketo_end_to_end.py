"""Marketo → Salesforce end to end: the real daemon, the in-process sandbox, a virtual clock.

The demo config gains a Marketo account and a Marketo → Salesforce integration (the edit a
``config/demo.yaml`` with two vendors would carry); its probes go through Sync Leads (or Push
Lead), Marketo's native sync makes Salesforce Leads, the daemon finds them with the same batched
SOQL as the HubSpot probes, measures latency, reads Marketo's usage report for quota, and cleans
both sides.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from daemon_support import SANDBOX, make_rig
from marketo_support import MARKETO_ACCOUNT, MARKETO_INTEGRATION, with_marketo

from syncwatch.sandbox.scenario import LatencySpec, MarketoSpec, Scenario
from syncwatch.store import Store, from_db_time

HUBSPOT_INTEGRATION = "hubspot-to-salesforce"


def scenario() -> Scenario:
    """Marketo's sync a little faster than the 5-minute objective's edge, so every probe is ok."""
    return Scenario(seed=5, marketo=MarketoSpec(sync_latency=LatencySpec(median=40, p95=120)))


def probes(store: Store, integration: str) -> list[dict[str, Any]]:
    rows = store.db.query("SELECT * FROM probes WHERE integration = ?", [integration])
    return list(rows)


@pytest.mark.parametrize("method", ["leads", "push"])
async def test_marketo_probes_arrive_in_salesforce_are_measured_and_cleaned(
    tmp_path: Path, method: str
) -> None:
    """Ten virtual minutes: every Marketo probe ok with a latency, quota read, nothing left."""
    rig = make_rig(tmp_path, scenario(), edit=with_marketo(tmp_path, SANDBOX, method))
    daemon = rig.daemon()
    assert daemon.adapters.daily_windows[MARKETO_ACCOUNT] == "daily"
    await rig.run_for(600, drain_s=900, daemon=daemon)

    rows = probes(rig.store, MARKETO_INTEGRATION)
    assert len(rows) == 10
    assert {row["outcome"] for row in rows} == {"ok"}
    assert all(0 < row["latency_s"] < 300 for row in rows)
    assert {row["state"] for row in rows} == {"cleaned"}
    assert all(row["source_ref"] and row["source_ref"].isdigit() for row in rows)
    hubspot = Counter(row["outcome"] for row in probes(rig.store, HUBSPOT_INTEGRATION))
    assert hubspot == {"ok": 12}, "the demo's own integration is untouched"

    state = await rig.sandbox_state()
    assert [state[side]["synthetic"] for side in ("hubspot", "marketo", "salesforce")] == [0, 0, 0]
    assert state["sync"]["pending"] == 0

    reading = rig.store.quota_reading(MARKETO_ACCOUNT, "daily")
    assert reading is not None
    assert (reading.vendor, reading.limit) == ("marketo", 50_000)
    assert 0 < reading.used < 100
    calls = Counter(call["operation"] for call in rig.store.calls(MARKETO_ACCOUNT))
    inject = "push_lead" if method == "push" else "sync_lead"
    assert calls[inject] == 10
    assert calls["request_token"] == 1, "one token for the whole run"
    assert calls["daily_usage"] == 1, "usage read at most every 15 minutes"
    assert 1 <= calls["delete_leads"] <= 3, "deletes are batched"
    assert sum(calls.values()) / len(rows) < 2
    assert not [c for c in rig.store.calls(MARKETO_ACCOUNT) if c["error_class"]]


async def test_latency_matches_the_sandboxes_ground_truth(tmp_path: Path) -> None:
    """Measured latency = Salesforce's CreatedDate minus Marketo's acceptance, within the second
    CreatedDate is truncated to (the sandbox keeps the true instants)."""
    rig = make_rig(tmp_path, scenario(), edit=with_marketo(tmp_path, SANDBOX))
    await rig.run_for(300, drain_s=900)
    world = rig.world
    truth = {r.email: r.created_at for r in world.deleted_crm.values()}
    rows = [r for r in probes(rig.store, MARKETO_INTEGRATION) if r["outcome"] == "ok"]
    assert rows
    for row in rows:
        true_latency = (truth[row["email"]] - from_db_time(row["accepted_at"])).total_seconds()
        assert abs(row["latency_s"] - true_latency) <= 1.0
