"""The simulation's parts: any config re-pointed at the sandbox, the sandbox fitted to the config's
pairs, the span a number of days makes in the contracts' time zones, and the in-process transport
answering as httpx's ASGI transport does."""

from __future__ import annotations

import os
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from daemon_support import demo_raw
from dynamics_support import with_dynamics
from pardot_support import with_pardot
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from syncwatch.config import Config, config_from_data
from syncwatch.errors import ConfigError
from syncwatch.sandbox.scenario import DEFAULT_FORM_GUID, Scenario, load_scenario
from syncwatch.sandbox.transport import InProcessTransport
from syncwatch.sandbox_config import SECRET_PREFIX, repoint, sandbox_config
from syncwatch.simulate import Span, complete_months, span_for
from syncwatch.simulation import scenario_for

REPO = Path(__file__).resolve().parent.parent
ORIGIN = "http://sandbox.invalid"
EVERY_VENDOR: list[dict[str, Any]] = [
    {"vendor": "hubspot", "name": "hs"},
    {"vendor": "salesforce", "name": "sf", "auth_url": "https://login.salesforce.com"},
    {"vendor": "marketo", "name": "mk", "identity_url": "https://123.mktorest.com/identity"},
    {"vendor": "pardot", "name": "pd"},
    {"vendor": "eloqua", "name": "el"},
    {"vendor": "eloqua", "name": "el-pinned", "base_url": "https://secure.p03.eloqua.com"},
    {"vendor": "dynamics", "name": "dy", "base_url": "https://contoso.crm.dynamics.com"},
]


def write(tmp_path: Path, raw: dict[str, Any], name: str = "config.yaml") -> Path:
    path = tmp_path / name
    path.write_text(yaml.safe_dump(raw), encoding="utf-8")
    return path


def fitted(tmp_path: Path, raw: dict[str, Any], scenario: Scenario | None = None) -> Scenario:
    config = sandbox_config(write(tmp_path, raw), ORIGIN, tmp_path / "s.db", secrets="replace")
    return scenario_for(config, scenario or Scenario())


def test_every_vendor_host_moves_to_its_sandbox_prefix() -> None:
    """Each account URL key goes to the prefix standing for its host; keys that default from
    another, or whose absence means discovery, move only where written."""
    moved = repoint({"accounts": EVERY_VENDOR}, ORIGIN)["accounts"]
    urls = [{k: v for k, v in account.items() if k.endswith("_url")} for account in moved]
    assert urls == [
        {"base_url": f"{ORIGIN}/hubspot", "forms_url": f"{ORIGIN}/hsforms"},
        {"base_url": f"{ORIGIN}/salesforce", "auth_url": f"{ORIGIN}/salesforce"},
        {"base_url": f"{ORIGIN}/marketo", "identity_url": f"{ORIGIN}/marketo/identity"},
        {"base_url": f"{ORIGIN}/pardot", "auth_url": f"{ORIGIN}/salesforce"},
        {"login_url": f"{ORIGIN}/eloqua-login"},
        {"login_url": f"{ORIGIN}/eloqua-login", "base_url": f"{ORIGIN}/eloqua"},
        {"base_url": f"{ORIGIN}/dynamics", "auth_url": f"{ORIGIN}/entra"},
    ]


def test_notification_endpoints_form_handlers_and_self_check_move_too() -> None:
    """PagerDuty's events URL, a Pardot form handler's endpoint (from ``/l/`` on) and the
    self-check URL all point at the sandbox; anything else is left as written."""
    raw = {
        "self_check_url": "https://example.com/ping",
        "notifications": [{"kind": "pagerduty", "name": "pd", "routing_key": {"env": "K"}}],
        "integrations": [
            {"name": "p", "source": {"form_handler_url": "https://go.example.com/l/1/2/x"}},
            {"name": "q", "source": {"account": "hs"}},
        ],
        "probe_domain": "probe.example.com",
    }
    moved = repoint(raw, ORIGIN)
    assert moved["self_check_url"] == f"{ORIGIN}/_sandbox/state"
    assert moved["notifications"][0]["events_url"] == f"{ORIGIN}/pagerduty/v2/enqueue"
    assert moved["integrations"][0]["source"]["form_handler_url"] == f"{ORIGIN}/pardot/l/1/2/x"
    assert moved["integrations"][1] == raw["integrations"][1]
    assert moved["probe_domain"] == "probe.example.com"


