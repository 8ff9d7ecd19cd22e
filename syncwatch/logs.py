"""Structured logs: JSON lines for machines, colours on a terminal, secrets never.

Every event passes the redactor before any renderer sees it, and is stamped from the injected
clock, so a simulated month logs simulated times. ``integration`` and ``probe_id`` are bound by
the callers that know them.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import MutableMapping
from typing import Any, TextIO

import structlog

from syncwatch.clock import Clock
from syncwatch.redact import REDACTOR

LEVELS = ("debug", "info", "warning", "error")


def configure_logging(
    clock: Clock, *, level: str = "info", json: bool | None = None, stream: TextIO | None = None
) -> None:
    """Configure structlog for the process; ``json=None`` picks JSON unless on a terminal."""
    out = stream or sys.stderr
    as_json = json if json is not None else not out.isatty()

    def stamp(
        _logger: Any, _method: str, event: MutableMapping[str, Any]
    ) -> MutableMapping[str, Any]:
        event["timestamp"] = clock.now().isoformat(timespec="milliseconds").replace("+00:00", "Z")
        return event

    renderer: Any = (
        structlog.processors.JSONRenderer()
        if as_json
        else structlog.dev.ConsoleRenderer(colors=out.isatty())
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            stamp,
            structlog.processors.format_exc_info,
            REDACTOR,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(getattr(logging, level.upper())),
        # One printer for every logger: the loggers are not cached (a later configuration must
        # reach module-level loggers), so each log call builds one, and PrintLoggerFactory made
        # a new printer (and looked up its stream's lock) every time.
        logger_factory=_SharedPrinter(structlog.PrintLogger(out)),
        cache_logger_on_first_use=False,
    )


class _SharedPrinter:
    """A logger factory handing out one ``PrintLogger`` (it locks its stream per line)."""

    def __init__(self, printer: structlog.PrintLogger) -> None:
        self.printer = printer

    def __call__(self, *_args: Any) -> structlog.PrintLogger:
        return self.printer
