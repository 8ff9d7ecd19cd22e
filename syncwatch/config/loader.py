"""Loading a config file: parse, validate, check references, attach probe templates.

Every problem is collected before anything is raised, so an operator fixes a file in one pass:
model errors, broken template files, then references across sections. Relative paths in a config
file (``database``, ``probe_templates``, ``runbooks_dir``, ``{file: ...}`` secrets) are relative
to that file.
Loading never resolves a secret; ``unresolved_secrets`` reports the ones that would fail now.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from syncwatch.config.base import plural
from syncwatch.config.errors import describe_all
from syncwatch.config.model import Config, Integration
from syncwatch.config.secrets import SecretRef
from syncwatch.config.templates import ProbeTemplate, describe, load_templates
from syncwatch.errors import ConfigError
from syncwatch.yamlfile import key_path, read_yaml

Loc = tuple[int | str, ...]


def load_config(path: Path) -> Config:
    """Read and validate ``path``; a ConfigError lists every problem as ``file: key: reason``."""
    return config_from_data(read_yaml(path), path)


def config_from_data(raw: Any, source: Path) -> Config:
    """Validate already-parsed YAML as if it were the file ``source``."""
    raw = {} if raw is None else raw
    templates, problems = _templates_for(raw, source)
    try:
        config = Config.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(describe_all(source, exc) + problems) from exc
    if not problems:
        problems = [
            f"{source}: {key_path(loc)}: {why}" for loc, why in _references(config, templates)
        ]
    if problems:
        raise ConfigError(problems)
    _attach(config, source, templates)
    return config


def _templates_for(raw: Any, source: Path) -> tuple[dict[str, ProbeTemplate] | None, list[str]]:
    """Load the template directory named in ``raw`` (None: it is missing or not needed)."""
    if not isinstance(raw, dict):
        return None, []
    written = raw.get("probe_templates", "probes")
    if not isinstance(written, str) or "\0" in written:
        return None, []  # the model reports the bad value
    directory = source.parent / written
    if not directory.is_dir():
        if not raw.get("integrations"):
            return None, []
        why = f"directory {written!r} not found (relative to the config file)"
        return None, [f"{source}: probe_templates: {why}"]
    return load_templates(directory)


def _references(
    config: Config, templates: dict[str, ProbeTemplate] | None
) -> Iterator[tuple[Loc, str]]:
    """Every broken reference between sections, with the key that holds it."""
    for section in ("accounts", "integrations", "contracts", "notifications"):
        yield from _duplicates(section, [item.name for item in getattr(config, section)])
    for i, integration in enumerate(config.integrations):
        yield from _endpoints(config, ("integrations", i), integration)
        yield from _method_needs(config, integration)
        if templates is not None:
            for j, run in enumerate(integration.templates):
                if run.template not in templates:
                    why = f"no probe template named {run.template!r}; found {describe(templates)}"
                    yield ("integrations", i, "templates", j, "template"), why
    for i, contract in enumerate(config.contracts):
        if not any(account.vendor == contract.vendor for account in config.accounts):
            yield ("contracts", i, "vendor"), f"no {contract.vendor} account is configured"
        for j, name in enumerate(contract.integrations):
            covered = config.integration(name)
            if covered is None:
                yield ("contracts", i, "integrations", j), f"no integration named {name!r}"
            elif contract.vendor not in _vendors_of(config, covered):
                yield (
                    ("contracts", i, "integrations", j),
                    f"{name!r} uses no {contract.vendor} account",
                )


def _duplicates(section: str, names: list[str]) -> Iterator[tuple[Loc, str]]:
    for i, name in enumerate(names):
        if name in names[:i]:
            yield (
                (section, i, "name"),
                f"{name!r} is already used by {section}[{names.index(name)}]",
            )


def _endpoints(config: Config, at: Loc, integration: Integration) -> Iterator[tuple[Loc, str]]:
    """The source and destination accounts exist, can play their role, and support the method."""
    source = config.account(integration.source.account)
    if source is None:
        yield (*at, "source", "account"), f"no account named {integration.source.account!r}"
    elif "source" not in source.roles:
        yield (*at, "source", "account"), f"a {_vendor(source)} account cannot be a source"
    elif integration.source.method not in source.source_methods:
        methods = ", ".join(source.source_methods)
        yield (*at, "source", "method"), f"must be one of {methods} for a {_vendor(source)} account"
    elif integration.source.method == "form" and integration.source.form_guid is None:
        yield (*at, "source", "form_guid"), "required with method form"
    elif integration.source.method != "form" and integration.source.form_guid is not None:
        yield (*at, "source", "form_guid"), "only used with method form"
    elif integration.source.method == "form_handler" and not integration.source.form_handler_url:
        yield (*at, "source", "form_handler_url"), "required with method form_handler"
    elif integration.source.method != "form_handler" and integration.source.form_handler_url:
        yield (*at, "source", "form_handler_url"), "only used with method form_handler"
    destination = config.account(integration.destination.account)
    if destination is None:
        yield (
            (*at, "destination", "account"),
            f"no account named {integration.destination.account!r}",
        )
    elif "destination" not in destination.roles:
        yield (
            (*at, "destination", "account"),
            f"a {_vendor(destination)} account cannot be a destination",
        )
    elif integration.destination.object not in destination.destination_objects:
        objects = ", ".join(destination.destination_objects)
        yield (
            (*at, "destination", "object"),
            f"must be one of {objects} for a {_vendor(destination)} account",
        )


def _method_needs(config: Config, integration: Integration) -> Iterator[tuple[Loc, str]]:
    """Optional account keys the integration's source method cannot do without (a HubSpot
    ``form`` source needs ``portal_id``), reported at the account that lacks them."""
    source = config.account(integration.source.account)
    if source is None or integration.source.method not in source.source_methods:
        return  # _endpoints reports these
    index = config.accounts.index(source)  # type: ignore[arg-type]
    for key in source.method_needs.get(integration.source.method, ()):
        if getattr(source, key, None) is None:
            why = (
                f"required by integration {integration.name!r} "
                f"(source method {integration.source.method})"
            )
            yield ("accounts", index, key), why


def _vendor(account: Any) -> str:
    return str(account.vendor)


def _vendors_of(config: Config, integration: Integration) -> set[str]:
    names = (integration.source.account, integration.destination.account)
    return {_vendor(account) for name in names if (account := config.account(name)) is not None}


def _attach(config: Config, source: Path, templates: dict[str, ProbeTemplate] | None) -> None:
    """Resolve relative paths against the config file; tell each secret where it was written."""
    base = source.parent
    config._source = source
    config._templates = templates or {}
    config.database = base / config.database
    config.probe_templates = base / config.probe_templates
    if config.runbooks_dir is not None:
        config.runbooks_dir = base / config.runbooks_dir
    for loc, ref in secret_refs(config):
        ref.locate(f"{source}: {key_path(loc)}: ", base)


def secret_refs(node: Any, loc: Loc = ()) -> Iterator[tuple[Loc, SecretRef]]:
    """Every secret reference in a model tree, with its key path."""
    if isinstance(node, SecretRef):
        yield loc, node
    elif isinstance(node, BaseModel):
        for name in type(node).model_fields:
            yield from secret_refs(getattr(node, name), (*loc, name))
    elif isinstance(node, list):
        for i, item in enumerate(node):
            yield from secret_refs(item, (*loc, i))


def unresolved_secrets(config: Config) -> list[str]:
    """References that would fail if resolved now (check-config prints them as warnings)."""
    return [f"{ref._where}{why}" for _, ref in secret_refs(config) if (why := ref.problem())]


def summary(config: Config) -> str:
    """``config/demo.yaml: OK — 2 accounts, 1 integration (2 templates), 1 contract, ...``."""
    runs = sum(len(integration.templates) for integration in config.integrations)
    return (
        f"{config.source}: OK — {plural(len(config.accounts), 'account')}, "
        f"{plural(len(config.integrations), 'integration')} ({plural(runs, 'template')}), "
        f"{plural(len(config.contracts), 'contract')}, "
        f"{plural(len(config.notifications), 'notification target')}"
    )
