"""Vendor bodies fuzzed against every adapter (issue #8, part 4).

Every adapter the registry builds (each source method, each destination, both Salesforce
flows) runs each of its operations against the in-process sandbox through a respx router; one
response of the operation, chosen by hypothesis, is replaced by garbage (random bytes, text, an
HTML error page with a 200, JSON of the wrong shape), by the real answer truncated or with a
value deep inside it replaced, or by the real answer under a wrong content type. Whatever comes
back, the adapter raises nothing but a ``VendorError`` subclass, every request is recorded as a
call with a DESIGN §6 error class, garbage in a 2xx is ``malformed`` (a query never reads it as
"nothing found", which would blame the sync), and status-borne errors keep their class.

Huge bodies: ``syncwatch.http`` reads a response up to ``MAX_RESPONSE_BYTES`` and refuses the
rest as ``malformed``; the tests stream bodies far past that and measure the memory held.
"""

from __future__ import annotations

import json
import random
import tracemalloc
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import respx
from every_vendor_support import (
    ELOQUA_PAIR,
    HUBSPOT_PAIR,
    MARKETO_PAIR,
    PARDOT_PAIR,
    SALESFORCE_CLIENT_ID,
    every_vendor_config,
    every_vendor_raw,
    every_vendor_scenario,
)
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from marketo_support import Recorder, drive
from pardot_support import HANDLER_PATH
from prometheus_client import CollectorRegistry
from structlog.testing import capture_logs

from syncwatch.clock import VirtualClock
from syncwatch.config import Config, config_from_data
from syncwatch.daemon import Daemon
from syncwatch.errors import ERROR_CLASSES, VendorError
from syncwatch.http import MAX_RESPONSE_BYTES
from syncwatch.sandbox import create_app
from syncwatch.sandbox.transport import InProcessTransport
from syncwatch.simulation import Simulation
from syncwatch.store import Store, to_db_time
from syncwatch.vendors.base import Probe, Record, SourceRef, Wiring, probe_email
from syncwatch.vendors.registry import Adapters, build_adapters

ORIGIN = "http://sandbox.test"
DOMAIN = "probe.syncwatch.example"
HUBSPOT_API_PAIR = "hubspot-api-to-salesforce"
MARKETO_PUSH_PAIR = "marketo-push-to-dynamics"
PARDOT_HANDLER_PAIR = "pardot-handler-to-hubspot"
ELOQUA_JWT_PAIR = "eloqua-to-salesforce-jwt"


def fuzz_config(tmp_path: Path) -> tuple[Config, Config]:
    """The every-vendor config (what the sandbox is fitted to), and the same with one more
    integration per remaining source method and a JWT-bearer Salesforce account, so that every
    adapter the registry can build is built."""
    base = every_vendor_config(tmp_path, ORIGIN)
    raw = every_vendor_raw(tmp_path, ORIGIN)
    marketo = next(a for a in raw["accounts"] if a["vendor"] == "marketo")
    marketo["push_program"] = "Syncwatch Probes"
    pardot = next(a for a in raw["accounts"] if a["vendor"] == "pardot")
    raw["accounts"].append(
        {
            "name": "salesforce-jwt",
            "vendor": "salesforce",
            "base_url": f"{ORIGIN}/salesforce",
            "auth": {**pardot["auth"], "client_id": SALESFORCE_CLIENT_ID},
        }
    )
    first = raw["integrations"]

    def like(name: str, pair: str, **changes: Any) -> dict[str, Any]:
        original = next(i for i in first if i["name"] == pair)
        return {**original, "name": name, **changes}

    raw["integrations"] = [
        *first,
        like(
            HUBSPOT_API_PAIR,
            HUBSPOT_PAIR,
            source={"account": "hubspot-prod", "method": "contacts_api"},
        ),
        like(MARKETO_PUSH_PAIR, MARKETO_PAIR, source={"account": "marketo-prod", "method": "push"}),
        like(
            PARDOT_HANDLER_PAIR,
            PARDOT_PAIR,
            source={
                "account": "pardot-prod",
                "method": "form_handler",
                "form_handler_url": f"{ORIGIN}/pardot/{HANDLER_PATH}",
            },
        ),
        like(
            ELOQUA_JWT_PAIR,
            ELOQUA_PAIR,
            destination={"account": "salesforce-jwt", "object": "Lead"},
        ),
    ]
    return base, config_from_data(raw, tmp_path / "syncwatch.yaml")


