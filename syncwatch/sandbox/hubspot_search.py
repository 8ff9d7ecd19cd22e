"""The CRM search request (``PublicObjectSearchRequest``): parsing, validation and matching.

Source: repo HubSpot/HubSpot-public-api-spec-collection,
``PublicApiSpecs/CRM/Contacts/Rollouts/424/v3/contacts.json`` (``limit`` at most 200, the
operator list; its "up to 6 groups" predates the changelog "breaking change: expanded filtering"
of 2024-08-26, which allows 5 groups) and
https://developers.hubspot.com/docs/api-reference/2026-03/crm/search-the-crm (default properties).
Filter groups are ORed, filters inside a group ANDed. Pure: no HTTP, no clock.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from syncwatch.sandbox.hubspot_common import epoch_ms, iso_ms
from syncwatch.sandbox.world import Contact

MAX_GROUPS = 5  # changelog 2024-08-26 "expanded filtering": 5 groups, 25 filters
MAX_LIMIT = 200
DEFAULT_LIMIT = 10  # unconfirmed: HubSpot's default page size for search
DATE_PROPERTIES = frozenset({"createdate", "lastmodifieddate"})
DEFAULT_PROPERTIES = (
    "createdate",
    "email",
    "firstname",
    "hs_object_id",
    "lastmodifieddate",
    "lastname",
)
# unconfirmed: returned even when ``properties`` names others (seen in real responses).
ALWAYS_PROPERTIES = ("createdate", "hs_object_id", "lastmodifieddate")


class SearchError(ValueError):
    """A request HubSpot answers with 400 VALIDATION_ERROR; the message is the reason."""


def property_value(contact: Contact, name: str) -> str | None:
    """A property as HubSpot reports it, system properties included."""
    if name == "hs_object_id":
        return contact.id
    if name == "createdate":
        return iso_ms(contact.created_at)
    if name == "lastmodifieddate":
        return iso_ms(contact.updated_at)
    return contact.properties.get(name)


def _comparable(contact: Contact, name: str) -> str | int | None:
    """Datetimes compare as ms epoch (the filter value form), everything else as lower text."""
    if name == "createdate":
        return epoch_ms(contact.created_at)
    if name == "lastmodifieddate":
        return epoch_ms(contact.updated_at)
    value = contact.properties.get(name)
    return value.lower() if value not in (None, "") else None


def _token_match(value: str, pattern: str) -> bool:
    # unconfirmed: HubSpot's tokenizer; ``*`` wildcards (e.g. ``*@domain``) match the whole value.
    if "*" in pattern:
        return fnmatch.fnmatchcase(value, pattern)
    return pattern in re.split(r"[^0-9a-z]+", value)


Test = Callable[[Any, Any, Any], bool]
_OPERATORS: dict[str, Test] = {
    "EQ": lambda have, want, _: have == want,
    "NEQ": lambda have, want, _: have != want,
    "LT": lambda have, want, _: have < want,
    "LTE": lambda have, want, _: have <= want,
    "GT": lambda have, want, _: have > want,
    "GTE": lambda have, want, _: have >= want,
    "BETWEEN": lambda have, low, high: low <= have <= high,
    "IN": lambda have, values, _: have in values,
    "NOT_IN": lambda have, values, _: have not in values,
    "HAS_PROPERTY": lambda have, _, __: True,
    "CONTAINS_TOKEN": lambda have, want, _: _token_match(str(have), str(want)),
    "NOT_CONTAINS_TOKEN": lambda have, want, _: not _token_match(str(have), str(want)),
}


@dataclass(frozen=True)
class Filter:
    """One filter with its values already in comparable form."""

    name: str
    operator: str
    value: Any
    high: Any

    def matches(self, contact: Contact) -> bool:
        have = _comparable(contact, self.name)
        if self.operator == "NOT_HAS_PROPERTY":
            return have is None
        # unconfirmed: a contact without the property matches no other operator (NEQ included).
        return have is not None and _OPERATORS[self.operator](have, self.value, self.high)


@dataclass(frozen=True)
class SearchQuery:
    groups: list[list[Filter]]
    properties: list[str] | None
    limit: int
    offset: int

    def matches(self, contact: Contact) -> bool:
        return not self.groups or any(all(f.matches(contact) for f in g) for g in self.groups)


def parse_search(body: Any) -> SearchQuery:
    """Validate a search body the way HubSpot does; raise ``SearchError`` with the reason."""
    if not isinstance(body, dict):
        raise SearchError("Invalid input JSON on line 1, column 1: expected an object")
    groups = body.get("filterGroups") or []
    if not isinstance(groups, list) or len(groups) > MAX_GROUPS:
        raise SearchError(f"Up to {MAX_GROUPS} groups of filters are allowed.")
    limit = _integer(body.get("limit", DEFAULT_LIMIT), "limit")
    if not 0 < limit <= MAX_LIMIT:
        raise SearchError(f"limit must be between 1 and {MAX_LIMIT}, got {limit}")
    properties = body.get("properties")
    if properties is not None and not isinstance(properties, list):
        raise SearchError("properties must be a list of property names")
    return SearchQuery(
        groups=[_parse_group(group) for group in groups],
        properties=[str(name) for name in properties] if properties else None,
        limit=limit,
        offset=_integer(body.get("after", 0), "after"),
    )


def _integer(raw: Any, field: str) -> int:
    try:
        return int(raw)
    except (TypeError, ValueError):
        raise SearchError(f"{field} must be an integer, got {raw!r}") from None


def _parse_group(group: Any) -> list[Filter]:
    filters = group.get("filters") if isinstance(group, dict) else None
    if not isinstance(filters, list):
        raise SearchError("each filter group needs a list of filters")
    return [_parse_filter(item) for item in filters]


def _parse_filter(item: Any) -> Filter:
    if not isinstance(item, dict) or not isinstance(item.get("propertyName"), str):
        raise SearchError("each filter needs a propertyName")
    name, operator = item["propertyName"], item.get("operator")
    if operator != "NOT_HAS_PROPERTY" and operator not in _OPERATORS:
        raise SearchError(f"Unknown operator {operator!r} for property {name}")
    if operator in ("IN", "NOT_IN"):
        values = item.get("values")
        if not isinstance(values, list):
            raise SearchError(f"operator {operator} needs a list of values")
        return Filter(name, operator, {_value(name, v) for v in values}, None)
    if operator in ("HAS_PROPERTY", "NOT_HAS_PROPERTY"):
        return Filter(name, operator, None, None)
    high = _value(name, item.get("highValue")) if operator == "BETWEEN" else None
    return Filter(name, operator, _value(name, item.get("value")), high)


def _value(name: str, raw: Any) -> str | int:
    """Datetime filter values are ms epoch (the documented form); text compares lower-cased."""
    if raw is None:
        raise SearchError(f"a filter on {name} needs a value")
    if name in DATE_PROPERTIES:
        try:
            return int(str(raw))
        except ValueError:
            raise SearchError(f"{raw!r} is not a valid ms timestamp for {name}") from None
    return str(raw).lower()
