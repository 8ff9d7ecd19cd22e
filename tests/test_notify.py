"""Incident notifications: bodies against the vendors' documented shapes, and outbox delivery
(order, back-off, Retry-After, isolation between targets, restarts, secrets) on a virtual clock.

Outbox rows are made the way ``incident_log`` makes them: observations through the incident
state machine, saved with ``IncidentStore.apply``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import sqlite3
from collections.abc import AsyncIterator, Iterator, Sequence
from dataclasses import replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import respx
from prometheus_client import CollectorRegistry, generate_latest
from starlette.applications import Starlette
from structlog.testing import capture_logs

from syncwatch.clock import VirtualClock
from syncwatch.config import Config, config_from_data
from syncwatch.incident_store import RESOLVE, TRIGGER, IncidentStore, OutboxMessage, incident_json
from syncwatch.incidents import PROBES, Incident, Observation, Policy, Track, observe, runbook_url
from syncwatch.metrics import Metrics
from syncwatch.notify import (
    Notifier,
    backoff_s,
    dedup_key,
    render_pagerduty,
    render_slack,
    render_webhook,
    retry_delay_s,
    severity,
)
from syncwatch.store import Store

SANDBOX = "http://sandbox.test"
REMOTE = "https://receivers.test"
RUNBOOKS = "https://wiki.example/runbooks/"
ROUTING_KEY = "pdSECRETroutingkey56789abcdef012"  # 32 characters
TARGETS = ("ops-webhook", "ops-slack", "ops-pagerduty")


def secret_env(origin: str) -> dict[str, str]:
    return {
        "SW_TEST_WEBHOOK_URL": f"{origin}/webhook/ops?token=webhookSECRETtoken4",
        "SW_TEST_SLACK_URL": f"{origin}/slack/services/T0SECRET1/B0SECRET2/slackSECRETtoken3",
        "SW_TEST_PD_KEY": ROUTING_KEY,
    }


SECRET_MARKS = ("webhookSECRETtoken4", "slackSECRETtoken3", "T0SECRET1", "pdSECRETroutingkey")


def make_config(tmp_path: Path, origin: str, kinds: Sequence[str] = TARGETS) -> Config:
    targets = {
        "ops-webhook": {"kind": "webhook", "url": {"env": "SW_TEST_WEBHOOK_URL"}},
        "ops-slack": {"kind": "slack", "webhook_url": {"env": "SW_TEST_SLACK_URL"}},
        "ops-pagerduty": {
            "kind": "pagerduty",
            "routing_key": {"env": "SW_TEST_PD_KEY"},
            "events_url": f"{origin}/pagerduty/v2/enqueue",
        },
    }
    raw = {
        "probe_domain": "probe.example.com",
        "database": str(tmp_path / "syncwatch.db"),
        "notifications": [{"name": name, **targets[name]} for name in kinds],
    }
    return config_from_data(raw, tmp_path / "syncwatch.yaml")


class Breach:
    """One integration's probes track driven through the real state machine into the store."""

    def __init__(
        self, incidents: IncidentStore, targets: Sequence[str], integration: str = "hs-sf"
    ):
        self.incidents, self.targets = incidents, targets
        self.track = Track(integration, PROBES)

    def see(self, at: datetime, cause: str | None) -> Incident | None:
        seen = Observation(self.track.integration, PROBES, at, cause)
        step = observe(self.track, seen, Policy(), lambda name: runbook_url(name, RUNBOOKS))
        self.track = step.track
        messages = []
        if step.incident is not None and (step.opened or step.resolved):
            event = TRIGGER if step.opened else RESOLVE
            payload = {"event": event, "incident": incident_json(step.incident)}
            messages = [(target, event, payload) for target in self.targets]
        self.incidents.apply(step, messages)
        return step.incident

    def open(self, at: datetime) -> None:
        self.see(at, "vendor_5xx")
        self.see(at, "vendor_5xx")

    def resolve(self, at: datetime) -> None:
        self.see(at, None)
        self.see(at, None)


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for name, value in secret_env(SANDBOX).items():
        monkeypatch.setenv(name, value)
    yield


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    opened = Store.open(tmp_path / "syncwatch.db")
    yield opened
    opened.close()


