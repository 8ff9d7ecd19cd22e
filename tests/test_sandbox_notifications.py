"""The sandbox's notification receivers: PagerDuty Events v2, Slack incoming webhooks, webhook."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest

from syncwatch.clock import VirtualClock
from syncwatch.sandbox.notifications import pagerduty_errors

ROUTING_KEY = "0123456789abcdef0123456789abcdef"  # 32 characters, as PagerDuty wants
SLACK_HOOK = "/slack/services/T00000000/B00000000/XXXXXXXXXXXXXXXXXXXXXXXX"


def trigger(**changes: Any) -> dict[str, Any]:
    """A minimal valid trigger event, the documented example's required fields."""
    event: dict[str, Any] = {
        "routing_key": ROUTING_KEY,
        "event_action": "trigger",
        "dedup_key": "syncwatch/hs-sf/probes/20261005T090000Z",
        "payload": {"summary": "hs-sf: vendor_5xx", "source": "syncwatch", "severity": "critical"},
    }
    event.update(changes)
    return event


async def test_pagerduty_accepts_a_trigger_with_the_documented_202_body(
    client: httpx.AsyncClient,
) -> None:
    """A valid trigger answers 202 with status, message and the dedup_key it was filed under."""
    response = await client.post("/pagerduty/v2/enqueue", json=trigger())
    assert response.status_code == 202
    assert response.json() == {
        "status": "success",
        "message": "Event processed",
        "dedup_key": "syncwatch/hs-sf/probes/20261005T090000Z",
    }


async def test_pagerduty_generates_a_dedup_key_for_a_trigger_without_one(
    client: httpx.AsyncClient,
) -> None:
    """Omitting dedup_key on a trigger is allowed; PagerDuty returns the key it made."""
    event = trigger()
    del event["dedup_key"]
    response = await client.post("/pagerduty/v2/enqueue", json=event)
    assert response.status_code == 202
    assert len(response.json()["dedup_key"]) == 32


async def test_pagerduty_resolve_needs_only_key_action_and_dedup_key(
    client: httpx.AsyncClient,
) -> None:
    """The documented resolve example has three fields and no payload."""
    resolve = {"routing_key": ROUTING_KEY, "event_action": "resolve", "dedup_key": "k"}
    response = await client.post("/pagerduty/v2/enqueue", json=resolve)
    assert response.status_code == 202


@pytest.mark.parametrize(
    ("event", "error"),
    [
        (trigger(routing_key=""), "'routing_key' is missing or blank"),
        (
            trigger(routing_key="short"),
            "Length of 'routing_key' is incorrect (should be 32 characters)",
        ),
        (
            trigger(event_action="page"),
            "'event_action' is missing or invalid (trigger, acknowledge or resolve)",
        ),
        (
            {"routing_key": ROUTING_KEY, "event_action": "resolve"},
            "'dedup_key' is missing or blank",
        ),
        (
            trigger(dedup_key="k" * 256),
            "Length of 'dedup_key' is incorrect (should be at most 255 characters)",
        ),
        (trigger(payload=None), "'payload' is missing or not an object"),
        (
            trigger(payload={"source": "s", "severity": "info"}),
            "'payload.summary' is missing or blank",
        ),
        (
            trigger(payload={"summary": "s", "severity": "info"}),
            "'payload.source' is missing or blank",
        ),
        (
            trigger(payload={"summary": "s", "source": "s"}),
            "'payload.severity' is missing or blank",
        ),
        (
            trigger(payload={"summary": "s", "source": "s", "severity": "high"}),
            "'payload.severity' is invalid (critical, error, warning or info)",
        ),
        (
            trigger(payload={"summary": "s" * 1025, "source": "s", "severity": "info"}),
            "Length of 'payload.summary' is incorrect (should be at most 1024 characters)",
        ),
        ([], "Event object must be a JSON object"),
    ],
)
def test_pagerduty_validation_names_each_invalid_field(event: Any, error: str) -> None:
    """Each required field, limit and enum of the trigger-events page has its own error."""
    assert pagerduty_errors(event) == [error]


async def test_pagerduty_answers_400_invalid_event_with_the_errors(
    client: httpx.AsyncClient,
) -> None:
    """An invalid event gets the documented 400 body, errors listed, and is counted rejected."""
    response = await client.post("/pagerduty/v2/enqueue", json=trigger(routing_key="short"))
    assert response.status_code == 400
    assert response.json() == {
        "status": "invalid event",
        "message": "Event object is invalid",
        "errors": ["Length of 'routing_key' is incorrect (should be 32 characters)"],
    }
    state = (await client.get("/_sandbox/state")).json()
    assert state["notifications"]["pagerduty"] == {"accepted": 0, "rejected": 1}


