"""The one exception tree of syncwatch.

Foreign errors (httpx, sqlite3, pydantic, YAML) are translated once, at the boundary where they
arise, into one of these, always with ``raise ... from exc`` so the original stays in the chain::

    SyncwatchError
    ├── ConfigError          a config, probe template, contract or scenario file is invalid
    ├── UsageError           a command names something the config does not have
    ├── StoreError           the database cannot be opened, migrated or written
    │   └── StoreVersionError    the file is newer than this code, or not a syncwatch database
    └── VendorError          a vendor call failed; carries the DESIGN §6 error class
        ├── AuthError            401/403 after one refresh
        ├── RateLimited          429 and vendor throttle codes; may carry Retry-After
        ├── QuotaExhausted       the daily allowance is spent
        ├── VendorUnavailable    5xx (``vendor_5xx``)
        │   ├── CallTimeout          no answer within the call timeout (``timeout``)
        │   └── ConnectionFailed     refused or reset while our network is fine (``connection``)
        ├── MalformedResponse    2xx whose body is not the documented shape
        ├── ValidationRejected   the vendor refused the record's fields
        ├── DuplicateRejected    a duplicate rule refused the record
        └── MonitorNetworkError  our own network failed (DNS, TLS, self-check down): ``monitor``

``ATTRIBUTION`` says who is at fault for each error class (DESIGN §6); only vendor-attributed
failures count against a vendor's SLA.
"""

from __future__ import annotations


class SyncwatchError(Exception):
    """Root of every error syncwatch raises on purpose."""


class ConfigError(SyncwatchError):
    """A configuration file is invalid.

    ``problems`` holds one ``"file: key.path: reason"`` line per problem so the CLI can list every
    problem at once instead of making the operator fix them one run at a time.
    """

    def __init__(self, problems: list[str]) -> None:
        self.problems = list(problems)
        super().__init__("\n".join(self.problems))


class UsageError(SyncwatchError):
    """A command-line argument names an integration, template or file the config lacks."""


class StoreError(SyncwatchError):
    """The SQLite store cannot be opened, migrated or written."""


class StoreVersionError(StoreError):
    """The database file is not ours, or was written by a newer syncwatch."""


class VendorError(SyncwatchError):
    """A vendor API call failed; ``error_class`` is one of DESIGN §6's classes."""

    error_class = "vendor_5xx"

    def __init__(
        self, message: str, *, status: int | None = None, may_have_acted: bool = True
    ) -> None:
        self.status = status
        # False only when the vendor provably did nothing with the request (connect refused,
        # throttled): then even a create may be resent, which is otherwise never done blindly.
        self.may_have_acted = may_have_acted
        super().__init__(message)


class AuthError(VendorError):
    error_class = "auth"


class RateLimited(VendorError):
    error_class = "rate_limited"

    def __init__(
        self, message: str, *, status: int | None = None, retry_after_s: float | None = None
    ) -> None:
        self.retry_after_s = retry_after_s
        super().__init__(message, status=status, may_have_acted=False)


class QuotaExhausted(VendorError):
    error_class = "quota_exhausted"


class VendorUnavailable(VendorError):
    error_class = "vendor_5xx"


class MalformedResponse(VendorError):
    error_class = "malformed"


class ValidationRejected(VendorError):
    error_class = "validation"


class DuplicateRejected(VendorError):
    error_class = "duplicate"


class CallTimeout(VendorUnavailable):
    error_class = "timeout"


class ConnectionFailed(VendorUnavailable):
    error_class = "connection"


class MonitorNetworkError(VendorError):
    """The call failed on our side of the wire; the vendor is not to blame."""

    error_class = "monitor"


#: DESIGN §6: who is at fault for each error class.
ATTRIBUTION: dict[str, str] = {
    "vendor_5xx": "vendor",
    "timeout": "vendor",
    "connection": "vendor",
    "malformed": "vendor",
    "sync_lost": "vendor",
    "rate_limited": "customer",
    "quota_exhausted": "customer",
    "auth": "customer",
    "validation": "customer",
    "duplicate": "customer",
    "monitor": "monitor",
    "quota_guard": "monitor",
}
ERROR_CLASSES: tuple[str, ...] = tuple(ATTRIBUTION)


def attribution(error_class: str | None) -> str | None:
    """``vendor``, ``customer`` or ``monitor`` for a class; None for a call without error."""
    return None if error_class is None else ATTRIBUTION[error_class]
