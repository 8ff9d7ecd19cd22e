"""Monthly claims from the store: the daemon probes the sandbox through a HubSpot outage on a
virtual clock, then each claim is checked against ``sla.evaluate`` on its exported evidence file
and against the store's own rows; the renderings; month-to-date figures and the daemon's gauges."""

from __future__ import annotations

import asyncio
import csv
import io
import json
import random
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from fractions import Fraction
from pathlib import Path
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

import pytest
from daemon_support import UTC_CONTRACT, Rig, build_config, demo_raw, make_rig
from prometheus_client.parser import text_string_to_metric_families

import syncwatch.daemon as daemon_module
from syncwatch.config import Config, Contract
from syncwatch.daemon import SLA_REFRESH_S, Daemon
from syncwatch.errors import ATTRIBUTION
from syncwatch.events import ApiCall
from syncwatch.evidence import (
    api_call_event,
    event_lines,
    evidence_window,
    probe_event,
    read_events,
    stored_events,
)
from syncwatch.metrics import Metrics
from syncwatch.month_to_date import MonthToDate, month_to_date
from syncwatch.reports import Claim, build_claims, render_csv, render_html, render_json
from syncwatch.sandbox.scenario import FaultSpec, Scenario
from syncwatch.sla import CallEvent, Event, ProbeEvent, evaluate, month_period
from syncwatch.sla.intervals import bucket_events
from syncwatch.store import from_db_time

MONTH = "2026-10"
START = datetime(2026, 10, 5, 9, 0, tzinfo=UTC)  # the virtual clock's default start
OUTAGE_AT, OUTAGE_FOR = 3600.0, 1800.0
RUN_S = 3 * 3600.0
INTEGRATION = "hubspot-to-salesforce"
DESIGN_KEYS = {
    "contract", "month", "timezone", "period_start", "period_end", "period_minutes",
    "excluded_minutes", "unknown_minutes", "eligible_minutes", "downtime_minutes",
    "uptime_percent", "objective_percent", "met", "credit_percent", "credit_amount", "currency",
    "consecutive_misses", "termination_right", "claim_deadline", "latency", "incidents",
}  # fmt: skip
SECOND_CONTRACT = {**UTC_CONTRACT, "claim_window_days": 15}

T = TypeVar("T")


