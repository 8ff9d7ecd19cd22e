"""Notification receivers: PagerDuty Events API v2, Slack incoming webhooks, a generic webhook.

Where the demo and the tests send incident notifications, so delivery, ordering, retries and
the bodies themselves can be checked with no vendor in reach. Each receiver validates what the
real one documents and records every request it processed (``GET /_sandbox/notifications``).

Sources:
- PagerDuty: https://developer.pagerduty.com/docs/events-api-v2/trigger-events (PagerDuty/
  developer-docs ``docs/events-API-v2/02-Trigger-Events.md``: required fields, severities,
  dedup_key ≤ 255, summary ≤ 1,024), …/overview (202 ``{"status": "success", "message":
  "Event processed", "dedup_key"}``, 400 ``{"status": "invalid event", "message": "Event object
  is invalid", "errors": [...]}``, 429), …/rate-limits.
- Slack: https://api.slack.com/messaging/webhooks (JSON ``text`` and/or ``blocks``; 200 ``ok``);
  https://api.slack.com/changelog/2016-05-17-changes-to-errors-for-incoming-webhooks (400
  ``invalid_payload``, 500 ``rollup_error``); https://api.slack.com/docs/rate-limits (429 with
  ``Retry-After``).
- The generic webhook is syncwatch's own format (``syncwatch/notify.py``): any JSON object, 200.

Faults with ``vendor: pagerduty | slack | webhook``: ``slow`` holds the answer ``delay``,
``outage`` answers ``status``, ``rate_limit`` answers 429 (with ``Retry-After: delay`` where
the receiver documents one).
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from syncwatch.sandbox.common import delay_if_slow
from syncwatch.sandbox.json_response import JSONResponse
from syncwatch.sandbox.world import World

KINDS = ("pagerduty", "slack", "webhook")
PD_ACTIONS = ("trigger", "acknowledge", "resolve")
PD_SEVERITIES = ("critical", "error", "warning", "info")
PD_ROUTING_KEY_LENGTH = 32
PD_SUMMARY_MAX = 1024
PD_DEDUP_KEY_MAX = 255
_STATE_KEY = "notifications"

Handler = Callable[[World, Request, Any], Response]


@dataclass
class Inbox:
    """Every notification request the receivers processed, in arrival order."""

    received: list[dict[str, Any]] = field(default_factory=list)

    def record(self, kind: str, request: Request, status: int, body: Any, at: str) -> None:
        path = request.url.path
        self.received.append({"kind": kind, "path": path, "status": status, "at": at, "body": body})

    def counts(self) -> dict[str, dict[str, int]]:
        """Per receiver: requests accepted (2xx) and rejected (validation errors)."""
        counts = {kind: {"accepted": 0, "rejected": 0} for kind in KINDS}
        for item in self.received:
            counts[item["kind"]]["accepted" if item["status"] < 300 else "rejected"] += 1
        return counts


def inbox_for(world: World) -> Inbox:
    """The one inbox of this world, shared by the three receivers and ``/_sandbox``."""
    inbox = world.vendor_state.get(_STATE_KEY)
    if not isinstance(inbox, Inbox):
        inbox = world.vendor_state[_STATE_KEY] = Inbox()
    return inbox


def pagerduty_routes(world: World) -> list[Route]:
    """events.pagerduty.com: ``POST /v2/enqueue``."""
    return [Route("/v2/enqueue", _receiver(world, "pagerduty", _pagerduty), methods=["POST"])]


def slack_routes(world: World) -> list[Route]:
    """hooks.slack.com: ``POST /services/T…/B…/token``."""
    return [Route("/services/{path:path}", _receiver(world, "slack", _slack), methods=["POST"])]


def webhook_routes(world: World) -> list[Route]:
    """Any operator's endpoint: ``POST /{name}``."""
    return [Route("/{name}", _receiver(world, "webhook", _webhook), methods=["POST"])]


def _receiver(world: World, kind: str, handle: Handler) -> Callable[[Request], Awaitable[Response]]:
    """Faults first (as a broken receiver would answer before reading), then the handler."""

    async def endpoint(request: Request) -> Response:
        await delay_if_slow(world, kind)
        refusal = _fault(world, kind)
        if refusal is not None:
            return refusal
        raw = await request.body()
        try:
            body: Any = json.loads(raw)
        except ValueError:
            body = raw.decode("utf-8", errors="replace")
        response = handle(world, request, body)
        inbox_for(world).record(
            kind, request, response.status_code, body, world.clock.now().isoformat()
        )
        return response

    return endpoint


