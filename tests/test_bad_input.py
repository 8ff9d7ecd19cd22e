"""Bad input through the command line (issue #8, part 4): generated configs, contracts and
events files, and corrupt or foreign databases, never end in a traceback.

``tests/test_config.py`` already proves that loading any generated document raises nothing but
``ConfigError``, and ``tests/test_evidence.py`` that every malformed events line is named; these
tests hold the commands themselves to it (``check-config``, ``run``, ``sla evaluate``,
``report credits``, ``report scorecard``, ``export events``, ``quota``): exit 2, every problem
on stderr naming the file, and nothing started, written or half-printed.
"""

from __future__ import annotations

import copy
import functools
import json
import re
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import Result
from daemon_support import demo_raw
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from syncwatch.cli import app
from syncwatch.events import ApiCall
from syncwatch.evidence import event_lines
from syncwatch.sla import CallEvent, ProbeEvent
from syncwatch.store import Store

REPO = Path(__file__).resolve().parent.parent
EXAMPLE = yaml.safe_load((REPO / "config" / "syncwatch.example.yaml").read_text(encoding="utf-8"))
EXAMPLE_CONTRACT = EXAMPLE["contracts"][0]
FUZZ = settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
YAMLISH = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=12),
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(st.text(max_size=10) | st.integers(), children, max_size=4)
    ),
    max_leaves=20,
)


def invoke(*args: str | Path) -> Result:
    return CliRunner().invoke(app, [str(arg) for arg in args])


def assert_clean_exit(result: Result, codes: tuple[int, ...] = (2,)) -> None:
    """Exited on purpose with one of ``codes``: no exception escaped (CliRunner keeps what
    would have been a traceback in ``exception``) and none was printed."""
    escaped = result.exception
    assert escaped is None or isinstance(escaped, SystemExit), repr(escaped)
    assert result.exit_code in codes, (result.exit_code, result.output)
    assert "Traceback" not in result.output


def assert_names_the_file(result: Result, path: Path) -> None:
    """Every problem line is ``FILE: reason`` (or ``FILE:LINE: reason``) for this file."""
    lines = result.stderr.splitlines()
    assert lines, "exit 2 without saying why"
    for line in lines:
        assert line.startswith(f"{path}:") or re.fullmatch(r"\.\.\. and \d+ more", line), line
    assert result.stdout == ""


def _paths(node: Any, at: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [at]
    if isinstance(node, dict):
        for key, value in node.items():
            found += _paths(value, (*at, key))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            found += _paths(value, (*at, i))
    return found


def mutate(document: Any, edits: list[tuple[tuple[Any, ...], Any]]) -> Any:
    """``document`` with each (key path, value) replaced where the path still exists."""
    raw = copy.deepcopy(document)
    for path, value in edits:
        node = raw
        try:
            for key in path[:-1]:
                node = node[key]
            node[path[-1]] = value
        except (KeyError, IndexError, TypeError):
            continue
    return raw


def example_config(directory: Path) -> dict[str, Any]:
    """The example config with its paths made absolute: only the generated edits are wrong."""
    raw: dict[str, Any] = copy.deepcopy(EXAMPLE)
    raw["probe_templates"] = str(REPO / "probes")
    raw["database"] = str(directory / "syncwatch.db")
    return raw


CONFIG_EDITS = st.lists(
    st.tuples(st.sampled_from(_paths(EXAMPLE)[1:]), YAMLISH), min_size=1, max_size=3
)


def check_config_and_run(path: Path, database: Path) -> None:
    """``check-config`` exits 0 or 2; when 2, ``run`` exits 2 with the same problems before
    it creates the database, configures logging or serves anything."""
    checked = invoke("check-config", "--config", path)
    assert_clean_exit(checked, (0, 2))
    if checked.exit_code == 0:
        return  # valid after all: `run` would start a daemon
    assert_names_the_file(checked, path)
    ran = invoke("run", "--config", path)
    assert_clean_exit(ran)
    assert ran.stderr == checked.stderr
    assert not database.exists()


@FUZZ
@given(edits=CONFIG_EDITS)
def test_generated_configs_exit_2_naming_file_and_key(
    tmp_path_factory: pytest.TempPathFactory, edits: list[tuple[tuple[Any, ...], Any]]
) -> None:
    """Guarantee: any config made by replacing values deep inside the example makes
    `check-config` and `run` exit 2 with ``file: key: reason`` lines, never a traceback, and
    `run` starts nothing (no database file, no server)."""
    directory = tmp_path_factory.mktemp("config")
    raw = mutate(example_config(directory), edits)
    path = directory / "syncwatch.yaml"
    path.write_text(yaml.safe_dump(raw, allow_unicode=True), encoding="utf-8")
    check_config_and_run(path, directory / "syncwatch.db")


@FUZZ
@given(content=st.binary(max_size=300) | st.text(max_size=300).map(str.encode))
def test_any_bytes_as_a_config_exit_2_naming_the_file(
    tmp_path_factory: pytest.TempPathFactory, content: bytes
) -> None:
    """Guarantee: whatever bytes the config file holds (not UTF-8, not YAML, not a mapping),
    `check-config` and `run` exit 2 naming the file, never a traceback."""
    directory = tmp_path_factory.mktemp("bytes")
    path = directory / "syncwatch.yaml"
    path.write_bytes(content)
    check_config_and_run(path, directory / "syncwatch.db")


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        (b"\xff\xfeprobe_domain: x\n", "cannot read: not UTF-8 text (byte 0)"),
        (b"[" * 1000, "not valid YAML: nested too deeply"),
    ],
    ids=["not-utf8", "nested-too-deeply"],
)
def test_undecodable_and_pathological_yaml_exit_2(
    tmp_path: Path, content: bytes, problem: str
) -> None:
    """Guarantee: the two file contents that used to escape as a UnicodeDecodeError and a
    RecursionError traceback are refused like any other bad file."""
    path = tmp_path / "syncwatch.yaml"
    path.write_bytes(content)
    for command in ("check-config", "run"):
        result = invoke(command, "--config", path)
        assert_clean_exit(result)
        assert result.stderr == f"{path}: {problem}\n"
    contract = invoke("sla", "evaluate", "--contract", path, "--events", path, "--month", "2026-10")
    assert_clean_exit(contract)
    assert contract.stderr == f"{path}: {problem}\n"


