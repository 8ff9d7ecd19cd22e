"""The evidence file (DESIGN §7): strict parsing of each line, whole-file reading with every bad
line named, the writer/reader round trip, the UTC range behind a month's claims, and the store's
rows as events."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from syncwatch.config import Contract
from syncwatch.errors import ATTRIBUTION, ConfigError
from syncwatch.events import ApiCall
from syncwatch.evidence import (
    MAX_LISTED,
    event_lines,
    evidence_window,
    parse_event,
    read_events,
    stored_events,
)
from syncwatch.lifecycle import OUTCOMES
from syncwatch.sla import CallEvent, Event, ProbeEvent
from syncwatch.store import Store

# DESIGN §7's three example lines, verbatim.
DESIGN_LINES = [
    '{"kind":"probe","integration":"hs-sf","started_at":"2026-10-03T14:05:12Z","outcome":"ok",'
    '"latency_s":84.2}',
    '{"kind":"probe","integration":"hs-sf","started_at":"2026-10-03T14:06:12Z","outcome":"lost",'
    '"error_class":"sync_lost"}',
    '{"kind":"call","integration":"hs-sf","vendor":"hubspot","at":"2026-10-03T14:05:13Z",'
    '"ok":false,"status":503,"error_class":"vendor_5xx"}',
]
DESIGN_EVENTS: list[Event] = [
    ProbeEvent("hs-sf", datetime(2026, 10, 3, 14, 5, 12, tzinfo=UTC), "ok", None, 84.2),
    ProbeEvent("hs-sf", datetime(2026, 10, 3, 14, 6, 12, tzinfo=UTC), "lost", "sync_lost", None),
    CallEvent(
        "hubspot", datetime(2026, 10, 3, 14, 5, 13, tzinfo=UTC), False, "vendor_5xx", 503, "hs-sf"
    ),
]

NOT_JSON = "not a JSON object (truncated or not JSON)"
NOT_OBJECT = "not a JSON object"
BAD_KIND = '"kind" must be "probe", "call" or "folded_month"'
BAD_OUTCOME = '"outcome" must be one of ok, slow, lost, rejected, mismatch, misrouted, skipped'
BAD_CLASS = (
    '"error_class" must be one of vendor_5xx, timeout, connection, malformed, sync_lost, '
    "rate_limited, quota_exhausted, auth, validation, duplicate, monitor, quota_guard, or null"
)
BAD_LATENCY = '"latency_s" must be a number of seconds, at least 0, or null'
BAD_STATUS = '"status" must be an HTTP status code or null'
NEEDS_CLASS = 'a failed call ("ok": false) needs its "error_class"'
PROBE_KEYS = "error_class, integration, kind, latency_s, outcome, started_at"
CALL_KEYS = "at, error_class, integration, kind, ok, operation, status, vendor"


def moment_reason(key: str) -> str:
    return f'"{key}" must be an ISO-8601 time with its offset, e.g. 2026-10-03T14:05:12Z'


def probe(**changes: Any) -> str:
    """A valid probe line with some keys changed (a value of ... drops the key)."""
    record: dict[str, Any] = {
        "kind": "probe",
        "integration": "hs-sf",
        "started_at": "2026-10-03T14:05:12Z",
        "outcome": "ok",
        "latency_s": 84.2,
    }
    record.update(changes)
    return json.dumps({k: v for k, v in record.items() if v is not ...})


def call(**changes: Any) -> str:
    """A valid failed-call line with some keys changed (a value of ... drops the key)."""
    record: dict[str, Any] = {
        "kind": "call",
        "integration": "hs-sf",
        "vendor": "hubspot",
        "at": "2026-10-03T14:05:13Z",
        "ok": False,
        "status": 503,
        "error_class": "vendor_5xx",
    }
    record.update(changes)
    return json.dumps({k: v for k, v in record.items() if v is not ...})


# -- parse_event --------------------------------------------------------------------------------


def test_design_example_lines_parse_to_their_events() -> None:
    """Each of DESIGN §7's example lines is accepted and means exactly what it says."""
    assert [parse_event(line) for line in DESIGN_LINES] == DESIGN_EVENTS


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        pytest.param(
            probe(latency_s=84),
            ProbeEvent("hs-sf", datetime(2026, 10, 3, 14, 5, 12, tzinfo=UTC), "ok", None, 84.0),
            id="integer-latency",
        ),
        pytest.param(
            probe(latency_s=None, started_at="2026-10-03T16:05:12.250+02:00"),
            ProbeEvent(
                "hs-sf", datetime(2026, 10, 3, 14, 5, 12, 250000, tzinfo=UTC), "ok", None, None
            ),
            id="offset-and-null-latency",
        ),
        pytest.param(
            call(ok=True, error_class=None, status=None, integration=None, operation="search"),
            CallEvent("hubspot", datetime(2026, 10, 3, 14, 5, 13, tzinfo=UTC), True),
            id="ok-call-with-nulls-and-operation",
        ),
        pytest.param(
            "  " + call(integration=...) + " \r\n",
            CallEvent(
                "hubspot", datetime(2026, 10, 3, 14, 5, 13, tzinfo=UTC), False, "vendor_5xx", 503
            ),
            id="surrounding-whitespace-no-integration",
        ),
    ],
)
def test_valid_variants_are_accepted(line: str, expected: Event) -> None:
    """Optional keys, nulls, other offsets and JSON whitespace are all valid event lines."""
    event = parse_event(line)
    assert event == expected
    if isinstance(event, ProbeEvent) and event.latency_s is not None:
        assert type(event.latency_s) is float


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        pytest.param("hello", NOT_JSON, id="not-json"),
        pytest.param(DESIGN_LINES[0][:-7], NOT_JSON, id="truncated"),
        pytest.param(DESIGN_LINES[0] + "}", NOT_JSON, id="trailing-garbage"),
        pytest.param(DESIGN_LINES[0] + DESIGN_LINES[1], NOT_JSON, id="two-objects"),
        pytest.param("[" * 100_000, NOT_JSON, id="absurd-nesting"),
        pytest.param("\ufeff" + DESIGN_LINES[0], NOT_JSON, id="byte-order-mark"),
        pytest.param("[1, 2]", NOT_OBJECT, id="array"),
        pytest.param('"probe"', NOT_OBJECT, id="string"),
        pytest.param("null", NOT_OBJECT, id="null"),
        pytest.param('{"kind": "lead"}', BAD_KIND, id="unknown-kind"),
        pytest.param(probe(kind=...), BAD_KIND, id="no-kind"),
        pytest.param(
            probe(latency=84.2),
            f"unknown key 'latency' (allowed: {PROBE_KEYS})",
            id="unknown-probe-key",
        ),
        pytest.param(
            probe(vendor="hubspot", account="x"),
            f"unknown key 'account' (allowed: {PROBE_KEYS})",
            id="first-unknown-key-named",
        ),
        pytest.param(
            call(latency_s=1.0),
            f"unknown key 'latency_s' (allowed: {CALL_KEYS})",
            id="unknown-call-key",
        ),
        pytest.param(probe(started_at=...), moment_reason("started_at"), id="missing-started-at"),
        pytest.param(
            probe(started_at="2026-10-03T14:05:12"), moment_reason("started_at"), id="naive-time"
        ),
        pytest.param(probe(started_at="yesterday"), moment_reason("started_at"), id="not-a-time"),
        pytest.param(probe(started_at=1791036312), moment_reason("started_at"), id="epoch"),
        pytest.param(call(at=...), moment_reason("at"), id="missing-at"),
        pytest.param(call(at="2026-10-03"), moment_reason("at"), id="date-only"),
        pytest.param(probe(outcome="fine"), BAD_OUTCOME, id="bad-outcome"),
        pytest.param(probe(outcome=...), BAD_OUTCOME, id="missing-outcome"),
        pytest.param(probe(outcome=["ok"]), BAD_OUTCOME, id="list-outcome"),
        pytest.param(probe(error_class="oops"), BAD_CLASS, id="bad-error-class"),
        pytest.param(probe(error_class=["vendor_5xx"]), BAD_CLASS, id="list-error-class"),
        pytest.param(call(error_class={"a": 1}), BAD_CLASS, id="object-error-class"),
        pytest.param(call(error_class=None), NEEDS_CLASS, id="failed-call-without-class"),
        pytest.param(call(error_class=...), NEEDS_CLASS, id="failed-call-class-missing"),
        pytest.param(call(ok="false"), '"ok" must be true or false', id="ok-as-text"),
        pytest.param(call(ok=...), '"ok" must be true or false', id="ok-missing"),
        pytest.param(call(ok=0), '"ok" must be true or false', id="ok-as-number"),
        pytest.param(probe(latency_s=-0.5), BAD_LATENCY, id="negative-latency"),
        pytest.param(probe(latency_s=float("nan")), BAD_LATENCY, id="nan-latency"),
        pytest.param(probe(latency_s=float("inf")), BAD_LATENCY, id="infinite-latency"),
        pytest.param(
            probe(latency_s=...)[:-1] + ', "latency_s": 1e400}', BAD_LATENCY, id="overflow-float"
        ),
        pytest.param(probe(latency_s=10**400), BAD_LATENCY, id="huge-integer-latency"),
        pytest.param(probe(latency_s=True), BAD_LATENCY, id="bool-latency"),
        pytest.param(probe(latency_s="84.2"), BAD_LATENCY, id="text-latency"),
        pytest.param(call(status=True), BAD_STATUS, id="bool-status"),
        pytest.param(call(status="503"), BAD_STATUS, id="text-status"),
        pytest.param(call(status=503.0), BAD_STATUS, id="float-status"),
        pytest.param(probe(integration=...), '"integration" must be non-empty text', id="no-int"),
        pytest.param(probe(integration=""), '"integration" must be non-empty text', id="empty"),
        pytest.param(call(vendor=...), '"vendor" must be non-empty text', id="no-vendor"),
        pytest.param(call(vendor=7), '"vendor" must be non-empty text', id="number-vendor"),
        pytest.param(call(integration=5), '"integration" must be text or null', id="int-number"),
    ],
)
def test_malformed_lines_are_refused_with_their_reason(line: str, reason: str) -> None:
    """Each malformed line raises ValueError carrying exactly the reason a reader can act on."""
    with pytest.raises(ValueError) as caught:
        parse_event(line)
    assert str(caught.value) == reason


