"""Reading YAML files into pydantic models with errors a person can act on.

Config files, probe templates, contracts and sandbox scenarios all go through here, so every one
of them reports problems the same way: ``file: key.path: reason``, all problems at once.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

from syncwatch.errors import ConfigError

ModelT = TypeVar("ModelT", bound=BaseModel)
Describe = Callable[[Path | str, ErrorDetails, str], str]

_MAPPING_TYPES = {"model_type", "model_attributes_type", "dict_type"}


def read_yaml(path: Path) -> Any:
    """Parse ``path``; unreadable files and YAML syntax errors become ``ConfigError``."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError([f"{path}: cannot read: {exc.strerror or exc}"]) from exc
    except UnicodeDecodeError as exc:
        why = f"not UTF-8 text (byte {exc.start})"
        raise ConfigError([f"{path}: cannot read: {why}"]) from exc
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        # A reader error (a control character, a NUL) has no problem mark and a multi-line text.
        problem = getattr(exc, "problem", None) or str(exc).strip().splitlines()[0]
        raise ConfigError([f"{path}: {where}not valid YAML: {problem}"]) from exc
    except RecursionError as exc:  # PyYAML composes nested collections recursively
        raise ConfigError([f"{path}: not valid YAML: nested too deeply"]) from exc


def describe_error(source: Path | str, error: ErrorDetails, prefix: str = "") -> str:
    """``config/prod.yaml: integrations[0].every: must be at least 10s`` for one error."""
    return f"{source}: {key_path(error['loc'], prefix)}: {reason(error)}"


def describe_errors(
    source: Path | str,
    errors: Iterable[ErrorDetails],
    prefix: str = "",
    describe: Describe = describe_error,
) -> list[str]:
    return [describe(source, error, prefix) for error in errors]


def validate(
    model: type[ModelT], raw: Any, source: Path | str, describe: Describe = describe_error
) -> ModelT:
    """Validate ``raw`` as ``model``; on failure list every problem with file and key path."""
    try:
        return model.model_validate({} if raw is None else raw)
    except ValidationError as exc:
        raise ConfigError(describe_errors(source, exc.errors(), "", describe)) from exc


def key_path(loc: Sequence[int | str], prefix: str = "") -> str:
    """Render a pydantic location as the dotted path an operator sees in the file."""
    text = prefix
    for part in loc:
        if isinstance(part, int):
            text += f"[{part}]"
        elif part and part.isprintable() and not any(c in part for c in " .[]:"):
            text += f".{part}"
        else:  # a key a problem line could not show as written (empty, spaces, a newline)
            text += f"[{part!r}]"
    return text.lstrip(".") or "(top level)"


def reason(error: ErrorDetails) -> str:
    """Pydantic's message, minus its internal prefixes, in the operator's words."""
    kind = error["type"]
    if kind == "extra_forbidden":
        return "unknown key"
    if kind == "missing":
        return "required key is missing"
    if kind in _MAPPING_TYPES:
        return "must be a mapping (key: value)"
    if kind == "list_type":
        return "must be a list"
    if kind == "timezone_aware":
        return "must include a UTC offset, e.g. 2026-10-10T02:00:00Z"
    text = str(error["msg"]).removeprefix("Value error, ").removeprefix("Assertion failed, ")
    if text.startswith("Input should"):
        return "must" + text.removeprefix("Input should")
    return text
