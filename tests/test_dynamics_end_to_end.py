"""HubSpot → Dynamics 365 and Marketo → Dynamics 365 end to end: the real daemon, the in-process
sandbox, a virtual clock.

The scenario points both pretend connectors at the sandbox's Dataverse (``sync.destination``,
``marketo.sync_to``); the config has a Dynamics account and both pairs on its ``lead`` object, so
one batched ``$filter`` per tick covers the probes of both. Each probe is injected at its source,
found by ``emailaddress1``, measured from ``createdon``, verified, and deleted on both sides.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
from daemon_support import SANDBOX, Rig, make_rig
from dynamics_support import (
    DYNAMICS_ACCOUNT,
    HUBSPOT_PAIR,
    MARKETO_PAIR,
    dynamics_scenario,
    with_dynamics,
)

from syncwatch.store import Store, from_db_time

PAIRS = (HUBSPOT_PAIR, MARKETO_PAIR)


def probes(store: Store, integration: str) -> list[dict[str, Any]]:
    rows = store.db.query("SELECT * FROM probes WHERE integration = ?", [integration])
    return list(rows)


class Queries(httpx.AsyncBaseTransport):
    """The sandbox transport, remembering each Dataverse query's ``$filter``."""

    def __init__(self, inner: httpx.AsyncBaseTransport) -> None:
        self.inner = inner
        self.filters: list[str] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        url = urlsplit(str(request.url))
        if request.method == "GET" and url.path.endswith("/leads"):
            self.filters += parse_qs(url.query).get("$filter", [])
        return await self.inner.handle_async_request(request)


def rig(tmp_path: Path) -> Rig:
    return make_rig(tmp_path, dynamics_scenario(), edit=with_dynamics(tmp_path, SANDBOX))


async def test_both_pairs_probe_dynamics_measure_clean_up_and_read_quota(tmp_path: Path) -> None:
    """Ten virtual minutes: every probe of both pairs ok with a latency, nothing left anywhere,
    the service protection windows recorded for the Dynamics account."""
    sim = rig(tmp_path)
    daemon = sim.daemon()
    assert daemon.adapters.daily_windows[DYNAMICS_ACCOUNT] == "daily"
    await sim.run_for(600, drain_s=900, daemon=daemon)

    for pair in PAIRS:
        rows = probes(sim.store, pair)
        assert len(rows) == 10, pair
        assert {row["outcome"] for row in rows} == {"ok"}, pair
        assert all(0 < row["latency_s"] < 300 for row in rows), pair
        assert {row["state"] for row in rows} == {"cleaned"}, pair

    state = await sim.sandbox_state()
    assert [state[side]["synthetic"] for side in ("hubspot", "marketo", "dynamics")] == [0, 0, 0]
    assert state["salesforce"]["records"] == 0, "nothing went to Salesforce"
    assert state["sync"]["pending"] == 0
    assert state["dynamics"]["records"] == 0

    for window in ("burst", "time"):
        reading = sim.store.quota_reading(DYNAMICS_ACCOUNT, window)
        assert reading is not None, window
        assert reading.vendor == "dynamics"
        assert 0 < reading.used < reading.limit
    assert sim.store.quota_reading(DYNAMICS_ACCOUNT, "daily") is None, "never reported"
    calls = Counter(call["operation"] for call in sim.store.calls(DYNAMICS_ACCOUNT))
    assert calls["request_token"] == 1, "one token for the whole run"
    assert calls["delete_record"] == 20
    assert calls["query_records"] < 60, "one query per tick for both pairs"
    assert not [c for c in sim.store.calls(DYNAMICS_ACCOUNT) if c["error_class"]]


async def test_one_query_covers_the_probes_of_both_pairs(tmp_path: Path) -> None:
    """The two pairs share an account and object, so one ``$filter`` names probes of both."""
    sim = rig(tmp_path)
    queries = Queries(sim.transport())
    sim.transport = lambda: queries  # type: ignore[method-assign]
    await sim.run_for(300, drain_s=900)
    emails = {pair: {row["email"] for row in probes(sim.store, pair)} for pair in PAIRS}
    assert all(emails.values())
    mixed = [
        text
        for text in queries.filters
        if any(e in text for e in emails[HUBSPOT_PAIR])
        and any(e in text for e in emails[MARKETO_PAIR])
    ]
    assert mixed, "some tick looked for both pairs' probes in one query"
    finds = [text for text in queries.filters if not text.startswith("endswith(")]
    assert all(text.count(" eq ") == text.count(" or ") + 1 for text in finds)


async def test_latency_matches_the_sandboxes_ground_truth(tmp_path: Path) -> None:
    """Measured latency = ``createdon`` minus the source's acceptance, within the second
    ``createdon`` is shown in (the sandbox keeps the true instants)."""
    sim = rig(tmp_path)
    await sim.run_for(300, drain_s=900)
    truth = {r.email: r.created_at for r in sim.world.deleted_dataverse.values()}
    rows = [r for pair in PAIRS for r in probes(sim.store, pair) if r["outcome"] == "ok"]
    assert len(rows) >= 8
    for row in rows:
        true_latency = (truth[row["email"]] - from_db_time(row["accepted_at"])).total_seconds()
        assert abs(row["latency_s"] - true_latency) <= 1.0
