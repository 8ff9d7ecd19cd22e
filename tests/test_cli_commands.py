"""run, probe, sweep and demo as a user runs them: real processes on real loopback sockets.

Every command here is a `python -m syncwatch` subprocess talking to a `syncwatch sandbox`
subprocess whose connector delivers in a second or two (FAST_SCENARIO), with a config derived
from config/demo.yaml: accounts pointed at that sandbox, secrets in files, a database in the
test's directory and polls that look after 2 s. The two demos take longest (the daemon starts
each schedule somewhere in its first 10 s), so a module fixture starts them at once and they run
while the other tests do.
"""

from __future__ import annotations

import json
import re
import signal
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from daemon_support import demo_raw
from process_support import Background, background, free_port, syncwatch, wait_for

from syncwatch.daemon import START_JITTER_S

REPO = Path(__file__).resolve().parent.parent
INTEGRATION = "hubspot-to-salesforce"
FAST_SCENARIO = (
    "seed: 4\nsync: {latency: {median: 1s, p95: 2s}}\n"
    "marketo: {sync_latency: {median: 1s, p95: 2s}}\n"
)
SECRETS = {
    "hubspot-token": "hs-token-6f1d2c9e8b7a",
    "salesforce-secret": "sf-secret-3a4b5c6d7e8f",
}
FAST_SCHEDULE: dict[str, Any] = {
    "templates": [
        {"template": "demo-request", "every": "10s", "latency_objective": "30s"},
        {"template": "content-download", "every": "10s", "latency_objective": "30s"},
    ],
    "timeout": "1m",
    "poll": {"first_after": "2s", "every": "5s"},
}
DEMO_DURATION = START_JITTER_S + 1
"""Each schedule's first probe starts within START_JITTER_S, so a shorter demo may send none."""
DEMO_DRAIN = 20


@contextmanager
def sandbox_process(directory: Path) -> Iterator[str]:
    """`syncwatch sandbox` with the fast connector on a free loopback port; yields its origin."""
    scenario = directory / "fast.yaml"
    scenario.write_text(FAST_SCENARIO)
    port = free_port()
    origin = f"http://127.0.0.1:{port}"
    listen = f"127.0.0.1:{port}"
    with background(
        "sandbox", directory, "sandbox", "--listen", listen, "--scenario", str(scenario)
    ) as running:

        def answers() -> bool:
            return httpx.get(f"{origin}/_sandbox/state", timeout=1).status_code == 200

        wait_for("sandbox state", answers, running, within=15)
        yield origin


def synthetic(origin: str) -> dict[str, int]:
    state = httpx.get(f"{origin}/_sandbox/state", timeout=5).json()
    return {side: state[side]["synthetic"] for side in ("hubspot", "marketo", "salesforce")}


# -- configs -------------------------------------------------------------------------------------


def demo_yaml() -> dict[str, Any]:
    """config/demo.yaml as shipped (vendor URLs at 127.0.0.1:8900), with fast schedules."""
    raw: dict[str, Any] = yaml.safe_load((REPO / "config" / "demo.yaml").read_text())
    raw["probe_templates"] = str(REPO / "probes")
    raw["integrations"][0].update(FAST_SCHEDULE)
    raw["integrations"][1].update(
        templates=[
            {"template": "marketo-demo-request", "every": "10s", "latency_objective": "30s"}
        ],
        timeout="1m",
        poll={"first_after": "2s", "every": "5s"},
    )
    return raw


def write_config(directory: Path, origin: str, port: int) -> Path:
    """config/demo.yaml pointed at the sandbox at ``origin``, secrets in files, fast polls."""
    raw = demo_raw(directory, origin, SECRETS)
    raw["integrations"][0].update(FAST_SCHEDULE)
    raw["listen"] = f"127.0.0.1:{port}"
    path = directory / "syncwatch.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


def assert_no_secrets(*outputs: str) -> None:
    for output in outputs:
        for value in SECRETS.values():
            assert value not in output


@pytest.fixture
def sandbox(tmp_path: Path) -> Iterator[str]:
    with sandbox_process(tmp_path) as origin:
        yield origin


