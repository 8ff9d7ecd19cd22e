"""Incident notifications: the outbox delivered to webhooks, Slack and PagerDuty (DESIGN §8).

``incident_log.py`` queues one secret-free message per target when an incident opens
(``trigger``) and when it resolves (``resolve``), in the same transaction as the incident
itself. This module renders each message for its target and sends it, at least once, in order
per target: only a target's oldest undelivered message is ever sent, so a resolve never
overtakes its trigger. A failure is retried with exponential back-off (30 s * 2^attempts, ±10 %
jitter, at most 1 h; a 429's ``Retry-After`` wins) and never given up: a page that silently
never arrives is worse than one that arrives late, and the usual fixes (a routing key, a
channel) are made at the receiver without restarting syncwatch. Every fifth failed attempt is
logged as an error. Targets are sent concurrently; each call has a 10 s timeout on the
injected clock, so one dead receiver delays nobody else by more than that.

Secrets (webhook URLs, the routing key) are read when a message is sent and never stored,
logged or put in an error: error text names the status or exception class, passes the
redactor, and never includes the URL.

Bodies (what each renderer returns):

- **webhook** (ours, versioned): ``{"version": 1, "event": "incident.opened" |
  "incident.resolved", "incident": {...}, "runbook_url": "..."}``; ``incident`` is
  ``incident_store.incident_json`` (key, integration, track, cause, attribution, runbook_url,
  started_at, opened_at, recovered_at, resolved_at, duration_s, bad_observations,
  good_observations, causes, status). ``(incident.key, event)`` identifies a notification;
  delivery is at least once, so receivers should expect it twice now and then. Any 2xx is
  success.
- **slack**: an incoming-webhook message, ``text`` (the notification fallback) and one
  ``section`` block whose text links the runbook as ``<url|runbook>`` and whose fields give
  integration, cause, attribution and the times. Sources: api.slack.com/messaging/webhooks
  (``text``/``blocks``, 200 ``ok``); api.slack.com/changelog/2016-05-17-changes-to-errors-for-
  incoming-webhooks (400 invalid_payload, 403 action_prohibited, 404 channel_not_found, 410
  channel_is_archived, 500 rollup_error); api.slack.com/docs/rate-limits (1 message/s, 429 with
  ``Retry-After``). unconfirmed: the section limits (text 3,000 chars, ≤ 10 fields of 2,000) and
  the ``&``/``<``/``>`` escaping are from SDK docs quoting api.slack.com/reference/block-kit and
  …/surfaces/formatting, not read at the source.
- **pagerduty**: an Events API v2 alert event. Trigger: ``routing_key``, ``event_action``,
  ``dedup_key`` = ``syncwatch/<incident key>`` (the same for its resolve), ``payload``
  {summary ≤ 1,024 chars, source ``syncwatch``, severity, timestamp, component = integration,
  group = cause, class = attribution, custom_details = the incident}, ``links`` [the runbook],
  ``client``. Resolve: ``routing_key``, ``event_action``, ``dedup_key`` only. Sources:
  developer.pagerduty.com/docs/events-api-v2/trigger-events (PagerDuty/developer-docs
  ``docs/events-API-v2/02-Trigger-Events.md``), …/overview (202/400/429/5xx and which to retry,
  512 KB), …/rate-limits (≈120 events/min per routing key, 429).

Severity (PagerDuty's critical/error/warning/info): a vendor-attributed cause is ``critical``
(leads are not reaching the CRM and only the vendor can fix it: open a ticket now, the SLA
clock is running), except ``latency``, which is ``error`` (leads arrive, late); a
customer-attributed cause is ``error`` (our own configuration or usage is failing probes and
needs a fix, but no SLA claim depends on it), except ``quota_low``, a ``warning`` (nothing has
failed yet); a monitor-attributed cause is ``warning`` (syncwatch is blind; the syncs may be
fine).
"""

from __future__ import annotations

import asyncio
import random
import sqlite3
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol
from urllib.parse import urlsplit

import httpx
import structlog
from prometheus_client import Gauge