def test_replaced_secrets_are_placeholders_and_never_the_operators(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With ``secrets="replace"`` every reference is one of ours: the operator's variable (set
    here) is not read, and the notification secrets reach the sandbox's own receivers."""
    monkeypatch.setenv("SYNCWATCH_DEMO_HUBSPOT_TOKEN", "the-operators-real-token")
    config = sandbox_config(
        REPO / "config" / "demo.yaml", ORIGIN, tmp_path / "s.db", secrets="replace"
    )
    refs = [account.token for account in config.accounts if account.vendor == "hubspot"]
    assert [ref.env for ref in refs] == [f"{SECRET_PREFIX}1"]
    assert all(ref.resolve() != "the-operators-real-token" for ref in refs)
    webhook, slack, pagerduty = config.notifications
    assert webhook.url.resolve() == f"{ORIGIN}/webhook/demo-webhook"
    assert slack.webhook_url.resolve().startswith(f"{ORIGIN}/slack/services/")
    assert len(pagerduty.routing_key.resolve()) == 32
    assert os.environ[f"{SECRET_PREFIX}1"] == "sandbox-placeholder"


def test_the_demo_scenario_fits_the_demo_config_unchanged_but_for_pins(tmp_path: Path) -> None:
    """The demo's pairs are what the sandbox does by default: connectors to Salesforce Leads,
    the default form and portal; only the probe domain is the config's."""
    scenario = load_scenario(REPO / "probes" / "scenarios" / "demo.yaml")
    raw = yaml.safe_load((REPO / "config" / "demo.yaml").read_text())
    raw["probe_templates"] = str(REPO / "probes")
    result = fitted(tmp_path, raw, scenario)
    assert (result.sync.destination, result.sync.sobject) == ("salesforce", "Lead")
    assert result.marketo.sync_to == "salesforce"
    assert [form.guid for form in result.hubspot.forms] == [DEFAULT_FORM_GUID]
    assert result.hubspot.portal_id == "20112233"
    assert result.sync.latency == scenario.sync.latency
    assert result.seed == scenario.seed


def test_connectors_forms_portal_and_business_unit_follow_the_config(tmp_path: Path) -> None:
    """A form on another portal and GUID, a Pardot form handler and business unit, Marketo and
    HubSpot into Dynamics: the fitted sandbox has each, taking what the templates send."""
    raw = demo_raw(tmp_path)
    with_dynamics(tmp_path, ORIGIN)(raw)
    with_pardot(tmp_path, ORIGIN, method="form_handler")(raw)
    hubspot = next(a for a in raw["accounts"] if a["vendor"] == "hubspot")
    hubspot["portal_id"] = "4400123"
    pair = next(i for i in raw["integrations"] if i["name"] == "hubspot-to-dynamics")
    pair["source"]["form_guid"] = "0a1b2c3d-0000-4000-8000-00000000abcd"
    pardot = next(a for a in raw["accounts"] if a["vendor"] == "pardot")
    pardot["business_unit_id"] = "0Uv000000000001AAA"
    raw["accounts"].append(demo_raw(tmp_path)["accounts"][1])  # Salesforce, for Pardot's pair
    pardot_pair = next(i for i in raw["integrations"] if i["source"]["account"] == "pardot-demo")
    pardot_pair["source"]["form_handler_url"] = "https://go.example.com/l/77/2026-11-01/probe"
    result = fitted(tmp_path, raw)
    assert (result.sync.destination, result.marketo.sync_to, result.pardot.sync_to) == (
        "dynamics",
        "dynamics",
        "salesforce",
    )
    assert result.hubspot.portal_id == "4400123"
    form = next(f for f in result.hubspot.forms if f.guid.startswith("0a1b2c3d"))
    assert {"email", "firstname", "jobtitle"} <= set(form.fields)
    assert result.pardot.business_unit_id == "0Uv000000000001AAA"
    handler = next(h for h in result.pardot.form_handlers if h.path.startswith("l/77"))
    assert handler.path == "l/77/2026-11-01/probe" and handler.fields["jobTitle"] == "jobTitle"
    assert result.hubspot.token is None and result.dynamics.client_secret is None


