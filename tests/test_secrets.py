"""No secret leaves the process (issue #8, part 5).

The daemon runs for hours of virtual time against the in-process sandbox with recognisable
fake secrets for every account kind the registry knows (HubSpot private-app token, Salesforce
client secret, a JWT-bearer private key for Account Engagement, Marketo client secret, Eloqua
password, Entra client secret) and every notification target (a webhook URL with tokens in its
path and query, a Slack webhook URL, a PagerDuty routing key). A HubSpot outage opens and
resolves an incident whose notifications go out (the webhook receiver failing for a while
first); tokens expire so every OAuth vendor re-authenticates. Then each secret is searched for,
raw and in every encoding a vendor call gives it (percent-encoded, form-encoded, base64, the
Eloqua ``Basic`` credential, JSON-escaped, each line of the PEM key), in:

- the logs at every level: structlog at debug through the shipped pipeline (JSON renderer and
  redactor) and every stdlib logger at DEBUG (httpx, httpcore, uvicorn);
- the database file and its WAL;
- ``/metrics``, ``/status``, ``/api/v1/incidents``, ``/api/v1/integrations``, ``/readyz``;
- every report and export (``report credits`` csv, json and html, ``export events``,
  ``report scorecard`` md, csv and json, ``quota`` table and json);
- every error message of failing authentication (each adapter against a sandbox that refuses
  the credentials, and the daemon's own messages and stored details from such a run).

The access tokens the vendors hand out are searched for too. Marketo's Identity call carries its
secret in a query string; the last test makes it over real sockets (uvicorn on loopback) with
httpx's and httpcore's loggers at DEBUG.
"""

from __future__ import annotations

import base64
import io
import json
import logging
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote, quote_plus

import httpx
import pytest
import structlog
import yaml
from every_vendor_support import (
    ELOQUA_COMPANY,
    ELOQUA_USER,
    every_vendor_config,
    every_vendor_raw,
    every_vendor_scenario,
    secrets,
)
from marketo_support import Recorder, drive
from prometheus_client import CollectorRegistry
from typer.testing import CliRunner

from syncwatch.cli import app
from syncwatch.clock import RealClock, VirtualClock
from syncwatch.config import Config
from syncwatch.daemon import Daemon
from syncwatch.errors import VendorError
from syncwatch.logs import configure_logging
from syncwatch.runbooks import Runbooks, default_directory
from syncwatch.sandbox import create_app
from syncwatch.sandbox.transport import InProcessTransport
from syncwatch.simulation import Simulation, inline
from syncwatch.status import StatusBoard
from syncwatch.store import Store
from syncwatch.vendors.base import Probe, Wiring, probe_email
from syncwatch.vendors.registry import build_adapters
from syncwatch.web import create_web_app, serve

ORIGIN = "http://sandbox.test"
MONTH, WEEK = "2026-10", "2026-W41"
HOURS = 3


@pytest.fixture(autouse=True)
def restore_logging() -> Iterator[None]:
    """Whatever a test configures (structlog, stdlib levels and handlers) is put back."""
    root = logging.getLogger()
    levels = {name: logging.getLogger(name).level for name in ("", "httpx", "httpcore")}
    handlers = list(root.handlers)
    yield
    structlog.reset_defaults()
    for name, level in levels.items():
        logging.getLogger(name).setLevel(level)
    root.handlers[:] = handlers


# -- what to look for, and where -----------------------------------------------------------------


def needles(values: dict[str, str]) -> dict[str, str]:
    """Every form each secret could take on its way out, keyed by a label for the message."""
    found: dict[str, str] = {}

    def add(label: str, text: str) -> None:
        if len(text) >= 6:
            found[text] = label

    for name, value in values.items():
        for label, form in (
            ("raw", value),
            ("percent-encoded", quote(value, safe="")),
            ("path-encoded", quote(value)),
            ("form-encoded", quote_plus(value)),
            ("json-escaped", json.dumps(value)[1:-1]),
            ("base64", base64.b64encode(value.encode()).decode()),
            ("base64url", base64.urlsafe_b64encode(value.encode()).decode().rstrip("=")),
        ):
            add(f"{name} ({label})", form)
        if name == "pardot-private-key":
            for line in value.splitlines():
                if not line.startswith("-----"):
                    add(f"{name} (a line of the PEM)", line)
        if name in ("webhook-url", "slack-url"):  # the tokens inside the URLs, alone
            for token in re.findall(r"[A-Z]+SECRET[A-Za-z0-9]+", value):
                add(f"{name} (token {token[:8]}…)", token)
    basic = f"{ELOQUA_COMPANY}\\{ELOQUA_USER}:{values['eloqua-password']}"
    add("eloqua-password (Basic credential)", base64.b64encode(basic.encode()).decode())
    return found


