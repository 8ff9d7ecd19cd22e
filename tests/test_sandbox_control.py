"""``/_sandbox``: state counts, true creation times, and live faults over HTTP."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta, timezone
from email.utils import format_datetime

import httpx
from hypothesis import given
from hypothesis import strategies as st
from starlette.applications import Starlette
from starlette.routing import Mount

from syncwatch.clock import VirtualClock
from syncwatch.sandbox import create_app
from syncwatch.sandbox.app import PREFIXES, http_date
from syncwatch.sandbox.faults import FaultBook
from syncwatch.sandbox.scenario import FaultSpec, Scenario
from syncwatch.sandbox.world import World


def seed_records(sandbox: Starlette) -> World:
    world: World = sandbox.state.world
    for email in ("syncwatch+a1@probe.syncwatch.example", "jane@customer.example"):
        contact = world.new_contact({"email": email, "lastname": "X", "company": "Y"}, "form")
        sandbox.state.sync.enqueue(contact)
    return world


async def test_state_counts_synthetic_and_other_records_per_side(
    sandbox: Starlette, client: httpx.AsyncClient, clock: VirtualClock
) -> None:
    """Counts split synthetic (probe domain) from customer records, plus the sync queue."""
    seed_records(sandbox)
    before = (await client.get("/_sandbox/state")).json()
    assert before["hubspot"] == {"records": 2, "synthetic": 1, "archived": 0}
    assert before["salesforce"] == {"records": 0, "synthetic": 0}
    assert before["sync"]["pending"] == 2
    await clock.advance(7200)
    after = (await client.get("/_sandbox/state")).json()
    assert after["salesforce"] == {"records": 2, "synthetic": 1}
    assert after["sync"] == {"pending": 0, "delivered": 2, "dropped": 0, "rejected": 0}
    assert after["now"] == clock.now().isoformat()


async def test_records_expose_true_creation_times(
    sandbox: Starlette, client: httpx.AsyncClient, clock: VirtualClock
) -> None:
    """Each Salesforce record lists its true, sub-second creation instant and its origin."""
    world = seed_records(sandbox)
    await clock.advance(7200)
    body = (await client.get("/_sandbox/records", params={"synthetic": "true"})).json()
    (lead,) = body["salesforce"]
    record = world.crm[lead["id"]]
    assert lead["created_at"] == record.created_at.isoformat()
    assert lead["email"] == "syncwatch+a1@probe.syncwatch.example"
    assert lead["origin_contact_id"] == body["hubspot"][0]["id"]
    everything = (await client.get("/_sandbox/records")).json()
    assert len(everything["hubspot"]) == len(everything["salesforce"]) == 2


async def test_faults_can_be_added_listed_and_cleared_live(
    client: httpx.AsyncClient, clock: VirtualClock
) -> None:
    """POST schedules relative to now; DELETE by id or all; GET lists what is in force."""
    await clock.advance(60)
    created = await client.post(
        "/_sandbox/faults", json={"kind": "outage", "vendor": "hubspot", "for": "5m"}
    )
    assert created.status_code == 201
    fault = created.json()
    assert fault["start"] == clock.now().isoformat()
    assert fault["end"] == (clock.now() + timedelta(minutes=5)).isoformat()
    await client.post("/_sandbox/faults", json={"kind": "drop", "rate": 0.5})
    listed = (await client.get("/_sandbox/faults")).json()["faults"]
    assert [f["kind"] for f in listed] == ["outage", "drop"]
    assert (await client.delete(f"/_sandbox/faults/{fault['id']}")).json() == {"removed": 1}
    assert (await client.delete("/_sandbox/faults/999")).status_code == 404
    assert (await client.delete("/_sandbox/faults")).json() == {"removed": 1}
    assert (await client.get("/_sandbox/faults")).json() == {"faults": []}


async def test_bad_fault_requests_say_what_is_wrong(client: httpx.AsyncClient) -> None:
    """Invalid JSON, unknown keys and missing vendors are refused with the key and reason."""
    garbage = await client.post("/_sandbox/faults", content=b"{not json")
    assert garbage.status_code == 400
    unknown = await client.post("/_sandbox/faults", json={"kind": "outage", "vendr": "x"})
    assert unknown.status_code == 422
    assert "body: vendr: unknown key" in unknown.json()["errors"]
    vendorless = await client.post("/_sandbox/faults", json={"kind": "outage"})
    assert vendorless.json()["errors"] == [
        "body: (top level): fault kind 'outage' needs a vendor: hubspot or salesforce"
    ]
    bad_rate = await client.post("/_sandbox/faults", json={"kind": "drop", "rate": 2})
    assert bad_rate.json()["errors"] == ["body: rate: must be less than or equal to 1"]


async def test_every_response_carries_a_date_header_from_the_sandbox_clock(
    client: httpx.AsyncClient, clock: VirtualClock
) -> None:
    """Real vendors send ``Date`` (whole seconds); clients estimate clock offset from it."""
    await clock.advance(90.7)
    response = await client.get("/_sandbox/state")
    assert response.headers["date"] == "Mon, 05 Oct 2026 09:01:30 GMT"
    assert len(response.headers.get_list("date")) == 1


async def test_the_date_header_follows_the_clock_second_by_second(
    client: httpx.AsyncClient, clock: VirtualClock
) -> None:
    """Within a second the header stays; past a second boundary it moves, never lagging."""
    dates = []
    for step in (0.2, 0.3, 0.4, 0.2, 1.0, 59.0):
        await clock.advance(step)
        dates.append((await client.get("/_sandbox/faults")).headers["date"])
    assert dates == [
        "Mon, 05 Oct 2026 09:00:00 GMT",
        "Mon, 05 Oct 2026 09:00:00 GMT",
        "Mon, 05 Oct 2026 09:00:00 GMT",
        "Mon, 05 Oct 2026 09:00:01 GMT",
        "Mon, 05 Oct 2026 09:00:02 GMT",
        "Mon, 05 Oct 2026 09:01:01 GMT",
    ]


@given(
    st.datetimes(  # hypothesis takes naive bounds and adds the zone itself
        min_value=datetime(1000, 1, 1),  # noqa: DTZ001
        max_value=datetime(9999, 12, 30),  # noqa: DTZ001
        timezones=st.sampled_from(
            [UTC, timezone(timedelta(hours=-5)), timezone(timedelta(hours=9))]
        ),
    )
)
def test_the_date_header_is_written_as_the_email_module_writes_it(moment: datetime) -> None:
    """``http_date`` spells out what ``format_datetime(usegmt=True)`` writes, in any zone."""
    assert http_date(moment) == format_datetime(moment.astimezone(UTC), usegmt=True)


def test_active_faults_are_found_in_id_order_after_live_changes() -> None:
    """``fire`` takes the first active fault, so ``active`` keeps id order through clears and
    additions (and finds nothing, quickly, in a book with no fault)."""
    book = FaultBook(random.Random(0))
    now = datetime(2026, 10, 5, 9, 0, tzinfo=UTC)
    assert book.active("validation", "hubspot", now) == []
    first, second, third = (
        book.schedule(FaultSpec(kind="validation", vendor=vendor, field=field), now)
        for vendor, field in (("hubspot", "a"), (None, "b"), ("hubspot", "c"))
    )
    assert book.active("validation", "hubspot", now) == [first, second, third]
    book.clear(first.id)
    fourth = book.schedule(FaultSpec(kind="validation", vendor="hubspot", field="d"), now)
    assert book.active("validation", "hubspot", now) == [second, third, fourth]
    assert book.active("validation", "marketo", now) == [second]
    assert book.active("outage", "hubspot", now) == []
    assert book.fire("validation", "hubspot", now) == second


def test_every_mounted_prefix_is_listed_for_the_sandbox_command() -> None:
    """`syncwatch sandbox` prints PREFIXES; it names exactly what the app mounts."""
    app = create_app(Scenario())
    mounted = {route.path for route in app.routes if isinstance(route, Mount)}
    assert mounted == {f"/{prefix}" for prefix, _ in PREFIXES}
