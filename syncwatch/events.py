"""Value types that flow between the HTTP layer, the vendors, the store and the metrics.

They live here, beneath everything, so ``http.py`` can emit an ``ApiCall`` and ``store.py`` can
persist it without either importing the other (DESIGN §3: arrows point one way).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True)
class QuotaFigure:
    """One quota window as a vendor reported it in one response: ``used`` of ``limit``."""

    window: str
    used: int
    limit: int

    @property
    def remaining(self) -> int:
        return max(0, self.limit - self.used)


@dataclass(frozen=True)
class ApiCall:
    """One HTTP request to a vendor, as DESIGN §2 defines an API call.

    ``quota_*`` hold the account's daily figure from this response when it carried one; other
    windows a response reports travel beside it as ``QuotaFigure`` values.
    """

    at: datetime
    vendor: str
    account: str
    operation: str
    status: int | None
    duration_s: float
    error_class: str | None = None
    integration: str | None = None
    probe_id: str | None = None
    quota_used: int | None = None
    quota_limit: int | None = None
    quota_window: str | None = None


@dataclass(frozen=True)
class QuotaReading:
    """The latest figure of one account's quota window, kept in the store."""

    account: str
    window: str
    vendor: str
    used: int
    limit: int
    observed_at: datetime

    @property
    def remaining(self) -> int:
        return max(0, self.limit - self.used)

    def as_figure(self) -> QuotaFigure:
        return QuotaFigure(self.window, self.used, self.limit)