@pytest.fixture
def incidents(store: Store) -> IncidentStore:
    return IncidentStore(store)


def notifier(
    config: Config,
    incidents: IncidentStore,
    clock: VirtualClock,
    transport: httpx.AsyncBaseTransport | None = None,
    registry: CollectorRegistry | None = None,
) -> Notifier:
    metrics = Metrics(config, registry or CollectorRegistry())
    return Notifier(config, incidents, clock, metrics, transport=transport, rng=random.Random(3))


@pytest.fixture
async def sandboxed(
    tmp_path: Path, env: None, sandbox: Starlette, incidents: IncidentStore, clock: VirtualClock
) -> AsyncIterator[Notifier]:
    """A notifier for all three targets, sending into the in-process sandbox's receivers."""
    sender = notifier(
        make_config(tmp_path, SANDBOX), incidents, clock, httpx.ASGITransport(sandbox)
    )
    yield sender
    await sender.aclose()


async def received(client: httpx.AsyncClient) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = (await client.get("/_sandbox/notifications")).json()[
        "notifications"
    ]
    return items


def sample_message(event: str, **changes: Any) -> OutboxMessage:
    """A message as the outbox holds it, for the pure renderers."""
    start = datetime.fromisoformat("2026-10-05T09:00:00+00:00")
    incident = Incident(
        key="hs-sf/probes/20261005T090000Z",
        integration="hs-sf",
        track=PROBES,
        cause="vendor_5xx",
        attribution="vendor",
        runbook_url=f"{RUNBOOKS}vendor_5xx",
        started_at=start,
        opened_at=start + timedelta(minutes=1),
        bad=2,
        causes={"vendor_5xx": 2},
    )
    if event == RESOLVE:
        recovered = start + timedelta(minutes=20)
        incident = replace(
            incident, recovered_at=recovered, resolved_at=recovered + timedelta(1 / 1440)
        )
    body = {**incident_json(incident), **changes}
    return OutboxMessage(1, "t", incident.key, event, {"event": event, "incident": body},
                         start, 0, start, None, None)  # fmt: skip


# -- renderers ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("event", "name"), [(TRIGGER, "incident.opened"), (RESOLVE, "incident.resolved")]
)
def test_webhook_body_is_versioned_and_carries_the_incident(event: str, name: str) -> None:
    """The generic body: version 1, the event name, the incident as the API shows it, runbook."""
    message = sample_message(event)
    assert render_webhook(message) == {
        "version": 1,
        "event": name,
        "incident": message.payload["incident"],
        "runbook_url": f"{RUNBOOKS}vendor_5xx",
    }


def test_pagerduty_trigger_matches_the_documented_alert_event() -> None:
    """Every documented field in its place: dedup_key, payload (PD-CEF), links, client."""
    message = sample_message(TRIGGER)
    assert render_pagerduty(message, ROUTING_KEY) == {
        "routing_key": ROUTING_KEY,
        "event_action": "trigger",
        "dedup_key": "syncwatch/hs-sf/probes/20261005T090000Z",
        "payload": {
            "summary": "hs-sf: vendor_5xx (attributed to vendor) since 2026-10-05T09:00:00Z",
            "source": "syncwatch",
            "severity": "critical",
            "timestamp": "2026-10-05T09:01:00Z",
            "component": "hs-sf",
            "group": "vendor_5xx",
            "class": "vendor",
            "custom_details": message.payload["incident"],
        },
        "links": [{"href": f"{RUNBOOKS}vendor_5xx", "text": "Runbook: vendor_5xx"}],
        "client": "syncwatch",
    }


def test_pagerduty_resolve_carries_only_key_action_and_the_same_dedup_key() -> None:
    """The documented resolve has three fields; its dedup_key is the trigger's."""
    trigger = render_pagerduty(sample_message(TRIGGER), ROUTING_KEY)
    resolve = render_pagerduty(sample_message(RESOLVE), ROUTING_KEY)
    assert resolve == {
        "routing_key": ROUTING_KEY,
        "event_action": "resolve",
        "dedup_key": trigger["dedup_key"],
    }
    assert dedup_key("a/probes/x") == "syncwatch/a/probes/x"