# -- probe ---------------------------------------------------------------------------------------


def test_probe_finds_the_lead_reports_its_latency_and_cleans_up(
    sandbox: str, tmp_path: Path
) -> None:
    """One probe per template arrives ok with a latency; both sides are left with no lead."""
    config = str(write_config(tmp_path, sandbox, free_port()))
    probe = ["probe", "--config", config, "--integration", INTEGRATION]

    result = syncwatch(*probe, "--json")
    assert result.returncode == 0, result.stderr
    fields = json.loads(result.stdout)
    assert fields["integration"] == INTEGRATION
    assert fields["template"] == "demo-request"  # the first template by default
    assert fields["outcome"] == "ok"
    assert fields["error_class"] is None
    assert isinstance(fields["latency_s"], float)
    assert 0 <= fields["latency_s"] < 10
    assert synthetic(sandbox) == {"hubspot": 0, "marketo": 0, "salesforce": 0}

    other = syncwatch(*probe, "--template", "content-download")
    assert other.returncode == 0, other.stderr
    rows = (line.partition(" ") for line in other.stdout.splitlines())
    table = {key: value.strip() for key, _, value in rows}
    assert table["template"] == "content-download"
    assert table["outcome"] == "ok"
    assert 0 <= float(table["latency_s"]) < 10
    assert synthetic(sandbox) == {"hubspot": 0, "marketo": 0, "salesforce": 0}
    assert_no_secrets(result.stdout, result.stderr, other.stdout, other.stderr)


def test_probe_that_is_not_found_within_wait_exits_1_as_in_flight(
    sandbox: str, tmp_path: Path
) -> None:
    """--wait 0 gives up before the first look: exit 1, outcome in_flight, lead left for later."""
    config = str(write_config(tmp_path, sandbox, free_port()))
    result = syncwatch("probe", "-c", config, "--integration", INTEGRATION, "--wait", "0", "--json")
    assert result.returncode == 1, result.stderr
    assert json.loads(result.stdout)["outcome"] == "in_flight"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--integration", "nope"], f"no integration named 'nope'; configured: {INTEGRATION}"),
        (
            ["--integration", INTEGRATION, "--template", "nope"],
            f"{INTEGRATION} runs no template 'nope'; it runs demo-request, content-download",
        ),
    ],
)
def test_probe_of_something_not_configured_exits_2_naming_what_is(
    tmp_path: Path, args: list[str], message: str
) -> None:
    """A wrong name is bad input: the message lists what the config has; nothing is sent."""
    config = str(write_config(tmp_path, f"http://127.0.0.1:{free_port()}", free_port()))
    result = syncwatch("probe", "--config", config, *args)
    assert result.returncode == 2
    assert message in result.stderr
    assert "Traceback" not in result.stderr
    assert result.stdout == ""


# -- run and sweep -------------------------------------------------------------------------------


def ok_probes(metrics: str) -> float:
    pattern = re.compile(r'^syncwatch_probes_total\{[^}]*outcome="ok"[^}]*\} (\S+)$', re.M)
    return sum(float(count) for count in pattern.findall(metrics))


def test_run_probes_serves_health_and_stops_cleanly_on_sigterm(
    sandbox: str, tmp_path: Path
) -> None:
    """The daemon answers /healthz and /readyz, counts an ok probe in /metrics, and on SIGTERM
    exits 0 with a final `stopped` event in its JSON logs and no secret anywhere; a dry-run
    sweep of the same config afterwards prints its counts."""
    port = free_port()
    config = str(write_config(tmp_path, sandbox, port))
    web = f"http://127.0.0.1:{port}"
    with background("run", tmp_path, "run", "--config", config) as daemon:
        wait_for(
            "/healthz", lambda: httpx.get(f"{web}/healthz").status_code == 200, daemon, within=15
        )
        wait_for(
            "an ok probe in /metrics",
            lambda: ok_probes(httpx.get(f"{web}/metrics").text) >= 1,
            daemon,
            within=START_JITTER_S + 15,
        )
        assert httpx.get(f"{web}/readyz").status_code == 200
        daemon.process.send_signal(signal.SIGTERM)
        assert daemon.process.wait(timeout=10) == 0
        stdout, stderr = daemon.output()

    events = [json.loads(line) for line in stderr.splitlines() if line.strip()]
    assert events[-1]["event"] == "stopped"
    assert events[-1]["outcomes"]["ok"] >= 1
    assert set(events[-1]["calls"]) == {"hubspot-demo", "salesforce-demo"}
    assert {"in_flight", "cleanup_pending"} <= set(events[-1])
    assert "Traceback" not in stderr
    assert_no_secrets(stdout, stderr)

    sweep = syncwatch("sweep", "--config", config, "--dry-run")
    assert sweep.returncode == 0, sweep.stderr
    assert re.fullmatch(
        r"would delete: \d+ at the sources, \d+ at the destinations\n", sweep.stdout
    )
    assert_no_secrets(sweep.stdout, sweep.stderr)