from syncwatch.clock import WAKE_SLACK_S, Clock, Wakeup
from syncwatch.config import Config, PagerDutyTarget, SlackTarget, WebhookTarget
from syncwatch.config.secrets import SecretRef
from syncwatch.durations import format_duration
from syncwatch.errors import ConfigError, StoreError
from syncwatch.http import retry_after, within
from syncwatch.incident_store import RESOLVE, TRIGGER, IncidentStore, OutboxMessage
from syncwatch.redact import REDACTOR

log = structlog.get_logger("syncwatch.notify")

Target = WebhookTarget | SlackTarget | PagerDutyTarget

WEBHOOK_VERSION = 1
EVENT_NAMES = {TRIGGER: "incident.opened", RESOLVE: "incident.resolved"}
CALL_TIMEOUT_S = 10.0
BASE_BACKOFF_S = 30.0
MAX_BACKOFF_S = 3600.0
JITTER = 0.1
"""±10 %: retries of many targets failing together do not all land in the same second."""
MIN_RETRY_S = 1.0
"""A ``Retry-After: 0`` must not turn into a busy loop."""
ESCALATE_EVERY = 5
MAX_IDLE_S = 30.0
"""``run`` looks at the outbox at least this often, even if nobody calls ``wake``."""
OUTBOX_RETRY_S = 10.0
"""While the outbox cannot be written, rounds are this far apart (not one a second)."""
PD_SUMMARY_MAX = 1024
PD_DEDUP_PREFIX = "syncwatch/"
SLACK_TEXT_MAX = 3000
ERROR_SNIPPET_MAX = 200

_SEVERITY_BY_ATTRIBUTION = {"vendor": "critical", "customer": "error", "monitor": "warning"}
_SEVERITY_BY_CAUSE = {"latency": "error", "quota_low": "warning"}


# -- renderers (pure) -----------------------------------------------------------------------


def event_name(message: OutboxMessage) -> str:
    return EVENT_NAMES[message.event]


def render_webhook(message: OutboxMessage) -> dict[str, Any]:
    """The generic webhook body (module docstring)."""
    incident = _incident(message)
    return {
        "version": WEBHOOK_VERSION,
        "event": event_name(message),
        "incident": dict(incident),
        "runbook_url": incident["runbook_url"],
    }


def render_slack(message: OutboxMessage) -> dict[str, Any]:
    """A Slack incoming-webhook message: a plain fallback and one section block."""
    incident = _incident(message)
    opened = message.event == TRIGGER
    headline = (
        f"{'Incident opened' if opened else 'Incident resolved'}: {incident['integration']}"
        f" ({incident['cause']}, attributed to {incident['attribution']})"
    )
    link = f"<{incident['runbook_url']}|runbook>"
    fields = [
        ("Integration", incident["integration"]),
        ("Cause", incident["cause"]),
        ("Attribution", incident["attribution"]),
        ("Started", incident["started_at"]),
        ("Opened", incident["opened_at"]),
    ]
    if not opened:
        duration = incident.get("duration_s")
        fields.append(("Resolved", incident.get("resolved_at")))
        fields.append(("Duration", None if duration is None else format_duration(duration)))
    section = {
        "type": "section",
        "text": {"type": "mrkdwn", "text": _clip(f"*{_mrkdwn(headline)}*\n{link}", SLACK_TEXT_MAX)},
        "fields": [
            {"type": "mrkdwn", "text": _clip(f"*{name}*\n{_mrkdwn(str(value or '-'))}", 2000)}
            for name, value in fields
        ],
    }
    emoji = ":red_circle:" if opened else ":large_green_circle:"
    return {"text": f"{emoji} {_mrkdwn(headline)}: {link}", "blocks": [section]}


def render_pagerduty(message: OutboxMessage, routing_key: str) -> dict[str, Any]:
    """A PagerDuty Events API v2 alert event; a resolve carries only what identifies it."""
    incident = _incident(message)
    base = {
        "routing_key": routing_key,
        "event_action": "trigger" if message.event == TRIGGER else "resolve",
        "dedup_key": dedup_key(incident["key"]),
    }
    if message.event != TRIGGER:
        return base
    return {
        **base,
        "payload": {
            "summary": pagerduty_summary(incident),
            "source": "syncwatch",
            "severity": severity(incident["cause"], incident["attribution"]),
            "timestamp": incident["opened_at"],
            "component": incident["integration"],
            "group": incident["cause"],
            "class": incident["attribution"],
            "custom_details": dict(incident),
        },
        "links": [{"href": incident["runbook_url"], "text": f"Runbook: {incident['cause']}"}],
        "client": "syncwatch",
    }


