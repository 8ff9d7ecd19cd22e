"""The sandbox's SOQL subset, parsed and evaluated without HTTP."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from syncwatch.clock import VirtualClock
from syncwatch.sandbox import soql
from syncwatch.sandbox.salesforce_data import DataApi, RecordRow, record_row
from syncwatch.sandbox.scenario import Scenario
from syncwatch.sandbox.soql import Condition, Query, SoqlError
from syncwatch.sandbox.world import CrmRecord, World

T0 = datetime(2026, 10, 5, 9, 0, tzinfo=UTC)
LEAD_FIELDS = ["Id", "Email", "LastName", "CreatedDate", "Probe_Id__c"]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "SELECT Id, Email FROM Lead WHERE Email IN ('a@x.com','b@x.com')",
            Query(("Id", "Email"), "Lead", (Condition("Email", "IN", ("a@x.com", "b@x.com")),)),
        ),
        (
            "SELECT Id FROM Lead WHERE Email = 'x@y.com'",
            Query(("Id",), "Lead", (Condition("Email", "=", "x@y.com"),)),
        ),
        (
            "SELECT Id FROM Lead WHERE Email LIKE '%@probe.example' "
            "AND CreatedDate < 2026-10-05T09:00:00Z",
            Query(
                ("Id",),
                "Lead",
                (Condition("Email", "LIKE", "%@probe.example"), Condition("CreatedDate", "<", T0)),
            ),
        ),
        (
            "select id from lead where email in ('a') limit 5",
            Query(("id",), "Lead", (Condition("email", "IN", ("a",)),), 5),
        ),
        ("SELECT Id FROM Contact LIMIT 1", Query(("Id",), "Contact", (), 1)),
        ("SELECT Id FROM Lead", Query(("Id",), "Lead")),
        (
            "  SELECT\tId ,Email\nFROM Lead WHERE Email='o\\'brien@x.com'  ",
            Query(("Id", "Email"), "Lead", (Condition("Email", "=", "o'brien@x.com"),)),
        ),
        (
            "SELECT Id FROM Lead WHERE CreatedDate >= 2026-10-05T11:00:00+02:00",
            Query(("Id",), "Lead", (Condition("CreatedDate", ">=", T0),)),
        ),
        (
            "SELECT Id FROM Lead WHERE CreatedDate < 2026-10-05T04:00:00-05:00",
            Query(("Id",), "Lead", (Condition("CreatedDate", "<", T0),)),
        ),
    ],
)
def test_parse_accepts_the_subset(text: str, expected: Query) -> None:
    """Each query shape syncwatch sends parses into the same structure, whatever the case."""
    assert soql.parse(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "",
        "   ",
        "SELECT FROM Lead",
        "SELECT Id Lead",
        "SELECT Id, FROM Lead",
        "SELECT Id FROM Lead WHERE Email = 'a' OR Email = 'b'",
        "SELECT Id FROM Lead WHERE (Email = 'a')",
        "SELECT Id FROM Lead WHERE Email IN ()",
        "SELECT Id FROM Lead WHERE Email IN ('a',)",
        "SELECT Id FROM Lead WHERE Email IN 'a'",
        'SELECT Id FROM Lead WHERE Email = "a"',
        "SELECT Id FROM Lead WHERE Email = 'unterminated",
        "SELECT Id FROM Lead WHERE Email = 'bad \\q escape'",
        "SELECT Id FROM Lead WHERE Email < 'a'",
        "SELECT Id FROM Lead WHERE CreatedDate LIKE 2026-10-05T09:00:00Z",
        "SELECT Id FROM Lead WHERE CreatedDate < '2026-10-05T09:00:00Z'",
        "SELECT Id FROM Lead WHERE CreatedDate < 2026-10-05",
        "SELECT Id FROM Lead WHERE CreatedDate < 2026-10-05T09:00:00",
        "SELECT Id FROM Lead WHERE CreatedDate < 2026-10-05T09:00:00.000Z",
        "SELECT Id FROM Lead WHERE CreatedDate < 2026-13-05T09:00:00Z",
        "SELECT Id FROM Lead LIMIT",
        "SELECT Id FROM Lead LIMIT -1",
        "SELECT Id FROM Lead LIMIT 5 LIMIT 5",
        "SELECT Id FROM Lead ORDER BY CreatedDate",
        "SELECT Id, id FROM Lead",
        "SELECT COUNT() FROM Lead",
        "SELECT Owner.Name FROM Lead",
        "SELECT Id FROM Lead WHERE Email = 'a'; DELETE",
    ],
)
def test_parse_refuses_everything_else_as_malformed(text: str) -> None:
    """Anything outside the subset is MALFORMED_QUERY, never a silent partial match."""
    with pytest.raises(SoqlError) as refused:
        soql.parse(text)
    assert refused.value.error_code == "MALFORMED_QUERY"
    assert refused.value.message


@pytest.mark.parametrize("sobject", ["Account", "Opportunity", "Custom__c"])
def test_an_unknown_sobject_is_invalid_type(sobject: str) -> None:
    """Objects the sandbox's org lacks get INVALID_TYPE with Salesforce's own message."""
    with pytest.raises(SoqlError) as raised:
        soql.parse(f"SELECT Id FROM {sobject}")
    assert raised.value.error_code == "INVALID_TYPE"
    assert raised.value.message.startswith(f"sObject type '{sobject}' is not supported.")


def test_resolve_fields_spells_names_as_the_schema_does() -> None:
    """Field names are matched case-insensitively and come back in the schema's spelling."""
    query = soql.parse("SELECT id, EMAIL, probe_id__c FROM lead WHERE email = 'a'")
    resolved = soql.resolve_fields(query, LEAD_FIELDS)
    assert resolved.fields == ("Id", "Email", "Probe_Id__c")
    assert resolved.where == (Condition("Email", "=", "a"),)