def test_pagerduty_summary_is_cut_to_1024_characters() -> None:
    """A summary longer than PagerDuty's limit is truncated, not refused."""
    body = render_pagerduty(sample_message(TRIGGER, integration="x" * 2000), ROUTING_KEY)
    summary = body["payload"]["summary"]
    assert len(summary) == 1024
    assert summary.endswith("…")


@pytest.mark.parametrize(
    ("cause", "attribution", "expected"),
    [
        ("vendor_5xx", "vendor", "critical"),
        ("sync_lost", "vendor", "critical"),
        ("timeout", "vendor", "critical"),
        ("latency", "vendor", "error"),
        ("auth", "customer", "error"),
        ("mismatch", "customer", "error"),
        ("quota_low", "customer", "warning"),
        ("monitor", "monitor", "warning"),
        ("quota_guard", "monitor", "warning"),
    ],
)
def test_pagerduty_severity_by_cause_and_attribution(
    cause: str, attribution: str, expected: str
) -> None:
    """Vendor outages page as critical; customer-side errors; monitor blindness and low quota
    warn."""
    assert severity(cause, attribution) == expected


@pytest.mark.parametrize("event", [TRIGGER, RESOLVE])
def test_slack_message_has_fallback_text_and_a_section_linking_the_runbook(event: str) -> None:
    """``text`` for notifications, one section whose text links ``<url|runbook>`` and whose
    fields name integration, cause, attribution and the times (resolved ones too)."""
    body = render_slack(sample_message(event))
    link = f"<{RUNBOOKS}vendor_5xx|runbook>"
    assert link in body["text"]
    [section] = body["blocks"]
    assert section["type"] == "section"
    assert section["text"]["type"] == "mrkdwn"
    assert link in section["text"]["text"]
    names = [field["text"].split("\n")[0] for field in section["fields"]]
    expected = ["*Integration*", "*Cause*", "*Attribution*", "*Started*", "*Opened*"]
    assert names == (expected if event == TRIGGER else [*expected, "*Resolved*", "*Duration*"])
    assert len(section["fields"]) <= 10
    if event == RESOLVE:
        assert section["fields"][-1]["text"] == "*Duration*\n20m"


def test_slack_escapes_its_control_characters() -> None:
    """``&``, ``<`` and ``>`` in values are escaped as Slack's formatting rules require."""
    body = render_slack(sample_message(TRIGGER, integration="a<b>&c"))
    assert "a&lt;b&gt;&amp;c" in body["blocks"][0]["fields"][0]["text"]
    assert "a<b>" not in body["text"]


# -- back-off -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("attempts", "jitter", "seconds"),
    [(0, 0.0, 30), (1, 0.0, 60), (2, 0.0, 120), (6, 0.0, 1920), (7, 0.0, 3600), (99, 0.0, 3600),
     (0, 0.1, 33), (0, -0.1, 27), (6, 0.1, 2112), (7, -0.1, 3456)],
)  # fmt: skip
def test_backoff_doubles_from_30_seconds_with_jitter_and_stops_at_an_hour(
    attempts: int, jitter: float, seconds: float
) -> None:
    """30 s * 2^attempts, ±10 %, never more than an hour."""
    assert backoff_s(attempts, jitter) == pytest.approx(seconds)


@pytest.mark.parametrize(
    ("retry_after", "seconds"), [(120.0, 120.0), (0.0, 1.0), (7200.0, 3600.0), (None, 240.0)]
)
def test_retry_after_wins_over_the_backoff_within_bounds(
    retry_after: float | None, seconds: float
) -> None:
    """A receiver's Retry-After is used as given, but at least 1 s and at most an hour."""
    assert retry_delay_s(3, 0.0, retry_after) == seconds


# -- delivery into the sandbox --------------------------------------------------------------


async def test_each_target_gets_its_message_and_it_is_marked_delivered(
    sandboxed: Notifier, incidents: IncidentStore, clock: VirtualClock, client: httpx.AsyncClient
) -> None:
    """One incident, three targets: three accepted requests, three rows delivered now."""
    Breach(incidents, TARGETS).open(clock.now())
    assert await sandboxed.deliver_due() == 3
    assert {m.delivered_at for m in incidents.outbox()} == {clock.now()}
    bodies = {item["kind"]: item for item in await received(client)}
    assert {item["status"] for item in bodies.values()} == {200, 202}
    assert bodies["pagerduty"]["body"]["routing_key"] == ROUTING_KEY
    assert bodies["slack"]["path"] == "/slack/services/T0SECRET1/B0SECRET2/slackSECRETtoken3"
    assert bodies["webhook"]["body"]["event"] == "incident.opened"
    assert await sandboxed.deliver_due() == 0