# -- demo ----------------------------------------------------------------------------------------


@dataclass
class Demo:
    running: Background
    sandbox_origin: str | None


@pytest.fixture(scope="module", autouse=True)
def demos(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Demo]]:
    """Both demos (its own sandbox; --sandbox-url) started as the module starts, run alongside
    the other tests, and checked by test_demo_*. Run from the repository root, as documented."""
    directory = tmp_path_factory.mktemp("demos")
    scenario = directory / "fast.yaml"
    scenario.write_text(FAST_SCENARIO)
    raw = demo_yaml()  # vendor URLs stay at 127.0.0.1:8900, for the demo to re-point
    config = directory / "demo.yaml"
    config.write_text(yaml.safe_dump(raw))
    common = [
        "demo",
        "--duration",
        f"{DEMO_DURATION:g}",
        "--drain",
        str(DEMO_DRAIN),
        "-c",
        str(config),
    ]
    own_dir, url_dir, default_dir = directory / "own", directory / "url", directory / "default"
    for each in (own_dir, url_dir, default_dir):
        each.mkdir()
    own_args = [*common, "--scenario", str(scenario), "--db", str(own_dir / "demo.db")]
    own_args += ["--listen", f"127.0.0.1:{free_port()}"]
    # config/demo.yaml and probes/scenarios/demo.yaml themselves, briefly.
    default_args = ["demo", "--duration", "1", "--drain", "0", "--db", str(default_dir / "demo.db")]
    default_args += ["--listen", f"127.0.0.1:{free_port()}"]
    with (
        background("demo", own_dir, *own_args, cwd=REPO) as own,
        background("demo", default_dir, *default_args, cwd=REPO) as defaults,
        sandbox_process(url_dir) as origin,
    ):
        url_args = [*common, "--sandbox-url", origin, "--db", str(url_dir / "demo.db")]
        url_args += ["--listen", f"127.0.0.1:{free_port()}"]
        with background("demo", url_dir, *url_args, cwd=REPO) as with_url:
            yield {
                "own sandbox": Demo(own, None),
                "--sandbox-url": Demo(with_url, origin),
                "defaults": Demo(defaults, None),
            }


@pytest.mark.parametrize("kind", ["own sandbox", "--sandbox-url"])
def test_demo_prints_a_summary_and_leaves_nothing_behind(demos: dict[str, Demo], kind: str) -> None:
    """Probes by outcome (some ok), p50/p95 latency, calls per probe, and 0 leads left."""
    demo = demos[kind]
    returncode = demo.running.process.wait(timeout=DEMO_DURATION + DEMO_DRAIN + 15)
    stdout, stderr = demo.running.output()
    assert returncode == 0, stderr
    lines = stdout.splitlines()
    outcomes = re.search(r"^probes: .*?\b(\d+) ok\b", stdout, re.M)
    assert outcomes is not None, stdout
    assert int(outcomes[1]) >= 1
    assert re.search(r"^sync latency: p50 \d+\.\ds, p95 \d+\.\ds over \d+ probes$", stdout, re.M)
    assert re.search(r"^vendor API calls: \d+ for \d+ probes, \d+\.\d\d per probe", stdout, re.M)
    assert "synthetic leads left in the sandbox: hubspot 0, marketo 0, salesforce 0" in lines
    assert "incidents: none" in lines  # a healthy scenario: nothing to page anyone about
    if demo.sandbox_origin is not None:
        assert f"sandbox:  {demo.sandbox_origin}/_sandbox/state" in lines
        assert synthetic(demo.sandbox_origin) == {"hubspot": 0, "marketo": 0, "salesforce": 0}
    assert "Traceback" not in stderr


