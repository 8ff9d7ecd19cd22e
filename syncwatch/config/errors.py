"""Pydantic errors in the operator's words: ``file: key.path: reason``, every one of them.

Builds on ``syncwatch.yamlfile``; adds what only the config's tagged unions need: pydantic puts
the union tag into the error location (``accounts[0].hubspot.token``), which is not a key in the
file, so it is removed; and a missing or unknown tag is reported at the tag's own key.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

from syncwatch.yamlfile import describe_errors, key_path, reason, validate

ModelT = TypeVar("ModelT", bound=BaseModel)

UNION_TAGS = frozenset(
    {"hubspot", "marketo", "salesforce", "client_credentials", "jwt_bearer", "one_off", "weekly"}
    | {"webhook", "slack", "pagerduty", "pardot", "dynamics", "eloqua"}
)
"""Every tag of every tagged union in the config models (kept in step by a test)."""


def _location(loc: Sequence[int | str]) -> list[int | str]:
    """Drop union tags: a tag directly after a list index or after the ``auth`` key."""
    kept: list[int | str] = []
    for i, part in enumerate(loc):
        previous = loc[i - 1] if i else None
        is_tag = isinstance(part, str) and part in UNION_TAGS
        if is_tag and (isinstance(previous, int) or previous == "auth"):
            continue
        kept.append(part)
    return kept


def describe(source: Path | str, error: ErrorDetails, prefix: str = "") -> str:
    """One ``file: key.path: reason`` line, with union tags out of the key path."""
    loc = _location(error["loc"])
    ctx: dict[str, Any] = dict(error.get("ctx") or {})
    text = reason(error)
    if error["type"] in ("union_tag_invalid", "union_tag_not_found"):
        loc.append(str(ctx.get("discriminator", "'kind'")).strip("'"))
        if error["type"] == "union_tag_invalid":
            expected = str(ctx.get("expected_tags", "")).replace("'", "")
            text = f"unknown value {ctx.get('tag')!r}; expected one of {expected}"
        else:
            text = "required key is missing"
    return f"{source}: {key_path(loc, prefix)}: {text}"


def describe_all(source: Path | str, exc: ValidationError, prefix: str = "") -> list[str]:
    return describe_errors(source, exc.errors(), prefix, describe)


def validate_model(model: type[ModelT], raw: Any, source: Path | str) -> ModelT:
    """Validate ``raw`` as ``model``; on failure a ConfigError listing every problem."""
    return validate(model, raw, source, describe)