JSON_SCALARS = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats()
    | st.text()
    | st.sampled_from([*OUTCOMES, *ATTRIBUTION, "2026-10-03T14:05:12Z", "probe", "call"])
)
JSON_VALUES = st.recursive(
    JSON_SCALARS,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner),
    max_leaves=8,
)
EVENT_KEYS = st.sampled_from(
    ["kind", "integration", "started_at", "outcome", "error_class", "latency_s", "vendor", "at",
     "ok", "status", "operation", "other"]
)  # fmt: skip


@settings(max_examples=300, deadline=None)
@given(st.text() | st.binary().map(lambda b: b.decode("utf-8", "replace")))
def test_arbitrary_text_raises_only_value_error(line: str) -> None:
    """Any text line is either an event or a ValueError, never another exception."""
    try:
        event = parse_event(line)
    except ValueError:
        return
    assert isinstance(event, ProbeEvent | CallEvent)


@settings(max_examples=400, deadline=None)
@given(
    st.sampled_from(DESIGN_LINES).map(json.loads),
    st.dictionaries(EVENT_KEYS, JSON_VALUES, min_size=1, max_size=3),
)
def test_near_miss_objects_raise_only_value_error(
    record: dict[str, Any], changes: dict[str, Any]
) -> None:
    """A valid event with a few keys set to any JSON value is an event or a ValueError only."""
    try:
        event = parse_event(json.dumps({**record, **changes}))
    except ValueError:
        return
    assert isinstance(event, ProbeEvent | CallEvent)


