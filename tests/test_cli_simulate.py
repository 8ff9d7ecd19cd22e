"""``syncwatch simulate`` as a user runs it (CliRunner): a short span of the demo config whose
summary the report commands confirm from the database it left, the same database for the same
seed, a config with non-demo vendor pairs and no readable secrets, and every exit-2 path.

Spans are a few virtual hours (``--days 0.05`` plus the contracts' time-zone spread): the figures
that matter are the agreements, which do not need a month.
"""

from __future__ import annotations

import gc
import json
import re
from datetime import date, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import Result
from daemon_support import demo_raw
from dynamics_support import with_dynamics
from typer.testing import CliRunner

from syncwatch.cli import app
from syncwatch.sandbox.scenario import load_scenario
from syncwatch.simulate import Request, prepare, simulate
from syncwatch.store import Store

REPO = Path(__file__).resolve().parent.parent
START = "2026-10-01"
SHORT = ("--days", "0.05", "--start", START)


def invoke(*args: str | Path) -> Result:
    return CliRunner().invoke(app, [str(arg) for arg in args])


def summary(output: str) -> dict[str, str]:
    """The summary's ``label: value`` lines, by label."""
    lines = [line.split(": ", 1) for line in output.splitlines() if ": " in line]
    return {label.strip(): value.strip() for label, value in lines}


def rows(database: Path) -> list[tuple[Any, ...]]:
    store = Store.open(database)
    try:
        return store.db.execute(
            "SELECT probe_id, integration, outcome, latency_s, scheduled_at FROM probes "
            "ORDER BY probe_id"
        ).fetchall()
    finally:
        store.close()


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Result, Path]:
    """The demo config for a short span, seed 7 (shared: one run serves several tests)."""
    database = tmp_path_factory.mktemp("simulate") / "sim.db"
    return invoke("simulate", *SHORT, "--seed", "7", "--db", database), database


def test_the_summary_says_what_ran_and_what_to_run_next(demo_run: tuple[Result, Path]) -> None:
    """Exit 0; the span runs from the first contract's midnight (New York, EDT) to the last
    one's (Chicago) plus 0.05 days; probes and calls are counted; the next command names the
    config written beside the database."""
    result, database = demo_run
    assert result.exit_code == 0, result.output
    fields = summary(result.stdout)
    assert fields["virtual span"].startswith("2026-10-01 04:00 UTC → 2026-10-01 06:12 UTC")
    assert fields["virtual span"].endswith("seed 7")
    assert re.fullmatch(r"\d+ ok", fields["probes"]), fields["probes"]
    assert re.fullmatch(r"\d+, \d\.\d\d per probe", fields["vendor API calls"])
    assert fields["database"] == str(database.resolve())
    assert fields["config"].startswith(str(database.with_suffix(".yaml")))
    assert fields["complete contract months"] == "none"
    assert fields["next"] == (
        f"syncwatch report credits --config {database.with_suffix('.yaml')} --month 2026-10"
    )


def test_report_and_export_agree_with_the_summary(demo_run: tuple[Result, Path]) -> None:
    """`export events` on the database holds every probe and call the summary counted, and
    `report credits` counts each contract vendor's calls in its local month as the export
    does."""
    result, database = demo_run
    fields = summary(result.stdout)
    config = database.with_suffix(".yaml")
    exported = invoke("export", "events", "--config", config, "--month", "2026-10")
    assert exported.exit_code == 0, exported.output
    events = [json.loads(line) for line in exported.stdout.splitlines()]
    probes = [e for e in events if e["kind"] == "probe"]
    calls = [e for e in events if e["kind"] == "call"]
    assert f"{len(probes)} ok" == fields["probes"]
    assert fields["vendor API calls"].startswith(f"{len(calls)}, ")
    credits = invoke("report", "credits", "--config", config, "--month", "2026-10", "--format=json")
    assert credits.exit_code == 0, credits.output
    claims = {claim["contract"]: claim for claim in json.loads(credits.stdout)}
    assert set(claims) == {"hubspot-demo", "marketo-demo"}
    for claim in claims.values():
        start, end = (datetime.fromisoformat(claim[key]) for key in ("period_start", "period_end"))
        mine = [
            call
            for call in calls
            if call["vendor"] == claim["vendor"]
            and start <= datetime.fromisoformat(call["at"]) < end
        ]
        assert claim["api_calls"] == len(mine) > 0


def test_the_same_seed_gives_the_same_database(
    demo_run: tuple[Result, Path], tmp_path: Path
) -> None:
    """A second run with seed 7 writes the same probes, outcomes, latencies and times."""
    _, first = demo_run
    again = invoke("simulate", *SHORT, "--seed", "7", "--db", tmp_path / "again.db")
    assert again.exit_code == 0, again.output
    assert rows(tmp_path / "again.db") == rows(first)
    assert (
        summary(again.stdout)["vendor API calls"] == summary(demo_run[0].stdout)["vendor API calls"]
    )


def test_a_database_holding_probes_is_refused(demo_run: tuple[Result, Path]) -> None:
    """Simulated evidence is never mixed into a database that already has some."""
    _, database = demo_run
    result = invoke("simulate", *SHORT, "--db", database)
    assert result.exit_code == 2
    assert "already holds" in result.stderr and "choose a new file" in result.stderr


