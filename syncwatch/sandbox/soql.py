"""The SOQL subset the sandbox understands, parsed and evaluated without any HTTP.

syncwatch sends few query shapes: a batched probe lookup (``WHERE Email IN (...)``), a single
lookup (``WHERE Email = '...'``) and the sweep (``WHERE Email LIKE '%@domain' AND CreatedDate <
<datetime>``), each with an optional ``LIMIT``. The sandbox accepts that grammar, generalised just
enough to stay regular (any field, ``AND`` only), and refuses the rest as ``MALFORMED_QUERY``,
so an adapter that drifts into SOQL the sandbox cannot check fails loudly instead of silently.

Grammar::

    query     := SELECT field ("," field)* FROM sobject [WHERE condition (AND condition)*]
                 [LIMIT integer]
    condition := field ("=" | "!=" | LIKE) string
               | field IN "(" string ("," string)* ")"
               | field ("=" | "!=" | "<" | "<=" | ">" | ">=") datetime

Vendor docs: SOQL SELECT syntax and date formats,
https://developer.salesforce.com/docs/platform/salesforce-soql-sosl/guide/sforce-api-calls-soql-select-dateformats.md
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, NamedTuple, TypeVar

SOBJECTS = ("Lead", "Contact")

_TOKEN = re.compile(
    r"""
    \s+
    | (?P<string>'[^'\\]*(?:\\.[^'\\]*)*')
    | (?P<datetime>\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:Z|[+-]\d{2}:\d{2}))
    | (?P<integer>\d+)
    | (?P<name>[A-Za-z_][A-Za-z0-9_]*)
    | (?P<op><=|>=|!=|=|<|>)
    | (?P<punct>[,()])
    | (?P<unexpected>(?s:.))
    """,
    re.VERBOSE,
)
"""One scanner for the whole query: some alternative matches at every position (the first that
does, in this order: whitespace, which names no group, first; a character no token starts with
last), so ``finditer`` walks the text in one pass instead of a ``match`` call per token. A
string literal is a quote, runs of plain characters between backslash escapes (a newline cannot
be escaped), and a quote: written as runs rather than one character at a time, the engine takes
a run in one step, and the literals (the probe emails) are most of a query's text."""
_KEYWORDS = frozenset({"SELECT", "FROM", "WHERE", "AND", "IN", "LIKE", "LIMIT"})
# Escapes the SOQL reference lists for string literals; \% and \_ stay escaped for LIKE.
_ESCAPES = {"'": "'", '"': '"', "\\": "\\", "n": "\n", "t": "\t", "r": "\r", "b": "\b", "f": "\f"}
_STRING_OPS = frozenset({"=", "!="})
_DATETIME_OPS = frozenset({"=", "!=", "<", "<=", ">", ">="})


class SoqlError(ValueError):
    """A query the sandbox refuses, carrying the Salesforce ``errorCode`` to answer with."""

    def __init__(self, error_code: str, message: str) -> None:
        super().__init__(message)
        self.error_code = error_code
        self.message = message


def malformed(message: str) -> SoqlError:
    return SoqlError("MALFORMED_QUERY", message)


class Token(NamedTuple):
    """A lexeme; a tuple rather than a dataclass because a query has dozens of them."""

    kind: str  # string/datetime/integer/name/op/punct/keyword/end
    text: str
    value: Any = None


@dataclass(frozen=True)
class Condition:
    field: str
    op: str  # "=", "!=", "<", "<=", ">", ">=", "LIKE", "IN"
    value: str | datetime | tuple[str, ...]


@dataclass(frozen=True)
class Query:
    fields: tuple[str, ...]
    sobject: str
    where: tuple[Condition, ...] = ()
    limit: int | None = None