# -- read_events --------------------------------------------------------------------------------


def write(path: Path, lines: list[str]) -> Path:
    path.write_text("".join(f"{line}\n" for line in lines), encoding="utf-8")
    return path


def test_read_events_reads_every_line_and_skips_blank_ones(tmp_path: Path) -> None:
    """Blank and whitespace-only lines are skipped; every other line becomes an event, in order."""
    path = write(tmp_path / "e.jsonl", ["", DESIGN_LINES[0], "   ", DESIGN_LINES[1], "\t"])
    path.write_text(path.read_text() + DESIGN_LINES[2], encoding="utf-8")  # no final newline
    assert read_events(path) == DESIGN_EVENTS


def test_read_events_accepts_crlf_line_endings(tmp_path: Path) -> None:
    """A file written with Windows line endings reads the same."""
    path = tmp_path / "e.jsonl"
    path.write_bytes("\r\n".join(DESIGN_LINES).encode() + b"\r\n")
    assert read_events(path) == DESIGN_EVENTS


def test_an_empty_file_has_no_events(tmp_path: Path) -> None:
    """An empty evidence file is valid and holds no events."""
    assert read_events(write(tmp_path / "e.jsonl", [])) == []


def test_read_events_names_file_and_line_of_every_bad_line(tmp_path: Path) -> None:
    """Every bad line is reported as ``file:line: reason`` (blank lines still count) and no
    events are returned when any line is bad."""
    path = write(
        tmp_path / "e.jsonl",
        [DESIGN_LINES[0], "", "oops", DESIGN_LINES[1], probe(outcome="fine"), call(status=True)],
    )
    with pytest.raises(ConfigError) as caught:
        read_events(path)
    assert caught.value.problems == [
        f"{path}:3: {NOT_JSON}",
        f"{path}:5: {BAD_OUTCOME}",
        f"{path}:6: {BAD_STATUS}",
    ]