def _fault(world: World, kind: str) -> Response | None:
    now = world.clock.now()
    if outage := world.faults.fire("outage", kind, now):
        # unconfirmed: PagerDuty's and the generic 5xx bodies; Slack's is documented.
        text = "rollup_error" if kind == "slack" else "Service Unavailable"
        return PlainTextResponse(text, status_code=outage.spec.status)
    if limited := world.faults.fire("rate_limit", kind, now):
        if kind == "pagerduty":
            # unconfirmed: PagerDuty documents the 429 but neither a body nor Retry-After.
            return PlainTextResponse("Request Limit Exceeded", status_code=429)
        # unconfirmed: the 429 body (Slack's docs describe a JSON object of call counts).
        headers = {"Retry-After": str(round(limited.spec.delay))}
        return PlainTextResponse("rate_limited", status_code=429, headers=headers)
    return None


def _pagerduty(world: World, request: Request, body: Any) -> Response:
    errors = pagerduty_errors(body)
    if errors:
        content = {
            "status": "invalid event",
            "message": "Event object is invalid",
            "errors": errors,
        }
        return JSONResponse(content, status_code=400)
    # A trigger without a dedup_key gets a generated one (PagerDuty: a UUID), from the dice.
    key = body.get("dedup_key") or f"{world.rng.getrandbits(128):032x}"
    content = {"status": "success", "message": "Event processed", "dedup_key": key}
    return JSONResponse(content, status_code=202)


def pagerduty_errors(body: Any) -> list[str]:
    """Why PagerDuty would refuse ``body``; empty when it is a valid alert event.

    unconfirmed: every wording but the routing-key length one (documented example)."""
    if not isinstance(body, dict):
        return ["Event object must be a JSON object"]
    errors = []
    key = body.get("routing_key")
    if not isinstance(key, str) or not key:
        errors.append("'routing_key' is missing or blank")
    elif len(key) != PD_ROUTING_KEY_LENGTH:
        errors.append("Length of 'routing_key' is incorrect (should be 32 characters)")
    action = body.get("event_action")
    if action not in PD_ACTIONS:
        errors.append("'event_action' is missing or invalid (trigger, acknowledge or resolve)")
    dedup = body.get("dedup_key")
    if action in ("acknowledge", "resolve") and (not isinstance(dedup, str) or not dedup):
        errors.append("'dedup_key' is missing or blank")
    if isinstance(dedup, str) and len(dedup) > PD_DEDUP_KEY_MAX:
        errors.append("Length of 'dedup_key' is incorrect (should be at most 255 characters)")
    if action == "trigger":
        errors.extend(_payload_errors(body.get("payload")))
    return errors


def _payload_errors(payload: Any) -> list[str]:
    if not isinstance(payload, dict):
        return ["'payload' is missing or not an object"]
    errors = [
        f"'payload.{name}' is missing or blank"
        for name in ("summary", "source", "severity")
        if not isinstance(payload.get(name), str) or not payload[name]
    ]
    summary = payload.get("summary")
    if isinstance(summary, str) and len(summary) > PD_SUMMARY_MAX:
        errors.append(
            "Length of 'payload.summary' is incorrect (should be at most 1024 characters)"
        )
    if payload.get("severity") and payload["severity"] not in PD_SEVERITIES:
        errors.append("'payload.severity' is invalid (critical, error, warning or info)")
    return errors


def _slack(world: World, request: Request, body: Any) -> Response:
    # unconfirmed: 404 no_service for a URL that is not services/T…/B…/token (widely reported,
    # not on Slack's error list); 400 invalid_payload, not no_text, for a message without text.
    segments = [part for part in str(request.path_params["path"]).split("/") if part]
    if len(segments) != 3:
        return PlainTextResponse("no_service", status_code=404)
    if not isinstance(body, dict) or not (body.get("text") or body.get("blocks")):
        return PlainTextResponse("invalid_payload", status_code=400)
    blocks = body.get("blocks", [])
    if not isinstance(blocks, list) or not all(isinstance(b, dict) and "type" in b for b in blocks):
        return PlainTextResponse("invalid_payload", status_code=400)
    return PlainTextResponse("ok")


def _webhook(world: World, request: Request, body: Any) -> Response:
    if not isinstance(body, dict):
        return JSONResponse({"error": "the body must be a JSON object"}, status_code=400)
    return JSONResponse({"ok": True})
