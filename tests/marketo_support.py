"""Helpers shared by the Marketo tests: accounts, fixtures, a call recorder, and a Swagger check.

``Swagger`` checks requests and answers against Adobe's published Swagger 2.0 specs (copied
unchanged to tests/fixtures/marketo/swagger): the operation by path and method, required
parameters, and bodies against the referenced schema's required keys, property types and enums.
It is a small hand-written checker rather than ``jsonschema``: Swagger 2.0 schemas are not quite
JSON Schema (``$ref`` siblings, ``format: string``, ``collectionFormat``), the subset used here
is small, and no new test dependency is needed. Formats (``int32``, ``date-time``) are not
checked: the spec calls the usage ``date`` a date-time while the docs show ``2015-10-17``.
"""

from __future__ import annotations

import asyncio
import json
import shutil
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest
from starlette.applications import Starlette

from syncwatch.clock import VirtualClock, settle
from syncwatch.config.accounts import MarketoAccount
from syncwatch.errors import VendorError
from syncwatch.events import ApiCall, QuotaFigure

T = TypeVar("T")
REPO = Path(__file__).resolve().parent.parent
FIXTURES = Path(__file__).resolve().parent / "fixtures" / "marketo"
SECRET = "mkto-secret-5d1c0f3e9a7b42c8"
CLIENT_ID = "3f1c2a7e-0b9d-4e51-a8c6-7d2f9e104b38"
DOMAIN = "probe.syncwatch.example"
PREFIX = "/marketo"


def fixture(name: str) -> Any:
    return json.loads((FIXTURES / name).read_text(encoding="utf-8"))


def marketo_account(secret_file: Path, **overrides: Any) -> MarketoAccount:
    raw = {
        "name": "marketo-test",
        "vendor": "marketo",
        "base_url": f"http://sandbox.test{PREFIX}",
        "client_id": CLIENT_ID,
        "client_secret": {"file": str(secret_file)},
        **overrides,
    }
    return MarketoAccount.model_validate(raw)


class Recorder:
    """The sink the daemon would wire: every attempted call, with its other quota windows."""

    def __init__(self) -> None:
        self.calls: list[ApiCall] = []
        self.windows: list[tuple[QuotaFigure, ...]] = []

    def __call__(self, call: ApiCall, other_windows: tuple[QuotaFigure, ...]) -> None:
        self.calls.append(call)
        self.windows.append(other_windows)

    @property
    def operations(self) -> list[str]:
        return [call.operation for call in self.calls]


async def drive(clock: VirtualClock, work: Awaitable[T], step: float = 0.25) -> T:
    """Run ``work`` to the end, moving the virtual clock only while it waits on it."""
    task = asyncio.ensure_future(work)
    await settle()
    for _ in range(8000):
        if task.done():
            return task.result()
        await clock.advance(step)
    task.cancel()
    raise AssertionError("the work did not finish within 2000 virtual seconds")


async def failure(clock: VirtualClock, work: Awaitable[Any]) -> VendorError:
    with pytest.raises(VendorError) as caught:
        await drive(clock, work)
    return caught.value


class Exchange:
    def __init__(self, request: httpx.Request, status: int, content: bytes) -> None:
        self.request = request
        self.status = status
        self.content = content

    @property
    def body(self) -> Any:
        return json.loads(self.content)


class Recording(httpx.AsyncBaseTransport):
    """Passes requests to the sandbox and keeps each request with its answer."""

    def __init__(self, app: Starlette) -> None:
        self.inner = httpx.ASGITransport(app=app)
        self.exchanges: list[Exchange] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        response = await self.inner.handle_async_request(request)
        content = await response.aread()
        self.exchanges.append(Exchange(request, response.status_code, content))
        return httpx.Response(
            response.status_code, headers=response.headers, content=content, request=request
        )

    def to(self, path_end: str) -> list[Exchange]:
        return [e for e in self.exchanges if e.request.url.path.endswith(path_end)]


