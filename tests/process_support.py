"""Real `syncwatch` processes for tests: free loopback ports, background runs whose output goes
to files, and waiting on them without hanging when one dies."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def environment() -> dict[str, str]:
    """This environment without any SYNCWATCH_* variable: configs must not lean on them."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SYNCWATCH_")}
    return {**env, "PYTHONUNBUFFERED": "1", "COLUMNS": "100"}


def syncwatch(
    *args: str, cwd: Path | None = None, timeout: float = 30
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "syncwatch", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=environment(),
        timeout=timeout,
        check=False,
    )


@dataclass
class Background:
    """A long-running `syncwatch` process whose output goes to files (no pipe to fill up)."""

    process: subprocess.Popen[bytes]
    stdout: Path
    stderr: Path

    def output(self) -> tuple[str, str]:
        return self.stdout.read_text(), self.stderr.read_text()

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()  # as a user's Ctrl-C would, then no more waiting
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)


@contextmanager
def background(
    name: str, directory: Path, *args: str, cwd: Path | None = None
) -> Iterator[Background]:
    with (
        (directory / f"{name}.out").open("wb") as out,
        (directory / f"{name}.err").open("wb") as err,
    ):
        process = subprocess.Popen(
            [sys.executable, "-m", "syncwatch", *args],
            stdout=out,
            stderr=err,
            cwd=cwd,
            env=environment(),
        )
    running = Background(process, directory / f"{name}.out", directory / f"{name}.err")
    try:
        yield running
    finally:
        running.stop()


def wait_for(what: str, check: Callable[[], bool], running: Background, within: float) -> None:
    """Poll ``check`` until it holds; fail early (with the output) if the process ends."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        try:
            if check():
                return
        except httpx.TransportError:
            pass
        if running.process.poll() is not None:
            pytest.fail(f"exited {running.process.returncode} before {what}: {running.output()}")
        time.sleep(0.1)
    pytest.fail(f"no {what} within {within:g}s: {running.output()}")