async def test_one_target_hanging_does_not_delay_the_others(
    sandboxed: Notifier, incidents: IncidentStore, clock: VirtualClock, client: httpx.AsyncClient
) -> None:
    """The webhook (first in the config) holds its answer 60 s: Slack and PagerDuty are
    delivered at once, and the webhook call gives up after the 10 s call timeout."""
    await client.post("/_sandbox/faults", json={"kind": "slow", "vendor": "webhook", "delay": 60})
    start = clock.now()
    Breach(incidents, TARGETS).open(start)
    sending = asyncio.ensure_future(sandboxed.deliver_due())
    await clock.advance(0)
    delivered = {m.target: m.delivered_at for m in incidents.outbox()}
    assert delivered == {"ops-webhook": None, "ops-slack": start, "ops-pagerduty": start}
    await clock.advance(10)
    assert await sending == 2
    [hook] = [m for m in incidents.outbox() if m.target == "ops-webhook"]
    assert hook.last_error == "timeout: no response within 10 s"
    waited = (hook.next_attempt_at - start).total_seconds()
    assert 10 + 27 <= waited <= 10 + 33


async def test_a_receiver_outage_is_retried_after_the_backoff(
    sandboxed: Notifier, incidents: IncidentStore, clock: VirtualClock, client: httpx.AsyncClient
) -> None:
    """Slack down for a minute: the first try fails with its status, nothing is sent before the
    retry is due, and retries land 30 s then 60 s (±10 %) apart until it answers."""
    await client.post("/_sandbox/faults", json={"kind": "outage", "vendor": "slack", "for": 60})
    start = clock.now()
    Breach(incidents, ["ops-slack"]).open(start)
    assert await sandboxed.deliver_due() == 0
    [first] = incidents.outbox()
    assert first.last_error == "HTTP 503: rollup_error"
    assert 27 <= seconds(first.next_attempt_at - start) <= 33
    await clock.advance(1)
    assert await sandboxed.deliver_due() == 0
    assert incidents.outbox()[0].attempts == 1
    await until(clock, first.next_attempt_at)
    assert await sandboxed.deliver_due() == 0
    [second] = incidents.outbox()
    assert 54 <= seconds(second.next_attempt_at - first.next_attempt_at) <= 66
    await until(clock, second.next_attempt_at)
    assert await sandboxed.deliver_due() == 1
    [message] = incidents.outbox()
    assert (message.attempts, message.last_error) == (3, None)
    assert message.delivered_at is not None
    assert message.delivered_at >= second.next_attempt_at


def seconds(delta: timedelta) -> float:
    return delta.total_seconds()


async def until(clock: VirtualClock, moment: datetime) -> None:
    """Advance just past ``moment`` (float steps must not stop a microsecond short)."""
    await clock.advance(seconds(moment - clock.now()) + 0.001)


async def test_a_restarted_notifier_delivers_what_the_first_left(
    tmp_path: Path, env: None, sandbox: Starlette, clock: VirtualClock, client: httpx.AsyncClient
) -> None:
    """The outbox and its back-off survive a restart: a new notifier on the same file waits
    for the retry time, then delivers; nothing is sent twice."""
    config = make_config(tmp_path, SANDBOX)
    await client.post("/_sandbox/faults", json={"kind": "outage", "vendor": "pagerduty", "for": 20})
    first_store = Store.open(config.database)
    first = notifier(config, IncidentStore(first_store), clock, httpx.ASGITransport(sandbox))
    Breach(IncidentStore(first_store), TARGETS).open(clock.now())
    assert await first.deliver_due() == 2
    await first.aclose()
    first_store.close()

    second_store = Store.open(config.database)
    incidents = IncidentStore(second_store)
    second = notifier(config, incidents, clock, httpx.ASGITransport(sandbox))
    try:
        assert await second.deliver_due() == 0
        await clock.advance(40)
        assert await second.deliver_due() == 1
        assert all(m.delivered_at is not None for m in incidents.outbox())
    finally:
        await second.aclose()
        second_store.close()
    state = (await client.get("/_sandbox/state")).json()["notifications"]
    assert {kind: counts["accepted"] for kind, counts in state.items()} == {
        "pagerduty": 1,
        "slack": 1,
        "webhook": 1,
    }