class Swagger:
    """Marketo's lead database and identity specs, merged, with a checker for their subset."""

    def __init__(self) -> None:
        self.paths: dict[str, Any] = {}
        self.definitions: dict[str, Any] = {}
        for name in ("swagger-mapi.json", "swagger-identity.json"):
            spec = fixture(f"swagger/{name}")
            assert spec["swagger"] == "2.0"
            self.paths.update(spec["paths"])
            self.definitions.update(spec["definitions"])

    def operation(self, method: str, path: str) -> dict[str, Any]:
        operation: dict[str, Any] = self.paths[path][method.lower()]
        return operation

    def check_exchange(self, exchange: Exchange, *, request: bool = True) -> list[str]:
        """Problems with one request (when asked) and its answer; [] when both conform.

        Only 200 answers have a schema in the spec; other statuses are the documented HTTP-level
        errors (401 from Identity, 413, 414) and are checked by the tests that provoke them.
        """
        path = exchange.request.url.path.removeprefix(PREFIX)
        operation = self.operation(exchange.request.method, path)
        where = f"{exchange.request.method} {path}"
        problems = self.check_request(operation, exchange.request, where) if request else []
        if exchange.status == 200:
            schema = operation["responses"]["200"]["schema"]
            problems += self.check(schema, exchange.body, f"{where} → 200")
        return problems

    def check_request(
        self, operation: dict[str, Any], request: httpx.Request, where: str
    ) -> list[str]:
        problems = []
        query = request.url.params
        declared = {p["name"] for p in operation.get("parameters", []) if p["in"] == "query"}
        problems += [f"{where}: undeclared query parameter {k}" for k in query if k not in declared]
        for parameter in operation.get("parameters", []):
            name, place = parameter["name"], parameter["in"]
            if place == "query" and name in query:
                for value in query.get_list(name):
                    problems += self._scalar(parameter, value, f"{where} ?{name}")
            elif place == "query" and parameter.get("required"):
                problems.append(f"{where}: required query parameter {name} missing")
            elif place == "body":
                body = json.loads(request.content) if request.content else None
                if body is None and parameter.get("required"):
                    problems.append(f"{where}: required body missing")
                elif body is not None:
                    problems += self.check(parameter["schema"], body, f"{where} body")
        return problems

    def _scalar(self, parameter: dict[str, Any], value: str, where: str) -> list[str]:
        kind = parameter["items"]["type"] if parameter["type"] == "array" else parameter["type"]
        if kind == "integer" and not all(v.isdigit() for v in value.split(",")):
            return [f"{where}: {value!r} is not an integer"]
        if "enum" in parameter and value not in parameter["enum"]:
            return [f"{where}: {value!r} not one of {parameter['enum']}"]
        return []

    def check(self, schema: dict[str, Any], value: Any, where: str) -> list[str]:
        """A value against a Swagger 2.0 schema: ``$ref``, type, required, properties, items,
        enum. Objects may carry more keys than declared (a Lead "may have any number of other
        fields")."""
        if "$ref" in schema:
            name = schema["$ref"].removeprefix("#/definitions/")
            return self.check(self.definitions[name], value, f"{where} ({name})")
        kind = schema.get("type", "object")
        if not _is_type(kind, value):
            return [f"{where}: expected {kind}, got {type(value).__name__} {value!r}"[:200]]
        if "enum" in schema and value not in schema["enum"]:
            return [f"{where}: {value!r} not one of {schema['enum']}"]
        problems: list[str] = []
        if kind == "array":
            for i, item in enumerate(value):
                problems += self.check(schema.get("items", {}), item, f"{where}[{i}]")
        if kind == "object":
            problems += [
                f"{where}: missing {k}" for k in schema.get("required", []) if k not in value
            ]
            for key, sub in schema.get("properties", {}).items():
                if key in value:
                    problems += self.check(sub, value[key], f"{where}.{key}")
        return problems


_TYPES: dict[str, type | tuple[type, ...]] = {
    "object": dict,
    "array": list,
    "string": str,
    "boolean": bool,
    "integer": int,
    "number": (int, float),
}


def _is_type(kind: str, value: Any) -> bool:
    if kind in ("integer", "number") and isinstance(value, bool):
        return False
    return isinstance(value, _TYPES[kind])


SWAGGER = Swagger()


# -- a Marketo → Salesforce integration beside the demo's ------------------------------------------

MARKETO_TEMPLATE = """\
# A demo request sent to Marketo (REST field names); Marketo's Salesforce sync makes the Lead.
name: marketo-demo-request
description: Tier 1 lead through Marketo; due in Salesforce within 5 minutes.
fields:
  firstName: Syncwatch
  lastName: "Probe {probe_id}"
  company: Syncwatch Synthetic Lead
  phone: "+1 555 0100"
  title: Head of Operations
  country: "US"
expect:
  Email: "{email}"
  FirstName: Syncwatch
  LastName: "Probe {probe_id}"
  Company: Syncwatch Synthetic Lead
  Phone: "+1 555 0100"
  Title: Head of Operations
  Country: "US"
"""
MARKETO_INTEGRATION = "marketo-to-salesforce"
MARKETO_ACCOUNT = "marketo-demo"


def with_marketo(
    tmp_path: Path, origin: str, method: str = "leads"
) -> Callable[[dict[str, Any]], None]:
    """A config edit: a Marketo account and a Marketo → Salesforce integration on the demo's
    Salesforce account, with the repository's templates plus a Marketo one."""
    probes = tmp_path / "probes"
    probes.mkdir(exist_ok=True)
    for path in (REPO / "probes").glob("*.yaml"):
        shutil.copy(path, probes / path.name)
    (probes / "marketo-demo-request.yaml").write_text(MARKETO_TEMPLATE, encoding="utf-8")
    secret = tmp_path / "marketo-secret"
    secret.write_text("test-marketo-secret-value\n", encoding="utf-8")

    def edit(raw: dict[str, Any]) -> None:
        raw["probe_templates"] = str(probes)
        raw["accounts"].append(
            {
                "name": MARKETO_ACCOUNT,
                "vendor": "marketo",
                "base_url": f"{origin}/marketo",
                "client_id": "syncwatch-demo",
                "client_secret": {"file": str(secret)},
                "push_program": "Syncwatch Probes",
                "quota": {"reserve": 1000, "max_share": 0.01},
            }
        )
        raw["integrations"].append(
            {
                "name": MARKETO_INTEGRATION,
                "source": {"account": MARKETO_ACCOUNT, "method": method},
                "destination": {"account": "salesforce-demo", "object": "Lead"},
                "templates": [
                    {"template": "marketo-demo-request", "every": "1m", "latency_objective": "5m"}
                ],
                "timeout": "2h",
                "poll": {"first_after": "45s", "every": "30s"},
            }
        )

    return edit