# -- contracts and events for `sla evaluate` ----------------------------------------------------

EVENTS_START = datetime(2026, 10, 5, 14, tzinfo=UTC)
EVENTS = [
    event
    for minute in range(0, 120, 5)
    for event in (
        ProbeEvent("hubspot-to-salesforce", EVENTS_START + timedelta(minutes=minute), "ok", None,
                   60.0),
        CallEvent("hubspot", EVENTS_START + timedelta(minutes=minute, seconds=1),
                  minute % 30 != 0, None if minute % 30 else "vendor_5xx",
                  200 if minute % 30 else 503, "hubspot-to-salesforce"),
    )
]  # fmt: skip
EVENT_LINES = list(event_lines(EVENTS))


@FUZZ
@given(
    edits=st.lists(
        st.tuples(st.sampled_from(_paths(EXAMPLE_CONTRACT)[1:]), YAMLISH), min_size=1, max_size=3
    )
)
def test_generated_contracts_exit_2_naming_file_and_key_or_evaluate(
    tmp_path_factory: pytest.TempPathFactory, edits: list[tuple[tuple[Any, ...], Any]]
) -> None:
    """Guarantee: `sla evaluate` on any contract made by replacing values inside the example's
    either evaluates (exit 0, the JSON result) or exits 2 with ``file: key: reason`` lines;
    never a traceback."""
    directory = tmp_path_factory.mktemp("contract")
    contract = directory / "contract.yaml"
    contract.write_text(
        yaml.safe_dump(mutate(EXAMPLE_CONTRACT, edits), allow_unicode=True), encoding="utf-8"
    )
    events = directory / "events.jsonl"
    events.write_text("".join(EVENT_LINES), encoding="utf-8")
    result = invoke(
        "sla", "evaluate", "--contract", contract, "--events", events, "--month", "2026-10"
    )
    assert_clean_exit(result, (0, 2))
    if result.exit_code == 2:
        assert_names_the_file(result, contract)
    else:
        assert json.loads(result.stdout)["month"] == "2026-10"


@FUZZ
@given(
    lines=st.lists(
        st.sampled_from(EVENT_LINES)
        | st.text(max_size=60).map(lambda text: text.replace("\n", " ") + "\n")
        | st.builds(
            lambda line, key, value: (
                json.dumps({**json.loads(line), key: value}, default=str) + "\n"
            ),
            st.sampled_from(EVENT_LINES),
            st.sampled_from(["kind", "at", "started_at", "ok", "outcome", "latency_s", "status"]),
            YAMLISH,
        ),
        max_size=12,
    )
)
def test_generated_events_files_name_file_and_line(
    tmp_path_factory: pytest.TempPathFactory, lines: list[str]
) -> None:
    """Guarantee: an events file of good lines, junk and near misses either evaluates or exits
    2 with one ``file:line: reason`` per bad line (capped); never a traceback."""
    directory = tmp_path_factory.mktemp("events")
    contract = directory / "contract.yaml"
    contract.write_text(yaml.safe_dump(EXAMPLE_CONTRACT), encoding="utf-8")
    events = directory / "events.jsonl"
    events.write_text("".join(lines), encoding="utf-8")
    result = invoke(
        "sla", "evaluate", "--contract", contract, "--events", events, "--month", "2026-10"
    )
    assert_clean_exit(result, (0, 2))
    if result.exit_code == 2:
        assert_names_the_file(result, events)
        numbered = [line for line in result.stderr.splitlines() if not line.startswith("...")]
        assert all(re.match(rf"{re.escape(str(events))}:\d+: \S", line) for line in numbered)