def test_pairs_the_one_sandbox_cannot_serve_are_listed(tmp_path: Path) -> None:
    """Each problem names the integration: a second destination for one source vendor, and an
    object the connector does not create."""
    raw = demo_raw(tmp_path, marketo=True)
    with_dynamics(tmp_path, ORIGIN)(raw)
    raw["accounts"].append(demo_raw(tmp_path)["accounts"][1])
    raw["integrations"].append(
        {
            "name": "marketo-contacts",
            "source": {"account": "marketo-demo", "method": "leads"},
            "destination": {"account": "salesforce-demo", "object": "Contact"},
            "templates": [{"template": "marketo-demo-request", "every": "2m"}],
            "latency_objective": "5m",
            "timeout": "2h",
        }
    )
    raw["integrations"].append({**raw["integrations"][0], "name": "hubspot-sf"})
    raw["integrations"][-1]["destination"] = {"account": "salesforce-demo", "object": "Lead"}
    raw["integrations"][-1]["templates"] = [
        {"template": "demo-request", "every": "1m", "latency_objective": "5m"}
    ]
    with pytest.raises(ConfigError) as refused:
        fitted(tmp_path, raw)
    text = "\n".join(refused.value.problems)
    assert "marketo-contacts: the sandbox's marketo connector creates Lead in salesforce" in text
    assert "hubspot-sf: the sandbox has one hubspot connector" in text


@pytest.mark.parametrize(
    ("zones", "first", "days", "start", "end"),
    [
        (
            [],
            date(2026, 10, 1),
            1.0,
            datetime(2026, 10, 1, tzinfo=UTC),
            datetime(2026, 10, 2, tzinfo=UTC),
        ),
        (
            ["America/New_York", "America/Chicago"],
            date(2026, 10, 1),
            31.0,
            datetime(2026, 10, 1, 4, tzinfo=UTC),
            datetime(2026, 11, 1, 5, tzinfo=UTC),
        ),
        (  # New York leaves daylight time on 1 November: that local day has 25 hours
            ["America/New_York"],
            date(2026, 11, 1),
            1.0,
            datetime(2026, 11, 1, 4, tzinfo=UTC),
            datetime(2026, 11, 2, 5, tzinfo=UTC),
        ),
        (
            ["Europe/Berlin", "UTC"],
            date(2026, 10, 1),
            0.25,
            datetime(2026, 9, 30, 22, tzinfo=UTC),
            datetime(2026, 10, 1, 6, tzinfo=UTC),
        ),
    ],
)
def test_days_run_from_the_first_contract_midnight_to_the_last(
    zones: list[str], first: date, days: float, start: datetime, end: datetime, tmp_path: Path
) -> None:
    """N days from the first day's earliest local midnight to the latest N days later."""
    config = contracts_config(tmp_path, zones)
    assert span_for(config, first, days) == Span(start, end)


def test_a_month_is_complete_only_where_the_span_covers_it(tmp_path: Path) -> None:
    """31 days from 1 October covers October in New York and Chicago, not November's start."""
    config = contracts_config(tmp_path, ["America/New_York", "America/Chicago"])
    whole = span_for(config, date(2026, 10, 1), 31)
    assert complete_months(config, whole) == {"2026-10": ["c0", "c1"]}
    assert complete_months(config, span_for(config, date(2026, 10, 2), 31)) == {}


def contracts_config(tmp_path: Path, zones: list[str]) -> Config:
    raw = demo_raw(tmp_path)
    template = raw["contracts"][0]
    raw["contracts"] = [
        {**template, "name": f"c{i}", "timezone": zone} for i, zone in enumerate(zones)
    ]
    return config_from_data(raw, tmp_path / "c.yaml")


async def echo(request: Request) -> Response:
    if request.query_params.get("fail"):
        raise RuntimeError("the app failed")
    body = await request.body()
    return JSONResponse(
        {"method": request.method, "path": request.url.path, "query": request.url.query,
         "body": body.decode(), "auth": request.headers.get("authorization")},
        status_code=201,
        headers={"x-seen": "yes"},
    )  # fmt: skip


APP = Starlette(routes=[Route("/a/{rest:path}", echo, methods=["GET", "POST", "HEAD"])])


