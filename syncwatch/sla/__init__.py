"""SLA arithmetic, exactly as DESIGN §7 words it: pure values in, pure values out.

No I/O and no clock: the month and the events are arguments, so a claim is reproducible by
anyone from its evidence file, and every rule is a table-tested function. Uptime is a
``Fraction`` and money a ``Decimal``; nothing is compared as a float (99.9 % exactly earns no
credit, and only exact arithmetic can say so).

Where DESIGN §7 is silent, the choices are:
- a minute is excluded when its start lies in a maintenance window or outside the business
  calendar; an interval whose minutes are all excluded has no status;
- in the consecutive-minutes rule, fully excluded intervals inside a run of down intervals are
  transparent (a maintenance hour does not split an outage in two); any up or unknown interval
  ends the run;
- incidents are maximal runs of down intervals (after that rule); one that reaches the period's
  end has not closed, so it does not count towards MTTR.
"""

from syncwatch.sla.intervals import CallEvent, Event, Interval, ProbeEvent
from syncwatch.sla.periods import Period, month_period, parse_month
from syncwatch.sla.result import (
    Incident,
    LatencyResult,
    SlaResult,
    claim_deadline,
    credit_amount,
    credit_percent,
    evaluate,
    nearest_rank,
)

__all__ = [
    "CallEvent",
    "Event",
    "Incident",
    "Interval",
    "LatencyResult",
    "Period",
    "ProbeEvent",
    "SlaResult",
    "claim_deadline",
    "credit_amount",
    "credit_percent",
    "evaluate",
    "month_period",
    "nearest_rank",
    "parse_month",
]