def tokenize(text: str) -> list[Token]:
    """Split SOQL into tokens; keywords are recognised case-insensitively, as SOQL does.

    The first problem in reading order is the one reported: a character no token starts with,
    or a string literal with an escape SOQL does not define.
    """
    tokens: list[Token] = []
    append = tokens.append
    for match in _TOKEN.finditer(text):
        kind = match.lastgroup
        if kind is None:  # whitespace
            continue
        token = match.group()
        if kind == "name":
            upper = token.upper()
            append(Token("keyword", upper) if upper in _KEYWORDS else Token(kind, token))
        elif kind == "string":
            body = token[1:-1]
            if "\\" in body:
                unescape(body, for_like=False)  # refuse bad escapes wherever the literal is
            append(Token(kind, token, body))
        elif kind == "datetime":
            append(Token(kind, token, parse_datetime(token)))
        elif kind == "integer":
            append(Token(kind, token, int(token)))
        elif kind == "unexpected":
            raise malformed(f"unexpected token: '{text[match.start() :].split()[0]}'")
        else:
            append(Token(kind, token))
    append(Token("end", "<end of query>"))
    return tokens


def unescape(body: str, for_like: bool) -> str:
    """Resolve backslash escapes in a string literal's body.

    For LIKE the wildcard characters and the backslash stay escaped (``\\%``), so that
    ``like_pattern`` can tell a literal ``%`` from a wildcard; elsewhere they are plain text.
    """
    if "\\" not in body:
        return body
    out: list[str] = []
    chars = iter(body)
    for char in chars:
        if char != "\\":
            out.append(char)
            continue
        escaped = next(chars)  # the token pattern guarantees a character follows
        if escaped in "%_":
            out.append("\\" + escaped if for_like else escaped)
        elif escaped in _ESCAPES:
            plain = _ESCAPES[escaped]
            out.append("\\" + plain if for_like and plain == "\\" else plain)
        else:
            # unconfirmed: message wording; the SOQL page lists the valid escapes.
            raise malformed(f"Invalid string literal: unknown escape sequence '\\{escaped}'")
    return "".join(out)


def parse_datetime(text: str) -> datetime:
    """A SOQL datetime literal (``...Z`` or ``...±hh:mm``), as an aware UTC datetime."""
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError as exc:
        raise malformed(f"line 1: invalid datetime: {text}") from exc
    return moment.astimezone(UTC)


class _Parser:
    """Recursive descent over the token list; every dead end is a ``MALFORMED_QUERY``."""

    def __init__(self, tokens: list[Token]) -> None:
        self.tokens = tokens
        self.index = 0

    def peek(self) -> Token:
        return self.tokens[self.index]

    def take(self, kind: str, text: str | None = None) -> Token:
        token = self.peek()
        if token.kind != kind or (text is not None and token.text != text):
            # unconfirmed: the vendor's exact message wording; only the errorCode is documented.
            raise malformed(f"unexpected token: '{token.text}'")
        self.index += 1
        return token

    def accept(self, kind: str, text: str) -> bool:
        token = self.peek()
        if token.kind == kind and token.text == text:
            self.index += 1
            return True
        return False

    def query(self) -> Query:
        self.take("keyword", "SELECT")
        fields = [self.take("name").text]
        while self.accept("punct", ","):
            fields.append(self.take("name").text)
        self.take("keyword", "FROM")
        sobject = self.sobject()
        where: list[Condition] = []
        if self.accept("keyword", "WHERE"):
            where.append(self.condition())
            while self.accept("keyword", "AND"):
                where.append(self.condition())
        limit = self.take("integer").value if self.accept("keyword", "LIMIT") else None
        self.take("end")
        return Query(_no_duplicates(fields), sobject, tuple(where), limit)

    def sobject(self) -> str:
        name = self.take("name").text
        for known in SOBJECTS:
            if name.lower() == known.lower():
                return known
        # A real org answers INVALID_TYPE with this message for an sObject it lacks (secondary
        # source: bodies captured in simple-salesforce/simple-salesforce#287 and
        # SalesforceLabs/OrgCheck#111). The sandbox's org has only Lead and Contact.
        raise SoqlError(
            "INVALID_TYPE",
            f"sObject type '{name}' is not supported. If you are attempting to use a custom "
            "object, be sure to append the '__c' after the entity name. Please reference your "
            "WSDL or the describe call for the appropriate names.",
        )

    def condition(self) -> Condition:
        field = self.take("name").text
        if self.accept("keyword", "IN"):
            return Condition(field, "IN", self.in_list())
        if self.accept("keyword", "LIKE"):
            return Condition(field, "LIKE", self.string(for_like=True))
        op = self.take("op").text
        value = self.peek()
        if value.kind == "datetime" and op in _DATETIME_OPS:
            self.index += 1
            return Condition(field, op, value.value)
        if value.kind == "string" and op in _STRING_OPS:
            return Condition(field, op, self.string())
        raise malformed(f"unexpected token: '{value.text}'")

    def string(self, for_like: bool = False) -> str:
        return unescape(self.take("string").value, for_like)

    def in_list(self) -> tuple[str, ...]:
        self.take("punct", "(")
        values = [self.string()]
        while self.accept("punct", ","):
            values.append(self.string())
        self.take("punct", ")")
        return tuple(values)