def test_non_demo_pairs_simulate_without_reading_any_secret(tmp_path: Path) -> None:
    """HubSpot → Dynamics 365 and Marketo → Dynamics 365, every secret an unset variable or a
    missing file, re-pointed from hosts that do not exist: probes arrive and end ok."""
    raw = demo_raw(tmp_path, origin="https://contoso.example")
    with_dynamics(tmp_path, "https://contoso.example")(raw)
    for account in raw["accounts"]:
        key = "token" if account["vendor"] == "hubspot" else "client_secret"
        account[key] = {"env": "SYNCWATCH_TEST_NEVER_SET"}
    raw["accounts"][-1]["client_secret"] = {"file": str(tmp_path / "no-such-secret")}
    config = tmp_path / "dynamics.yaml"
    config.write_text(yaml.safe_dump(raw), encoding="utf-8")
    result = invoke("simulate", "--config", config, *SHORT, "--db", tmp_path / "d.db")
    assert result.exit_code == 0, result.output
    fields = summary(result.stdout)
    assert re.fullmatch(r"\d+ ok", fields["probes"]), fields["probes"]
    assert fields["complete contract months"] == "none (the config has no contracts)"
    outcomes = {(integration, outcome) for _, integration, outcome, *_ in rows(tmp_path / "d.db")}
    assert outcomes == {("hubspot-to-dynamics", "ok"), ("marketo-to-dynamics", "ok")}


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--config", "no/such/config.yaml"), "--config: no/such/config.yaml: no such file"),
        (("--days", "0"), "--days: must be more than 0"),
        (("--days", "-1"), "--days: must be more than 0"),
        (("--start", "2026-13-01"), "--start: '2026-13-01' is not a date, YYYY-MM-DD"),
        (("--log-level", "loud"), "--log-level: must be one of"),
    ],
)
def test_bad_options_exit_2_saying_which(args: tuple[str, ...], message: str) -> None:
    """Each bad option is named in the message; nothing is simulated."""
    result = invoke("simulate", *args)
    assert result.exit_code == 2
    assert message in result.stderr


def test_a_bad_scenario_exits_2_naming_file_and_key(tmp_path: Path) -> None:
    """A scenario with an unknown key is refused before anything runs."""
    scenario = tmp_path / "scenario.yaml"
    scenario.write_text("sync:\n  latency: {median: 20s, p95: 60s}\n  colour: blue\n")
    result = invoke("simulate", "--scenario", scenario, "--db", tmp_path / "s.db")
    assert result.exit_code == 2
    assert f"{scenario}: sync.colour" in result.stderr
    assert not (tmp_path / "s.db").exists()


def test_pairs_one_sandbox_cannot_serve_together_exit_2(tmp_path: Path) -> None:
    """HubSpot's one sandbox connector cannot write to Salesforce and Dynamics at once."""
    raw = demo_raw(tmp_path)
    with_both = with_dynamics(tmp_path, "https://contoso.example")
    demo_pairs = list(raw["integrations"])
    with_both(raw)
    raw["accounts"].append(
        next(a for a in demo_raw(tmp_path)["accounts"] if a["vendor"] == "salesforce")
    )
    raw["integrations"] = [*demo_pairs[:1], raw["integrations"][0]]
    config = tmp_path / "both.yaml"
    config.write_text(yaml.safe_dump(raw), encoding="utf-8")
    result = invoke("simulate", "--config", config, "--db", tmp_path / "b.db")
    assert result.exit_code == 2
    assert "the sandbox has one hubspot connector" in result.stderr


def test_the_config_s_own_database_is_refused(tmp_path: Path) -> None:
    """`--db` naming the database the config itself writes is refused (real evidence)."""
    raw = demo_raw(tmp_path)
    config = tmp_path / "own.yaml"
    config.write_text(yaml.safe_dump(raw), encoding="utf-8")
    result = invoke("simulate", "--config", config, "--db", raw["database"])
    assert result.exit_code == 2
    assert "is the config's own database" in result.stderr


def test_help_explains_every_option() -> None:
    """`simulate --help` describes each option, with the defaults it promises."""
    result = invoke("simulate", "--help")
    assert result.exit_code == 0
    text = " ".join(result.stdout.split())
    for option in ("--config", "--days", "--start", "--scenario", "--seed", "--db", "--log-level"):
        assert option in text
    for promise in ("shipped demo config", "1st of the current month", "never one that holds"):
        assert promise in text


async def test_each_day_is_reported_and_what_it_left_is_frozen_until_the_run_ends(
    tmp_path: Path,
) -> None:
    """A month's run prints a line a simulated day, and after each one puts what the day left
    alive out of the collector's sight (a full collection walked every earlier day again);
    everything is back in sight when the run ends."""
    request = Request(
        REPO / "config" / "demo.yaml",
        load_scenario(REPO / "probes" / "scenarios" / "demo.yaml"),
        tmp_path / "sim.db",
        date.fromisoformat(START),
        2.0,
    )
    simulation, span, config_file = prepare(request)
    frozen: list[tuple[str, int]] = []
    await simulate(
        simulation,
        span,
        config_file,
        request.first_day,
        progress=lambda line: frozen.append((line.split(" (")[0], gc.get_freeze_count())),
    )
    simulation.store.close()
    assert [line for line, _ in frozen] == ["day 1 of 2 simulated", "day 2 of 2 simulated"]
    assert frozen[1][1] > frozen[0][1] > 0  # the first day's survivors joined the frozen
    assert gc.get_freeze_count() == 0