def test_resolve_fields_keeps_the_first_spelling_of_a_name() -> None:
    """A schema that spells a name twice (a record's own casing after the standard field's)
    resolves it to the first: the standard spelling, whatever records carry."""
    query = soql.parse("SELECT EMAIL FROM Lead WHERE email = 'a'")
    resolved = soql.resolve_fields(query, ["Id", "Email", "email", "EMAIL"])
    assert resolved.fields == ("Email",)
    assert resolved.where == (Condition("Email", "=", "a"),)


def test_a_query_finds_fields_only_records_carry() -> None:
    """Names outside the standard and mapped fields resolve from the records' own fields (the
    records are read only then); a name no record carries is INVALID_FIELD."""
    world = World.create(Scenario(), VirtualClock(T0), seed=1)
    data = DataApi(world)
    world.new_crm_record("Lead", {"Email": "a@p.example", "Probe_Run__c": "r1"}, T0)
    world.new_crm_record("Lead", {"Email": "b@p.example", "Probe_Run__c": "r2"}, T0)
    found = data.query("v62.0", "SELECT email, probe_run__c FROM Lead WHERE PROBE_RUN__C = 'r2'")
    assert found.status == 200
    assert [(r["Email"], r["Probe_Run__c"]) for r in found.payload["records"]] == [
        ("b@p.example", "r2")
    ]
    refused = data.query("v62.0", "SELECT Id FROM Lead WHERE Probe_Other__c = 'r2'")
    assert refused.status == 400 and refused.payload[0]["errorCode"] == "INVALID_FIELD"


@pytest.mark.parametrize(
    "text",
    [
        "SELECT Id, Nonsense FROM Lead",
        "SELECT Id FROM Lead WHERE Nonsense = 'a'",
        "SELECT Id FROM Lead WHERE Nonsense__c IN ('a')",
    ],
)
def test_resolve_fields_refuses_unknown_fields(text: str) -> None:
    """A field the schema lacks, selected or filtered on, is INVALID_FIELD naming the field."""
    with pytest.raises(SoqlError) as refused:
        soql.resolve_fields(soql.parse(text), LEAD_FIELDS)
    assert refused.value.error_code == "INVALID_FIELD"
    assert "Nonsense" in refused.value.message


@pytest.mark.parametrize(
    "text",
    [
        "SELECT Id FROM Lead WHERE Email = 2026-10-05T09:00:00Z",
        "SELECT Id FROM Lead WHERE CreatedDate = 'yesterday'",
    ],
)
def test_resolve_fields_refuses_values_of_the_wrong_type(text: str) -> None:
    """A datetime literal against a text field, or a string against CreatedDate, is refused."""
    with pytest.raises(SoqlError) as refused:
        soql.resolve_fields(soql.parse(text), LEAD_FIELDS)
    assert refused.value.error_code == "MALFORMED_QUERY"