@pytest.mark.parametrize(("bad", "more"), [(MAX_LISTED, None), (MAX_LISTED + 1, 1), (57, 37)])
def test_problems_are_capped_with_a_count_of_the_rest(
    tmp_path: Path, bad: int, more: int | None
) -> None:
    """At most 20 problems are listed, then ``... and N more`` counts the rest."""
    path = write(tmp_path / "e.jsonl", [DESIGN_LINES[0]] + ["{"] * bad)
    with pytest.raises(ConfigError) as caught:
        read_events(path)
    listed = [f"{path}:{number}: {NOT_JSON}" for number in range(2, 2 + MAX_LISTED)]
    listed = listed[:bad]
    assert caught.value.problems == listed + ([] if more is None else [f"... and {more} more"])


@pytest.mark.parametrize(
    "content",
    [
        b"\xff\xfe{\x00}\x00\n",  # UTF-16
        # Latin-1 after a good line
        (DESIGN_LINES[0] + "\n").encode() + b'{"kind":"probe","integration":"caf\xe9"}\n',
    ],
    ids=["utf-16", "latin-1-after-a-good-line"],
)
def test_non_utf8_files_are_refused_clearly(tmp_path: Path, content: bytes) -> None:
    """A file that is not UTF-8 is refused with the file name and that reason."""
    path = tmp_path / "e.jsonl"
    path.write_bytes(content)
    with pytest.raises(ConfigError) as caught:
        read_events(path)
    assert caught.value.problems[-1] == f"{path}: not UTF-8 text"


def test_a_missing_file_is_refused_clearly(tmp_path: Path) -> None:
    """A missing events file names the file and the operating system's reason."""
    path = tmp_path / "absent.jsonl"
    with pytest.raises(ConfigError) as caught:
        read_events(path)
    assert caught.value.problems == [
        f"{path}: cannot read the events file: No such file or directory"
    ]


