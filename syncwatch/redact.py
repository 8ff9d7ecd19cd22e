"""Secret redaction: the last line of defence between a token and a log line or error message.

Secrets are registered the moment they are resolved (``Redactor.add``); every log event and every
vendor error message passes through ``redact`` before it leaves the process. Keys that name
secrets (``authorization``, ``token``, ...) are masked whatever their value.
"""

from __future__ import annotations

import functools
import re
from collections.abc import MutableMapping
from typing import Any
from urllib.parse import quote, quote_plus

MASK = "[redacted]"
_SECRET_KEY = re.compile(
    r"authorization|token|secret|password|api[_-]?key|routing[_-]?key|assertion|private[_-]?key",
    re.IGNORECASE,
)
_BEARER = re.compile(r"(Bearer|Basic)\s+[A-Za-z0-9._~+/=-]+", re.IGNORECASE)


ROTATING_KEPT = 2
"""Renewed credentials masked per slot: the current one, and the one requests may still carry."""


@functools.lru_cache(maxsize=16)
def _forms(secret: str) -> frozenset[str]:
    """Encoded once per secret: adapters add the token they read before every call."""
    return frozenset({secret, quote(secret, safe=""), quote(secret), quote_plus(secret)})


class Redactor:
    """Masks every registered secret value, and bearer credentials, wherever they appear."""

    def __init__(self) -> None:
        self._secrets: set[str] = set()
        self._rotating: dict[str, list[str]] = {}

    def add(self, secret: str) -> str:
        """Remember ``secret`` (short values are ignored: masking "a" would mangle every line),
        and the forms a URL or a form body gives it: a secret sent in a query string (Marketo's
        Identity call) shows up percent-encoded in httpx's request log line."""
        if len(secret) >= 4:
            self._secrets.update(_forms(secret))
        return secret

    def rotate(self, slot: str, secret: str) -> str:
        """Remember a credential that is renewed (an access token, a signed assertion): per
        ``slot`` (the account) the current one and the one before are masked, so a month of
        renewals does not grow the list every log line is checked against."""
        held = self._rotating.setdefault(slot, [])
        if secret in held or len(secret) < 4:
            return secret
        held.append(self.add(secret))
        while len(held) > ROTATING_KEPT:
            self._secrets.difference_update(_forms(held.pop(0)))
        return secret

    def text(self, value: str) -> str:
        for secret in sorted(self._secrets, key=len, reverse=True):
            value = value.replace(secret, MASK)
        return _BEARER.sub(lambda match: f"{match.group(1)} {MASK}", value)

    def value(self, key: str, value: Any) -> Any:
        if _SECRET_KEY.search(key) and value not in (None, ""):
            return MASK
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, dict):
            return {k: self.value(str(k), v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [self.value(key, item) for item in value]
        if value is None or isinstance(value, bool | int | float):
            return value
        if isinstance(value, bytes):
            return self.text(value.decode("utf-8", errors="replace"))
        return self.text(str(value))  # exceptions, URLs: rendered as text anyway

    def __call__(
        self, _logger: Any, _method: str, event_dict: MutableMapping[str, Any]
    ) -> MutableMapping[str, Any]:
        """The structlog processor: runs before the renderer on every event."""
        for key in list(event_dict):
            event_dict[key] = self.value(key, event_dict[key])
        return event_dict


#: The process-wide redactor: secrets resolved anywhere are masked in every log line.
REDACTOR = Redactor()