def leaks(where: str, text: str | bytes, looked_for: dict[str, str]) -> list[str]:
    haystack = text if isinstance(text, bytes) else text.encode("utf-8", "replace")
    return [
        f"{label} in {where}" for needle, label in looked_for.items() if needle.encode() in haystack
    ]


class Tokens(httpx.AsyncBaseTransport):
    """The sandbox, noting every access token it hands out or is shown (they are secrets too)."""

    def __init__(self, inner: httpx.AsyncBaseTransport) -> None:
        self.inner = inner
        self.seen: set[str] = set()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        authorization = request.headers.get("authorization", "")
        if authorization.lower().startswith("bearer "):
            self.seen.add(authorization.split(" ", 1)[1])
        response = await self.inner.handle_async_request(request)
        content = await response.aread()
        if b"access_token" in content:
            try:
                token = json.loads(content).get("access_token")
            except (ValueError, AttributeError):
                token = None
            if isinstance(token, str):
                self.seen.add(token)
        return httpx.Response(response.status_code, headers=response.headers, content=content)


@dataclass
class Captured:
    """Everything the process wrote where someone could read it."""

    texts: dict[str, str | bytes] = field(default_factory=dict)

    def add(self, where: str, text: str | bytes) -> None:
        self.texts[where] = text

    def leaks(self, looked_for: dict[str, str]) -> list[str]:
        return [
            leak for where, text in self.texts.items() for leak in leaks(where, text, looked_for)
        ]


@dataclass
class LogCapture:
    """structlog through the shipped pipeline at debug, and every stdlib logger at DEBUG."""

    structured: io.StringIO = field(default_factory=io.StringIO)
    stdlib: io.StringIO = field(default_factory=io.StringIO)

    def start(self, clock: Any) -> None:
        configure_logging(clock, level="debug", json=True, stream=self.structured)
        handler = logging.StreamHandler(self.stdlib)
        handler.setFormatter(logging.Formatter("%(name)s %(levelname)s %(message)s"))
        handler.setLevel(logging.DEBUG)
        root = logging.getLogger()
        root.addHandler(handler)
        root.setLevel(logging.INFO)  # every library's INFO; httpx's and httpcore's DEBUG too
        for name in ("httpx", "httpcore"):
            logging.getLogger(name).setLevel(logging.DEBUG)

    def into(self, captured: Captured, label: str) -> None:
        captured.add(f"{label} structlog", self.structured.getvalue())
        captured.add(f"{label} stdlib logging", self.stdlib.getvalue())


def invoke(*args: str | Path) -> str:
    result = CliRunner().invoke(app, [str(arg) for arg in args])
    assert result.exit_code == 0, (args, result.output, result.exception)
    return result.stdout + result.stderr


async def web_pages(daemon: Daemon, config: Config, store: Store, clock: Any) -> dict[str, str]:
    """What the daemon serves, as it serves it."""
    board = StatusBoard(
        config, store, clock, daemon.metrics.contracts, daily_windows=daemon.adapters.daily_windows
    )
    web = create_web_app(
        daemon.metrics, daemon.health, status=board, runbooks=Runbooks(default_directory())
    )
    pages: dict[str, str] = {}
    transport = httpx.ASGITransport(app=web)
    async with httpx.AsyncClient(transport=transport, base_url="http://daemon.test") as client:
        for path in (
            "/metrics",
            "/status",
            "/api/v1/incidents?status=all",
            "/api/v1/integrations",
            "/readyz",
            "/healthz",
            "/",
            "/runbooks",
            "/runbooks/auth",
        ):
            response = await client.get(path)
            assert response.status_code in (200, 503), (path, response.status_code)
            pages[path] = response.text
    return pages