@pytest.fixture(scope="module")
def configs(tmp_path_factory: pytest.TempPathFactory) -> tuple[Config, Config]:
    return fuzz_config(tmp_path_factory.mktemp("fuzz"))


# -- what the victim response becomes -------------------------------------------------------------

HTML_PAGE = (
    b"<!DOCTYPE html><html><head><title>502 Bad Gateway</title></head><body><center>"
    b"<h1>502 Bad Gateway</h1></center><hr><center>cloudflare</center></body></html>"
)
JSONISH = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=10),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=12,
)
STATUSES = [200, 201, 202, 204, 400, 401, 403, 404, 409, 429, 500, 502, 503]
CONTENT_TYPES = [
    "application/json",
    "application/json;charset=UTF-8",
    "text/html; charset=utf-8",
    "text/plain",
    "application/octet-stream",
    None,
]


@dataclass(frozen=True)
class Fuzz:
    """How the victim response is replaced (``kind``), with what it needs."""

    kind: str
    status: int | None = None
    content_type: str | None = None
    body: bytes = b""
    value: Any = None
    seed: int = 0

    def garbage(self) -> bool:
        """A body that is not JSON at all in a 200, 201 or 202: only ``malformed`` describes
        it (a 204 has no body by definition, and Eloqua documents it as "no matches")."""
        return (
            self.kind in ("bytes", "text", "html")
            and self.status in (200, 201, 202)
            and not _json_or_empty(self.body)
        )

    def answer(
        self, request: httpx.Request, real: httpx.Response, content: bytes
    ) -> httpx.Response:
        headers = {
            k: v
            for k, v in real.headers.items()
            if k.lower() not in ("content-length", "content-encoding", "content-type")
        }
        status, content_type, body = real.status_code, real.headers.get("content-type"), content
        if self.kind in ("bytes", "text", "html", "json"):
            status, content_type, body = self.status or 200, self.content_type, self.body
        elif self.kind == "truncated":
            body = content[: random.Random(self.seed).randrange(max(len(content), 1))]
        elif self.kind == "mutated":
            body = _mutated(content, self.value, self.seed)
        elif self.kind == "content_type":
            content_type = self.content_type
        if content_type is not None:
            headers["content-type"] = content_type
        return httpx.Response(status, headers=headers, content=body, request=request)


def _json_or_empty(body: bytes) -> bool:
    if not body.strip():
        return True
    try:
        json.loads(body)
    except ValueError:
        return False
    return True


def _mutated(content: bytes, value: Any, seed: int) -> bytes:
    """The real JSON answer with one value somewhere inside it replaced by ``value``."""
    try:
        document = json.loads(content)
    except ValueError:
        return content
    paths: list[tuple[Any, ...]] = []

    def walk(node: Any, at: tuple[Any, ...]) -> None:
        paths.append(at)
        if isinstance(node, dict):
            for key, child in node.items():
                walk(child, (*at, key))
        elif isinstance(node, list):
            for index, child in enumerate(node):
                walk(child, (*at, index))

    walk(document, ())
    path = random.Random(seed).choice(paths)
    if not path:
        return json.dumps(value).encode()
    node = document
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    return json.dumps(document).encode()


FUZZES = st.one_of(
    st.builds(Fuzz, st.just("bytes"), st.sampled_from(STATUSES), st.sampled_from(CONTENT_TYPES),
              st.binary(min_size=1, max_size=200)),
    st.builds(Fuzz, st.just("text"), st.sampled_from(STATUSES), st.sampled_from(CONTENT_TYPES),
              st.text(min_size=1, max_size=200).map(str.encode)),
    st.builds(Fuzz, st.just("html"), st.sampled_from([200, 201, 502, 503]),
              st.sampled_from(["text/html", "application/json", None]), st.just(HTML_PAGE)),
    st.builds(Fuzz, st.just("json"), st.sampled_from(STATUSES),
              st.sampled_from(CONTENT_TYPES[:2]), JSONISH.map(lambda v: json.dumps(v).encode())),
    st.builds(Fuzz, st.just("truncated"), seed=st.integers(0, 2**32)),
    st.builds(Fuzz, st.just("mutated"), value=JSONISH, seed=st.integers(0, 2**32)),
    st.builds(Fuzz, st.just("content_type"),
              content_type=st.sampled_from(["text/html", "text/plain", None])),
)  # fmt: skip


