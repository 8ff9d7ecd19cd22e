"""Probe templates (``probes/*.yaml``): what a probe sends to the source and expects to arrive.

One file, one template. ``fields`` are sent to the source (HubSpot form fields or contact
properties); ``expect`` maps destination fields to the values the vendor's connector should
produce from them (e.g. ``lastname`` → ``LastName``), so a mismatch is the connector's doing.
``owner`` is the record owner expected within the integration's ``routing_timeout``. Values may
use placeholders filled per probe: ``{probe_id}``, ``{email}``, ``{probe_domain}``.
"""

from __future__ import annotations

from pathlib import Path
from string import Formatter
from typing import Annotated

from pydantic import AfterValidator, Field, ValidationInfo, field_validator, model_validator

from syncwatch.config.base import Name, NonEmpty, Strict, Text, plural
from syncwatch.config.errors import validate_model
from syncwatch.errors import ConfigError
from syncwatch.yamlfile import read_yaml

PLACEHOLDERS = ("probe_id", "email", "probe_domain")
_KNOWN = ", ".join("{" + name + "}" for name in PLACEHOLDERS)


def _placeholders(value: str) -> str:
    try:
        names = [name for _, name, _, _ in Formatter().parse(value) if name is not None]
    except ValueError:
        raise ValueError("unbalanced { or }; write {{ and }} for literal braces") from None
    for name in names:
        if name not in PLACEHOLDERS:
            raise ValueError(f"unknown placeholder {{{name}}}; use {_KNOWN}")
    return value


def _no_email(fields: dict[str, str]) -> dict[str, str]:
    if any(name.lower() == "email" for name in fields):
        raise ValueError(
            "email is set by syncwatch (syncwatch+<probe_id>@<probe_domain>); remove it"
        )
    return fields


Value = Annotated[Text, AfterValidator(_placeholders)]


class ProbeTemplate(Strict):
    """One probe template file."""

    name: Name
    description: str = ""
    fields: Annotated[dict[NonEmpty, Value], AfterValidator(_no_email)] = Field(
        default_factory=dict
    )
    owner: Value | None = None
    """Expected owner id on the destination record (routing check); or write expect.owner."""
    expect: dict[NonEmpty, Value] = Field(default_factory=dict)

    @field_validator("expect")
    @classmethod
    def _owner_once(cls, expect: dict[str, str], info: ValidationInfo) -> dict[str, str]:
        if "owner" in expect and info.data.get("owner") is not None:
            raise ValueError("the expected owner is given twice: keep owner or expect.owner")
        return expect

    @model_validator(mode="after")
    def _owner_from_expect(self) -> ProbeTemplate:
        if "owner" in self.expect:
            self.owner = self.expect.pop("owner")
        return self

    def render(
        self, values: dict[str, str], probe_id: str, email: str, domain: str
    ) -> dict[str, str]:
        """``values`` (``fields`` or ``expect``) with the placeholders filled for one probe."""
        filled = {"probe_id": probe_id, "email": email, "probe_domain": domain}
        return {key: value.format_map(filled) for key, value in values.items()}


def load_template(path: Path) -> ProbeTemplate:
    """Read one template file; every problem names the file and the key."""
    return validate_model(ProbeTemplate, read_yaml(path), path)


def load_templates(directory: Path) -> tuple[dict[str, ProbeTemplate], list[str]]:
    """Every ``*.yaml`` directly in ``directory`` (not subdirectories), and every problem found."""
    templates: dict[str, ProbeTemplate] = {}
    origin: dict[str, Path] = {}
    problems: list[str] = []
    for path in sorted(directory.glob("*.yaml")):
        try:
            template = load_template(path)
        except ConfigError as exc:
            problems.extend(exc.problems)
            continue
        if template.name in origin:
            problems.append(
                f"{path}: name: {template.name!r} is also defined in {origin[template.name]}"
            )
            continue
        templates[template.name], origin[template.name] = template, path
    return templates, problems


def describe(templates: dict[str, ProbeTemplate]) -> str:
    """``2 templates (content-download, demo-request)`` for messages."""
    return f"{plural(len(templates), 'template')} ({', '.join(sorted(templates)) or 'none'})"
