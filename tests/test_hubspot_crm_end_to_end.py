"""Marketo → HubSpot end to end: the real daemon, the in-process sandbox, a virtual clock.

The scenario points Marketo's (middleware) connector at the sandbox's HubSpot (``marketo.sync_to:
hubspot``); the config has the demo's HubSpot account as the destination of a Marketo → HubSpot
pair. Each probe is created in Marketo, found by one ``email IN`` search, measured from
``createdate`` (milliseconds), verified with its owner, and deleted on both sides.
"""

from __future__ import annotations

from collections import Counter
from datetime import timedelta
from pathlib import Path
from typing import Any

from daemon_support import SANDBOX, Rig, make_rig
from hubspot_crm_support import (
    DEMO_PAIR,
    HUBSPOT_ACCOUNT,
    MARKETO_ACCOUNT,
    MARKETO_PAIR,
    hubspot_scenario,
    with_hubspot_destination,
)

from syncwatch.store import Store, from_db_time


def probes(store: Store, integration: str) -> list[dict[str, Any]]:
    rows = store.db.query("SELECT * FROM probes WHERE integration = ?", [integration])
    return list(rows)


def rig(tmp_path: Path, *, keep_demo: bool = False) -> Rig:
    edit = with_hubspot_destination(tmp_path, SANDBOX, keep_demo=keep_demo)
    return make_rig(tmp_path, hubspot_scenario(), edit=edit)


async def test_marketo_probes_arrive_in_hubspot_are_measured_and_cleaned(tmp_path: Path) -> None:
    """Ten virtual minutes: every probe ok with a latency, owner checked, nothing left in Marketo
    or HubSpot, and the daily quota read from HubSpot's headers (not from search answers)."""
    sim = rig(tmp_path)
    daemon = sim.daemon()
    assert daemon.adapters.daily_windows[HUBSPOT_ACCOUNT] == "daily"
    await sim.run_for(600, drain_s=900, daemon=daemon)

    rows = probes(sim.store, MARKETO_PAIR)
    assert len(rows) == 10
    assert {row["outcome"] for row in rows} == {"ok"}, [row["detail"] for row in rows]
    assert all(0 < row["latency_s"] < 300 for row in rows)
    assert {row["latency_method"] for row in rows} == {"created_date"}
    assert {row["state"] for row in rows} == {"cleaned"}
    assert all(row["destination_ref"].isdigit() for row in rows)

    state = await sim.sandbox_state()
    assert [state[side]["synthetic"] for side in ("marketo", "hubspot")] == [0, 0]
    assert state["hubspot"]["archived"] == 10
    assert state["salesforce"]["records"] == 0, "nothing went to Salesforce"
    assert state["sync"] == {"pending": 0, "delivered": 10, "dropped": 0, "rejected": 0}

    reading = sim.store.quota_reading(HUBSPOT_ACCOUNT, "daily")
    assert reading is not None
    assert (reading.vendor, reading.limit) == ("hubspot", 1_000_000)
    assert 0 < reading.used < 100
    calls = list(sim.store.calls(HUBSPOT_ACCOUNT))
    operations = Counter(call["operation"] for call in calls)
    assert set(operations) == {"search_contacts", "archive_contacts"}
    assert 1 <= operations["archive_contacts"] <= 3, "archives are batched"
    assert operations["search_contacts"] < 40, "one search per tick covers every probe"
    searches = [call for call in calls if call["operation"] == "search_contacts"]
    assert all(call["quota_window"] is None for call in searches), "search has no rate headers"
    assert not [call for call in calls if call["error_class"]]
    assert sim.store.quota_reading(MARKETO_ACCOUNT, "daily") is not None


async def test_latency_is_createdate_to_the_millisecond(tmp_path: Path) -> None:
    """The stored creation time is the sandbox's true instant cut to HubSpot's milliseconds, and
    the latency is that minus Marketo's acceptance (within the clock-offset estimate)."""
    sim = rig(tmp_path)
    await sim.run_for(300, drain_s=900)
    truth = {c.email: c.created_at for c in sim.world.contacts.values()}
    rows = [r for r in probes(sim.store, MARKETO_PAIR) if r["outcome"] == "ok"]
    assert len(rows) >= 4
    for row in rows:
        true_created = truth[row["email"]]
        stored = from_db_time(row["destination_created_at"])
        assert stored == true_created.replace(microsecond=true_created.microsecond // 1000 * 1000)
        assert true_created - stored < timedelta(milliseconds=1)
        true_latency = (true_created - from_db_time(row["accepted_at"])).total_seconds()
        assert abs(row["latency_s"] - true_latency) <= 0.5


async def test_one_account_is_source_and_destination_at_once(tmp_path: Path) -> None:
    """The demo's HubSpot account keeps feeding Salesforce while it receives Marketo's probes:
    one client, one search throttle, both pairs ok and nothing synthetic left anywhere."""
    sim = rig(tmp_path, keep_demo=True)
    await sim.run_for(600, drain_s=900)
    for name in (MARKETO_PAIR, DEMO_PAIR):
        outcomes = Counter(row["outcome"] for row in probes(sim.store, name))
        assert set(outcomes) == {"ok"} and sum(outcomes.values()) >= 10, (name, outcomes)
    state = await sim.sandbox_state()
    assert [state[s]["synthetic"] for s in ("marketo", "hubspot", "salesforce")] == [0, 0, 0]
    origins = Counter(c.origin.split(":")[0] for c in sim.world.contacts.values())
    assert origins["marketo"] == 10 and origins["form"] >= 10
    assert len(sim.world.deleted_crm) == origins["form"], "only HubSpot's own contacts synced"
