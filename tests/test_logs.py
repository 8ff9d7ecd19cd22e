"""Module loggers: bound once per configuration, and every configuration still reaches them."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator

import pytest
import structlog
from structlog.testing import capture_logs

from syncwatch.clock import VirtualClock
from syncwatch.logs import Logger, configure_logging, get_logger


@pytest.fixture(autouse=True)
def _restore_logging() -> Iterator[None]:
    saved = structlog.get_config()
    yield
    structlog.configure(**saved)


def _lines(stream: io.StringIO) -> list[dict[str, object]]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def test_a_later_configuration_reaches_a_logger_already_used(clock: VirtualClock) -> None:
    """A module-level logger is made at import, before the daemon configures logging: each new
    configuration (stream, level) is the one its next line goes through."""
    log = get_logger("syncwatch.test")
    first, second = io.StringIO(), io.StringIO()
    configure_logging(clock, level="info", json=True, stream=first)
    log.info("one", n=1)
    configure_logging(clock, level="warning", json=True, stream=second)
    log.info("filtered out")
    log.warning("two", n=2)
    assert [(line["event"], line["n"]) for line in _lines(first)] == [("one", 1)]
    assert [(line["event"], line["level"]) for line in _lines(second)] == [("two", "warning")]


def test_captured_logs_reach_it_and_the_stream_gets_it_back(clock: VirtualClock) -> None:
    log = get_logger("syncwatch.test")
    stream = io.StringIO()
    configure_logging(clock, level="info", json=True, stream=stream)
    log.info("before")
    with capture_logs() as captured:
        log.bind(probe_id="p1").warning("inside", n=3)
    log.info("after")
    assert captured == [{"event": "inside", "probe_id": "p1", "n": 3, "log_level": "warning"}]
    assert [line["event"] for line in _lines(stream)] == ["before", "after"]


def test_the_bound_logger_is_built_once_while_the_configuration_stands(
    clock: VirtualClock,
) -> None:
    """The saving: structlog's lazy proxy builds a logger per call; this one per configuration."""
    log = Logger("syncwatch.test")
    configure_logging(clock, level="warning", json=True, stream=io.StringIO())
    built = log._current()
    log.info("dropped")
    assert log._current() is built
    configure_logging(clock, level="warning", json=True, stream=io.StringIO())
    assert log._current() is not built
