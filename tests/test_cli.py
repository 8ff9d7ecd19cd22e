"""The command line as a user types it: help, version, exit codes, the sandbox on loopback."""

from __future__ import annotations

import json
import re
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from syncwatch import __version__
from syncwatch.cli import app, parse_listen
from syncwatch.events import ApiCall
from syncwatch.store import Store

runner = CliRunner()


def test_version_and_help() -> None:
    """--version prints the version; --help lists the commands with what they do."""
    assert runner.invoke(app, ["--version"]).output.strip() == f"syncwatch {__version__}"
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0
    for command in ("sandbox", "check-config", "run", "probe", "sweep", "quota", "demo"):
        assert command in result.output


@pytest.mark.parametrize(
    ("text", "parsed"),
    [("127.0.0.1:8900", ("127.0.0.1", 8900)), ("[::1]:9000", ("::1", 9000))],
)
def test_listen_addresses(text: str, parsed: tuple[str, int]) -> None:
    """HOST:PORT and bracketed IPv6 both parse."""
    assert parse_listen(text) == parsed


@pytest.mark.parametrize("text", ["8900", "localhost", ":8900", "host:0", "host:99999", "h:x"])
def test_bad_listen_addresses_are_refused(text: str) -> None:
    """Anything but HOST:PORT with a real port is an error naming the value."""
    with pytest.raises(ValueError, match="is not HOST:PORT"):
        parse_listen(text)


def test_sandbox_with_a_bad_listen_address_exits_2() -> None:
    """A typo in --listen is bad input (exit 2) with the flag named."""
    result = runner.invoke(app, ["sandbox", "--listen", "nope"])
    assert result.exit_code == 2
    assert "--listen: 'nope' is not HOST:PORT" in result.output


def test_sandbox_with_a_bad_scenario_lists_every_problem(tmp_path: Path) -> None:
    """An invalid scenario names file and key for each problem and exits 2, serving nothing."""
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "seed: x\nfaults:\n  - {kind: meteor}\n  - {kind: slow, vendor: hubspot, delay: [1]}\n"
        "sync: {latency: {median: 1m, p95: 10s}}\n"
    )
    result = runner.invoke(app, ["sandbox", "--scenario", str(bad)])
    assert result.exit_code == 2
    lines = result.output.strip().splitlines()
    assert f"{bad}: seed: must be a valid integer, unable to parse string as an integer" in lines
    assert any(line.startswith(f"{bad}: faults[0].kind: must be") for line in lines)
    assert f"{bad}: sync.latency: latency needs 0 < median <= p95" in lines
    assert f"{bad}: faults[1].delay: expected a duration such as 30s, 5m or 1h" in lines


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def served_sandbox() -> Iterator[str]:
    """`syncwatch sandbox` as a real process on a loopback port, stopped after the test."""
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "syncwatch", "sandbox", "--listen", f"127.0.0.1:{port}"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    origin = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                httpx.get(f"{origin}/_sandbox/state", timeout=1)
                break
            except httpx.TransportError:
                time.sleep(0.1)
        yield origin
    finally:
        process.terminate()
        process.communicate(timeout=10)


def test_the_sandbox_serves_both_vendors_on_loopback(served_sandbox: str) -> None:
    """A HubSpot contact create and a Salesforce token request both answer over real TCP."""
    contact = httpx.post(
        f"{served_sandbox}/hubspot/crm/v3/objects/contacts",
        headers={"Authorization": "Bearer t"},
        json={"properties": {"email": "syncwatch+cli@probe.syncwatch.example"}},
    )
    assert contact.status_code == 201
    token = httpx.post(
        f"{served_sandbox}/salesforce/services/oauth2/token",
        data={"grant_type": "client_credentials", "client_id": "a", "client_secret": "b"},
    )
    assert token.json()["instance_url"] == f"{served_sandbox}/salesforce"
    state = httpx.get(f"{served_sandbox}/_sandbox/state").json()
    assert state["hubspot"]["synthetic"] == 1


def test_a_slow_fault_outlasts_a_real_client_timeout(served_sandbox: str) -> None:
    """Over real TCP, a live `slow` fault holds the answer past the client's read timeout."""
    fault = {"kind": "slow", "vendor": "hubspot", "delay": "1s", "for": "1m"}
    assert httpx.post(f"{served_sandbox}/_sandbox/faults", json=fault).status_code == 201
    with pytest.raises(httpx.ReadTimeout):
        httpx.get(
            f"{served_sandbox}/hubspot/crm/v3/objects/contacts/1",
            headers={"Authorization": "Bearer t"},
            timeout=httpx.Timeout(5.0, read=0.2),
        )