@pytest.mark.parametrize(
    ("pattern", "text", "expected"),
    [
        ("%@probe.example", "syncwatch+ab12@probe.example", True),
        ("%@probe.example", "SYNCWATCH+AB12@PROBE.EXAMPLE", True),
        ("%@probe.example", "someone@probe.example.com", False),
        ("%@probe.example", "someone@probeXexample", False),
        ("a_c", "abc", True),
        ("a_c", "abbc", False),
        ("100\\%", "100%", True),
        ("100\\%", "1000", False),
        ("a\\_c", "a_c", True),
        ("a\\_c", "abc", False),
        ("%", "", True),
    ],
)
def test_like_pattern(pattern: str, text: str, expected: bool) -> None:
    """LIKE: % and _ are wildcards, escaped ones are literal, case is ignored, the whole text."""
    assert (soql.like_pattern(pattern).fullmatch(text) is not None) is expected


@pytest.mark.parametrize(
    ("literal", "expected"),
    [
        ("'100\\%'", "100%"),
        ("'a\\\\b'", "a\\b"),
        ("'say \\\"hi\\\"'", 'say "hi"'),
        ("'tab\\there'", "tab\there"),
    ],
)
def test_string_escapes_outside_like(literal: str, expected: str) -> None:
    """Backslash escapes resolve to plain text in = and IN comparisons."""
    query = soql.parse(f"SELECT Id FROM Lead WHERE Email = {literal}")
    assert query.where[0].value == expected


def test_like_literal_keeps_escaped_wildcards_literal() -> None:
    """In LIKE, an escaped % matches only a percent sign, and an escaped backslash stays one."""
    query = soql.parse("SELECT Id FROM Lead WHERE Email LIKE 'a\\%b\\\\%'")
    condition = query.where[0]
    assert soql.matches(condition, {"Email": "a%b\\anything"})
    assert not soql.matches(condition, {"Email": "axb\\anything"})


@pytest.mark.parametrize(
    ("condition", "row", "expected"),
    [
        (Condition("Email", "=", "A@X.com"), {"Email": "a@x.COM"}, True),
        (Condition("Email", "=", "a@x.com"), {"Email": "b@x.com"}, False),
        (Condition("Email", "!=", "a@x.com"), {"Email": "b@x.com"}, True),
        (Condition("Email", "IN", ("a@x.com", "B@x.com")), {"Email": "b@X.com"}, True),
        (Condition("Email", "IN", ("a@x.com",)), {"Email": "c@x.com"}, False),
        (Condition("Email", "=", "a@x.com"), {"Email": None}, False),
        (Condition("Email", "IN", ("a@x.com",)), {}, False),
        (Condition("Email", "!=", "a@x.com"), {"Email": None}, True),
        (
            Condition("CreatedDate", "<", T0),
            {"CreatedDate": datetime(2026, 1, 1, tzinfo=UTC)},
            True,
        ),
        (Condition("CreatedDate", "<", T0), {"CreatedDate": T0}, False),
        (Condition("CreatedDate", "<=", T0), {"CreatedDate": T0}, True),
        (Condition("CreatedDate", ">", T0), {"CreatedDate": T0}, False),
        (Condition("CreatedDate", "=", T0), {"CreatedDate": T0}, True),
    ],
)
def test_matches(condition: Condition, row: dict[str, Any], expected: bool) -> None:
    """Text compares case-insensitively, datetimes by instant, and null matches only !=."""
    assert soql.matches(condition, row) is expected


def test_select_filters_on_every_condition_then_applies_limit() -> None:
    """Rows must satisfy all AND-ed conditions; LIMIT keeps the first n in order."""
    rows: list[dict[str, Any]] = [
        {"Id": "1", "Email": "a@p.example", "CreatedDate": datetime(2026, 10, 1, tzinfo=UTC)},
        {"Id": "2", "Email": "b@p.example", "CreatedDate": datetime(2026, 10, 6, tzinfo=UTC)},
        {"Id": "3", "Email": "c@other.example", "CreatedDate": datetime(2026, 10, 1, tzinfo=UTC)},
        {"Id": "4", "Email": "d@p.example", "CreatedDate": datetime(2026, 10, 2, tzinfo=UTC)},
    ]
    query = soql.parse(
        "SELECT Id FROM Lead WHERE Email LIKE '%@p.example' AND CreatedDate < 2026-10-05T09:00:00Z"
    )
    assert [row["Id"] for row in soql.select(query, rows)] == ["1", "4"]
    limited = soql.parse("SELECT Id FROM Lead WHERE Email LIKE '%@p.example' LIMIT 2")
    assert [row["Id"] for row in soql.select(limited, rows)] == ["1", "2"]