# -- driving one operation -----------------------------------------------------------------------


@dataclass
class Run:
    """One operation against the sandbox, its ``victim``-th request answered by ``fuzz``."""

    config: Config
    scenario_config: Config
    fuzz: Fuzz | None
    victim: int
    requests: list[httpx.Request] = field(default_factory=list)
    recorder: Recorder = field(default_factory=Recorder)
    clock: VirtualClock = field(default_factory=VirtualClock)

    def adapters(self) -> Adapters:
        sandbox = create_app(every_vendor_scenario(self.scenario_config, ORIGIN), self.clock)
        inner = httpx.ASGITransport(app=sandbox)
        router = respx.Router(assert_all_called=False)

        async def answer(request: httpx.Request) -> httpx.Response:
            self.requests.append(request)
            real = await inner.handle_async_request(request)
            content = await real.aread()
            if self.fuzz is None or len(self.requests) != self.victim:
                return httpx.Response(
                    real.status_code, headers=real.headers, content=content, request=request
                )
            return self.fuzz.answer(request, real, content)

        router.route().mock(side_effect=answer)
        transport = httpx.MockTransport(router.async_handler)
        wiring = Wiring(self.clock, self.recorder, transport=transport)
        return build_adapters(self.config, wiring)

    async def operate(self, operation: str) -> Any:
        adapters = self.adapters()
        try:
            return await drive(self.clock, OPERATIONS[operation](adapters, self.clock))
        finally:
            await adapters.aclose()


def probe(integration: str, n: int = 1) -> Probe:
    probe_id = f"fuzz{n:012d}"
    return Probe(probe_id, probe_email(probe_id, DOMAIN), integration, FIELDS[integration])


FIELDS = {
    HUBSPOT_PAIR: {"firstname": "Sync", "lastname": "Probe", "company": "syncwatch"},
    HUBSPOT_API_PAIR: {"firstname": "Sync", "lastname": "Probe", "company": "syncwatch"},
    MARKETO_PAIR: {"firstName": "Sync", "lastName": "Probe", "company": "syncwatch"},
    MARKETO_PUSH_PAIR: {"firstName": "Sync", "lastName": "Probe", "company": "syncwatch"},
    PARDOT_PAIR: {"firstName": "Sync", "lastName": "Probe", "company": "syncwatch"},
    PARDOT_HANDLER_PAIR: {"firstName": "Sync", "lastName": "Probe", "company": "syncwatch"},
    ELOQUA_PAIR: {"firstName": "Sync", "lastName": "Probe", "accountName": "syncwatch"},
    ELOQUA_JWT_PAIR: {"firstName": "Sync", "lastName": "Probe", "accountName": "syncwatch"},
}
SOURCES = list(FIELDS)
DESTINATIONS = {
    "salesforce-prod/Lead": HUBSPOT_PAIR,
    "salesforce-jwt/Lead": ELOQUA_JWT_PAIR,
    "dynamics-prod/lead": MARKETO_PAIR,
    "hubspot-prod/contacts": PARDOT_PAIR,
}
RECORD_IDS = {
    "salesforce-prod": "00Q5e000001AbCdEAK",
    "salesforce-jwt": "00Q5e000001AbCdEAK",
    "dynamics-prod": "7d0f2a1c-9b3e-4f6a-8c2d-1e5b9a7c3f40",
    "hubspot-prod": "51",
}
Operation = Callable[[Adapters, VirtualClock], Awaitable[Any]]


def _source_op(integration: str, what: str) -> Operation:
    async def run(adapters: Adapters, clock: VirtualClock) -> Any:
        source = adapters.sources[integration]
        if what == "inject":
            return await source.inject(probe(integration))
        if what == "delete":
            one = probe(integration)
            refs = [SourceRef(one.probe_id, one.email), SourceRef("fuzz2", "x@" + DOMAIN, "1234")]
            return await source.delete(refs)
        injected = await source.inject(probe(integration, 2))  # something this process made
        await clock.sleep(120)
        return injected, await source.sweep(DOMAIN, clock.now() - timedelta(seconds=60))

    return run


