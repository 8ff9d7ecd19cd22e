"""``python -m bench``: measure, print the table and how it was made.

The first two figures run on a virtual clock in this process (deterministic for the seeds);
``--storage-days`` simulates that many days of one integration, fills a 13-month database from
them and times reports on it (``bench/storage.py``); ``--scale`` and ``--scrape`` start the
daemon, the sandbox and the baseline as processes on this machine and time them on the wall
clock (see ``bench/scale.py``).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import subprocess
import sys
import tempfile
from pathlib import Path

from bench import probe_cost, scale, storage
from bench.scale_config import PER_ACCOUNT
from syncwatch.clock import RealClock
from syncwatch.logs import configure_logging

DEFAULT_SCALE = "100,1000,10000"
DEFAULT_SCALE_SECONDS = 80.0
DEFAULT_SCRAPE = "1000"
DEFAULT_SCALE_BUDGET = 360.0
"""Seconds for the scale and scrape runs: with the other figures, under ten minutes."""
DEFAULT_STORAGE_DAYS = 2.0


def main() -> None:
    args = _parser().parse_args()
    configure_logging(RealClock(), level="error")  # the daemons under test log every probe
    ns, scrape_n = _numbers(args.scale), _numbers(args.scrape)
    load_before = os.getloadavg()
    lines = [*probe_cost.HEADER, *asyncio.run(probe_cost.rows(args.seeds, args.hours))]
    if args.storage_days > 0:
        with tempfile.TemporaryDirectory(prefix="syncwatch-storage-") as tmp:
            lines += asyncio.run(storage.measure(args.storage_days, Path(tmp))).rows()
    if ns or scrape_n:
        plan = scale.Plan(
            ns=ns,
            seconds=args.scale_seconds,
            scrape_n=scrape_n[0] if scrape_n else None,
            scrapes=args.scrapes,
            per_account=args.per_account,
            budget_s=args.scale_budget,
            say=lambda line: print(line, file=sys.stderr, flush=True),
        )
        with tempfile.TemporaryDirectory(prefix="syncwatch-scale-") as tmp:
            lines += scale.rows(scale.run_plan(plan, Path(tmp)), plan)
    print(
        "\n".join(
            [
                *lines,
                "",
                _machine(load_before, bool(ns or scrape_n or args.storage_days)),
                _command(args),
            ]
        )
    )


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument(
        "--seeds", type=int, default=5, help="1-hour runs to average (calls per probe)"
    )
    parser.add_argument("--hours", type=float, default=6.0, help="virtual hours for accuracy")
    parser.add_argument(
        "--storage-days",
        type=float,
        default=DEFAULT_STORAGE_DAYS,
        help="days of one integration to simulate for the storage and report figures (repeated "
        "to fill a month, then replayed into 13); 0 skips them",
    )
    parser.add_argument(
        "--scale",
        default=DEFAULT_SCALE,
        help="integration counts for the scale figure, comma-separated, or 'none'",
    )
    parser.add_argument(
        "--scale-seconds",
        type=float,
        default=DEFAULT_SCALE_SECONDS,
        help="warm-up plus measured window per run; the window is one minute (one probe per "
        "integration) when this allows at least a third for warm-up",
    )
    parser.add_argument(
        "--scale-budget",
        type=float,
        default=DEFAULT_SCALE_BUDGET,
        help="wall-clock seconds for all scale and scrape runs; a run that would end later is "
        "not started (the table says so)",
    )
    parser.add_argument(
        "--scrape",
        default=DEFAULT_SCRAPE,
        help="integration count for the /metrics scrape figure, or 'none'",
    )
    parser.add_argument("--scrapes", type=int, default=50, help="timed scrapes of /metrics")
    parser.add_argument(
        "--per-account",
        type=int,
        default=PER_ACCOUNT,
        help="integrations sharing one HubSpot and one Salesforce account",
    )
    return parser


def _numbers(text: str) -> list[int]:
    if text.strip().lower() in ("", "none"):
        return []
    return [int(part.replace("_", "")) for part in text.split(",") if part.strip()]


def _machine(load_before: tuple[float, float, float], wall_clock: bool) -> str:
    machine = (
        f"Machine: {platform.platform()}, Python {platform.python_version()}, "
        f"{os.cpu_count()} CPUs; build {_build()}."
    )
    if not wall_clock:
        return f"{machine} Virtual time: figures do not depend on machine speed."
    before, after = load_before[0], os.getloadavg()[0]
    return (
        f"{machine} Calls per probe, latency error and bytes run on virtual time "
        f"(machine-independent); report, retention, scale and scrape times are wall-clock "
        f"measurements on this machine "
        f"(1-minute load average {before:.2f} before, {after:.2f} after)."
    )


def _build() -> str:
    """The checkout measured: its commit, and whether files differ from it."""
    try:
        described = subprocess.run(
            ["git", "describe", "--always", "--dirty=+uncommitted changes"],
            cwd=Path(__file__).resolve().parent.parent,
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        )
    except (OSError, subprocess.SubprocessError):
        return "unknown (no git)"
    return described.stdout.strip()


def _command(args: argparse.Namespace) -> str:
    parts = ["python -m bench", f"--seeds {args.seeds}", f"--hours {args.hours:g}"]
    parts.append(f"--storage-days {args.storage_days:g}")
    parts += [f"--scale {args.scale}", f"--scale-seconds {args.scale_seconds:g}"]
    parts.append(f"--scale-budget {args.scale_budget:g}")
    parts += [f"--scrape {args.scrape}", f"--scrapes {args.scrapes}"]
    if args.per_account != PER_ACCOUNT:
        parts.append(f"--per-account {args.per_account}")
    return "Command: " + " ".join(parts)


if __name__ == "__main__":
    main()
