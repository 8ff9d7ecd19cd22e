"""Scheduled and live faults: which misbehaviour is in force for which vendor, and when."""

from __future__ import annotations

import itertools
import random
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from syncwatch.sandbox.scenario import FaultKind, FaultSpec


@dataclass(frozen=True)
class Fault:
    """A fault pinned to absolute times: ``end`` None means until cleared."""

    id: int
    spec: FaultSpec
    start: datetime
    end: datetime | None

    @property
    def kind(self) -> FaultKind:
        return self.spec.kind

    def covers(self, moment: datetime) -> bool:
        return self.start <= moment and (self.end is None or moment < self.end)

    def as_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            **self.spec.model_dump(mode="json", by_alias=True, exclude_none=True),
            "start": self.start.isoformat(),
            "end": self.end.isoformat() if self.end else None,
        }


class FaultBook:
    """All faults the sandbox knows, scheduled or live, and the dice that fire rated ones."""

    def __init__(self, rng: random.Random) -> None:
        self._rng = rng
        self._faults: dict[int, Fault] = {}
        self._ids = itertools.count(1)

    def schedule(self, spec: FaultSpec, origin: datetime) -> Fault:
        """Add ``spec`` starting ``spec.after`` past ``origin``."""
        start = origin + timedelta(seconds=spec.after)
        end = start + timedelta(seconds=spec.duration) if spec.duration is not None else None
        fault = Fault(next(self._ids), spec, start, end)
        self._faults[fault.id] = fault
        return fault

    def clear(self, fault_id: int | None = None) -> int:
        """Remove one fault, or all when ``fault_id`` is None; return how many went."""
        if fault_id is None:
            count = len(self._faults)
            self._faults.clear()
            return count
        return 1 if self._faults.pop(fault_id, None) else 0

    def all(self) -> list[Fault]:
        """Every fault, in id order (the order they were scheduled in: ids only grow)."""
        return list(self._faults.values())

    def active(self, kind: FaultKind, vendor: str | None, moment: datetime) -> list[Fault]:
        """Faults of ``kind`` in force at ``moment`` for ``vendor`` (vendor-less ones match all),
        in id order.

        Every emulated request asks this several times (outage, slow, malformed, limits) and
        most scenarios schedule no fault at all, so it reads the book as it is: ids only grow and
        a dict keeps insertion order, so ``_faults`` is already in id order without sorting.
        """
        if not self._faults:
            return []
        return [
            fault
            for fault in self._faults.values()
            if fault.kind == kind
            and (fault.spec.vendor is None or vendor is None or fault.spec.vendor == vendor)
            and fault.covers(moment)
        ]

    def fire(self, kind: FaultKind, vendor: str | None, moment: datetime) -> Fault | None:
        """The first active fault of ``kind`` that fires now, rolling the dice for its rate.

        Asked several times a request (outage, slow, limits, malformed); with no fault in the
        book, which is most scenarios, it answers before building the list ``active`` makes."""
        if not self._faults:
            return None
        for fault in self.active(kind, vendor, moment):
            if fault.spec.rate >= 1.0 or self._rng.random() < fault.spec.rate:
                return fault
        return None