FIELD_NAMES = st.sampled_from(["Id", "Email", "LastName", "CreatedDate", "Probe_Id__c", "Company"])
FIELD_VALUES = st.one_of(st.none(), st.text(max_size=8), st.just("a@p.example"))


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.dictionaries(FIELD_NAMES, FIELD_VALUES, max_size=5), min_size=1, max_size=6),
    st.sampled_from(
        [
            "SELECT Id FROM Lead WHERE Email IN ('a@p.example', '')",
            "SELECT Id FROM Lead WHERE LastName != 'x' AND Email LIKE '%p.example'",
            "SELECT Id FROM Lead WHERE CreatedDate < 2026-10-05T09:00:00Z AND Company = ''",
            "SELECT Id FROM Lead WHERE Id != '00Q000000000000001'",
        ]
    ),
)
def test_a_query_reads_a_record_row_as_the_whole_row(
    fields: list[dict[str, Any]], text: str
) -> None:
    """``RecordRow`` is ``record_row`` read lazily: the same mapping, key order included, and
    a query selects the same records over either (fields named Id or CreatedDate too)."""
    records = [
        CrmRecord(f"00Q{n:015d}", "Lead", dict(row), T0 - timedelta(minutes=n, microseconds=7))
        for n, row in enumerate(fields)
    ]
    query = soql.parse(text)
    for record in records:
        lazy, whole = RecordRow(record), record_row(record)
        assert dict(lazy) == whole and list(lazy) == list(whole) and len(lazy) == len(whole)
        for name in ("Id", "Email", "CreatedDate", "Company", "Nope"):
            assert lazy.get(name) == whole.get(name)
    chosen = [row.record for row in soql.select(query, [RecordRow(r) for r in records])]
    expected = [r for r in records if soql.select(query, [record_row(r)])]
    assert chosen == expected


@settings(max_examples=300, deadline=None)
@given(
    st.one_of(
        st.text(max_size=200),
        st.lists(
            st.sampled_from(
                [
                    "SELECT",
                    "Id",
                    ",",
                    "Email",
                    "FROM",
                    "Lead",
                    "WHERE",
                    "IN",
                    "(",
                    ")",
                    "'a'",
                    "=",
                    "<",
                    "AND",
                    "OR",
                    "LIKE",
                    "'%@x'",
                    "LIMIT",
                    "5",
                    "2026-10-05T09:00:00Z",
                    "CreatedDate",
                    "\\",
                    "'",
                    "Contact",
                ]
            ),
            max_size=20,
        ).map(" ".join),
    )
)
def test_any_text_parses_or_is_refused_with_a_salesforce_error(text: str) -> None:
    """No input makes the parser fail with anything but a SoqlError carrying an errorCode."""
    try:
        soql.parse(text)
    except SoqlError as refused:
        assert refused.error_code in {"MALFORMED_QUERY", "INVALID_FIELD", "INVALID_TYPE"}


# -- the scanner reads exactly what a token-at-a-time reader reads ---------------------------

_REFERENCE_TOKEN = re.compile(
    r"""
    (?P<space>\s+)
    | (?P<string>'(?:[^'\\]|\\.)*')
    | (?P<datetime>\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:Z|[+-]\d{2}:\d{2}))
    | (?P<integer>\d+)
    | (?P<name>[A-Za-z_][A-Za-z0-9_]*)
    | (?P<op><=|>=|!=|=|<|>)
    | (?P<punct>[,()])
    """,
    re.VERBOSE,
)


def reference_tokens(text: str) -> list[tuple[str, str, Any]]:
    """The grammar read one ``match`` at a time, as the sandbox first did: the oracle for
    ``soql.tokenize``'s single scanner (tokens, values, and which error comes first)."""
    tokens: list[tuple[str, str, Any]] = []
    position = 0
    while position < len(text):
        match = _REFERENCE_TOKEN.match(text, position)
        if match is None:
            raise soql.malformed(f"unexpected token: '{text[position:].split()[0]}'")
        position = match.end()
        kind, token = match.lastgroup or "space", match.group()
        if kind == "space":
            continue
        if kind == "name" and token.upper() in {"SELECT", "FROM", "WHERE", "AND", "IN", "LIKE",
                                                "LIMIT"}:  # fmt: skip
            tokens.append(("keyword", token.upper(), None))
        elif kind == "string":
            soql.unescape(token[1:-1], for_like=False)
            tokens.append((kind, token, token[1:-1]))
        elif kind == "datetime":
            tokens.append((kind, token, soql.parse_datetime(token)))
        elif kind == "integer":
            tokens.append((kind, token, int(token)))
        else:
            tokens.append((kind, token, None))
    tokens.append(("end", "<end of query>", None))
    return tokens


