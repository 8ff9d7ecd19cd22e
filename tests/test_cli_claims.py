"""``syncwatch sla evaluate``, ``export events`` and ``report credits`` as a user runs them
(CliRunner): a hand-checked result, the exit-2 paths, and the agreement the issue asks for
between the evidence file and the report, on a store filled with three missed months."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import Result
from daemon_support import demo_raw
from typer.testing import CliRunner

from syncwatch.cli import app
from syncwatch.events import ApiCall
from syncwatch.evidence import event_lines
from syncwatch.sla import CallEvent, Event, ProbeEvent
from syncwatch.store import Store

INTEGRATION = "hubspot-to-salesforce"
DESIGN_KEYS = {
    "contract", "month", "timezone", "period_start", "period_end", "period_minutes",
    "excluded_minutes", "unknown_minutes", "eligible_minutes", "downtime_minutes",
    "uptime_percent", "objective_percent", "met", "credit_percent", "credit_amount", "currency",
    "consecutive_misses", "termination_right", "claim_deadline", "latency", "incidents",
}  # fmt: skip
MONTHS = {  # a morning in each month, on the contract's five-minute grid (New York, EDT)
    "2026-08": datetime(2026, 8, 3, 9, tzinfo=UTC),
    "2026-09": datetime(2026, 9, 7, 9, tzinfo=UTC),
    "2026-10": datetime(2026, 10, 5, 9, tzinfo=UTC),
}
PROBES_PER_MONTH = 100
DOWN = range(20, 30)
"""Of each month's 100 five-minute slots, these ten have HubSpot answering 503."""


def invoke(*args: str | Path) -> Result:
    return CliRunner().invoke(app, [str(arg) for arg in args])


def moment(event: Event) -> datetime:
    return event.at if isinstance(event, CallEvent) else event.started_at


def month_events(start: datetime) -> list[Event]:
    """One probe and its form-submission call every 5 minutes for 500 minutes; slots 20-29 are
    rejected by a vendor 503, the rest arrive in 60 s."""
    events: list[Event] = []
    for slot in range(PROBES_PER_MONTH):
        at = start + timedelta(minutes=5 * slot)
        if slot in DOWN:
            events.append(ProbeEvent(INTEGRATION, at, "rejected", "vendor_5xx", None))
            call = CallEvent("hubspot", at + timedelta(seconds=1), False, "vendor_5xx", 503)
        else:
            events.append(ProbeEvent(INTEGRATION, at, "ok", None, 60.0))
            call = CallEvent("hubspot", at + timedelta(seconds=1), True, None, 200)
        events.append(CallEvent(call.vendor, call.at, call.ok, call.error_class, call.status,
                                INTEGRATION))  # fmt: skip
    return events


ALL_EVENTS = [event for start in MONTHS.values() for event in month_events(start)]

# October by hand: 500 minutes with evidence, 50 of them down → 90 % (under 95: 50 % of 3,600);
# August and September missed the same way → three in a row, the termination right.
OCTOBER = {
    "contract": "hubspot-demo",
    "month": "2026-10",
    "timezone": "America/New_York",
    "period_start": "2026-10-01T04:00:00Z",
    "period_end": "2026-11-01T04:00:00Z",
    "period_minutes": 44640,
    "excluded_minutes": 0,
    "unknown_minutes": 44140,
    "eligible_minutes": 500,
    "downtime_minutes": 50,
    "uptime_percent": 90.0,
    "uptime_fraction": "9/10",
    "objective_percent": 99.9,
    "met": False,
    "credit_percent": 50.0,
    "credit_amount": "1800.00",
    "currency": "USD",
    "consecutive_misses": 3,
    "termination_right": True,
    "claim_deadline": "2026-11-30",
    "latency": {"percentile": 95.0, "threshold_s": 300.0, "observed_s": 60.0, "probes": 90,
                "met": True},
    "incidents": [
        {
            "start": "2026-10-05T10:40:00Z",
            "end": "2026-10-05T11:30:00Z",
            "minutes": 50,
            "dominant_error_class": "vendor_5xx",
            "counts": {"vendor_5xx": 10},
            "closed": True,
        }
    ],
    "mttr_minutes": 50.0,
}  # fmt: skip


def demo_contract() -> dict[str, Any]:
    """config/demo.yaml's contract entry (hubspot-demo), as data."""
    raw = yaml.safe_load((Path(__file__).parent.parent / "config" / "demo.yaml").read_text())
    contract: dict[str, Any] = raw["contracts"][0]
    return contract


