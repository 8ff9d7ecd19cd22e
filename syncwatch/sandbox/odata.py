"""The OData ``$filter`` subset the sandbox's Dataverse understands, parsed and evaluated.

Comparisons (``eq ne gt ge lt le``) of a column with a literal, ``contains``/``startswith``/
``endswith`` (their argument a SQL LIKE pattern: ``%``, ``_``, ``[...]``), ``and``, ``or``,
``not``, parentheses. Literals: ``'text'`` (a quote doubled inside), unquoted DateTimeOffset
(``2026-10-03T14:05:12Z``), numbers, ``null``, ``true``, ``false``. String comparisons ignore
case, as Dataverse's do.

Vendor docs (repo MicrosoftDocs/powerapps-docs): ``powerapps-docs/developer/data-platform/
webapi/query/filter-rows.md`` (operators, functions, case-insensitivity, doubled quotes) and
``wildcard-characters.md`` (wildcards in the string functions, literals in brackets).
"""

from __future__ import annotations

import operator
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

Row = Mapping[str, Any]
Predicate = Callable[[Row], bool]

_TOKEN = re.compile(r"\s*(?:(?P<string>'(?:[^']|'')*')|(?P<punct>[(),])|(?P<word>[^\s(),']+))")
_COMPARE: dict[str, Callable[[Any, Any], Any]] = {
    "eq": operator.eq,
    "ne": operator.ne,
    "gt": operator.gt,
    "ge": operator.ge,
    "lt": operator.lt,
    "le": operator.le,
}
_FUNCTIONS = {
    "contains": lambda pattern: f"%{pattern}%",
    "startswith": lambda pattern: f"{pattern}%",
    "endswith": lambda pattern: f"%{pattern}",
}
_DATETIME = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:\d{2})")
_NUMBER = re.compile(r"-?\d+(\.\d+)?")
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


class ODataError(ValueError):
    """A ``$filter`` the sandbox cannot read; rendered as a 400 by the caller."""


@dataclass(frozen=True)
class _Token:
    kind: str  # "string", "punct", "word"
    text: str
    position: int


def parse_filter(text: str, columns: set[str]) -> Predicate:
    """A predicate over rows keyed by column name; ``columns`` are the ones that exist."""
    parser = _Parser(_tokens(text), text, columns)
    predicate = parser.expression()
    if parser.peek() is not None:
        parser.fail("unexpected")
    return predicate


def _tokens(text: str) -> list[_Token]:
    tokens, position = [], 0
    while position < len(text):
        match = _TOKEN.match(text, position)
        if match is None or match.end() == position:
            if text[position:].strip():
                raise ODataError(f"Syntax error at position {position} in '{text}'.")
            break
        kind = match.lastgroup or "word"
        tokens.append(_Token(kind, match.group(kind), match.start(kind)))
        position = match.end()
    return tokens


class _Parser:
    """Recursive descent: ``or`` binds loosest, then ``and``, then ``not``."""

    def __init__(self, tokens: list[_Token], text: str, columns: set[str]) -> None:
        self.tokens, self.text, self.columns, self.at = tokens, text, columns, 0

    def peek(self) -> _Token | None:
        return self.tokens[self.at] if self.at < len(self.tokens) else None

    def take(self) -> _Token:
        token = self.peek()
        if token is None:
            raise ODataError(f"Syntax error: unexpected end of '{self.text}'.")
        self.at += 1
        return token

    def fail(self, what: str) -> None:
        token = self.peek()
        position = token.position if token else len(self.text)
        raise ODataError(f"Syntax error: {what} at position {position} in '{self.text}'.")

    def expect(self, text: str) -> None:
        if self.take().text != text:
            self.at -= 1
            self.fail(f"'{text}' expected")

    def expression(self) -> Predicate:
        terms = [self.term()]
        while (token := self.peek()) is not None and token.text == "or":
            self.take()
            terms.append(self.term())
        return terms[0] if len(terms) == 1 else lambda row: any(term(row) for term in terms)

    def term(self) -> Predicate:
        factors = [self.factor()]
        while (token := self.peek()) is not None and token.text == "and":
            self.take()
            factors.append(self.factor())
        return factors[0] if len(factors) == 1 else lambda row: all(f(row) for f in factors)

    def factor(self) -> Predicate:
        token = self.take()
        if token.text == "not":
            inner = self.factor()
            return lambda row: not inner(row)
        if token.text == "(":
            inner = self.expression()
            self.expect(")")
            return inner
        if token.text in _FUNCTIONS:
            return self.function(token.text)
        column = self.column(token)
        operator = self.take()
        if operator.text not in _COMPARE:
            self.at -= 1
            self.fail("comparison operator expected")
        return _comparison(column, operator.text, self.literal())

    def function(self, name: str) -> Predicate:
        self.expect("(")
        column = self.column(self.take())
        self.expect(",")
        pattern = self.literal()
        self.expect(")")
        if not isinstance(pattern, str):
            raise ODataError(f"The function '{name}' takes a string.")
        matcher = like(_FUNCTIONS[name](pattern))
        return lambda row: isinstance(row.get(column), str) and bool(matcher(row[column]))

    def column(self, token: _Token) -> str:
        if token.kind != "word" or not _NAME.fullmatch(token.text):
            self.at -= 1
            self.fail("property name expected")
        if token.text not in self.columns:
            raise ODataError(f"Could not find a property named '{token.text}' on type.")
        return token.text

    def literal(self) -> Any:
        token = self.take()
        if token.kind == "string":
            return token.text[1:-1].replace("''", "'")
        text = token.text
        if text in ("null", "true", "false"):
            return {"null": None, "true": True, "false": False}[text]
        if _DATETIME.fullmatch(text):
            return datetime.fromisoformat(text).astimezone(UTC)
        if _NUMBER.fullmatch(text):
            return float(text)
        self.at -= 1
        self.fail("literal expected")
        return None  # pragma: no cover - fail raises


def _comparison(column: str, operator: str, value: Any) -> Predicate:
    """``column op value``: strings compared case-insensitively, null only by eq/ne."""
    compare = _COMPARE[operator]

    def test(row: Row) -> bool:
        have = row.get(column)
        if have is None or value is None:
            return compare(have is None, value is None) if operator in ("eq", "ne") else False
        if isinstance(have, str) and isinstance(value, str):
            return bool(compare(have.casefold(), value.casefold()))
        try:
            return bool(compare(have, value))
        except TypeError:
            return False

    return test


def like(pattern: str) -> Callable[[str], re.Match[str] | None]:
    """A case-insensitive matcher for a SQL LIKE pattern: ``%`` any run, ``_`` one character,
    ``[abc]`` / ``[^abc]`` a set (``[%]`` is a literal percent sign)."""
    out, i = [], 0
    while i < len(pattern):
        char = pattern[i]
        close = pattern.find("]", i + 2) if char == "[" else -1
        if char == "%":
            out.append(".*")
        elif char == "_":
            out.append(".")
        elif close != -1:
            members = pattern[i + 1 : close]
            negate = members.startswith("^") and len(members) > 1
            body = re.escape(members[1:] if negate else members).replace("\\-", "-")
            out.append(f"[{'^' if negate else ''}{body}]")
            i = close
        else:
            out.append(re.escape(char))
        i += 1
    return re.compile("".join(out), re.IGNORECASE | re.DOTALL).fullmatch