async def test_slack_accepts_text_or_blocks_and_answers_ok(client: httpx.AsyncClient) -> None:
    """Incoming webhooks answer 200 with the plain body ``ok``."""
    for message in ({"text": "hi"}, {"blocks": [{"type": "section", "text": {"type": "mrkdwn"}}]}):
        response = await client.post(SLACK_HOOK, json=message)
        assert (response.status_code, response.text) == (200, "ok")


@pytest.mark.parametrize(
    ("path", "body", "status", "text"),
    [
        (SLACK_HOOK, {"username": "x"}, 400, "invalid_payload"),
        (SLACK_HOOK, {"text": "", "blocks": []}, 400, "invalid_payload"),
        (SLACK_HOOK, {"text": "x", "blocks": ["not a block"]}, 400, "invalid_payload"),
        (SLACK_HOOK, "not json", 400, "invalid_payload"),
        ("/slack/services/T00000000", {"text": "x"}, 404, "no_service"),
    ],
)
async def test_slack_refuses_what_it_cannot_post(
    client: httpx.AsyncClient, path: str, body: Any, status: int, text: str
) -> None:
    """No text and no blocks, garbage, or a URL that is not a webhook's: Slack's error strings."""
    kwargs: dict[str, Any] = {"content": body} if isinstance(body, str) else {"json": body}
    response = await client.post(path, **kwargs)
    assert (response.status_code, response.text) == (status, text)


async def test_webhook_accepts_any_json_object(client: httpx.AsyncClient) -> None:
    """The generic receiver takes any JSON object with 200 and refuses anything else."""
    assert (await client.post("/webhook/ops", json={"version": 1})).status_code == 200
    assert (await client.post("/webhook/ops", content=b"[1]")).status_code == 400


async def test_received_notifications_are_listed_and_counted(client: httpx.AsyncClient) -> None:
    """Every processed request is kept with its kind, path, status and body, in order."""
    await client.post("/webhook/ops", json={"n": 1})
    await client.post(SLACK_HOOK, json={"text": "hi"})
    await client.post("/pagerduty/v2/enqueue", json=trigger())
    received = (await client.get("/_sandbox/notifications")).json()["notifications"]
    assert [(item["kind"], item["path"], item["status"]) for item in received] == [
        ("webhook", "/webhook/ops", 200),
        ("slack", SLACK_HOOK, 200),
        ("pagerduty", "/pagerduty/v2/enqueue", 202),
    ]
    assert received[0]["body"] == {"n": 1}
    state = (await client.get("/_sandbox/state")).json()
    assert state["notifications"] == {
        "pagerduty": {"accepted": 1, "rejected": 0},
        "slack": {"accepted": 1, "rejected": 0},
        "webhook": {"accepted": 1, "rejected": 0},
    }


async def test_an_outage_fault_fails_one_receiver_for_its_window(
    client: httpx.AsyncClient, clock: VirtualClock
) -> None:
    """``outage`` for slack answers its status until the window ends; others are untouched."""
    fault = {"kind": "outage", "vendor": "slack", "for": "5m", "status": 502}
    assert (await client.post("/_sandbox/faults", json=fault)).status_code == 201
    down = await client.post(SLACK_HOOK, json={"text": "hi"})
    assert (down.status_code, down.text) == (502, "rollup_error")
    assert (await client.post("/webhook/ops", json={})).status_code == 200
    await clock.advance(300)
    assert (await client.post(SLACK_HOOK, json={"text": "hi"})).status_code == 200


async def test_a_rate_limit_fault_answers_429_with_retry_after(client: httpx.AsyncClient) -> None:
    """``rate_limit`` answers 429 and ``Retry-After: delay`` (Slack documents the header)."""
    fault = {"kind": "rate_limit", "vendor": "slack", "delay": "90s"}
    await client.post("/_sandbox/faults", json=fault)
    response = await client.post(SLACK_HOOK, json={"text": "hi"})
    assert response.status_code == 429
    assert response.headers["retry-after"] == "90"


async def test_a_slow_fault_holds_the_answer_on_the_sandbox_clock(
    client: httpx.AsyncClient, clock: VirtualClock
) -> None:
    """``slow`` delays the receiver's answer by ``delay`` of virtual time."""
    await client.post("/_sandbox/faults", json={"kind": "slow", "vendor": "pagerduty", "delay": 60})
    sending = asyncio.ensure_future(client.post("/pagerduty/v2/enqueue", json=trigger()))
    await clock.advance(59)
    assert not sending.done()
    await clock.advance(1)
    assert (await sending).status_code == 202