def test_a_directory_is_refused_clearly(tmp_path: Path) -> None:
    """A directory given as the events file is refused with a reason, not a traceback."""
    with pytest.raises(ConfigError) as caught:
        read_events(tmp_path)
    assert caught.value.problems[0].startswith(f"{tmp_path}: cannot read the events file: ")


# -- the round trip -----------------------------------------------------------------------------

OFFSETS = st.just(UTC) | st.integers(-23 * 60 - 59, 23 * 60 + 59).map(
    lambda minutes: timezone(timedelta(minutes=minutes))
)
MOMENTS = st.datetimes(  # hypothesis takes naive bounds and adds the zone itself
    min_value=datetime(1971, 1, 1),  # noqa: DTZ001
    max_value=datetime(9998, 12, 31),  # noqa: DTZ001
    timezones=OFFSETS,
)
CLASSES = st.sampled_from(sorted(ATTRIBUTION))
PROBES = st.builds(
    ProbeEvent,
    integration=st.text(min_size=1),
    started_at=MOMENTS,
    outcome=st.sampled_from(OUTCOMES),
    error_class=st.none() | CLASSES,
    latency_s=st.none() | st.floats(min_value=0, allow_nan=False, allow_infinity=False),
)
CALLS = st.booleans().flatmap(
    lambda ok: st.builds(
        CallEvent,
        vendor=st.text(min_size=1),
        at=MOMENTS,
        ok=st.just(ok),
        error_class=(st.none() | CLASSES) if ok else CLASSES,
        status=st.none() | st.integers(100, 599),
        integration=st.none() | st.text(),
    )
)


def moments(events: list[Event]) -> list[tuple[datetime, timedelta | None]]:
    """Each event's time and its UTC offset: equal datetimes may still differ in offset."""
    out = []
    for event in events:
        moment = event.at if isinstance(event, CallEvent) else event.started_at
        out.append((moment, moment.utcoffset()))
    return out


@settings(max_examples=150, deadline=None)
@given(st.lists(PROBES | CALLS, max_size=12))
def test_any_valid_events_round_trip_exactly(tmp_path_factory: Any, events: list[Event]) -> None:
    """Whatever valid events ``event_lines`` writes, ``read_events`` reads back identically."""
    path = tmp_path_factory.mktemp("roundtrip") / "e.jsonl"
    with path.open("w", encoding="utf-8") as handle:
        handle.writelines(event_lines(events))
    back = read_events(path)
    assert back == events
    assert moments(back) == moments(events)


def test_event_lines_writes_one_compact_line_per_event() -> None:
    """The writer emits DESIGN §7's shape: one compact object per line, UTC as ``Z``, nulls
    left out."""
    lines = list(event_lines(DESIGN_EVENTS))
    assert lines == [line + "\n" for line in DESIGN_LINES[:2]] + [
        '{"kind":"call","vendor":"hubspot","at":"2026-10-03T14:05:13Z","ok":false,"status":503,'
        '"error_class":"vendor_5xx","integration":"hs-sf"}\n'
    ]


# -- evidence_window ----------------------------------------------------------------------------


def contract(name: str = "c", zone: str = "America/New_York", **fields: Any) -> Contract:
    return Contract.model_validate(
        {
            "name": name,
            "vendor": "hubspot",
            "timezone": zone,
            "objective_percent": "99.9",
            "monthly_fee": "100.00",
            **fields,
        }
    )


def utc(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=UTC)