def _no_duplicates(fields: list[str]) -> tuple[str, ...]:
    seen: set[str] = set()
    for name in fields:
        if name.lower() in seen:
            # unconfirmed: message wording; a real org rejects a repeated field as well.
            raise malformed(f"duplicate field selected: {name}")
        seen.add(name.lower())
    return tuple(fields)


def parse(text: str) -> Query:
    """Parse one query of the subset, or raise ``SoqlError`` saying why not.

    A client sends a few shapes of query with different literals in them (a poll's emails), so
    the shape, every literal emptied, is parsed once and the literals are put back in reading
    order: no token but a string literal holds a quote, so the shape's tokens are the query's
    but for those. Any problem at all, and the whole text is read in order, so the error
    reported is always the first, as ``tokenize`` and the parser find it.
    """
    if not text.strip():
        # unconfirmed: message wording for a missing or empty ``q``.
        raise malformed("A query string has to be specified")
    literals = _LITERAL.findall(text)
    try:
        return _with_literals(_parse_shape(_LITERAL.sub("''", text)), literals)
    except SoqlError:
        return _Parser(tokenize(text)).query()


_LITERAL = re.compile(r"'[^'\\]*(?:\\.[^'\\]*)*'")
"""A string literal, as ``_TOKEN`` reads one."""


@functools.lru_cache(maxsize=128)
def _parse_shape(shape: str) -> Query:
    return _Parser(tokenize(shape)).query()


def _with_literals(shape: Query, literals: list[str]) -> Query:
    """``shape``'s conditions with the literals in place of its empty ones, read as the parser
    reads them (an unknown escape refused, LIKE keeping its wildcards escaped)."""
    bodies = iter(literal[1:-1] for literal in literals)
    where: list[Condition] = []
    for condition in shape.where:
        value: str | datetime | tuple[str, ...] = condition.value
        if isinstance(value, tuple):
            value = tuple(unescape(next(bodies), for_like=False) for _ in value)
        elif isinstance(value, str):
            value = unescape(next(bodies), for_like=condition.op == "LIKE")
        where.append(Condition(condition.field, condition.op, value))
    if next(bodies, None) is not None:
        raise malformed("a literal outside any condition")  # the whole text says where
    return Query(shape.fields, shape.sobject, tuple(where), shape.limit)


def resolve_fields(
    query: Query, known: Collection[str], datetime_fields: Collection[str] = ("CreatedDate",)
) -> Query:
    """The query with field names spelled as the schema spells them (SOQL ignores their case).

    A name the schema lacks is ``INVALID_FIELD``, as Salesforce answers it; a datetime literal
    against a text field, or a string against a datetime field, is refused too. Where
    ``known`` spells one name two ways, its first spelling is the field's.
    """
    by_lower = _by_lower(tuple(known))

    def fix(name: str) -> str:
        if name.lower() not in by_lower:
            # unconfirmed: the real message also quotes the query with a caret and a row/column.
            raise SoqlError(
                "INVALID_FIELD", f"No such column '{name}' on entity '{query.sobject}'."
            )
        return by_lower[name.lower()]

    def typed(condition: Condition) -> Condition:
        field = fix(condition.field)
        if (field in datetime_fields) != isinstance(condition.value, datetime):
            # unconfirmed: error code and wording for a filter value of the wrong type.
            raise malformed(f"value of filter criterion for field '{field}' has the wrong type")
        return Condition(field, condition.op, condition.value)

    where = tuple(typed(condition) for condition in query.where)
    return Query(tuple(fix(name) for name in query.fields), query.sobject, where, query.limit)


