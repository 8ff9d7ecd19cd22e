"""The README's promises: its curl walk-through works, and CI runs its test command."""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path
from urllib.parse import urlencode

import httpx
from starlette.applications import Starlette

from syncwatch.clock import VirtualClock

REPO = Path(__file__).resolve().parent.parent
README = (REPO / "README.md").read_text(encoding="utf-8")


def shell_blocks() -> list[str]:
    return re.findall(r"```sh\n(.*?)```", README, flags=re.DOTALL)


def logical_lines(block: str) -> list[str]:
    """Join backslash continuations and drop comments, as the shell would read them."""
    joined = block.replace("\\\n", " ")
    return [line.strip() for line in joined.splitlines() if line.strip() and line[0] != "#"]


def curl_to_request(line: str, variables: dict[str, str]) -> httpx.Request:
    """Translate the curl flags the README uses into the same HTTP request."""
    for name, value in variables.items():
        line = line.replace(f"${name}", value)
    args = shlex.split(line)
    assert args[0] == "curl", line
    method, headers, data, url, as_query = None, {}, [], "", False
    i = 1
    while i < len(args):
        arg = args[i]
        if arg == "-s":
            pass
        elif arg == "-G":
            as_query = True
        elif arg in ("-X", "-H", "-d", "--data-urlencode"):
            i += 1
            value = args[i]
            if arg == "-X":
                method = value
            elif arg == "-H":
                key, _, header_value = value.partition(":")
                headers[key.strip()] = header_value.strip()
            elif arg == "-d":
                data.append(value)
            else:
                key, _, raw = value.partition("=")
                data.append(urlencode({key: raw}))
        else:
            url = arg
        i += 1
    body = "&".join(data)
    url = url.replace("http://127.0.0.1:8900", "http://sandbox.test")
    if as_query:
        return httpx.Request(method or "GET", f"{url}?{body}", headers=headers)
    if data and "Content-Type" not in headers:
        headers["Content-Type"] = "application/x-www-form-urlencoded"
    return httpx.Request(method or ("POST" if data else "GET"), url, headers=headers, content=body)


async def test_the_curl_walk_through_finds_the_contact_as_a_lead(
    client: httpx.AsyncClient, clock: VirtualClock, sandbox: Starlette
) -> None:
    """Create a contact, get a token, wait, SOQL: the Lead is there, shaped as the README shows."""
    walk_through = next(b for b in shell_blocks() if "/hubspot/crm/v3/objects/contacts" in b)
    variables: dict[str, str] = {}
    last: httpx.Response | None = None
    for line in logical_lines(walk_through):
        if line.startswith("sleep "):
            await clock.advance(float(line.split()[1]))
        elif line.startswith("TOKEN=$("):
            curl = line.removeprefix("TOKEN=$(").split(" | ")[0]
            response = await client.send(curl_to_request(curl, variables))
            variables["TOKEN"] = response.json()["access_token"]
        else:
            last = await client.send(curl_to_request(line, variables))
            assert last.status_code < 300, last.text
    assert last is not None
    example = re.search(r"```json\n(.*?)```", README, flags=re.DOTALL)
    assert example is not None, "the README shows the SOQL answer"
    shown = json.loads(example[1])
    got = last.json()
    assert got["totalSize"] == shown["totalSize"] == 1
    (record,) = got["records"]
    (expected,) = shown["records"]
    assert record.keys() == expected.keys()
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.000\+0000", record["CreatedDate"])
    for key in ("Id", "Email", "LastName", "Company", "attributes"):
        assert record[key] == expected[key], key


def test_ci_runs_exactly_the_readmes_test_command() -> None:
    """.ci/run's command is the README's second command, so CI hides nothing."""
    commands = [
        line
        for block in shell_blocks()
        for line in logical_lines(block)
        if "python3 -m venv" in line
    ]
    assert len(commands) == 2, commands
    run_script = (REPO / ".ci" / "run").read_text(encoding="utf-8")
    assert commands[1] in run_script.splitlines()
    assert commands[1].startswith("scripts/install-tools && python3 -m venv")
    assert commands[1].endswith("scripts/check")
    assert commands[0].startswith("python3 -m venv")
    assert commands[0].endswith("syncwatch demo")


def test_the_check_script_runs_every_check() -> None:
    """Format, lint, types on the package, and the tests — nothing skipped."""
    script = (REPO / "scripts" / "check").read_text(encoding="utf-8").splitlines()
    assert "ruff format --check syncwatch tests bench" in script
    assert "ruff check syncwatch tests bench" in script
    assert "mypy syncwatch bench" in script
    assert any(line.split()[:1] == ["pytest"] for line in script)


def test_the_sandbox_table_names_every_prefix() -> None:
    """README's table of sandbox prefixes keeps up with what the sandbox mounts."""
    from syncwatch.sandbox.app import PREFIXES

    for prefix, _ in PREFIXES:
        assert f"`/{prefix}`" in README, prefix