def reports(config_file: Path) -> dict[str, str]:
    """Every report and export the CLI writes from the store."""
    base = ["--config", str(config_file)]
    month, week = [*base, "--month", MONTH], [*base, "--week", WEEK]
    return {
        "report credits csv": invoke("report", "credits", *month, "--format", "csv"),
        "report credits json": invoke("report", "credits", *month, "--format", "json"),
        "report credits html": invoke("report", "credits", *month, "--format", "html"),
        "export events": invoke("export", "events", *month),
        "report scorecard md": invoke("report", "scorecard", *week),
        "report scorecard csv": invoke("report", "scorecard", *week, "--format", "csv"),
        "report scorecard json": invoke("report", "scorecard", *week, "--format", "json"),
        "quota": invoke("quota", *base, "--days", "3650"),
        "quota json": invoke("quota", *base, "--days", "3650", "--json"),
        "check-config": invoke("check-config", *base),
    }


def database_bytes(path: Path) -> dict[str, bytes]:
    return {
        f"database {p.name}": p.read_bytes()
        for p in (path, Path(f"{path}-wal"), Path(f"{path}-journal"))
        if p.exists()
    }


# -- the run ---------------------------------------------------------------------------------------

FAULTS: list[dict[str, Any]] = [
    {"kind": "outage", "vendor": "hubspot", "after": "40m", "for": "30m"},
    {"kind": "outage", "vendor": "webhook", "after": "40m", "for": "40m"},
    {"kind": "token_expiry", "vendor": "salesforce", "after": "25m"},
    {"kind": "token_expiry", "vendor": "marketo", "after": "35m"},
    {"kind": "token_expiry", "vendor": "dynamics", "after": "45m"},
    {"kind": "token_expiry", "vendor": "pardot", "after": "55m"},
    {"kind": "token_expiry", "vendor": "eloqua", "after": "65m", "for": "3m"},
    {"kind": "token_expiry", "vendor": "hubspot", "after": "120m", "for": "4m"},
]


@dataclass
class Demo:
    config: Config
    config_file: Path
    store: Store
    daemon: Daemon
    tokens: Tokens
    sandbox: Any


async def run_demo(tmp_path: Path, logs: LogCapture, scenario_changes: dict[str, Any]) -> Demo:
    raw = every_vendor_raw(tmp_path, ORIGIN)
    config_file = tmp_path / "syncwatch.yaml"
    config_file.write_text(yaml.safe_dump(raw), encoding="utf-8")
    config = every_vendor_config(tmp_path, ORIGIN)
    clock = VirtualClock()
    scenario = every_vendor_scenario(
        config,
        ORIGIN,
        sync={"latency": {"median": "30s", "p95": "90s"}},
        **scenario_changes,
    )
    sandbox = create_app(scenario, clock)
    store = Store.open(config.database)
    tokens = Tokens(InProcessTransport(sandbox))
    logs.start(clock)
    # Inline, as a simulation's own daemon runs it: a worker thread's real time would let the
    # virtual clock run on while the month-to-date figures are worked out, so the drain (and
    # the slow probes concluding in it) would vary with the machine's load.
    daemon = Daemon(
        config, store, clock, CollectorRegistry(), tokens, serve_http=False, offload=inline
    )
    await Simulation(config, store, clock, sandbox).run(HOURS * 3600, daemon=daemon, drain_s=1800)
    return Demo(config, config_file, store, daemon, tokens, sandbox)


