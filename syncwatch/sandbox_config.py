"""Any config, re-pointed at the built-in sandbox: what ``syncwatch demo`` and ``syncwatch
simulate`` run the daemon with.

Every account's hosts move to the sandbox prefix standing for each host (``sandbox/app.py``), and
so do the PagerDuty events URL, Account Engagement form handlers and the self-check URL. Secrets
are either filled where unset (the demo, whose config names its own variables) or all replaced by
placeholders before validation (the simulation: none of the operator's secrets is ever read).
The sandbox accepts any non-empty credentials; its own receivers take the notifications.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

from syncwatch.config import Config, config_from_data, secret_refs
from syncwatch.yamlfile import read_yaml

SANDBOX_HOSTS: dict[str, tuple[tuple[str, str, bool], ...]] = {
    "hubspot": (("base_url", "/hubspot", True), ("forms_url", "/hsforms", True)),
    "salesforce": (("base_url", "/salesforce", True), ("auth_url", "/salesforce", False)),
    "marketo": (("base_url", "/marketo", True), ("identity_url", "/marketo/identity", False)),
    "pardot": (("base_url", "/pardot", True), ("auth_url", "/salesforce", True)),
    "eloqua": (("login_url", "/eloqua-login", True), ("base_url", "/eloqua", False)),
    "dynamics": (("base_url", "/dynamics", True), ("auth_url", "/entra", True)),
}
"""Per vendor, each account URL key, the sandbox prefix standing for that host, and whether it is
set even when the config leaves it out (its default is the vendor's real host). Keys whose
default derives from another (Salesforce ``auth_url``, Marketo ``identity_url``) or whose absence
means discovery (Eloqua's pod ``base_url``) are moved only where written."""
PAGERDUTY_PATH = "/pagerduty/v2/enqueue"
DEMO_SECRETS = {
    "SYNCWATCH_DEMO_WEBHOOK_URL": "{origin}/webhook/demo",
    "SYNCWATCH_DEMO_SLACK_WEBHOOK_URL": "{origin}/slack/services/T0DEMO000/B0DEMO000/demo",
    "SYNCWATCH_DEMO_PAGERDUTY_ROUTING_KEY": "0123456789abcdef0123456789abcdef",
}
"""Placeholders for config/demo.yaml's notification secrets: the sandbox's own receivers (a
PagerDuty routing key is 32 characters). Every other secret gets any non-empty value."""


def sandbox_config(
    path: Path,
    sandbox_origin: str,
    database: Path,
    listen: str | None = None,
    *,
    secrets: Literal["fill", "replace"] = "fill",
) -> Config:
    """The config at ``path``, every host re-pointed at ``sandbox_origin``, writing to ``database``.

    ``secrets="fill"`` (the demo) gives each unset ``{env: NAME}`` a placeholder and leaves the
    rest as written; ``"replace"`` (the simulation) swaps every secret reference for a
    placeholder before validation, so none of the operator's secrets is ever read: the sandbox
    accepts any non-empty credentials, and its own receivers take the notifications.
    """
    config, _ = sandbox_config_data(path, sandbox_origin, database, listen, secrets=secrets)
    return config


def sandbox_config_data(
    path: Path,
    sandbox_origin: str,
    database: Path,
    listen: str | None = None,
    *,
    secrets: Literal["fill", "replace"] = "fill",
) -> tuple[Config, Any]:
    """``sandbox_config``, and the re-pointed data it validated (to write it out again)."""
    origin = sandbox_origin.rstrip("/")
    raw: Any = read_yaml(path)
    if isinstance(raw, dict):
        raw = repoint(raw, origin)
        raw["database"] = str(database.resolve())
        if listen is not None:
            raw["listen"] = listen
        if secrets == "replace":
            raw = _placeholder_refs(raw)
    config = config_from_data(raw, path)
    for loc, ref in secret_refs(config):
        if ref.env is None:
            continue
        if secrets == "replace":  # our own variables: always this config's placeholders
            os.environ[ref.env] = _placeholder(config, loc).format(origin=origin)
        elif not os.environ.get(ref.env, "").strip():
            placeholder = DEMO_SECRETS.get(ref.env, f"sandbox-{ref.env.lower()}")
            os.environ[ref.env] = placeholder.format(origin=origin)
    return config, raw


def repoint(raw: dict[str, Any], origin: str) -> dict[str, Any]:
    """Config data with every vendor host and notification endpoint moved to the sandbox at
    ``origin``; anything not understood is left for validation to report."""
    moved = dict(raw)
    moved["accounts"] = [_account(item, origin) for item in _items(raw.get("accounts"))]
    moved["notifications"] = [_target(item, origin) for item in _items(raw.get("notifications"))]
    moved["integrations"] = [_handler(item, origin) for item in _items(raw.get("integrations"))]
    for key in ("accounts", "notifications", "integrations"):
        if key not in raw:
            del moved[key]
        elif not isinstance(raw[key], list):
            moved[key] = raw[key]
    if isinstance(raw.get("self_check_url"), str):
        moved["self_check_url"] = f"{origin}/_sandbox/state"
    return moved


def _items(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _account(account: Any, origin: str) -> Any:
    if not isinstance(account, dict):
        return account
    moved = dict(account)
    for key, prefix, always in SANDBOX_HOSTS.get(str(account.get("vendor")), ()):
        if always or key in moved:
            moved[key] = origin + prefix
    return moved


def _target(target: Any, origin: str) -> Any:
    if isinstance(target, dict) and target.get("kind") == "pagerduty":
        return {**target, "events_url": origin + PAGERDUTY_PATH}
    return target


def _handler(integration: Any, origin: str) -> Any:
    """A Pardot form handler's endpoint (``https://go.pardot.com/l/...``) under ``/pardot``."""
    if not isinstance(integration, dict) or not isinstance(integration.get("source"), dict):
        return integration
    url = integration["source"].get("form_handler_url")
    if not isinstance(url, str):
        return integration
    source = {**integration["source"], "form_handler_url": origin + handler_path(url)}
    return {**integration, "source": source}


def handler_path(url: str) -> str:
    """Where a form handler's endpoint lives in the sandbox: ``/pardot/l/...``."""
    path = urlsplit(url).path
    at = path.find("/l/")
    return "/pardot" + (path[at:] if at >= 0 else "/l" + path)


SECRET_PREFIX = "SYNCWATCH_SANDBOX_SECRET_"


def _placeholder_refs(raw: Any) -> Any:
    """Every secret reference (``{env: ...}`` / ``{file: ...}``) replaced by one to a variable
    of our own, numbered in document order: the operator's are never looked at."""
    numbers = iter(range(1, 1_000_000))

    def walk(node: Any) -> Any:
        if isinstance(node, dict):
            if node and set(node) <= {"env", "file"}:
                return {"env": f"{SECRET_PREFIX}{next(numbers)}"}
            return {key: walk(value) for key, value in node.items()}
        if isinstance(node, list):
            return [walk(item) for item in node]
        return node

    return walk(raw)


def _placeholder(config: Config, loc: tuple[str | int, ...]) -> str:
    """What the sandbox takes for the secret at ``loc``: its own receivers' URLs, a routing
    key of PagerDuty's length, a throwaway RSA key for a JWT bearer, else any text."""
    key = loc[-1]
    name = "sandbox"
    if loc[0] == "notifications" and isinstance(loc[1], int):
        name = config.notifications[loc[1]].name
    if key == "url":
        return "{origin}/webhook/" + name
    if key == "webhook_url":
        return "{origin}/slack/services/T0SANDBOX/B0SANDBOX/" + name
    if key == "routing_key":
        return "0123456789abcdef0123456789abcdef"
    if key == "private_key":
        return _throwaway_key()  # PEM has no braces for ``format`` to trip on
    return "sandbox-placeholder"


def _throwaway_key() -> str:
    """An RSA key made for this run (a JWT bearer signs with it; the sandbox checks claims)."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode("ascii")


def shipped_file(relative: str) -> Path:
    """A file the project ships beside the package (``config/demo.yaml``, the probe templates,
    ``probes/scenarios/*.yaml``): the source tree's, else the copy a wheel installs under
    ``<prefix>/share/syncwatch`` (pyproject.toml's data-files)."""
    checkout = Path(__file__).resolve().parents[1] / relative
    if checkout.exists():
        return checkout
    return Path(sys.prefix) / "share" / "syncwatch" / relative
