"""What the CLI's one-shot commands run: ``probe_once``, ``sweep_once``, and the percentile rule.

Driven on the virtual clock against the in-process sandbox, like the daemon tests.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest
import structlog
from daemon_support import SANDBOX, Rig, make_rig

from syncwatch.errors import UsageError
from syncwatch.runner import nearest_rank, probe_once, summarise_latency, sweep_once
from syncwatch.sandbox.scenario import FaultSpec, Scenario

T = TypeVar("T")
INTEGRATION = "hubspot-to-salesforce"


@pytest.fixture(autouse=True)
def default_logging() -> None:
    """structlog as shipped: a CLI test may have left it printing to a stream since closed."""
    structlog.reset_defaults()


async def drive(rig: Rig, work: Coroutine[Any, Any, T], step_s: float = 30.0) -> T:
    """Run ``work`` to its end, moving the virtual clock on while it sleeps."""
    task = asyncio.ensure_future(work)
    while not task.done():
        await rig.clock.advance(step_s)
    return task.result()


def rows(rig: Rig) -> list[dict[str, Any]]:
    return list(rig.store.db.query("SELECT * FROM probes"))


# -- probe_once --------------------------------------------------------------------------------


async def test_probe_once_follows_one_probe_to_ok_and_cleans_up(tmp_path: Path) -> None:
    """One probe on the sandbox: ok, with the latency the store holds, and nothing left over."""
    rig = make_rig(tmp_path)
    result = await drive(
        rig,
        probe_once(rig.config, rig.store, rig.clock, INTEGRATION, None, transport=rig.transport()),
    )

    assert result.outcome == "ok" and result.error_class is None
    assert result.integration == INTEGRATION and result.template == "demo-request"
    [row] = rows(rig)
    assert row["probe_id"] == result.probe_id
    assert result.latency_s is not None and result.latency_s == pytest.approx(row["latency_s"])
    assert 0 < result.latency_s < 300
    assert row["state"] == "cleaned" and row["finished_at"] is not None
    state = await rig.sandbox_state()
    assert state["hubspot"]["synthetic"] == state["salesforce"]["synthetic"] == 0
    assert state["hubspot"]["archived"] == 1


async def test_probe_once_runs_the_named_template(tmp_path: Path) -> None:
    """Naming a template runs that one, not the integration's first."""
    rig = make_rig(tmp_path)
    result = await drive(
        rig,
        probe_once(
            rig.config,
            rig.store,
            rig.clock,
            INTEGRATION,
            "content-download",
            transport=rig.transport(),
        ),
    )
    assert (result.template, result.outcome) == ("content-download", "ok")


@pytest.mark.parametrize(
    ("integration", "template", "named"),
    [
        ("nope", None, ["'nope'", INTEGRATION]),
        (INTEGRATION, "webinar", ["'webinar'", "demo-request", "content-download"]),
    ],
    ids=["integration", "template"],
)
async def test_probe_once_names_what_is_configured_when_asked_for_the_unknown(
    tmp_path: Path, integration: str, template: str | None, named: list[str]
) -> None:
    """An unknown integration or template: an error listing the known ones, nothing injected."""
    rig = make_rig(tmp_path)
    with pytest.raises(UsageError) as raised:
        await probe_once(
            rig.config, rig.store, rig.clock, integration, template, transport=rig.transport()
        )
    for name in named:
        assert name in str(raised.value)
    assert rows(rig) == []
    assert (await rig.sandbox_state())["hubspot"]["records"] == 0


async def test_probe_once_gives_up_waiting_but_leaves_the_probe_for_the_daemon(
    tmp_path: Path,
) -> None:
    """``wait_s`` shorter than the sync: no outcome yet, the row stays unfinished and in flight."""
    rig = make_rig(tmp_path)
    result = await drive(
        rig,
        probe_once(
            rig.config,
            rig.store,
            rig.clock,
            INTEGRATION,
            None,
            wait_s=10,
            transport=rig.transport(),
        ),
        step_s=1.0,
    )

    assert result.outcome is None and result.latency_s is None
    assert rig.clock.monotonic() <= 11
    [row] = rows(rig)
    assert row["probe_id"] == result.probe_id
    assert row["state"] == "in_flight" and row["outcome"] is None
    assert row["finished_at"] is None and row["accepted_at"] is not None
    assert (await rig.sandbox_state())["hubspot"]["synthetic"] == 1, "deleted while in flight"