def dedup_key(incident_key: str) -> str:
    """Stable across trigger, resolve and restarts; ≤ 255 chars, PagerDuty's limit (integration
    names are ≤ 63 chars, so keys are far shorter)."""
    return (PD_DEDUP_PREFIX + incident_key)[:255]


def pagerduty_summary(incident: Mapping[str, Any]) -> str:
    text = (
        f"{incident['integration']}: {incident['cause']} "
        f"(attributed to {incident['attribution']}) since {incident['started_at']}"
    )
    return _clip(text, PD_SUMMARY_MAX)


def severity(cause: str, attribution: str) -> str:
    """PagerDuty severity for an incident (the choice is argued in the module docstring)."""
    return _SEVERITY_BY_CAUSE.get(cause) or _SEVERITY_BY_ATTRIBUTION.get(attribution, "error")


def _incident(message: OutboxMessage) -> Mapping[str, Any]:
    incident: Mapping[str, Any] = message.payload["incident"]
    return incident


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _mrkdwn(text: str) -> str:
    """Slack's three control characters, escaped as its formatting docs require."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


# -- back-off (pure) ------------------------------------------------------------------------


def backoff_s(attempts: int, jitter: float) -> float:
    """Seconds before the next try after ``attempts`` earlier failed ones (0 for the first
    failure); ``jitter`` is the drawn fraction in [-JITTER, JITTER]."""
    exponent = min(max(attempts, 0), 20)
    return min(BASE_BACKOFF_S * 2.0**exponent * (1 + jitter), MAX_BACKOFF_S)


def retry_delay_s(attempts: int, jitter: float, retry_after_s: float | None) -> float:
    """The receiver's ``Retry-After`` when it sent one (it knows best), else the back-off."""
    if retry_after_s is not None:
        return min(max(retry_after_s, MIN_RETRY_S), MAX_BACKOFF_S)
    return backoff_s(attempts, jitter)


# -- delivery (I/O) -------------------------------------------------------------------------


class PendingGauge(Protocol):
    """The one metric the notifier keeps: ``Metrics`` fits."""

    notifications_pending: Gauge


@dataclass(frozen=True)
class Outcome:
    """One attempt: delivered, or the (redacted) reason and the receiver's Retry-After."""

    ok: bool
    error: str = ""
    retry_after_s: float | None = None