async def test_hours_of_probing_incidents_and_reauthentication_leak_no_secret(
    tmp_path: Path,
) -> None:
    """Guarantee: after three virtual hours of every vendor probed, an incident opened,
    notified (a receiver failing first) and resolved, and every OAuth token expired and
    renewed, no configured secret, in any encoding, and no access token appears in the logs
    (every level), the database and its WAL, any page the daemon serves, or any report."""
    logs = LogCapture()
    demo = await run_demo(tmp_path, logs, {"faults": FAULTS})
    captured = Captured()
    logs.into(captured, "daemon")
    for path, text in (
        await web_pages(demo.daemon, demo.config, demo.store, demo.daemon.clock)
    ).items():
        captured.add(path, text)
    demo.store.db.execute("PRAGMA wal_checkpoint(PASSIVE)")
    for where, data in database_bytes(demo.config.database).items():
        captured.add(f"{where} (running)", data)
    demo.store.close()
    for where, data in database_bytes(demo.config.database).items():
        captured.add(where, data)
    for where, text in reports(demo.config_file).items():
        captured.add(where, text)

    # It happened: incidents, notifications to every target, re-authentication, refusals.
    async with httpx.AsyncClient(
        transport=InProcessTransport(demo.sandbox), base_url=ORIGIN
    ) as client:
        inbox = (await client.get("/_sandbox/notifications")).json()["notifications"]
    for kind in ("webhook", "slack", "pagerduty"):
        assert any(n["kind"] == kind and n["status"] < 300 for n in inbox), kind
    store = Store.open(demo.config.database)
    try:
        calls = list(store.calls())
        incidents = list(store.db.query("SELECT * FROM incidents"))
        failed_deliveries = [
            row for row in store.db.query("SELECT * FROM outbox WHERE attempts > 1")
        ]
    finally:
        store.close()
    tokens_asked = {c["account"] for c in calls if c["operation"] == "request_token"}
    assert {"salesforce-prod", "marketo-prod", "pardot-prod", "dynamics-prod"} <= tokens_asked
    for account in ("salesforce-prod", "marketo-prod", "pardot-prod", "dynamics-prod"):
        asked = [c for c in calls if c["account"] == account and c["operation"] == "request_token"]
        assert len(asked) >= 2, f"{account} never re-authenticated"
    assert any(c["error_class"] == "auth" for c in calls), "no refused credential was seen"
    assert incidents and all(row["resolved_at"] for row in incidents)
    assert failed_deliveries, "no notification failed first"
    assert len(demo.tokens.seen) >= 8
    for label in ("daemon structlog", "daemon stdlib logging"):
        assert len(captured.texts[label]) > 10_000, f"{label} captured almost nothing"
    for level in ("info", "warning", "error"):  # (syncwatch logs next to nothing at debug)
        assert f'"level": "{level}"' in str(captured.texts["daemon structlog"]), level
    assert "httpx INFO HTTP Request: POST" in str(captured.texts["daemon stdlib logging"])

    looked_for = needles(secrets(ORIGIN))
    looked_for.update({token: "an access token" for token in demo.tokens.seen if len(token) >= 8})
    assert captured.leaks(looked_for) == []


def refusing(scenario: Any) -> Any:
    """The sandbox pinned to other credentials: every vendor answers 401 (or its own refusal)."""
    scenario.hubspot.token = "pat-na1-someone-elses-token"
    scenario.salesforce.client_id = "3MVG9-another-app"  # refuses the JWT's issuer too
    scenario.salesforce.client_secret = "another-secret"
    scenario.marketo.client_secret = "another-secret"
    scenario.eloqua.password = "another-password"
    scenario.dynamics.client_secret = "another-secret"
    return scenario


def messages(exc: BaseException) -> list[str]:
    """Every text an error carries: str, repr, args, and the same down its chain."""
    found: list[str] = []
    seen: BaseException | None = exc
    while seen is not None:
        found += [str(seen), repr(seen), *(str(arg) for arg in seen.args)]
        seen = seen.__cause__ or seen.__context__
    return found


