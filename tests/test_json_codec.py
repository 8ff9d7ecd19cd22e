"""``json_codec.loads`` reads every document exactly as ``json.loads`` does, only faster."""

from __future__ import annotations

import json
import math
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from syncwatch import json_codec
from syncwatch.sandbox.json_response import JSONResponse

SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(),
)
VALUES = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=20,
)


def _read(reader: Any, document: bytes) -> tuple[str, Any]:
    try:
        return "read", reader(document)
    except ValueError:
        return "refused", None


def _same(left: Any, right: Any) -> bool:
    """Equal, of the same types all the way down (1 and 1.0 differ), NaN equal to NaN."""
    if type(left) is not type(right):
        return False
    if isinstance(left, float):
        return left == right or (math.isnan(left) and math.isnan(right))
    if isinstance(left, list):
        return len(left) == len(right) and all(map(_same, left, right))
    if isinstance(left, dict):
        return list(left) == list(right) and all(_same(left[k], right[k]) for k in left)
    return bool(left == right)


@pytest.mark.parametrize(
    "document",
    [
        b"\xef\xbb\xbf{}",  # a byte-order mark: json reads it, orjson refuses
        b"NaN",
        b"[1e400, -1e400]",
        b'"\\ud800"',  # a lone surrogate
        b"18446744073709551616",  # past 64 bits: orjson would read a float
        b'{"id": -9223372036854775809, "n": 1}',
        b'{"big": "12345678901234567890"}',  # long digits inside a string: still exact
        b'{"a":1,"a":2}',
        b"[1,]",
        b'"\xff"',
        b"",
        b"<html>502 Bad Gateway</html>",
        b'{"records": [{"Id": "00Q1", "Email": "a@b"}], "done": true, "totalSize": 1}',
    ],
)
def test_documents_where_the_readers_differ_read_as_json_reads_them(document: bytes) -> None:
    got, expected = _read(json_codec.loads, document), _read(json.loads, document)
    assert got[0] == expected[0] and _same(got[1], expected[1])


@settings(max_examples=400, deadline=None)
@given(VALUES, st.sampled_from([{}, {"separators": (",", ":")}, {"ensure_ascii": False}]))
def test_any_json_document_reads_as_json_reads_it(value: Any, style: dict[str, Any]) -> None:
    document = json.dumps(value, **style).encode()
    assert _same(json_codec.loads(document), json.loads(document))


@settings(max_examples=400, deadline=None)
@given(
    st.binary(max_size=40)
    | st.text(alphabet='{}[]":,.-+eE0123456789 nultrfaNI\\u', max_size=40).map(str.encode)
)
def test_any_bytes_are_read_or_refused_as_json_reads_or_refuses_them(document: bytes) -> None:
    got, expected = _read(json_codec.loads, document), _read(json.loads, document)
    assert got[0] == expected[0] and _same(got[1], expected[1])


@settings(max_examples=300, deadline=None)
@given(VALUES)
def test_the_sandbox_renders_the_json_starlette_would(value: Any) -> None:
    """Same document, read back; and what orjson passes on renders as Starlette renders it."""
    rendered = JSONResponse(value).body
    assert _same(json.loads(rendered), json.loads(json.dumps(value)))


def test_what_orjson_does_not_render_the_standard_library_way_renders_as_before() -> None:
    assert JSONResponse({1: "a"}).body == b'{"1":"a"}'  # a key that is not a string
    with pytest.raises(TypeError):
        JSONResponse({"at": object()})
    from datetime import UTC, datetime

    with pytest.raises(TypeError):  # orjson would write it; Starlette refuses, as before
        JSONResponse({"at": datetime(2026, 10, 1, tzinfo=UTC)})