SOQL_PIECES = [
    "SELECT", "select", "Id", ",", "Email", "FROM", "Lead", "WHERE", "IN", "(", ")", "=", "!=",
    "<=", ">", "AND", "LIKE", "LIMIT", "5", "007", "2026-10-05T09:00:00Z",
    "2026-10-05T11:00:00+02:00", "2026-13-05T09:00:00Z", "'a@x.com'", "'o\\'brien'", "'100\\%'",
    "'tab\\there'", "'bad \\q'", "'\\\\'", "'open", "'", "\\", '"', ";", "-", ".", "é", "\n", "\t",
    "'line\nbreak'", "'esc\\\nnewline'", "''",
]  # fmt: skip


@settings(max_examples=400, deadline=None)
@given(
    st.one_of(
        st.text(max_size=120),
        st.lists(st.sampled_from(SOQL_PIECES), max_size=24).map(" ".join),
        st.lists(st.sampled_from(SOQL_PIECES), max_size=24).map("".join),
    )
)
def test_the_scanner_tokenizes_exactly_as_a_token_at_a_time_reader(text: str) -> None:
    """Same tokens and values for every text, and the same first error where one is wrong:
    the one-pass scanner changes how fast a query is read, never what it reads."""
    try:
        expected: list[tuple[str, str, Any]] | str = reference_tokens(text)
    except SoqlError as refused:
        expected = refused.message
    try:
        got: list[tuple[str, str, Any]] | str = [
            (token.kind, token.text, token.value) for token in soql.tokenize(text)
        ]
    except SoqlError as refused:
        got = refused.message
    assert got == expected


def read_whole(text: str) -> soql.Query | str:
    """The query as the tokenizer and the parser read the whole text, or their message."""
    try:
        if not text.strip():
            return soql.parse(text)
        return soql._Parser(soql.tokenize(text)).query()
    except SoqlError as refused:
        return refused.message


LITERAL_BODIES = st.lists(
    st.sampled_from(["a", "@", ".", "'", "\\", "\\'", "\\\\", "%", "_", "\\%", "é", " "]),
    max_size=8,
).map("".join)


@settings(max_examples=400, deadline=None)
@given(
    st.one_of(
        st.lists(st.sampled_from(SOQL_PIECES), max_size=24).map(" ".join),
        st.lists(st.sampled_from(SOQL_PIECES), max_size=24).map("".join),
        st.tuples(
            st.lists(LITERAL_BODIES, min_size=1, max_size=4),
            st.sampled_from(["IN ({})", "= {}", "LIKE {}", "IN ({}) LIMIT 5"]),
        ).map(
            lambda parts: (
                "SELECT Id, Email FROM Lead WHERE Email "
                + parts[1].format(",".join(f"'{body}'" for body in parts[0]))
            )
        ),
    )
)
def test_a_query_read_by_its_shape_is_the_query_read_whole(text: str) -> None:
    """Parsing the shape once and putting the literals back gives the query (or the first
    error) that reading the whole text gives, for any text: literals with quotes, escapes
    good and bad, LIKE wildcards, and texts that are not SOQL at all."""
    try:
        got: soql.Query | str = soql.parse(text)
    except SoqlError as refused:
        got = refused.message
    assert got == read_whole(text)


def test_a_shape_is_parsed_once_for_any_literals() -> None:
    """Two polls for different emails share one parse of their shape."""
    soql._parse_shape.cache_clear()
    first = soql.parse("SELECT Id FROM Lead WHERE Email IN ('a@x.com', 'b@x.com')")
    second = soql.parse("SELECT Id FROM Lead WHERE Email IN ('c@x.com', 'd\\'e@x.com')")
    assert soql._parse_shape.cache_info().hits == 1
    assert first.where[0].value == ("a@x.com", "b@x.com")
    assert second.where[0].value == ("c@x.com", "d'e@x.com")