@pytest.fixture
def contract_file(tmp_path: Path) -> Path:
    """The demo config's contract, saved as a standalone contract file."""
    path = tmp_path / "hubspot-demo.yaml"
    path.write_text(yaml.safe_dump(demo_contract()), encoding="utf-8")
    return path


@pytest.fixture
def events_file(tmp_path: Path) -> Path:
    path = tmp_path / "events.jsonl"
    path.write_text("".join(event_lines(ALL_EVENTS)), encoding="utf-8")
    return path


def fill(store: Store, events: list[Event]) -> None:
    """Store the events the way the daemon does: probes inserted then concluded, calls with the
    account's daily quota figure."""
    for number, event in enumerate(events):
        if isinstance(event, ProbeEvent):
            probe_id = f"p{number}"
            store.insert_probe(
                {
                    "probe_id": probe_id,
                    "integration": event.integration,
                    "template": "demo-request",
                    "email": f"syncwatch+{probe_id}@probe.syncwatch.example",
                    "state": "scheduled",
                    "scheduled_at": event.started_at,
                }
            )
            store.update_probe(
                probe_id,
                state="done",
                outcome=event.outcome,
                error_class=event.error_class,
                latency_s=event.latency_s,
                finished_at=event.started_at + timedelta(minutes=2),
            )
        else:
            store.record_call(
                ApiCall(event.at, event.vendor, "hubspot-demo", "submit_form", event.status, 0.2,
                        event.error_class, event.integration, None, number, 1_000_000)
            )  # fmt: skip


@pytest.fixture
def config_file(tmp_path: Path) -> Path:
    """The demo config (secrets in files) whose database holds ALL_EVENTS, plus a second
    contract in UTC on Salesforce, which never had a call."""
    raw = demo_raw(tmp_path)
    raw["contracts"].append(
        {
            "name": "salesforce-utc",
            "vendor": "salesforce",
            "timezone": "UTC",
            "objective_percent": 99.5,
            "monthly_fee": "1000.00",
            "termination_after": 2,
        }
    )
    path = tmp_path / "syncwatch.yaml"
    path.write_text(yaml.safe_dump(raw), encoding="utf-8")
    store = Store.open(raw["database"])
    fill(store, ALL_EVENTS)
    store.close()
    return path


# -- sla evaluate -------------------------------------------------------------------------------