def _destination_op(key: str, integration: str, what: str) -> Operation:
    async def run(adapters: Adapters, clock: VirtualClock) -> Any:
        destination = adapters.destinations[key]
        if what == "find":
            return await destination.find([probe(integration, 1), probe(integration, 2)])
        if what == "delete":
            one = probe(integration)
            record = Record(RECORD_IDS[key.split("/")[0]], one.email, clock.now())
            return await destination.delete([record])
        return await destination.sweep(DOMAIN, clock.now() - timedelta(hours=2))

    return run


OPERATIONS: dict[str, Operation] = {
    **{f"{i}:{w}": _source_op(i, w) for i in SOURCES for w in ("inject", "delete", "sweep")},
    **{
        f"{key}:{w}": _destination_op(key, integration, w)
        for key, integration in DESTINATIONS.items()
        for w in ("find", "delete", "sweep")
    },
}


# -- the properties ------------------------------------------------------------------------------

DELETES = {"archive_contacts", "delete_contact", "delete_prospect", "delete_record", "delete_leads",
           "delete_records"}  # fmt: skip
"""Calls whose documented success carries no body the adapter needs (HubSpot's and Pardot's
204, Dataverse's 204, Eloqua's 200 or 204): a 2xx with junk in it is still done."""
QUERIES = {"query_records", "search_contacts", "query_prospects", "find_leads"}
STATUS_CLASSES: dict[int, set[str | None]] = {
    **{status: {"vendor_5xx"} for status in (500, 502, 503)},
    429: {"rate_limited"},
    401: {"auth"},
    403: {"auth"},
    400: {"validation"},
    404: {"validation", None},  # a delete of a record already gone is done
    409: {"validation", "duplicate"},
}


def check(run: Run, operation: str, outcome: Any) -> None:
    """The properties every fuzzed operation must keep."""
    assert not isinstance(outcome, BaseException) or isinstance(outcome, VendorError), repr(outcome)
    assert len(run.recorder.calls) == len(run.requests), "a request went unrecorded"
    assert {call.error_class for call in run.recorder.calls} <= {None, *ERROR_CLASSES}
    fuzz = run.fuzz
    if fuzz is None or run.victim > len(run.requests):
        return  # the operation made fewer requests: nothing was replaced
    victim = run.recorder.calls[run.victim - 1]
    if fuzz.garbage():
        done = victim.operation in DELETES and victim.error_class is None
        assert victim.error_class == "malformed" or done, (victim, fuzz)
        if operation.endswith(":find") and victim.operation in QUERIES:
            assert isinstance(outcome, VendorError), "garbage read as 'nothing found'"
    elif fuzz.kind in ("bytes", "text", "html", "json") and fuzz.status in STATUS_CLASSES:
        assert victim.error_class in STATUS_CLASSES[fuzz.status], (victim, fuzz)
        assert victim.status == fuzz.status


async def attempt(run: Run, operation: str) -> Any:
    try:
        return await run.operate(operation)
    except Exception as exc:  # checked by ``check``: only VendorError may come out
        return exc


@settings(
    max_examples=200,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    operation=st.sampled_from(sorted(OPERATIONS)),
    victim=st.integers(min_value=1, max_value=3),
    fuzz=FUZZES,
)
async def test_any_answer_to_any_call_of_any_adapter_is_classified_and_recorded(
    configs: tuple[Config, Config], operation: str, victim: int, fuzz: Fuzz
) -> None:
    """Guarantee: whatever one response of an operation holds (random bytes, text, an HTML
    error page with a 200, JSON of the wrong shape, the real answer truncated or with a value
    replaced, the real answer under a wrong content type), every adapter (HubSpot form and
    contacts API, HubSpot CRM, Salesforce by client credentials and by JWT, Marketo leads and
    push, Pardot API and form handler, Eloqua, Dynamics) raises nothing but a VendorError,
    records every request with a DESIGN §6 class, calls 2xx garbage ``malformed`` (a query
    never reads it as "nothing found") and keeps the class a status documents."""
    base, full = configs
    run = Run(full, base, fuzz, victim)
    check(run, operation, await attempt(run, operation))


