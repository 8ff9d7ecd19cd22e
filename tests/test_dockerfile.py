"""The container: hadolint-clean, and its entrypoint is a command the CLI really accepts."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import CollectorRegistry
from starlette.routing import BaseRoute
from typer.testing import CliRunner

from syncwatch import runner
from syncwatch.cli import app
from syncwatch.clock import VirtualClock
from syncwatch.config import DEFAULT_PORT, Config, config_from_data
from syncwatch.metrics import Metrics
from syncwatch.web import Health, create_web_app

DOCKERFILE = Path(__file__).resolve().parent.parent / "Dockerfile"


def instruction(name: str) -> list[str]:
    """The JSON (exec form) argument list of the last ``name`` instruction."""
    lines = re.findall(rf"^{name}\s+(\[.*\])\s*$", DOCKERFILE.read_text(), flags=re.MULTILINE)
    assert lines, f"Dockerfile has no exec-form {name}"
    parsed: list[str] = json.loads(lines[-1])
    return parsed


def test_hadolint_finds_nothing() -> None:
    """hadolint (installed with the test extras) reports no rule violations."""
    hadolint = shutil.which("hadolint")
    assert hadolint, "hadolint is part of the test extras: pip install -e '.[test]'"
    result = subprocess.run([hadolint, str(DOCKERFILE)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_entrypoint_and_cmd_run_the_daemon_command_the_cli_accepts(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """ENTRYPOINT is syncwatch; CMD is `run --config FILE`, which loads that file and runs."""
    assert instruction("ENTRYPOINT") == ["syncwatch"]
    command, option, path = instruction("CMD")
    assert (command, option, path) == ("run", "--config", "/etc/syncwatch/syncwatch.yaml")
    started: list[Config] = []

    async def fake_run(config: Config, *args: Any, **kwargs: Any) -> None:
        started.append(config)

    monkeypatch.setattr(runner, "run_daemon", fake_run)
    config = tmp_path / "syncwatch.yaml"
    config.write_text(
        f"probe_domain: probe.example.com\ndatabase: {tmp_path / 'db.sqlite'}\n", encoding="utf-8"
    )
    result = CliRunner().invoke(app, [command, option, str(config)])
    assert result.exit_code == 0, result.output
    assert [c.probe_domain for c in started] == ["probe.example.com"]


def test_the_image_exposes_the_metrics_port_and_checks_healthz() -> None:
    """EXPOSE and HEALTHCHECK use the daemon's default port and its /healthz route."""
    text = DOCKERFILE.read_text()
    assert re.findall(r"^EXPOSE\s+(\d+)", text, flags=re.MULTILINE) == [str(DEFAULT_PORT)]
    assert f"http://127.0.0.1:{DEFAULT_PORT}/healthz" in text
    assert re.search(r"^HEALTHCHECK\s.*\bCMD\b", text, flags=re.MULTILINE | re.DOTALL)
    assert "/healthz" in {getattr(route, "path", None) for route in web_routes()}


def test_the_image_is_multi_stage_with_a_data_volume() -> None:
    """A build stage and a slim runtime stage; the database lives on a declared volume."""
    text = DOCKERFILE.read_text()
    stages = re.findall(r"^FROM\s+(\S+)", text, flags=re.MULTILINE)
    assert len(stages) >= 2 and all("slim" in stage for stage in stages)
    assert re.findall(r"^VOLUME\s+(\S+)", text, flags=re.MULTILINE) == ["/var/lib/syncwatch"]


def test_the_image_runs_as_a_non_root_user() -> None:
    """USER names a numeric non-root id."""
    users = re.findall(r"^USER\s+(\S+)", DOCKERFILE.read_text(), flags=re.MULTILINE)
    assert users and users[-1].isdigit() and users[-1] != "0"


def web_routes() -> list[BaseRoute]:
    config = config_from_data({"probe_domain": "probe.example.com"}, Path("c.yaml"))
    metrics = Metrics(config, CollectorRegistry())
    return list(create_web_app(metrics, Health(VirtualClock(), 90.0)).routes)
