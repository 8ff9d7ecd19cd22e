"""The sandbox as one ASGI app: every emulated vendor under a prefix standing for its host.

``/hubspot`` is api.hubapi.com, ``/hsforms`` is api.hsforms.com, ``/marketo`` is a Marketo
instance's ``<Munchkin id>.mktorest.com`` (REST and Identity), ``/pardot`` is pi.pardot.com
(and, under ``/pardot/l/``, the form handlers of go.pardot.com), ``/eloqua-login`` is
login.eloqua.com and ``/eloqua`` the Eloqua pod it names (``secure.p0N.eloqua.com``),
``/salesforce`` is a My Domain host (login and instance), ``/dynamics`` is a Dynamics 365
environment (``ORG.crm.dynamics.com``, the Dataverse Web API) and ``/entra`` its token issuer
(login.microsoftonline.com), ``/pagerduty``, ``/slack`` and ``/webhook`` receive incident
notifications (events.pagerduty.com, hooks.slack.com, any operator's endpoint), ``/_sandbox`` is
introspection. An account's ``base_url`` is then
``http://127.0.0.1:PORT/<prefix>`` and the vendor's own paths follow unchanged.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime

from starlette.applications import Starlette
from starlette.routing import Mount
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from syncwatch.clock import Clock, RealClock
from syncwatch.sandbox import (
    control,
    dynamics,
    eloqua,
    entra,
    hubspot,
    marketo,
    notifications,
    pardot,
    salesforce,
)
from syncwatch.sandbox.scenario import Scenario
from syncwatch.sandbox.sync import SyncEngine
from syncwatch.sandbox.world import World

PREFIXES: tuple[tuple[str, str], ...] = (
    ("hubspot", "api.hubapi.com"),
    ("hsforms", "api.hsforms.com"),
    ("marketo", "<Munchkin id>.mktorest.com (REST and Identity)"),
    ("pardot", "pi.pardot.com (and go.pardot.com form handlers under /pardot/l/)"),
    ("eloqua-login", "login.eloqua.com"),
    ("eloqua", "the Eloqua pod (secure.p0N.eloqua.com)"),
    ("salesforce", "My Domain login + instance"),
    ("dynamics", "ORG.crm.dynamics.com (Dataverse Web API)"),
    ("entra", "login.microsoftonline.com"),
    ("pagerduty", "events.pagerduty.com"),
    ("slack", "hooks.slack.com"),
    ("webhook", "any notification endpoint"),
    ("_sandbox", "introspection: state, records, notifications, faults"),
)
"""Every prefix the app mounts and the host it stands for (``syncwatch sandbox`` prints it)."""


def http_date(moment: datetime) -> str:
    """IMF-fixdate (RFC 9110 §5.6.7), ``Sun, 06 Nov 1994 08:49:37 GMT``: what
    ``email.utils.format_datetime(moment, usegmt=True)`` writes for a UTC time, spelled out
    here because the sandbox dates every response and the email module's way costs several
    times as much (and would depend on no locale either)."""
    utc = moment.astimezone(UTC)
    return (
        f"{_DAYS[utc.weekday()]}, {utc.day:02d} {_MONTHS[utc.month - 1]} {utc.year:04d} "
        f"{utc.hour:02d}:{utc.minute:02d}:{utc.second:02d} GMT"
    )


_DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


class ResponseDate:
    """The ``Date`` header every sandbox response carries, from the sandbox's clock, as real
    vendors send it (RFC 9110 §6.6.1: whole seconds), so clients can estimate the vendor's
    clock offset. Formatted once per second of that clock: many responses share a second."""

    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self._second: datetime | None = None
        self._date = b""

    def now(self) -> bytes:
        second = self.clock.now().replace(microsecond=0)
        if second != self._second:
            self._second = second
            self._date = http_date(second).encode("latin-1")
        return self._date

    def stamp(self, headers: Iterable[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
        """``headers`` with the sandbox's ``Date`` in place of any the endpoint set."""
        return [*((k, v) for k, v in headers if k.lower() != b"date"), (b"date", self.now())]


class _DeliverDueSyncs:
    """Before each request, let the connector deliver whatever fell due on the clock; stamp
    every response with the sandbox's ``Date`` (``ResponseDate``)."""

    def __init__(self, app: ASGIApp, sync: SyncEngine) -> None:
        self.app = app
        self.sync = sync
        self.date = ResponseDate(sync.world.clock)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        self.sync.run_due()

        async def send_dated(message: Message) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": self.date.stamp(message.get("headers", []))}
            await send(message)

        await self.app(scope, receive, send_dated)


def create_app(
    scenario: Scenario | None = None, clock: Clock | None = None, seed: int | None = None
) -> Starlette:
    """Build a sandbox; ``app.state.world`` and ``app.state.sync`` expose it to in-process tests."""
    world = World.create(scenario or Scenario(), clock or RealClock(), seed)
    sync = SyncEngine(world)
    app = Starlette(
        routes=[
            Mount("/hubspot", routes=hubspot.crm_routes(world, sync)),
            Mount("/hsforms", routes=hubspot.forms_routes(world, sync)),
            Mount("/marketo", routes=marketo.routes(world, sync)),
            Mount("/pardot", routes=pardot.routes(world, sync)),
            Mount("/eloqua-login", routes=eloqua.login_routes(world)),
            Mount("/eloqua", routes=eloqua.pod_routes(world, sync)),
            Mount("/salesforce", routes=salesforce.routes(world)),
            Mount("/dynamics", routes=dynamics.routes(world)),
            Mount("/entra", routes=entra.routes(world)),
            Mount("/pagerduty", routes=notifications.pagerduty_routes(world)),
            Mount("/slack", routes=notifications.slack_routes(world)),
            Mount("/webhook", routes=notifications.webhook_routes(world)),
            Mount("/_sandbox", routes=control.routes(world, sync)),
        ]
    )
    app.add_middleware(_DeliverDueSyncs, sync=sync)
    app.state.world = world
    app.state.sync = sync
    return app