def test_demo_runs_on_the_shipped_config_and_scenario(demos: dict[str, Demo]) -> None:
    """From the repository root with no -c/--scenario: a second of it still ends in a summary
    (too short for a probe to arrive at the shipped 45 s first look, so no outcome is required)."""
    running = demos["defaults"].running
    returncode = running.process.wait(timeout=30)
    stdout, stderr = running.output()
    assert returncode == 0, stderr
    assert re.search(r"^probes: ", stdout, re.M), stdout
    assert re.search(
        r"^synthetic leads left in the sandbox: hubspot \d+, marketo \d+, salesforce \d+$",
        stdout,
        re.M,
    )
    assert "Traceback" not in stderr


# -- bad input -----------------------------------------------------------------------------------


def test_run_with_a_missing_config_exits_2_naming_it(tmp_path: Path) -> None:
    missing = tmp_path / "missing.yaml"
    result = syncwatch("run", "--config", str(missing))
    assert result.returncode == 2
    assert f"{missing}: cannot read" in result.stderr
    assert "Traceback" not in result.stderr


def test_run_on_a_file_that_is_not_a_syncwatch_database_exits_2(tmp_path: Path) -> None:
    """Garbage where the database should be: a clear message, not a traceback, file untouched."""
    config = write_config(tmp_path, f"http://127.0.0.1:{free_port()}", free_port())
    garbage = b"\x00\xffnot sqlite at all\n" * 64
    (tmp_path / "syncwatch.db").write_bytes(garbage)
    result = syncwatch("run", "--config", str(config))
    assert result.returncode == 2
    assert f"{tmp_path / 'syncwatch.db'}: damaged, or not a syncwatch database" in result.stderr
    assert "Traceback" not in result.stderr
    assert (tmp_path / "syncwatch.db").read_bytes() == garbage


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--listen", "nonsense"], "--listen: 'nonsense' is not HOST:PORT"),
        (["--sandbox-url", "127.0.0.1:8900"], "--sandbox-url: '127.0.0.1:8900' is not an http"),
    ],
)
def test_demo_with_bad_flags_exits_2_naming_the_flag(args: list[str], message: str) -> None:
    result = syncwatch("demo", *args, cwd=REPO)
    assert result.returncode == 2
    assert message in result.stderr
    assert "Traceback" not in result.stderr


def test_demo_with_no_sandbox_at_sandbox_url_fails_at_once(tmp_path: Path) -> None:
    """Nothing listening at --sandbox-url: exit 1 before any probing, not a traceback later."""
    url = f"http://127.0.0.1:{free_port()}"
    started = time.monotonic()
    result = syncwatch(
        "demo",
        "--sandbox-url",
        url,
        "--db",
        str(tmp_path / "demo.db"),
        "--duration",
        "30",
        "--listen",
        f"127.0.0.1:{free_port()}",
        cwd=REPO,
    )
    assert result.returncode == 1
    assert f"no sandbox answers at {url}/_sandbox/state" in result.stderr
    assert "Traceback" not in result.stderr
    assert time.monotonic() - started < 15


@pytest.mark.parametrize(
    ("command", "options"),
    [
        ("run", ["--config", "--log-level", "SIGTERM"]),
        ("probe", ["--config", "--integration", "--template", "--wait", "--json"]),
        ("sweep", ["--config", "--dry-run"]),
        ("demo", ["--duration", "--drain", "--scenario", "--sandbox-url", "--db", "--listen"]),
    ],
)
def test_help_explains_each_command(command: str, options: list[str]) -> None:
    result = syncwatch(command, "--help")
    assert result.returncode == 0
    for option in options:
        assert option in result.stdout