async def test_pending_gauge_counts_undelivered_messages_per_target(
    tmp_path: Path, env: None, sandbox: Starlette, incidents: IncidentStore, clock: VirtualClock,
    client: httpx.AsyncClient,
) -> None:  # fmt: skip
    """``notifications_pending{target}`` follows the outbox after every round."""
    registry = CollectorRegistry()
    config = make_config(tmp_path, SANDBOX)
    sender = notifier(config, incidents, clock, httpx.ASGITransport(sandbox), registry)
    await client.post("/_sandbox/faults", json={"kind": "outage", "vendor": "pagerduty"})
    breach = Breach(incidents, TARGETS)
    breach.open(clock.now())
    breach.resolve(clock.now())

    def pending(target: str) -> float | None:
        return registry.get_sample_value("syncwatch_notifications_pending", {"target": target})

    await sender.deliver_due()
    assert [pending(name) for name in TARGETS] == [0, 0, 2]
    await sender.deliver_due()  # nothing due yet: the figures stand
    assert [pending(name) for name in TARGETS] == [0, 0, 2]
    await client.delete("/_sandbox/faults")
    await clock.advance(3600)  # past any retry's back-off
    await sender.deliver_due()
    await sender.aclose()
    assert [pending(name) for name in TARGETS] == [0, 0, 0]


# -- delivery against recorded answers (respx) ----------------------------------------------


@pytest.fixture
def remote_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in secret_env(REMOTE).items():
        monkeypatch.setenv(name, value)


@pytest.fixture
def mocked() -> Iterator[respx.MockRouter]:
    with respx.mock(assert_all_called=False) as router:
        yield router


PD_URL = f"{REMOTE}/pagerduty/v2/enqueue"
PD_OK = httpx.Response(202, json={"status": "success", "message": "Event processed"})


async def test_429_retry_after_is_honoured(
    tmp_path: Path, remote_env: None, mocked: respx.MockRouter, incidents: IncidentStore,
    clock: VirtualClock,
) -> None:  # fmt: skip
    """A 429 with ``Retry-After: 120`` is retried exactly 120 s later, not on the back-off."""
    route = mocked.post(PD_URL).mock(
        side_effect=[httpx.Response(429, headers={"Retry-After": "120"}), PD_OK]
    )
    sender = notifier(make_config(tmp_path, REMOTE, ["ops-pagerduty"]), incidents, clock)
    start = clock.now()
    Breach(incidents, ["ops-pagerduty"]).open(start)
    assert await sender.deliver_due() == 0
    [message] = incidents.outbox()
    assert message.next_attempt_at == start + timedelta(seconds=120)
    await clock.advance(119)
    assert await sender.deliver_due() == 0
    await clock.advance(1)
    assert await sender.deliver_due() == 1
    assert route.call_count == 2
    await sender.aclose()


async def test_a_resolve_is_never_sent_before_its_trigger(
    tmp_path: Path, remote_env: None, mocked: respx.MockRouter, incidents: IncidentStore,
    clock: VirtualClock,
) -> None:  # fmt: skip
    """Trigger and resolve both queued; the trigger fails: the resolve waits behind it, and
    both go in order once the trigger is through."""
    route = mocked.post(PD_URL).mock(side_effect=[httpx.Response(500), PD_OK, PD_OK])
    sender = notifier(make_config(tmp_path, REMOTE, ["ops-pagerduty"]), incidents, clock)
    breach = Breach(incidents, ["ops-pagerduty"])
    breach.open(clock.now())
    breach.resolve(clock.now())
    assert await sender.deliver_due() == 0
    assert route.call_count == 1
    await clock.advance(60)
    assert await sender.deliver_due() == 2
    actions = [json.loads(call.request.content)["event_action"] for call in route.calls]
    assert actions == ["trigger", "trigger", "resolve"]
    keys = {json.loads(call.request.content)["dedup_key"] for call in route.calls}
    assert len(keys) == 1
    await sender.aclose()