def test_evaluate_prints_the_design_result_as_json(contract_file: Path, events_file: Path) -> None:
    """``--format json`` prints DESIGN §7's result object, here checked by hand in full:
    uptime a float, the amount a string."""
    result = invoke(
        "sla", "evaluate", "--contract", contract_file, "--events", events_file,
        "--month", "2026-10", "--format", "json",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data.keys() >= DESIGN_KEYS
    assert isinstance(data["uptime_percent"], float)
    assert isinstance(data["credit_amount"], str)
    assert data == OCTOBER


def test_evaluate_defaults_to_json(contract_file: Path, events_file: Path) -> None:
    """Without ``--format`` the output is the same JSON."""
    result = invoke(
        "sla", "evaluate", "--contract", contract_file, "--events", events_file,
        "--month", "2026-10",
    )  # fmt: skip
    assert result.exit_code == 0
    assert json.loads(result.stdout) == OCTOBER


def test_evaluate_table_prints_aligned_lines(contract_file: Path, events_file: Path) -> None:
    """``--format table`` prints one ``key  value`` line per figure with every value starting in
    the same column, latency flattened, then the incidents."""
    result = invoke(
        "sla", "evaluate", "--contract", contract_file, "--events", events_file,
        "--month", "2026-10", "--format", "table",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    figures = [line for line in lines if not line.startswith("incident  ")]
    incidents = [line for line in lines if line.startswith("incident  ")]
    column = len(max((line.split()[0] for line in figures), key=len)) + 2
    table = {line[:column].rstrip(): line[column:] for line in figures}
    for line in figures:
        assert line[column - 2 : column] == "  " and line[column] != " ", line
    assert table["contract"] == "hubspot-demo"
    assert table["credit_amount"] == "1800.00"
    assert table["uptime_percent"] == "90.0"
    assert table["termination_right"] == "True"
    assert table["latency.observed_s"] == "60.0"
    assert table["mttr_minutes"] == "50.0"
    assert incidents == [
        "incident  2026-10-05T10:40:00Z → 2026-10-05T11:30:00Z  50 min  vendor_5xx"
    ]


def test_a_malformed_events_line_exits_2_naming_file_and_line(
    contract_file: Path, events_file: Path
) -> None:
    """A bad line anywhere refuses the whole file: exit 2, ``file:line: reason`` on stderr,
    nothing on stdout."""
    lines = events_file.read_text().splitlines(keepends=True)
    assert '"ok":true' in lines[7]
    lines[7] = lines[7].replace('"ok":true', '"ok":"yes"')
    lines.insert(9, '{"kind":"probe"\n')
    events_file.write_text("".join(lines))
    result = invoke(
        "sla", "evaluate", "--contract", contract_file, "--events", events_file,
        "--month", "2026-10",
    )  # fmt: skip
    assert result.exit_code == 2
    assert result.stdout == ""
    assert result.stderr.splitlines() == [
        f'{events_file}:8: "ok" must be true or false',
        f"{events_file}:10: not a JSON object (truncated or not JSON)",
    ]


def test_a_missing_events_file_exits_2(contract_file: Path, tmp_path: Path) -> None:
    """An events file that does not exist exits 2 naming it."""
    missing = tmp_path / "nope.jsonl"
    result = invoke(
        "sla", "evaluate", "--contract", contract_file, "--events", missing, "--month", "2026-10"
    )
    assert result.exit_code == 2
    assert (
        result.stderr.strip()
        == f"{missing}: cannot read the events file: No such file or directory"
    )


@pytest.mark.parametrize("month", ["2026-13", "Oct", "2026-00", "26-10", "2026-1", "2026/10", ""])
def test_a_bad_month_exits_2(contract_file: Path, events_file: Path, month: str) -> None:
    """A month that is not YYYY-MM with a real month exits 2 saying what to write."""
    result = invoke(
        "sla", "evaluate", "--contract", contract_file, "--events", events_file, "--month", month
    )
    assert result.exit_code == 2
    assert result.stderr.strip() == (
        f"--month: {month!r} is not a month; write YYYY-MM, e.g. 2026-10"
    )


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        (
            {"credits": [{"below": 99.0, "credit": 10}, {"below": 99.9, "credit": 25}]},
            "credits: tiers must be listed with `below` strictly descending",
        ),
        (
            {"timezone": "Mars/Olympus_Mons"},
            "timezone: must be an IANA time zone name, e.g. America/New_York or UTC",
        ),
        ({"credit_cap_percent": 150}, "credit_cap_percent: "),
        ({"monthly_fee": None}, "monthly_fee: "),
    ],
    ids=["tiers-ascending", "unknown-zone", "cap-over-100", "no-fee"],
)
def test_a_bad_contract_exits_2_naming_file_and_key(
    tmp_path: Path, events_file: Path, change: dict[str, Any], problem: str
) -> None:
    """An invalid contract exits 2 with ``file: key: reason`` and evaluates nothing."""
    contract = {**demo_contract(), **change}
    contract = {key: value for key, value in contract.items() if value is not None}
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(contract), encoding="utf-8")
    result = invoke(
        "sla", "evaluate", "--contract", path, "--events", events_file, "--month", "2026-10"
    )
    assert result.exit_code == 2
    assert result.stdout == ""
    assert f"{path}: {problem}" in result.stderr


def test_a_missing_contract_file_exits_2(tmp_path: Path, events_file: Path) -> None:
    """A contract file that does not exist exits 2 naming it."""
    missing = tmp_path / "nope.yaml"
    result = invoke(
        "sla", "evaluate", "--contract", missing, "--events", events_file, "--month", "2026-10"
    )
    assert result.exit_code == 2
    assert result.stderr.strip() == f"{missing}: cannot read: No such file or directory"


# -- export events and report credits -----------------------------------------------------------


def test_export_then_evaluate_agrees_with_report_credits(
    config_file: Path, contract_file: Path, tmp_path: Path
) -> None:
    """The issue's agreement: ``sla evaluate`` on the file ``export events`` wrote gives exactly
    the figures ``report credits --format json`` gives for that contract."""
    evidence = tmp_path / "evidence-2026-10.jsonl"
    exported = invoke("export", "events", "--config", config_file, "--month", "2026-10",
                      "--output", evidence)  # fmt: skip
    assert exported.exit_code == 0, exported.output
    assert exported.stderr.strip() == f"wrote {evidence}"
    assert len(evidence.read_text().splitlines()) == len(ALL_EVENTS)  # Aug-Oct: 3 months back
    evaluated = invoke("sla", "evaluate", "--contract", contract_file, "--events", evidence,
                       "--month", "2026-10")  # fmt: skip
    reported = invoke("report", "credits", "--config", config_file, "--month", "2026-10",
                      "--format", "json")  # fmt: skip
    assert evaluated.exit_code == reported.exit_code == 0, evaluated.output + reported.output
    from_file = json.loads(evaluated.stdout)
    claims = {claim["contract"]: claim for claim in json.loads(reported.stdout)}
    assert set(claims) == {"hubspot-demo", "salesforce-utc"}
    assert {key: claims["hubspot-demo"][key] for key in from_file} == from_file
    assert from_file == OCTOBER
    assert claims["hubspot-demo"]["api_calls"] == PROBES_PER_MONTH
    assert claims["hubspot-demo"]["api_success_percent"] == 90.0
    assert claims["salesforce-utc"]["uptime_percent"] is None  # no Salesforce evidence at all