def inline_to_thread(monkeypatch: pytest.MonkeyPatch) -> None:
    """Run the daemon's month-to-date computation on the loop: virtual time cannot wait for a
    real thread, so the gauges would otherwise be set whenever the thread happened to finish."""

    async def to_thread(function: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        return function(*args, **kwargs)

    monkeypatch.setattr(daemon_module.asyncio, "to_thread", to_thread)


def gauges(metrics: Metrics) -> dict[tuple[str, str], float]:
    """The contract gauges on the metrics page, as (metric, contract) → value."""
    page = metrics.render()[0].decode()
    return {
        (sample.name, sample.labels["contract"]): sample.value
        for family in text_string_to_metric_families(page)
        for sample in family.samples
        if sample.name in ("syncwatch_uptime_ratio", "syncwatch_service_credit_ratio")
    }


@dataclass
class Outage:
    """A daemon run through a 30-minute HubSpot outage, with what was seen on the way."""

    rig: Rig
    daemon: Daemon
    final_gauges: dict[tuple[str, str], float]

    def claims(self) -> list[Claim]:
        return build_claims(self.rig.config, self.rig.store, MONTH)


@pytest.fixture(scope="module")
def outage(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Outage]:
    """Three virtual hours of the demo config (plus a Salesforce contract in UTC) against a
    sandbox whose HubSpot answers 503 from the first hour for half an hour."""
    tmp = tmp_path_factory.mktemp("outage")
    fault = FaultSpec(kind="outage", vendor="hubspot", after=OUTAGE_AT, duration=OUTAGE_FOR)
    rig = make_rig(
        tmp,
        Scenario(seed=5, faults=[fault]),
        edit=lambda raw: raw["contracts"].append(dict(SECOND_CONTRACT)),
    )
    with pytest.MonkeyPatch.context() as monkeypatch:
        inline_to_thread(monkeypatch)
        daemon = rig.daemon()
        asyncio.run(rig.run_for(RUN_S, drain_s=600.0, daemon=daemon))
    yield Outage(rig, daemon, gauges(daemon.metrics))
    rig.store.close()


# -- the claims ---------------------------------------------------------------------------------


def test_the_outage_made_downtime_and_a_credit(outage: Outage) -> None:
    """The run is a meaningful fixture: the HubSpot contract has an incident during the outage
    and earns a credit; the healthy Salesforce contract has neither."""
    hubspot, salesforce = outage.claims()
    result = hubspot.result
    assert result.contract == "hubspot-demo" and result.downtime_minutes > 0
    assert result.credit_amount > 0 and result.met is False
    outage_start = START + timedelta(seconds=OUTAGE_AT)
    outage_end = outage_start + timedelta(seconds=OUTAGE_FOR)
    [incident] = result.incidents
    assert incident.start <= outage_start + timedelta(minutes=5)
    assert outage_end - timedelta(minutes=5) <= incident.end <= outage_end + timedelta(minutes=10)
    assert incident.dominant_error_class == "vendor_5xx"
    assert salesforce.result.contract == "salesforce-utc"
    assert salesforce.result.downtime_minutes == 0 and salesforce.result.incidents == []
    assert salesforce.result.uptime == 1


def test_claims_agree_with_evaluate_on_the_exported_evidence_file(
    outage: Outage, tmp_path: Path
) -> None:
    """Each claim equals ``sla.evaluate`` of its contract over the evidence file written for the
    month and read back: field by field, and in the JSON result."""
    config, store = outage.rig.config, outage.rig.store
    since, until = evidence_window(config.contracts, MONTH)
    path = tmp_path / "evidence.jsonl"
    with path.open("w", encoding="utf-8") as handle:
        handle.writelines(event_lines(stored_events(store, since, until)))
    events = read_events(path)
    assert events, "the evidence file is empty"
    claims = outage.claims()
    assert [claim.contract.name for claim in claims] == [c.name for c in config.contracts]
    for claim in claims:
        recomputed = evaluate(claim.contract, MONTH, events)
        for name in recomputed.__dataclass_fields__:
            assert getattr(claim.result, name) == getattr(recomputed, name), name
        assert claim.result.to_json() == recomputed.to_json()


def test_claims_carry_api_success_and_peak_quota_from_the_store(outage: Outage) -> None:
    """API calls, success rate (ok over ok + vendor-attributed failures) and the highest daily
    quota reading are the vendor's own rows of the period, recounted here from the store."""
    for claim in outage.claims():
        period = (claim.result.period_start, claim.result.period_end)
        rows = [
            row
            for row in outage.rig.store.calls()
            if row["vendor"] == claim.contract.vendor
            and period[0] <= from_db_time(row["at"]) < period[1]
        ]
        ok = sum(1 for row in rows if row["error_class"] is None)
        vendor = sum(1 for row in rows if ATTRIBUTION.get(row["error_class"] or "") == "vendor")
        assert claim.api_calls == len(rows) > 0
        assert claim.api_success == Fraction(ok, ok + vendor)
        quota = [
            (row["quota_used"], row["quota_limit"])
            for row in rows
            if row["quota_used"] is not None and row["quota_limit"]
        ]
        assert claim.peak_quota == max(quota, key=lambda q: Fraction(*q))
    hubspot = outage.claims()[0]
    assert hubspot.api_success is not None and hubspot.api_success < 1


# -- renderings ---------------------------------------------------------------------------------


def local(moment: datetime, zone: str) -> str:
    return moment.astimezone(ZoneInfo(zone)).strftime("%Y-%m-%d %H:%M %Z")


def test_html_claim_shows_what_a_vendor_manager_sends(outage: Outage) -> None:
    """The HTML holds, per contract, its name, the amount, the claim deadline and every
    incident's local start, end, minutes and cause in one table row."""
    claims = outage.claims()
    html = render_html(claims, MONTH, START, "config/prod.yaml")
    assert html.count('<section class="claim">') == len(claims) == 2
    for claim in claims:
        result = claim.result
        title = {"hubspot": "HubSpot", "salesforce": "Salesforce"}[claim.contract.vendor]
        assert f"<h2>{title}: {claim.contract.name}</h2>" in html
        assert f'<td class="amount">{result.credit_amount} {result.currency}</td>' in html
        assert f"<td>{result.claim_deadline.isoformat()} (inclusive)</td>" in html
        for incident in result.incidents:
            row = (
                f"<tr><td>{local(incident.start, result.timezone)}</td>"
                f"<td>{local(incident.end, result.timezone)}</td>"
                f"<td>{incident.minutes}</td><td>{incident.dominant_error_class}</td>"
            )
            assert row in html
    assert "1800.00 USD" in html  # 50 % of 3600.00: the outage took uptime under 95 %
    assert "2026-11-30 (inclusive)" in html  # hubspot-demo: 30 days after October 31
    assert "2026-11-15 (inclusive)" in html  # salesforce-utc: 15 days
    assert "No downtime was measured in the period." in html
    assert "--config config/prod.yaml --month 2026-10" in html


def test_html_escapes_what_it_is_given(outage: Outage) -> None:
    """Autoescape is on: markup in the config path, or in a contract name that somehow got
    past validation, arrives as text, never as markup."""
    claims = outage.claims()
    hostile = '<script>alert("x")</script>'
    renamed = Claim(
        claims[0].contract.model_copy(update={"name": f"a{hostile}"}),
        claims[0].result,
        claims[0].api_calls,
        claims[0].api_success,
        claims[0].peak_quota,
    )
    html = render_html([renamed], MONTH, START, f"/etc/{hostile}.yaml")
    assert "<script>" not in html
    assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;" in html
    assert html.count("&lt;script&gt;") >= 3  # heading, recompute commands, config path


def test_csv_has_the_documented_header_and_a_row_per_contract(outage: Outage) -> None:
    """CSV: the documented columns in order, then one row per contract whose cells are the
    claim's figures."""
    claims = outage.claims()
    rows = list(csv.reader(io.StringIO(render_csv(claims))))
    assert rows[0] == [
        "contract", "vendor", "month", "timezone", "period_start", "period_end",
        "eligible_minutes", "downtime_minutes", "unknown_minutes", "excluded_minutes",
        "uptime_percent", "objective_percent", "met", "credit_percent", "credit_amount",
        "currency", "claim_deadline", "consecutive_misses", "termination_right", "incidents",
        "mttr_minutes", "api_calls", "api_success_percent",
    ]  # fmt: skip
    assert len(rows) == 1 + len(claims)
    for claim, row in zip(claims, rows[1:], strict=True):
        cells = dict(zip(rows[0], row, strict=True))
        result = claim.result
        assert cells["contract"] == result.contract
        assert cells["vendor"] == claim.contract.vendor
        assert cells["credit_amount"] == str(result.credit_amount)
        assert cells["downtime_minutes"] == str(result.downtime_minutes)
        assert cells["incidents"] == str(len(result.incidents))
        assert cells["claim_deadline"] == result.claim_deadline.isoformat()
        assert float(cells["uptime_percent"]) == result.uptime_percent
        assert cells["api_calls"] == str(claim.api_calls)


def test_json_parses_with_the_design_keys(outage: Outage) -> None:
    """JSON is a list with one object per contract carrying DESIGN §7's keys (money as a
    string) and the claim's context."""
    claims = outage.claims()
    data = json.loads(render_json(claims))
    assert [item["contract"] for item in data] == ["hubspot-demo", "salesforce-utc"]
    for item, claim in zip(data, claims, strict=True):
        assert item.keys() >= DESIGN_KEYS
        assert isinstance(item["credit_amount"], str)
        assert isinstance(item["uptime_percent"], float)
        assert item["credit_amount"] == str(claim.result.credit_amount)
        assert item["vendor"] == claim.contract.vendor
        assert item["api_calls"] == claim.api_calls
    assert data[0]["credit_amount"] == "1800.00"


# -- month to date ------------------------------------------------------------------------------


def contract(**fields: Any) -> Contract:
    return Contract.model_validate(
        {
            "name": "hubspot-demo",
            "vendor": "hubspot",
            "integrations": [INTEGRATION],
            "timezone": "America/New_York",
            "objective_percent": "99.9",
            "credits": [{"below": 99.9, "credit": 10}, {"below": 99.0, "credit": 25}],
            "monthly_fee": "3600.00",
            **fields,
        }
    )


def every_minute(
    since: datetime, until: datetime, down: tuple[datetime, datetime] | None = None
) -> list[Event]:
    """A probe at the start of every minute in [since, until); lost to the vendor in ``down``."""
    events: list[Event] = []
    moment = since
    while moment < until:
        lost = down is not None and down[0] <= moment < down[1]
        outcome, error = ("lost", "vendor_5xx") if lost else ("ok", None)
        events.append(ProbeEvent(INTEGRATION, moment, outcome, error, 30.0))
        moment += timedelta(minutes=1)
    return events


@pytest.fixture
def config_with(tmp_path: Path) -> Callable[..., Config]:
    """The demo config with its contracts replaced."""
    demo = build_config(demo_raw(tmp_path), tmp_path)

    def replace(*contracts: Contract) -> Config:
        return demo.model_copy(update={"contracts": list(contracts)})

    return replace


NOW = datetime(2026, 10, 15, 12, 2, 30, tzinfo=UTC)
PERIOD_START = datetime(2026, 10, 1, 4, tzinfo=UTC)  # midnight in New York


def test_month_to_date_ignores_the_minutes_after_now(config_with: Callable[..., Config]) -> None:
    """With ``unknown: down`` and evidence for every minute so far, the month to date is at 100 %
    and owes nothing, where the whole month's figure would count the future as down."""
    strict = contract(unknown="down")
    events = every_minute(PERIOD_START, NOW)
    assert month_to_date(config_with(strict), events, NOW) == {"hubspot-demo": (1.0, 0.0)}
    whole_month = evaluate(strict, MONTH, events)
    assert whole_month.uptime is not None and whole_month.uptime < Fraction(1, 2)


def test_month_to_date_counts_downtime_up_to_now(config_with: Callable[..., Config]) -> None:
    """An hour down in the 20,643 minutes so far (the minute in progress counts) gives exactly
    20,583/20,643 and the 10 % tier."""
    down = (datetime(2026, 10, 10, 14, tzinfo=UTC), datetime(2026, 10, 10, 15, tzinfo=UTC))
    events = every_minute(PERIOD_START, NOW, down)
    assert month_to_date(config_with(contract(unknown="down")), events, NOW) == {
        "hubspot-demo": (float(Fraction(20583, 20643)), 0.1)
    }


def test_month_to_date_uses_each_contracts_local_month(config_with: Callable[..., Config]) -> None:
    """Half an hour into November in New York (still October 31 in Los Angeles), each contract
    reports its own local month: New York's November has no evidence yet, so no figure."""
    now = datetime(2026, 11, 1, 4, 30, tzinfo=UTC)
    new_york = contract()
    los_angeles = contract(name="la", timezone="America/Los_Angeles")
    events = every_minute(datetime(2026, 10, 31, 12, tzinfo=UTC), PERIOD_START.replace(month=11))
    figures = month_to_date(config_with(new_york, los_angeles), events, now)
    assert figures == {"hubspot-demo": (None, None), "la": (1.0, 0.0)}


def test_month_to_date_reads_the_month_once_then_only_what_it_is_handed(outage: Outage) -> None:
    """The first read is every stored event of the contracts' local months (those not before
    ``now`` yet too); what the daemon hands over before it is dropped (the read has it). After
    it, a read is only what was handed over since the last one: recorded calls as they are,
    concluded probes read back from the store by id, each once."""
    config, store = outage.rig.config, outage.rig.store
    now = outage.rig.clock.now()
    october = [month_period(c, MONTH) for c in config.contracts]
    call = ApiCall(now, "hubspot", "hubspot-demo", "forms.submit", 200, 0.2)
    [probe] = store.db.query("SELECT * FROM probes WHERE outcome IS NOT NULL LIMIT 1")
    probe_id = probe["probe_id"]
    cache = MonthToDate(config)
    cache.call_recorded(call)
    cache.probe_concluded(probe_id, INTEGRATION)
    first = cache.read(store, now)
    since, until = min(p.start for p in october), max(p.end for p in october)
    assert first == stored_events(store, since, until)
    assert any(isinstance(e, CallEvent) for e in first)
    assert cache.read(store, now) == []
    untracked = ApiCall(now, "marketo", "marketo-demo", "leads.push", 200, 0.2)
    cache.call_recorded(untracked)  # no contract of this config covers marketo
    for _ in range(2):
        cache.call_recorded(call)
        cache.probe_concluded(probe_id, INTEGRATION)
    cache.probe_concluded(probe_id, "an-integration-no-contract-covers")
    assert cache.read(store, now) == [
        probe_event(probe),
        api_call_event(call),
        api_call_event(call),
    ]
    assert cache.read(store, now) == []


# -- the daemon's gauges ------------------------------------------------------------------------

UPTIME = ("syncwatch_uptime_ratio", "hubspot-demo")
CREDIT = ("syncwatch_service_credit_ratio", "hubspot-demo")


async def test_daemon_sets_gauges_once_there_is_evidence(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With the default demo config the gauges are absent until the first refresh that has
    evidence, then show 100 % uptime and no credit for a healthy sandbox."""
    inline_to_thread(monkeypatch)
    rig = make_rig(tmp_path)
    daemon = rig.daemon()
    seen: dict[float, dict[tuple[str, str], float]] = {}
    await rig.run_for(
        3 * SLA_REFRESH_S, daemon=daemon, during=lambda t: seen.update({t: gauges(daemon.metrics)})
    )
    assert seen[60.0] == {}, "the refresh at start-up had no evidence"
    assert seen[SLA_REFRESH_S - 60.0] == {}
    assert seen[SLA_REFRESH_S] == {UPTIME: 1.0, CREDIT: 0.0}
    assert gauges(daemon.metrics) == {UPTIME: 1.0, CREDIT: 0.0}
    rig.store.close()


def test_daemon_gauges_show_the_outage(outage: Outage) -> None:
    """After the outage the month-to-date gauges show uptime under 95 % and the 50 % tier,
    for the HubSpot contract only."""
    figures = outage.final_gauges
    assert 0 < figures[UPTIME] < 0.95
    assert figures[CREDIT] == 0.5
    assert figures[("syncwatch_uptime_ratio", "salesforce-utc")] == 1.0
    assert figures[("syncwatch_service_credit_ratio", "salesforce-utc")] == 0.0


def test_no_claim_text_is_left_unrendered(outage: Outage) -> None:
    """No Jinja placeholder or Python repr leaks into the document."""
    html = render_html(outage.claims(), MONTH, START, "config/prod.yaml")
    assert not re.search(r"\{\{|\{%|None|Decimal\(|Fraction\(|<bound ", html)


def bumpy_month(rng: random.Random, since: datetime, days: int) -> list[Event]:
    """Probes every 2 minutes and a vendor call every 3 for ``days`` from ``since``, with random
    vendor outages (lost probes, 5xx calls), monitor-side gaps and short blips."""
    events: list[Event] = []
    moment = since
    end = since + timedelta(days=days)
    while moment < end:
        roll = rng.random()
        if roll < 0.04:
            events.append(ProbeEvent(INTEGRATION, moment, "lost", "vendor_5xx", None))
        elif roll < 0.06:
            events.append(ProbeEvent(INTEGRATION, moment, "skipped", "monitor", None))
        else:
            events.append(ProbeEvent(INTEGRATION, moment, "ok", None, rng.uniform(5, 90)))
        at = moment + timedelta(seconds=50)
        failed = rng.random() < 0.05
        error = "vendor_5xx" if failed else None
        events.append(CallEvent("hubspot", at, not failed, error, 503 if failed else 200))
        moment += timedelta(minutes=2 if rng.random() < 0.97 else 40)
    return events


def handed_over(
    events: list[Event], rng: random.Random, settle: timedelta
) -> list[tuple[datetime, Event]]:
    """(when the daemon hands it over, event), in that order: a call when it returns, a probe
    when it concludes; a few long after ``settle`` (a destination that could not be queried for
    hours, probes resumed after a restart)."""
    timed = []
    for event in events:
        if rng.random() < 0.03:
            delay = settle + timedelta(minutes=rng.uniform(1, 360))
        else:
            delay = timedelta(seconds=rng.uniform(0, 900))
        timed.append((_moment(event) + delay, event))
    return sorted(timed, key=lambda pair: pair[0])


MONTH_END = datetime(2026, 10, 30, 22, tzinfo=UTC)
"""Two days around the end of October: midnight UTC after 26 hours, New York's after 30, and
the end of daylight saving time two hours later."""


@pytest.mark.parametrize(
    "rule",
    [
        {},
        {"unknown": "down"},
        {"unknown": "up", "downtime": {"min_consecutive_minutes": 10, "min_calls": 1}},
        {"interval_minutes": 1, "downtime": {"min_consecutive_minutes": 5}},
        {
            "downtime": {"min_calls": 3, "error_rate_above": "0.3"},
            "credits": [{"below": 99.9, "credit": 10}, {"below": 50, "credit": 25}],
            "min_credit_amount": "500",  # 10 % of 3600.00 is less: no credit
        },
    ],
)
def test_the_incremental_month_to_date_equals_the_full_evaluation(
    config_with: Callable[..., Config], rule: dict[str, Any]
) -> None:
    """Refreshed every 73 minutes (now and then after 5 hours) across the end of October in
    New York and in UTC, handed events as they would be stored (some long after ``settle``,
    some at the very instant of a refresh), restarted on the way: at every refresh the buckets
    of MonthToDate hold each stored event before ``now`` once, and its figures are exactly what
    evaluating all of them gives (settled intervals, the consecutive rule across the settled
    boundary, the unknown policies and the minimum credit included)."""
    config = config_with(contract(**rule), contract(name="utc", timezone="UTC", **rule))
    evaluate_every = 4 if rule.get("interval_minutes") == 1 else 1  # 0.2 s per evaluation
    rng = random.Random(len(str(rule)))
    incremental = MonthToDate(config)
    pending = handed_over(bumpy_month(rng, MONTH_END, days=2), rng, incremental.settle)
    stored: list[Event] = []
    now = MONTH_END + timedelta(minutes=7)
    refreshes = late = 0
    while now < MONTH_END + timedelta(days=2):
        arrived = [event for at, event in pending if at <= now]
        pending = [(at, event) for at, event in pending if at > now]
        late += sum(1 for event in arrived if _moment(event) < now - incremental.settle)
        arrived.append(CallEvent("hubspot", now, False, "vendor_5xx", 503))  # counts from later
        stored.extend(arrived)
        if refreshes == 12:  # a restarted daemon starts from the store
            incremental, arrived = MonthToDate(config), list(stored)
        so_far = [event for event in stored if _moment(event) < now]
        figures = incremental.compute(arrived, now)
        for each in config.contracts:
            state = incremental._months[each.name]
            assert state.buckets == bucket_events(each, state.period, so_far), (each.name, now)
        if refreshes % evaluate_every == 0:
            assert figures == month_to_date(config, so_far, now), now
        refreshes += 1
        now += timedelta(minutes=73 if refreshes % 10 else 317)
    assert refreshes >= 30 and late >= 50, (refreshes, late)


def _moment(event: Event) -> datetime:
    return event.at if isinstance(event, CallEvent) else event.started_at