REPO = Path(__file__).resolve().parent.parent
CONFIG_FIXTURES = Path(__file__).resolve().parent / "fixtures" / "config"


def test_check_config_accepts_the_example_with_a_one_line_summary() -> None:
    """The shipped example passes: exit 0, one summary line on stdout, warnings on stderr only."""
    result = CliRunner().invoke(
        app, ["check-config", "--config", str(REPO / "config" / "syncwatch.example.yaml")]
    )
    assert result.exit_code == 0
    assert result.stdout.strip().splitlines() == [
        f"{REPO / 'config' / 'syncwatch.example.yaml'}: OK — 7 accounts, 1 integration "
        "(2 templates), 1 contract, 3 notification targets"
    ]
    assert "warning:" not in result.stdout


@pytest.mark.parametrize(
    ("fixture", "message"),
    [
        ("invalid-literal-token", "accounts[0].token: literal secrets are not allowed"),
        ("invalid-unknown-key", "acounts: unknown key"),
        ("invalid-bad-duration", "integrations[0].timeout: '2hours' is not a duration"),
        ("invalid-integration-every", "integrations[0].every: must be at least 10s"),
    ],
)
def test_check_config_refuses_bad_files_with_exit_2_naming_file_and_key(
    fixture: str, message: str
) -> None:
    """A literal token, an unknown key or a bad duration: exit 2, FILE: KEY: REASON on stderr."""
    path = CONFIG_FIXTURES / f"{fixture}.yaml"
    result = CliRunner().invoke(app, ["check-config", "--config", str(path)])
    assert result.exit_code == 2
    assert f"{path}: {message}" in result.stderr
    assert result.stdout == ""


def test_check_config_lists_every_problem_at_once() -> None:
    """Several mistakes are all reported in one run, one per line."""
    path = CONFIG_FIXTURES / "invalid-multiple-problems.yaml"
    result = CliRunner().invoke(app, ["check-config", "--config", str(path)])
    assert result.exit_code == 2
    problems = result.stderr.strip().splitlines()
    assert len(problems) >= 3
    assert all(line.startswith(f"{path}: ") for line in problems)


def test_check_config_on_a_missing_file_names_it() -> None:
    """A wrong path is bad input with the path in the message, not a traceback."""
    result = CliRunner().invoke(app, ["check-config", "--config", "no/such/file.yaml"])
    assert result.exit_code == 2
    assert "no/such/file.yaml: cannot read" in result.stderr


def test_quota_reports_own_calls_per_day_and_the_latest_figures(tmp_path: Path) -> None:
    """`syncwatch quota` reads the store: the monitor's calls per account per UTC day, and the
    quota each vendor last reported, without calling any vendor."""
    database = tmp_path / "syncwatch.db"
    config = tmp_path / "syncwatch.yaml"
    config.write_text(f"probe_domain: probe.example.com\ndatabase: {database}\n")
    store = Store.open(database)
    today = datetime.now(UTC).replace(hour=10, minute=0, second=0, microsecond=0)
    for at, account in [
        (today - timedelta(days=1), "salesforce-prod"),
        (today, "salesforce-prod"),
        (today, "salesforce-prod"),
        (today, "hubspot-prod"),
        (today - timedelta(days=30), "hubspot-prod"),  # outside --days 7
    ]:
        store.record_call(
            ApiCall(
                at,
                account.split("-")[0],
                account,
                "query_records",
                200,
                0.1,
                quota_used=40,
                quota_limit=15000,
                quota_window="api-usage",
            )
        )
    store.close()
    result = runner.invoke(app, ["quota", "--config", str(config), "--json"])
    assert result.exit_code == 0, result.output
    body = json.loads(result.output)
    day = today.strftime("%Y-%m-%d")
    yesterday = (today - timedelta(days=1)).strftime("%Y-%m-%d")
    assert body["calls"] == [
        {"account": "hubspot-prod", "day": day, "calls": 1},
        {"account": "salesforce-prod", "day": yesterday, "calls": 1},
        {"account": "salesforce-prod", "day": day, "calls": 2},
    ]
    assert {(q["account"], q["window"], q["used"], q["limit"]) for q in body["quota"]} == {
        ("hubspot-prod", "api-usage", 40, 15000),
        ("salesforce-prod", "api-usage", 40, 15000),
    }
    table = runner.invoke(app, ["quota", "--config", str(config)])
    assert table.exit_code == 0
    assert re.search(rf"^salesforce-prod +{day} +2$", table.output, flags=re.MULTILINE)