async def test_refused_credentials_leak_no_secret_in_any_error_message(tmp_path: Path) -> None:
    """Guarantee: when every vendor refuses the credentials (401s, OAuth ``invalid_client`` and
    ``invalid_grant``, Marketo 601/603, Eloqua's 401), no error an adapter raises (its text,
    repr and whole cause chain), no log line at any level, no stored probe detail or outbox
    error, and no page or report quotes a secret in any encoding."""
    config = every_vendor_config(tmp_path, ORIGIN)
    clock = VirtualClock()
    sandbox = create_app(refusing(every_vendor_scenario(config, ORIGIN)), clock)
    logs = LogCapture()
    logs.start(clock)
    captured = Captured()

    # Each adapter on its own: the exception as the caller gets it.
    recorder = Recorder()
    adapters = build_adapters(
        config, Wiring(clock, recorder, transport=InProcessTransport(sandbox))
    )
    refusals: list[VendorError] = []
    for name, source in adapters.sources.items():
        probe_id = f"refused{len(refusals):09d}"
        probe = Probe(probe_id, probe_email(probe_id, config.probe_domain), name, {"lastName": "X"})
        with pytest.raises(VendorError) as caught:
            await drive(clock, source.inject(probe))
        refusals.append(caught.value)
    for key, destination in adapters.destinations.items():
        probe = Probe(
            "refusedfind000000", probe_email("refusedfind000000", config.probe_domain), key
        )
        with pytest.raises(VendorError) as caught:
            await drive(clock, destination.find([probe]))
        refusals.append(caught.value)
    await adapters.aclose()
    assert {refusal.error_class for refusal in refusals} == {"auth"}, refusals
    for n, refusal in enumerate(refusals):
        for m, text in enumerate(messages(refusal)):
            captured.add(f"error {n}.{m} ({type(refusal).__name__})", text)
    for n, call in enumerate(recorder.calls):
        captured.add(f"recorded call {n}", repr(call))

    # The daemon against the same refusals: its logs, stored details, pages and reports.
    store = Store.open(config.database)
    daemon = Daemon(
        config,
        store,
        clock,
        CollectorRegistry(),
        InProcessTransport(sandbox),
        serve_http=False,
        offload=inline,
    )
    await Simulation(config, store, clock, sandbox).run(1800, daemon=daemon, drain_s=600)
    details = [row["detail"] for row in store.db.query("SELECT detail FROM probes")]
    assert any(detail and "401" in detail for detail in details), details[:5]
    for path, text in (await web_pages(daemon, config, store, clock)).items():
        captured.add(path, text)
    store.close()
    for where, data in database_bytes(config.database).items():
        captured.add(where, data)
    config_file = tmp_path / "syncwatch.yaml"
    config_file.write_text(yaml.safe_dump(every_vendor_raw(tmp_path, ORIGIN)), encoding="utf-8")
    for where, text in reports(config_file).items():
        captured.add(where, text)
    logs.into(captured, "refused")
    assert "401" in str(captured.texts["refused structlog"])

    assert captured.leaks(needles(secrets(ORIGIN))) == []


async def test_the_marketo_identity_secret_in_a_query_string_is_never_logged(
    tmp_path: Path,
) -> None:
    """Guarantee: Marketo's documented Identity call puts ``client_secret`` in the query
    string; made over real sockets (the sandbox under uvicorn on loopback) with httpx's and
    httpcore's loggers at DEBUG and structlog at debug, no log line holds the secret, raw or
    percent-encoded, and the line httpx writes for that request shows it masked."""
    placeholder = every_vendor_config(tmp_path, ORIGIN)
    sandbox = create_app(every_vendor_scenario(placeholder, ORIGIN), RealClock())
    server = await serve(sandbox, "127.0.0.1", 0, date_header=False)
    try:
        origin = server.url
        config = every_vendor_config(tmp_path, origin)
        logs = LogCapture()
        logs.start(RealClock())
        recorder = Recorder()
        adapters = build_adapters(config, Wiring(RealClock(), recorder))  # real sockets
        try:
            source = adapters.sources["marketo-to-dynamics"]
            email = probe_email("mktoloopback0001", config.probe_domain)
            fields = {"lastName": "Probe", "company": "syncwatch"}
            probe = Probe("mktoloopback0001", email, "marketo-to-dynamics", fields)
            injected = await source.inject(probe)
        finally:
            await adapters.aclose()
    finally:
        await server.stop()
    assert injected.source_ref
    assert [call.operation for call in recorder.calls][:2] == ["request_token", "sync_lead"]
    stdlib = logs.stdlib.getvalue()
    assert "httpcore.connection DEBUG connect_tcp.started" in stdlib
    assert "httpcore.http11 DEBUG send_request_headers.started" in stdlib
    identity = [line for line in stdlib.splitlines() if "/identity/oauth/token" in line]
    assert identity and all("client_secret=%5Bredacted%5D" in line or "[redacted]" in line
                            for line in identity), identity  # fmt: skip
    captured = Captured()
    logs.into(captured, "loopback")
    assert captured.leaks(needles(secrets(origin))) == []