# -- corrupt and foreign databases --------------------------------------------------------------


def real_database(path: Path) -> None:
    """A syncwatch database with two days of probes and calls, checkpointed into one file
    (made once per session, copied for each test)."""
    path.write_bytes(_real_database_bytes(path.parent.parent))


@functools.cache
def _real_database_bytes(scratch: Path) -> bytes:
    path = scratch / "real-database-template.db"
    store = Store.open(path)
    start = datetime(2026, 10, 5, 9, tzinfo=UTC)
    for n in range(600):
        at = start + timedelta(minutes=5 * n)
        probe_id = f"probe{n:05d}"
        store.insert_probe(
            {
                "probe_id": probe_id,
                "integration": "hubspot-to-salesforce",
                "template": "demo-request",
                "email": f"syncwatch+{probe_id}@probe.syncwatch.example",
                "state": "cleaned",
                "scheduled_at": at,
            }
        )
        store.update_probe(probe_id, outcome="ok", finished_at=at, latency_s=42.0)
        call = ApiCall(at, "hubspot", "hubspot-demo", "submit_form", 200, 0.2)
        store.record_call(call)
    store.db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    store.close()
    return path.read_bytes()


def damage_the_probes_table(path: Path) -> None:
    """Garbage over the probes table's root page: the file opens (nothing read at open
    touches that table), and the first query of probes finds the damage."""
    with sqlite3.connect(path) as conn:
        root = conn.execute("SELECT rootpage FROM sqlite_master WHERE name = 'probes'").fetchone()
        page_size = conn.execute("PRAGMA page_size").fetchone()[0]
    data = bytearray(path.read_bytes())
    start = (root[0] - 1) * page_size
    data[start : start + page_size] = bytes(range(256)) * (page_size // 256)
    path.write_bytes(bytes(data))


def make_database(kind: str, path: Path) -> None:
    if kind == "random-bytes":
        path.write_bytes(bytes((n * 7919 + 13) % 256 for n in range(64 * 1024)))
    elif kind == "zero-length":
        path.write_bytes(b"")
    elif kind == "directory":
        path.mkdir()
    elif kind == "foreign-sqlite":
        with sqlite3.connect(path) as conn:
            conn.execute("CREATE TABLE invoices (id INTEGER PRIMARY KEY, total REAL)")
            conn.execute("INSERT INTO invoices (total) VALUES (12.5)")
    elif kind.startswith("truncated"):
        real_database(path)
        data = path.read_bytes()
        keep = {"truncated-half": len(data) // 2, "truncated-header": 100}[kind]
        path.write_bytes(data[:keep])
    elif kind == "damaged-page":
        real_database(path)
        damage_the_probes_table(path)
    else:  # pragma: no cover
        raise AssertionError(kind)


PROBLEMS = {
    "random-bytes": "damaged, or not a syncwatch database (file is not a database)",
    "zero-length": "no database yet (has `syncwatch run` been started?)",
    "directory": "cannot open the database: unable to open database file",
    "foreign-sqlite": "not a syncwatch database (it holds other tables); "
    "point `database:` at a new file",
    "truncated-half": "damaged, or not a syncwatch database (database disk image is malformed)",
    "truncated-header": "damaged, or not a syncwatch database (database disk image is malformed)",
    "damaged-page": "cannot read the database: database disk image is malformed "
    "(is the file damaged?)",
}
COMMANDS = {
    "report-credits": ["report", "credits", "--month", "2026-10", "--format", "json"],
    "report-scorecard": ["report", "scorecard", "--week", "2026-W41"],
    "export-events": ["export", "events", "--month", "2026-10"],
    "quota": ["quota"],
    "run": ["run"],
}
OPENS_AS_EMPTY = {"zero-length"}
"""SQLite's own reading of an empty file is an empty database: `run` starts a new one there
(as it would at a missing path); the commands that only read refuse it."""
OPENS_THEN_FAILS = {"damaged-page"}
"""Opens (nothing read at start-up touches the damaged table); the readers fail on it."""


def snapshot(path: Path) -> bytes | None:
    return path.read_bytes() if path.is_file() else None


@pytest.mark.parametrize("command", list(COMMANDS))
@pytest.mark.parametrize("kind", list(PROBLEMS))
def test_a_corrupt_or_foreign_database_is_one_clear_line_and_exit_2(
    tmp_path: Path, kind: str, command: str
) -> None:
    """Guarantee: random bytes, a zero-length file, a directory, a truncated syncwatch
    database, one with a damaged page, or another application's SQLite file given as
    ``database:`` make `run`, `report credits`, `report scorecard`, `export events` and `quota`
    exit 2 with one line naming the file and what is wrong, never a traceback, and leave the
    file exactly as it was."""
    if command == "run" and kind in OPENS_AS_EMPTY | OPENS_THEN_FAILS:
        pytest.skip("the file opens: `run` would start the daemon (see OPENS_AS_EMPTY)")
    if command == "quota" and kind in OPENS_THEN_FAILS:
        pytest.skip("`quota` reads only the calls, which are intact: it answers, correctly")
    database = tmp_path / "syncwatch.db"
    make_database(kind, database)
    before = snapshot(database)
    raw = demo_raw(tmp_path)
    raw["database"] = str(database)
    config = tmp_path / "syncwatch.yaml"
    config.write_text(yaml.safe_dump(raw), encoding="utf-8")

    result = invoke(*COMMANDS[command], "--config", config)

    assert_clean_exit(result)
    assert result.stderr == f"{database}: {PROBLEMS[kind]}\n"
    assert result.stdout == ""
    if kind == "foreign-sqlite":  # see test_a_foreign_database_file_is_left_byte_for_byte
        assert foreign_content(database) == [(1, 12.5)]
    else:
        assert snapshot(database) == before


def foreign_content(path: Path) -> list[tuple[Any, ...]]:
    with sqlite3.connect(path) as conn:
        tables = [row[0] for row in conn.execute("SELECT name FROM sqlite_master")]
        assert tables == ["invoices"]
        return list(conn.execute("SELECT * FROM invoices"))


def test_a_foreign_database_file_is_left_byte_for_byte(tmp_path: Path) -> None:
    """Guarantee: refusing another application's SQLite file changes not one byte of it (its
    journal mode included: a WAL file cannot be read by an older SQLite or some tools)."""
    database = tmp_path / "other.db"
    make_database("foreign-sqlite", database)
    before = database.read_bytes()
    raw = demo_raw(tmp_path)
    raw["database"] = str(database)
    config = tmp_path / "syncwatch.yaml"
    config.write_text(yaml.safe_dump(raw), encoding="utf-8")
    assert_clean_exit(invoke("quota", "--config", config))
    assert database.read_bytes() == before


@pytest.mark.parametrize("command", [c for c in COMMANDS if c != "run"])
def test_read_commands_never_create_a_database(tmp_path: Path, command: str) -> None:
    """Guarantee: a command that only reads, pointed at a path with no database, exits 2
    saying so and creates nothing there (`quota` used to create an empty database)."""
    raw = demo_raw(tmp_path)
    config = tmp_path / "syncwatch.yaml"
    config.write_text(yaml.safe_dump(raw), encoding="utf-8")
    result = invoke(*COMMANDS[command], "--config", config)
    assert_clean_exit(result)
    assert result.stderr == f"{raw['database']}: {PROBLEMS['zero-length']}\n"
    assert not Path(raw["database"]).exists()


def test_the_damaged_page_fixture_really_opens(tmp_path: Path) -> None:
    """The damaged-page case is what it claims: ``Store.open`` succeeds, a read of probes
    fails inside SQLite (so the CLI's handling of a failing read is what is tested)."""
    database = tmp_path / "syncwatch.db"
    make_database("damaged-page", database)
    store = Store.open(database)
    try:
        with pytest.raises(sqlite3.DatabaseError, match="malformed"):
            list(store.db.query("SELECT * FROM probes"))
    finally:
        store.close()


def test_generated_configs_cover_valid_ones_too(tmp_path: Path) -> None:
    """The example itself is valid, so the generated configs include valid ones (the fuzz
    tests' `run` step is skipped only for those)."""
    path = tmp_path / "syncwatch.yaml"
    path.write_text(yaml.safe_dump(example_config(tmp_path)), encoding="utf-8")
    result = invoke("check-config", "--config", path)
    assert result.exit_code == 0, result.output