@pytest.mark.parametrize(
    ("contracts", "month", "window"),
    [
        pytest.param(
            [contract()], "2026-10", (utc(2026, 10, 1, 4), utc(2026, 11, 1, 4)), id="one-month"
        ),
        pytest.param(
            [contract(termination_after=1)],
            "2026-10",
            (utc(2026, 10, 1, 4), utc(2026, 11, 1, 4)),
            id="termination-after-1",
        ),
        pytest.param(
            [contract(termination_after=3)],
            "2026-10",
            (utc(2026, 8, 1, 4), utc(2026, 11, 1, 4)),
            id="two-months-back",
        ),
        pytest.param(
            [contract(termination_after=3)],
            "2027-01",
            (utc(2026, 11, 1, 4), utc(2027, 2, 1, 5)),
            id="back-across-the-year-and-dst",
        ),
        pytest.param(
            [contract("tokyo", "Asia/Tokyo"), contract("ny", termination_after=2)],
            "2026-10",
            (utc(2026, 9, 1, 4), utc(2026, 11, 1, 4)),
            id="earliest-start-latest-end",
        ),
        pytest.param(
            [contract("tokyo", "Asia/Tokyo"), contract("la", "America/Los_Angeles")],
            "2026-10",
            (utc(2026, 9, 30, 15), utc(2026, 11, 1, 7)),
            id="zones-either-side",
        ),
        pytest.param([], "2026-10", (utc(2026, 10, 1), utc(2026, 11, 1)), id="no-contracts"),
        pytest.param([], "2026-12", (utc(2026, 12, 1), utc(2027, 1, 1)), id="no-contracts-dec"),
    ],
)
def test_evidence_window(
    contracts: list[Contract], month: str, window: tuple[datetime, datetime]
) -> None:
    """The window spans each contract's local month and ``termination_after - 1`` months before
    it (earliest start to latest end); with no contracts, the UTC month."""
    assert evidence_window(contracts, month) == window


def test_evidence_window_refuses_a_bad_month() -> None:
    """A month that is not YYYY-MM is a ValueError, with or without contracts."""
    with pytest.raises(ValueError, match="not a month"):
        evidence_window([], "2026-13")
    with pytest.raises(ValueError, match="not a month"):
        evidence_window([contract()], "Oct")


# -- stored_events ------------------------------------------------------------------------------

T0 = utc(2026, 10, 5, 9)


def test_stored_events_are_the_concluded_probes_and_calls_in_range(tmp_path: Path) -> None:
    """Concluded probes in [since, until) by their scheduled time, unconcluded ones left out;
    calls in range, ok exactly when they carry no error class."""
    store = Store.open(tmp_path / "s.db")
    for number, (at, outcome) in enumerate(
        [(T0, "ok"), (T0 + timedelta(minutes=1), None), (T0 + timedelta(hours=1), "lost")]
    ):
        store.insert_probe(
            {
                "probe_id": f"p{number}",
                "integration": "hs-sf",
                "template": "demo-request",
                "email": f"p{number}@probe.example.com",
                "state": "scheduled",
                "scheduled_at": at,
            }
        )
        if outcome is not None:
            error = "sync_lost" if outcome == "lost" else None
            latency = 12.5 if outcome == "ok" else None
            store.update_probe(f"p{number}", outcome=outcome, error_class=error, latency_s=latency)
    for seconds, status, error in [(5, 200, None), (6, 503, "vendor_5xx"), (7200, 200, None)]:
        at = T0 + timedelta(seconds=seconds)
        store.record_call(
            ApiCall(at, "hubspot", "hubspot-demo", "submit", status, 0.1, error, "hs-sf")
        )
    events = stored_events(store, T0, T0 + timedelta(hours=1))
    assert events == [
        ProbeEvent("hs-sf", T0, "ok", None, 12.5),
        CallEvent("hubspot", T0 + timedelta(seconds=5), True, None, 200, "hs-sf"),
        CallEvent("hubspot", T0 + timedelta(seconds=6), False, "vendor_5xx", 503, "hs-sf"),
    ]


def test_a_byte_order_mark_at_the_start_of_the_file_is_not_an_error(tmp_path: Path) -> None:
    """Editors on Windows save UTF-8 with a BOM; the file's first event still reads."""
    path = tmp_path / "bom.jsonl"
    path.write_bytes("\ufeff".encode() + "\n".join(DESIGN_LINES).encode() + b"\n")
    assert len(read_events(path)) == len(DESIGN_LINES)