class Notifier:
    """Sends the outbox, one task beside the probe loop with its own HTTP client."""

    def __init__(
        self,
        config: Config,
        incidents: IncidentStore,
        clock: Clock,
        metrics: PendingGauge,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        rng: random.Random | None = None,
        on_store_error: Callable[[str, Exception], None] | None = None,
    ) -> None:
        """``transport`` None uses the network; tests and simulations pass the sandbox's.
        ``on_store_error`` is told of each outbox read or write that failed (the daemon logs
        a store outage once); None logs the first failure of each round here."""
        self.incidents = incidents
        self.clock = clock
        self.metrics = metrics
        self.rng = rng or random.Random()
        self.targets: dict[str, Target] = {target.name: target for target in config.notifications}
        self._client = httpx.AsyncClient(transport=transport, timeout=CALL_TIMEOUT_S)
        self._wake = Wakeup()
        self._orphans: set[str] = set()
        self._pending_shown: dict[str, int] = {}
        """What ``notifications_pending`` was last set to, per target."""
        self._nothing_pending = False
        """Set by the last count of the outbox; cleared by ``wake``."""
        self.on_store_error = on_store_error
        self._store_failing = False
        """An outbox read or write failed this round."""
        self._delivered: dict[int, datetime] = {}
        """Messages sent whose delivery the outbox could not record yet: never sent again."""
        self._next_try: dict[int, datetime] = {}
        """Failed messages whose next attempt the outbox could not record yet."""

    def wake(self) -> None:
        """New messages are queued: deliver now rather than at the next look."""
        self._nothing_pending = False
        self._wake.set()

    async def aclose(self) -> None:
        await self._client.aclose()

    async def run(self) -> None:
        """Deliver, then wait for a wake, the next retry or ``MAX_IDLE_S``; forever. Nothing a
        receiver or the store does ends the loop; only cancelling the task does."""
        while True:
            self._wake.clear()
            try:
                await self.deliver_due()
                pause = self._pause_s()
                if self._store_failing:
                    pause = max(pause, OUTBOX_RETRY_S)
            except Exception:  # the loop must outlive any one bad round
                log.exception("notification round failed")
                pause = MAX_IDLE_S
            await self._idle(pause)

    async def deliver_due(self) -> int:
        """Send every target's due messages in order, targets concurrently; how many went.

        When the last look found nothing queued and nobody has woken us since, one count of
        the outbox stands for the whole round: an idle daemon reads one row a look."""
        self._store_failing = False
        if self._nothing_pending and not self._count(idle=True):
            return 0
        counts = await asyncio.gather(*(self._drain(name) for name in self.targets))
        self._count()
        return sum(counts)

    def _count(self, idle: bool = False) -> bool:
        """Refresh the pending figures; whether anything is queued (True when unknown).

        ``idle``: nothing was queued at the last count. While that holds, the figures stand
        and one look at the outbox's index says so, without counting per target."""
        try:
            if idle and not self.incidents.outbox_has_pending():
                return False
            self._account()
        except (StoreError, sqlite3.Error) as exc:
            self._nothing_pending = False  # unknown: keep looking on the timer
            self._store_trouble("read the notification outbox", exc)
        return not self._nothing_pending

    def _store_trouble(self, what: str, exc: Exception) -> None:
        first = not self._store_failing
        self._store_failing = True
        if self.on_store_error is not None:
            self.on_store_error(what, exc)
        elif first:
            log.error(f"cannot {what}", error=REDACTOR.text(str(exc)))

    async def _drain(self, name: str) -> int:
        """One target's queue, oldest first, until a failure or nothing is due."""
        delivered, last = 0, None
        try:
            while (message := self._due_head(name)) is not None and message.id != last:
                last = message.id
                if message.id in self._delivered:  # sent before; only its record failed
                    self._record_delivery(message.id)
                    continue
                if not await self._attempt(self.targets[name], message):
                    break
                delivered += 1
        except (StoreError, sqlite3.Error) as exc:
            self._store_trouble("write the notification outbox", exc)
        return delivered

    def _due_head(self, name: str) -> OutboxMessage | None:
        heads = self.incidents.outbox_heads([name])
        if heads and self._due_at(heads[0]) <= self.clock.now():
            return heads[0]
        return None

    def _due_at(self, message: OutboxMessage) -> datetime:
        """The next attempt, as recorded or, when recording failed, as decided in memory."""
        return max(message.next_attempt_at, self._next_try.get(message.id, message.next_attempt_at))

    def _record_delivery(self, message_id: int) -> None:
        self.incidents.outbox_delivered(message_id, self._delivered[message_id])
        del self._delivered[message_id]

    async def _attempt(self, target: Target, message: OutboxMessage) -> bool:
        """Send one message and record the result; True when it was delivered."""
        bound = log.bind(target=target.name, incident=message.incident, event=message.event)
        outcome = await self._send(target, message)
        now, attempts = self.clock.now(), message.attempts + 1
        self._next_try.pop(message.id, None)
        if outcome.ok:
            self._delivered[message.id] = now  # if the outbox cannot record it, still sent once
            bound.info("notification delivered", attempts=attempts)
            self._record_delivery(message.id)
            return True
        jitter = self.rng.uniform(-JITTER, JITTER)
        delay = retry_delay_s(message.attempts, jitter, outcome.retry_after_s)
        retry_at = now + timedelta(seconds=delay)
        self._next_try[message.id] = retry_at
        self.incidents.outbox_failed(message.id, outcome.error, retry_at)
        del self._next_try[message.id]
        report = bound.error if attempts % ESCALATE_EVERY == 0 else bound.warning
        report(
            "notification failed",
            error=outcome.error,
            attempts=attempts,
            retry_in_s=round(delay, 1),
        )
        return False

    async def _send(self, target: Target, message: OutboxMessage) -> Outcome:
        """POST the rendered body; every failure becomes an ``Outcome`` with safe text."""
        try:
            url, body = _request(target, message)
            request = self._client.post(url, json=body)
            response = await within(self.clock, CALL_TIMEOUT_S, request)
        except ConfigError as exc:  # names the variable or file, never the value
            return Outcome(False, f"secret unavailable: {REDACTOR.text(str(exc))}")
        except TimeoutError:
            return Outcome(False, f"timeout: no response within {CALL_TIMEOUT_S:g} s")
        except httpx.HTTPError as exc:
            detail = REDACTOR.text(str(exc))
            return Outcome(False, f"request failed: {type(exc).__name__}: {detail}".rstrip(": "))
        except Exception as exc:  # e.g. an unparseable URL: its text may quote the URL
            return Outcome(False, f"request failed: {type(exc).__name__}")
        return _outcome(response)

    def _account(self) -> None:
        """Refresh ``notifications_pending``; note, once, messages no target will send."""
        pending = self.incidents.outbox_pending()
        self._nothing_pending = not any(pending.get(name) for name in self.targets)
        for name in self.targets:
            count = pending.get(name, 0)
            if self._pending_shown.get(name) != count:  # an idle look mostly changes nothing
                self.metrics.notifications_pending.labels(name).set(count)
                self._pending_shown[name] = count
        for name in sorted(set(pending) - set(self.targets) - self._orphans):
            self._orphans.add(name)
            log.warning(
                "notifications queued for a target no longer configured are left undelivered",
                target=name,
                pending=pending[name],
            )

    def _pause_s(self) -> float:
        """Until the earliest retry among the targets' heads, within [1 s, MAX_IDLE_S]."""
        if self._nothing_pending:
            return MAX_IDLE_S
        try:
            heads = self.incidents.outbox_heads(self.targets)
        except (StoreError, sqlite3.Error) as exc:
            self._store_trouble("read the notification outbox", exc)
            return OUTBOX_RETRY_S
        if not heads:
            return MAX_IDLE_S
        earliest = min(self._due_at(message) for message in heads)
        seconds = (earliest - self.clock.now()).total_seconds() + WAKE_SLACK_S
        return min(max(seconds, MIN_RETRY_S), MAX_IDLE_S)

    async def _idle(self, seconds: float) -> None:
        await self._wake.wait(self.clock, seconds)