@pytest.mark.parametrize(
    ("method", "url", "kwargs"),
    [
        ("GET", "/a/b%20c?q=SELECT+Id+FROM+Lead&x=1", {}),
        ("POST", "/a/form", {"data": {"email": "p@probe.example", "n": "1"}}),
        ("POST", "/a/json", {"json": {"k": [1, 2]}, "headers": {"Authorization": "Bearer t"}}),
        ("HEAD", "/a/x", {}),
        ("GET", "/nowhere", {}),
    ],
)
async def test_the_in_process_transport_answers_as_asgi_transport_does(
    method: str, url: str, kwargs: dict[str, Any]
) -> None:
    """Status, headers and body are the same through either transport."""
    answers = []
    for transport in (httpx.ASGITransport(app=APP), InProcessTransport(APP)):
        async with httpx.AsyncClient(transport=transport, base_url="http://sandbox.test") as http:
            response = await http.request(method, url, **kwargs)
            answers.append((response.status_code, response.headers, response.content))
    assert answers[0] == answers[1]


async def test_an_app_exception_reaches_the_client() -> None:
    """As with ASGITransport(raise_app_exceptions=True): the error is not turned into a 500."""
    async with httpx.AsyncClient(
        transport=InProcessTransport(APP), base_url="http://sandbox.test"
    ) as http:
        with pytest.raises(RuntimeError, match="the app failed"):
            await http.get("/a/x?fail=1")


async def test_the_sandbox_answers_a_bad_day_the_same_straight_or_through_the_app(
    tmp_path: Path,
) -> None:
    """Fourteen hours of the bad-day scenario (outage, rate limit, slow calls, HTML and
    truncated bodies, an expired token, a paused and lossy connector, corrupt and refused
    leads), once with the sandbox's endpoints called straight and once through the whole ASGI
    app: every call and every probe the daemon stores is the same, row for row."""
    from syncwatch.simulation import demo_simulation

    tables = []
    for direct in (True, False):
        (tmp_path / str(direct)).mkdir()
        scenario = load_scenario(REPO / "probes" / "scenarios" / "bad-day.yaml")
        sim = demo_simulation(
            REPO / "config" / "demo.yaml", scenario, tmp_path / str(direct) / "s.db", seed=4
        )
        transport = InProcessTransport(sim.sandbox, direct=direct)
        assert (transport.direct is not None) is direct
        sim.transport = lambda transport=transport: transport  # type: ignore[method-assign]
        await sim.run(14 * 3600, drain_s=3600)
        db = sim.store.db
        tables.append(
            (
                db.execute("SELECT * FROM api_calls ORDER BY id").fetchall(),
                db.execute("SELECT * FROM probes ORDER BY scheduled_at, probe_id").fetchall(),
            )
        )
        sim.store.close()
    calls, probes = tables[0]
    assert len(calls) > 1000 and len(probes) > 500
    assert {row[5] for row in calls} >= {200, 429, 503}  # status: the faults were answered
    assert tables[0] == tables[1]


def test_the_sandbox_remembers_each_paths_route_but_not_its_parameters() -> None:
    """A method and path are matched once; every call still gets a scope, and path
    parameters, of its own, and a method the route does not take still goes the app's way."""
    from syncwatch.sandbox.app import create_app
    from syncwatch.sandbox.transport import DirectRoutes

    routes = DirectRoutes.of(create_app(Scenario()))
    assert routes is not None
    path = "/salesforce/services/data/v62.0/sobjects/Lead/00Q000000000001AAA"
    request = {"type": "http", "method": "GET", "path": path, "root_path": "", "headers": []}
    first = routes.route(dict(request))
    assert first is not None
    first[1]["path_params"]["record_id"] = "changed by the endpoint"
    second = routes.route({**request, "headers": [(b"x-second", b"1")]})
    assert second is not None and second[0] is first[0]
    assert second[1]["path_params"] == {
        "version": "v62.0",
        "sobject": "Lead",
        "record_id": path[-18:],
    }
    assert second[1]["headers"] == [(b"x-second", b"1")]
    assert second[1]["root_path"] == "/salesforce"
    assert routes.route({**request, "method": "PUT"}) is None  # 405: the app answers
    assert routes.route({**request, "path": "/nowhere"}) is None