@pytest.mark.parametrize("operation", sorted(OPERATIONS))
async def test_every_operation_succeeds_against_the_sandbox(
    configs: tuple[Config, Config], operation: str
) -> None:
    """The harness itself: unfuzzed, every operation of every adapter works, with no error
    class recorded (so a fuzzed failure is the fuzz's doing)."""
    base, full = configs
    run = Run(full, base, None, 0)
    outcome = await attempt(run, operation)
    assert not isinstance(outcome, BaseException), repr(outcome)
    assert run.requests and {call.error_class for call in run.recorder.calls} == {None}


# -- huge bodies ---------------------------------------------------------------------------------

CHUNK = 64 * 1024


async def endless(total: int) -> AsyncIterator[bytes]:
    """``total`` bytes of JSON-looking filler, made as it is read (the test holds none of it)."""
    sent = 0
    while sent < total:
        yield b'{"records": [' + b"0," * ((CHUNK - 14) // 2) + b"0"
        sent += CHUNK


class Huge(httpx.AsyncBaseTransport):
    """The sandbox, except that its first answer is a ``total``-byte 200 streamed slowly."""

    def __init__(self, inner: httpx.AsyncBaseTransport, total: int) -> None:
        self.inner, self.total = inner, total
        self.requests = 0

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.requests += 1
        if self.requests == 1:
            headers = {"content-type": "application/json"}
            return httpx.Response(200, headers=headers, content=endless(self.total))
        return await self.inner.handle_async_request(request)


async def huge_answer(
    configs: tuple[Config, Config], operation: str, total: int
) -> tuple[Any, Recorder, int]:
    """Run ``operation`` with its first answer ``total`` bytes long; the outcome, the calls and
    the peak memory traced while it ran."""
    base, full = configs
    clock, recorder = VirtualClock(), Recorder()
    sandbox = create_app(every_vendor_scenario(base, ORIGIN), clock)
    transport = Huge(httpx.ASGITransport(app=sandbox), total)
    adapters = build_adapters(full, Wiring(clock, recorder, transport=transport))
    tracemalloc.start()
    try:
        outcome: Any = await drive(clock, OPERATIONS[operation](adapters, clock))
    except Exception as exc:
        outcome = exc
    finally:
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        await adapters.aclose()
    return outcome, recorder, peak


FIRST_CALLS = [
    f"{pair}:inject" for pair in (HUBSPOT_PAIR, MARKETO_PAIR, PARDOT_PAIR, ELOQUA_PAIR)
] + [f"{key}:find" for key in DESTINATIONS]


@pytest.mark.parametrize("operation", FIRST_CALLS)
async def test_an_endless_answer_is_cut_off_at_the_cap_as_malformed(
    configs: tuple[Config, Config], operation: str
) -> None:
    """Guarantee: an answer far longer than any documented one (here four times the 16 MiB cap,
    streamed) is read only up to ``MAX_RESPONSE_BYTES``: the adapter raises MalformedResponse,
    the call is recorded ``malformed`` with its status, and the memory held while it ran
    stays near the cap, not the body's size."""
    total = 4 * MAX_RESPONSE_BYTES
    outcome, recorder, peak = await huge_answer(configs, operation, total)
    assert isinstance(outcome, VendorError), repr(outcome)
    first = recorder.calls[0]
    assert (first.error_class, first.status) == ("malformed", 200)
    assert f"longer than {MAX_RESPONSE_BYTES} bytes" in str(outcome) or any(
        call.error_class == "malformed" for call in recorder.calls
    )
    assert peak < 2 * MAX_RESPONSE_BYTES + 8 * 1024 * 1024, f"held {peak / 2**20:.0f} MiB"


async def test_a_several_megabyte_html_page_with_a_200_is_malformed(
    configs: tuple[Config, Config],
) -> None:
    """Guarantee: a body of several MB under the cap (an 8 MiB HTML error page with a 200 to
    a Salesforce query) is read once and classified ``malformed``; nothing holds more than a
    few copies of it."""
    base, full = configs
    page = b"<html><body>" + b"<p>upstream error</p>" * (8 * 2**20 // 21) + b"</body></html>"
    run = Run(full, base, Fuzz("html", 200, "text/html", page), victim=2)
    tracemalloc.start()
    try:
        outcome = await attempt(run, "salesforce-prod/Lead:find")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    check(run, "salesforce-prod/Lead:find", outcome)
    assert run.recorder.calls[1].error_class == "malformed"
    assert peak < 5 * len(page), f"held {peak / 2**20:.0f} MiB for an 8 MiB page"


# -- the daemon under a stream of bad answers -----------------------------------------------------

BAD_ANSWERS = [
    Fuzz("bytes", 200, "application/json", bytes(range(7, 200, 3))),
    Fuzz("html", 200, "text/html", HTML_PAGE),
    Fuzz("html", 502, "text/html", HTML_PAGE),
    Fuzz("json", 200, "application/json", b'{"unexpected": [true, null]}'),
    Fuzz("json", 200, "application/json", b"[]"),
    Fuzz("text", 429, "text/plain", b"slow down"),
    Fuzz("json", 401, "application/json", b'{"error": "nope"}'),
    Fuzz("json", 400, "application/json", b'{"errors": "a string"}'),
    Fuzz("truncated", seed=7),
    Fuzz("mutated", value=None, seed=11),
    Fuzz("mutated", value={"deep": ["x"]}, seed=13),
    Fuzz("content_type", content_type="text/html"),
]


class BadAnswers(httpx.AsyncBaseTransport):
    """The sandbox, except that until ``until_s`` (monotonic) a seeded ``rate`` of the vendor
    answers is replaced by one of ``BAD_ANSWERS``."""

    def __init__(
        self, inner: httpx.AsyncBaseTransport, clock: VirtualClock, until_s: float
    ) -> None:
        self.inner, self.clock, self.until_s = inner, clock, until_s
        self.rng = random.Random(8)
        self.replaced = 0

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        real = await self.inner.handle_async_request(request)
        content = await real.aread()
        vendor_call = request.url.path.split("/")[1] not in ("webhook", "slack", "pagerduty")
        if vendor_call and self.clock.monotonic() < self.until_s and self.rng.random() < 0.15:
            self.replaced += 1
            return self.rng.choice(BAD_ANSWERS).answer(request, real, content)
        return httpx.Response(real.status_code, headers=real.headers, content=content)


async def test_the_daemon_outlives_an_hour_of_bad_answers_from_every_vendor(
    tmp_path: Path,
) -> None:
    """Guarantee: the daemon never dies of a bad response. For an hour, 15 % of every vendor's
    answers are garbage, HTML with a 200, JSON of the wrong shape, truncated or mutated, or
    error statuses; the daemon keeps probing all four integrations, logs no unexpected failure
    (no traceback), records every call with a DESIGN §6 class, and once the answers are good
    again its probes succeed."""
    config = every_vendor_config(tmp_path, ORIGIN)
    clock = VirtualClock()
    sandbox = create_app(every_vendor_scenario(config, ORIGIN), clock)
    store = Store.open(config.database)
    transport = BadAnswers(InProcessTransport(sandbox), clock, until_s=3600)
    daemon = Daemon(
        config, store, clock, CollectorRegistry(), transport, random.Random(3), serve_http=False
    )
    simulation = Simulation(config, store, clock, sandbox)
    with capture_logs() as logs:
        await simulation.run(2 * 3600, daemon=daemon, drain_s=1800)

    assert transport.replaced >= 50
    assert not [event for event in logs if "exc_info" in event or event["log_level"] == "critical"]
    classes = {row["error_class"] for row in store.calls()}
    assert "malformed" in classes and classes <= {None, *ERROR_CLASSES}
    rows = list(store.db.query("SELECT * FROM probes"))
    late = [
        row
        for row in rows
        if row["scheduled_at"] >= to_db_time(clock.now() - timedelta(minutes=50))
    ]
    for pair in (HUBSPOT_PAIR, MARKETO_PAIR, PARDOT_PAIR, ELOQUA_PAIR):
        assert any(row["integration"] == pair and row["outcome"] == "ok" for row in late), pair
    store.close()