async def test_every_fifth_failed_attempt_is_logged_as_an_error(
    tmp_path: Path, remote_env: None, mocked: respx.MockRouter, incidents: IncidentStore,
    clock: VirtualClock,
) -> None:  # fmt: skip
    """Failures are warnings, except at attempts 5, 10, …: errors someone should look at. The
    message is never given up."""
    mocked.post(PD_URL).mock(return_value=httpx.Response(503))
    sender = notifier(make_config(tmp_path, REMOTE, ["ops-pagerduty"]), incidents, clock)
    Breach(incidents, ["ops-pagerduty"]).open(clock.now())
    with capture_logs() as logs:
        for _ in range(10):
            await sender.deliver_due()
            [message] = incidents.outbox()
            await until(clock, message.next_attempt_at)
    failed = [entry for entry in logs if entry["event"] == "notification failed"]
    assert [entry["attempts"] for entry in failed if entry["log_level"] == "error"] == [5, 10]
    assert [entry["log_level"] for entry in failed].count("warning") == 8
    assert incidents.outbox()[0].delivered_at is None
    await sender.aclose()


async def test_a_target_no_longer_configured_is_left_alone_and_logged_once(
    tmp_path: Path, remote_env: None, mocked: respx.MockRouter, incidents: IncidentStore,
    clock: VirtualClock,
) -> None:  # fmt: skip
    """Messages for a removed target stay queued (the operator may restore it); one warning."""
    mocked.post(PD_URL).mock(return_value=PD_OK)
    sender = notifier(make_config(tmp_path, REMOTE, ["ops-pagerduty"]), incidents, clock)
    Breach(incidents, ["ops-pagerduty", "old-pager"]).open(clock.now())
    with capture_logs() as logs:
        assert await sender.deliver_due() == 1
        assert await sender.deliver_due() == 0
    orphans = [entry for entry in logs if entry.get("target") == "old-pager"]
    assert [(entry["log_level"], entry["pending"]) for entry in orphans] == [("warning", 1)]
    assert incidents.outbox_pending() == {"old-pager": 1}
    await sender.aclose()


async def test_an_unset_secret_is_a_failed_attempt_naming_the_variable(
    tmp_path: Path, remote_env: None, monkeypatch: pytest.MonkeyPatch, incidents: IncidentStore,
    clock: VirtualClock,
) -> None:  # fmt: skip
    """A secret that cannot be read fails the attempt (retried later) and says which one."""
    monkeypatch.delenv("SW_TEST_SLACK_URL")
    sender = notifier(make_config(tmp_path, REMOTE, ["ops-slack"]), incidents, clock)
    Breach(incidents, ["ops-slack"]).open(clock.now())
    assert await sender.deliver_due() == 0
    error = incidents.outbox()[0].last_error or ""
    assert "environment variable SW_TEST_SLACK_URL is not set" in error
    await sender.aclose()


async def test_secrets_appear_in_no_log_row_error_or_metric(
    tmp_path: Path, remote_env: None, mocked: respx.MockRouter, incidents: IncidentStore,
    clock: VirtualClock,
) -> None:  # fmt: skip
    """Receivers that fail by quoting the URL or echoing the routing key back: the stored
    errors, every log event, the database file and the metrics still hold no secret."""
    env = secret_env(REMOTE)

    hook_echo = httpx.Response(500, text=f"no hook at {env['SW_TEST_WEBHOOK_URL']}")
    mocked.post(url__startswith=f"{REMOTE}/webhook/ops").mock(
        side_effect=[hook_echo, httpx.Response(200)]
    )
    path = env["SW_TEST_SLACK_URL"].removeprefix(REMOTE)
    reset = httpx.ConnectError(f"connection reset while posting {path}")
    mocked.post(env["SW_TEST_SLACK_URL"]).mock(side_effect=[reset, httpx.Response(200)])
    pd_echo = httpx.Response(400, json={"errors": [f"bad key {ROUTING_KEY}"]})
    mocked.post(PD_URL).mock(side_effect=[pd_echo, PD_OK])
    registry = CollectorRegistry()
    sender = notifier(make_config(tmp_path, REMOTE), incidents, clock, registry=registry)
    Breach(incidents, TARGETS).open(clock.now())
    with capture_logs() as logs:
        assert await sender.deliver_due() == 0
        errors = [m.last_error or "" for m in incidents.outbox()]
        await clock.advance(60)
        assert await sender.deliver_due() == 3
    await sender.aclose()
    assert all(error.startswith(("request failed", "HTTP 500", "HTTP 400")) for error in errors)
    stored = database_bytes(tmp_path)
    texts = {
        "errors": "\n".join(errors),
        "logs": repr(logs),
        "database": stored.decode("latin-1"),
        "metrics": generate_latest(registry).decode(),
    }
    for where, text in texts.items():
        for mark in SECRET_MARKS:
            assert mark not in text, f"{mark} leaked into {where}"