def test_export_to_stdout_is_the_evidence_file(config_file: Path) -> None:
    """Without ``--output`` the JSON Lines go to stdout, in the shape ``event_lines`` writes."""
    result = invoke("export", "events", "--config", config_file, "--month", "2026-09")
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines(keepends=True)
    # September's window (termination_after 3) reaches back to July: August and September.
    expected = [e for e in ALL_EVENTS if moment(e).month in (8, 9)]
    assert sorted(lines) == sorted(event_lines(expected))


def test_report_credits_html_writes_a_file(config_file: Path, tmp_path: Path) -> None:
    """``--format html --output F`` writes the printable claims to F and says so on stderr."""
    output = tmp_path / "claims.html"
    result = invoke("report", "credits", "--config", config_file, "--month", "2026-10",
                    "--format", "html", "--output", output)  # fmt: skip
    assert result.exit_code == 0, result.output
    assert result.stdout == ""
    assert result.stderr.strip() == f"wrote {output}"
    html = output.read_text(encoding="utf-8")
    assert html.startswith("<!doctype html>")
    assert "hubspot-demo</h2>" in html and "salesforce-utc</h2>" in html
    assert '<td class="amount">1800.00 USD</td>' in html
    assert "termination right reached" in html


def test_report_credits_csv_to_stdout(config_file: Path) -> None:
    """``--format csv`` prints a header and one row per contract."""
    result = invoke("report", "credits", "--config", config_file, "--month", "2026-10",
                    "--format", "csv")  # fmt: skip
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0].startswith("contract,vendor,month,timezone,")
    assert [line.split(",")[0] for line in lines[1:]] == ["hubspot-demo", "salesforce-utc"]


@pytest.mark.parametrize(
    "command",
    [("export", "events"), ("report", "credits")],
    ids=["export", "report"],
)
def test_a_missing_database_exits_2_and_creates_none(
    tmp_path: Path, command: tuple[str, str]
) -> None:
    """Before the daemon ever ran there is no database: exit 2 saying so, and none is created."""
    raw = demo_raw(tmp_path)
    path = tmp_path / "syncwatch.yaml"
    path.write_text(yaml.safe_dump(raw), encoding="utf-8")
    result = invoke(*command, "--config", path, "--month", "2026-10")
    assert result.exit_code == 2
    assert result.stdout == ""
    database = raw["database"]
    assert result.stderr.strip() == (
        f"{database}: no database yet (has `syncwatch run` been started?)"
    )
    assert not Path(database).exists()


@pytest.mark.parametrize(
    "command", [("export", "events"), ("report", "credits")], ids=["export", "report"]
)
@pytest.mark.parametrize("month", ["2026-13", "Oct"])
def test_store_commands_refuse_a_bad_month(
    tmp_path: Path, command: tuple[str, str], month: str
) -> None:
    """``export events`` and ``report credits`` exit 2 on a bad month too."""
    path = tmp_path / "syncwatch.yaml"
    path.write_text(yaml.safe_dump(demo_raw(tmp_path)), encoding="utf-8")
    result = invoke(*command, "--config", path, "--month", month)
    assert result.exit_code == 2
    assert (
        result.stderr.strip() == f"--month: {month!r} is not a month; write YYYY-MM, e.g. 2026-10"
    )


def test_a_bad_config_exits_2(tmp_path: Path) -> None:
    """A config file that does not exist exits 2 naming it."""
    missing = tmp_path / "nope.yaml"
    result = invoke("report", "credits", "--config", missing, "--month", "2026-10")
    assert result.exit_code == 2
    assert str(missing) in result.stderr


@pytest.mark.parametrize(
    ("command", "words"),
    [
        (("sla", "evaluate"), ["--contract", "--events", "--month", "--format"]),
        (("export", "events"), ["--config", "--month", "--output"]),
        (("report", "credits"), ["--config", "--month", "--format", "--output"]),
    ],
    ids=["evaluate", "export", "report"],
)
def test_help_of_each_command(command: tuple[str, str], words: list[str]) -> None:
    """``--help`` exits 0 and lists each command's options."""
    result = invoke(*command, "--help")
    assert result.exit_code == 0
    for word in words:
        assert word in result.stdout