async def test_probe_once_reports_a_dropped_lead_lost_at_the_timeout(tmp_path: Path) -> None:
    """The connector drops the lead: after the integration's timeout the probe is `lost`."""
    rig = make_rig(tmp_path, Scenario(seed=5, faults=[FaultSpec(kind="drop")]))
    result = await drive(
        rig,
        probe_once(rig.config, rig.store, rig.clock, INTEGRATION, None, transport=rig.transport()),
        step_s=300.0,
    )

    assert (result.outcome, result.error_class) == ("lost", "sync_lost")
    timeout = rig.config.integrations[0].timeout
    assert timeout <= rig.clock.monotonic() <= timeout + 600
    [row] = rows(rig)
    assert row["state"] == "cleaned" and row["outcome"] == "lost"
    assert (await rig.sandbox_state())["hubspot"]["synthetic"] == 0


# -- sweep_once --------------------------------------------------------------------------------


async def create_contact(rig: Rig, email: str) -> None:
    async with httpx.AsyncClient(transport=rig.transport(), base_url=SANDBOX) as client:
        response = await client.post(
            "/hubspot/crm/v3/objects/contacts",
            headers={"Authorization": "Bearer someone-elses-token"},
            json={"properties": {"email": email, "lastname": "Left", "company": "Over"}},
        )
        assert response.status_code == 201, response.text


async def test_sweep_once_counts_leftovers_on_a_dry_run_then_deletes_them(
    tmp_path: Path,
) -> None:
    """Synthetic leads older than the timeout: a dry run counts them, a real run deletes them."""
    rig = make_rig(tmp_path)
    domain = rig.config.probe_domain
    for probe_id in ("leftover1abcdefg", "leftover2abcdefg"):
        await create_contact(rig, f"syncwatch+{probe_id}@{domain}")
    await create_contact(rig, "jane@customer.example")
    await rig.clock.advance(3 * 3600)  # synced long ago, and past the 2 h timeout
    await create_contact(rig, f"syncwatch+recent0abcdefgh@{domain}")
    await rig.clock.advance(900)  # synced, but younger than the timeout
    before = await rig.sandbox_state()
    assert before["hubspot"]["synthetic"] == before["salesforce"]["synthetic"] == 3

    dry = await sweep_once(
        rig.config, rig.store, rig.clock, dry_run=True, transport=rig.transport()
    )
    assert (dry.source, dry.destination, dry.errors) == (2, 2, [])
    assert await rig.sandbox_state() == before

    real = await sweep_once(
        rig.config, rig.store, rig.clock, dry_run=False, transport=rig.transport()
    )
    assert (real.source, real.destination, real.errors) == (2, 2, [])
    after = await rig.sandbox_state()
    assert after["hubspot"]["synthetic"] == after["salesforce"]["synthetic"] == 1
    assert after["hubspot"]["records"] == after["salesforce"]["records"] == 2, "not ours"


# -- nearest rank ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("values", "percentile", "expected"),
    [
        ([], 50, None),
        ([7.0], 50, 7.0),
        ([7.0], 95, 7.0),
        ([3.0, 1.0, 2.0], 50, 2.0),
        ([1.0, 2.0, 3.0, 4.0], 50, 2.0),  # ⌈2⌉ = 2nd, not the interpolated 2.5
        ([1.0, 2.0, 3.0, 4.0], 51, 3.0),
        ([1.0, 2.0, 3.0, 4.0], 100, 4.0),
        ([1.0, 2.0, 3.0, 4.0], 0, 1.0),
        ([float(n) for n in range(1, 21)], 95, 19.0),
        ([float(n) for n in range(1, 21)], 96, 20.0),
        ([float(n) for n in range(1, 101)], 7, 7.0),  # 7/100·100 is 7.000000000000001 in floats
        ([float(n) for n in range(1, 51)], 14, 7.0),
        ([float(n) for n in range(1, 26)], 28, 7.0),
    ],
)
def test_nearest_rank_is_the_ceil_p_n_th_smallest(
    values: list[float], percentile: float, expected: float | None
) -> None:
    """Nearest rank: the ⌈p/100·n⌉-th smallest value, exact for whole-number percentiles."""
    assert nearest_rank(values, percentile) == expected


def test_summarise_latency_gives_count_median_and_p95() -> None:
    """The demo's summary line: probes, p50 and p95 by nearest rank."""
    summary = summarise_latency([float(n) for n in range(20, 0, -1)])
    assert (summary.probes, summary.p50_s, summary.p95_s) == (20, 10.0, 19.0)
    assert summarise_latency([]) == type(summary)(0, None, None)
