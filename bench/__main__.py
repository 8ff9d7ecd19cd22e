"""``python -m bench [--seeds N] [--hours H]``: measure, print the table and how it was made."""

from __future__ import annotations

import argparse
import asyncio

from bench.probe_cost import report
from syncwatch.clock import RealClock
from syncwatch.logs import configure_logging


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--seeds", type=int, default=5, help="10-minute demo runs to average")
    parser.add_argument("--hours", type=float, default=6.0, help="virtual hours for accuracy")
    args = parser.parse_args()
    configure_logging(RealClock(), level="error")  # the daemons under test log every probe
    print(asyncio.run(report(args.seeds, args.hours)))


if __name__ == "__main__":
    main()