def _request(target: Target, message: OutboxMessage) -> tuple[str, dict[str, Any]]:
    """The URL and body for ``target``, its secret read now and registered for redaction."""
    if isinstance(target, PagerDutyTarget):
        return target.events_url, render_pagerduty(message, _secret(target.routing_key))
    if isinstance(target, SlackTarget):
        return _secret_url(target.webhook_url), render_slack(message)
    return _secret_url(target.url), render_webhook(message)


def _secret(ref: SecretRef) -> str:
    return REDACTOR.add(ref.resolve())


def _secret_url(ref: SecretRef) -> str:
    """A URL secret: the whole URL, and its path and query on their own, are masked wherever
    they appear (an exception may quote either)."""
    url = _secret(ref)
    parts = urlsplit(url)
    for piece in (parts.path, parts.query, f"{parts.path}?{parts.query}"):
        if len(piece.strip("/?")) >= 8:
            REDACTOR.add(piece)
    return url


def _outcome(response: httpx.Response) -> Outcome:
    """2xx is delivered (PagerDuty answers 202); anything else is a failed attempt."""
    status = response.status_code
    if 200 <= status < 300:
        return Outcome(True)
    text = " ".join(response.text.split())[:ERROR_SNIPPET_MAX]
    error = f"HTTP {status}: {REDACTOR.text(text)}" if text else f"HTTP {status}"
    # unconfirmed: whether PagerDuty's 429 carries Retry-After (Slack's does); without one the
    # back-off applies, which PagerDuty's overview asks for anyway ("retry after some time").
    return Outcome(False, error, retry_after(response) if status == 429 else None)