@functools.lru_cache(maxsize=64)
def _by_lower(known: tuple[str, ...]) -> dict[str, str]:
    """Field names by their lower case, the first spelling kept: made once per schema (most
    queries meet the same one), not once per query."""
    by_lower: dict[str, str] = {}
    for name in known:
        by_lower.setdefault(name.lower(), name)
    return by_lower


def like_pattern(pattern: str) -> re.Pattern[str]:
    """SOQL LIKE as a regex: ``%`` any run, ``_`` one character, ``\\%``/``\\_`` literal."""
    parts: list[str] = []
    index = 0
    while index < len(pattern):
        char = pattern[index]
        if char == "\\" and index + 1 < len(pattern):
            parts.append(re.escape(pattern[index + 1]))
            index += 2
            continue
        parts.append(".*" if char == "%" else "." if char == "_" else re.escape(char))
        index += 1
    return re.compile("".join(parts), re.IGNORECASE | re.DOTALL)


_COMPARE: dict[str, Callable[[Any, Any], bool]] = {
    "=": lambda a, b: bool(a == b),
    "!=": lambda a, b: bool(a != b),
    "<": lambda a, b: bool(a < b),
    "<=": lambda a, b: bool(a <= b),
    ">": lambda a, b: bool(a > b),
    ">=": lambda a, b: bool(a >= b),
}


def matches(condition: Condition, row: Mapping[str, Any]) -> bool:
    """Whether a row satisfies a condition; text compares case-insensitively, null never matches.

    unconfirmed: case-insensitive text comparison follows the SOQL comparison-operator page, which
    the reference file does not quote.
    """
    return predicate(condition)(row)


def predicate(condition: Condition) -> Callable[[Mapping[str, Any]], bool]:
    """``matches(condition, row)`` as a test of the row alone, the condition read once: a query
    tests every record of its object, and an ``IN`` list is case-folded once, not per row."""
    field, op, value = condition.field, condition.op, condition.value
    null = op == "!="  # what a row without the field gives

    if isinstance(value, datetime):
        compare, moment = _COMPARE[op], value

        def test_moment(row: Mapping[str, Any]) -> bool:
            actual = row.get(field)
            if actual is None:
                return null
            return isinstance(actual, datetime) and compare(actual, moment)

        return test_moment
    if op == "IN":
        assert isinstance(value, tuple)
        folded = frozenset(item.casefold() for item in value)

        def test_in(row: Mapping[str, Any]) -> bool:
            actual = row.get(field)
            return null if actual is None else str(actual).casefold() in folded

        return test_in
    assert isinstance(value, str)
    if op == "LIKE":
        pattern = like_pattern(value)

        def test_like(row: Mapping[str, Any]) -> bool:
            actual = row.get(field)
            return null if actual is None else pattern.fullmatch(str(actual)) is not None

        return test_like
    compare, text = _COMPARE[op], value.casefold()

    def test_text(row: Mapping[str, Any]) -> bool:
        actual = row.get(field)
        return null if actual is None else compare(str(actual).casefold(), text)

    return test_text


Row = TypeVar("Row", bound=Mapping[str, Any])


def select(query: Query, rows: Sequence[Row]) -> list[Row]:
    """Rows matching every condition, in order, cut at ``LIMIT``."""
    tests = [predicate(condition) for condition in query.where]
    found = [row for row in rows if all(test(row) for test in tests)]
    return found if query.limit is None else found[: query.limit]