def database_bytes(directory: Path) -> bytes:
    """The database as it lies on disk: the main file, its WAL and shared memory."""
    return b"".join(path.read_bytes() for path in sorted(directory.glob("syncwatch.db*")))


# -- the loop -------------------------------------------------------------------------------


@contextlib.asynccontextmanager
async def running(sender: Notifier) -> AsyncIterator[asyncio.Task[None]]:
    task = asyncio.ensure_future(sender.run())
    try:
        yield task
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def test_run_delivers_on_wake_and_looks_again_within_30_seconds(
    sandboxed: Notifier, incidents: IncidentStore, clock: VirtualClock
) -> None:
    """``wake`` delivers at once; a message queued without a wake goes at the next look, at
    most 30 s later."""
    async with running(sandboxed):
        start = clock.now()
        Breach(incidents, TARGETS, "first").open(start)
        sandboxed.wake()
        await clock.advance(0)
        assert all(m.delivered_at == start for m in incidents.outbox())
        await clock.advance(5)
        Breach(incidents, ["ops-slack"], "second").open(clock.now())
        await clock.advance(24)
        assert incidents.outbox_pending() == {"ops-slack": 1}
        await clock.advance(1)
        assert incidents.outbox_pending() == {}


async def test_run_retries_when_the_backoff_falls_due(
    sandboxed: Notifier, incidents: IncidentStore, clock: VirtualClock, client: httpx.AsyncClient
) -> None:
    """The loop sleeps until the earliest retry, not a fixed tick."""
    await client.post("/_sandbox/faults", json={"kind": "outage", "vendor": "webhook", "for": 5})
    async with running(sandboxed):
        Breach(incidents, ["ops-webhook"]).open(clock.now())
        sandboxed.wake()
        await clock.advance(0)
        [failed] = incidents.outbox()
        due = (failed.next_attempt_at - clock.now()).total_seconds()
        await clock.advance(due + 0.01)
        [message] = incidents.outbox()
        assert message.delivered_at is not None
        assert message.delivered_at - failed.next_attempt_at <= timedelta(milliseconds=10)


class FlakyStore(IncidentStore):
    """The outbox unreadable for the first few reads (a locked or full disk)."""

    failures = 2

    def outbox_heads(self, targets: Any) -> list[OutboxMessage]:
        if self.failures:
            self.failures -= 1
            raise sqlite3.OperationalError("database is locked")
        return super().outbox_heads(targets)


async def test_run_outlives_store_errors(
    tmp_path: Path, env: None, sandbox: Starlette, store: Store, clock: VirtualClock
) -> None:
    """A store error is logged and the loop carries on; the message goes once it is readable."""
    incidents = FlakyStore(store)
    sender = notifier(
        make_config(tmp_path, SANDBOX), incidents, clock, httpx.ASGITransport(sandbox)
    )
    Breach(incidents, ["ops-slack"]).open(clock.now())
    with capture_logs() as logs:
        async with running(sender) as task:
            await clock.advance(0)
            assert incidents.outbox_pending() == {"ops-slack": 1}
            await clock.advance(30)
            assert not task.done()
    await sender.aclose()
    assert incidents.outbox_pending() == {}
    assert any(entry["log_level"] == "error" for entry in logs)
