"""The container: hadolint-clean, and its entrypoint is a command the CLI really accepts."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from typer.testing import CliRunner

from syncwatch.cli import app

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


def test_entrypoint_and_cmd_run_the_cli_command_they_name(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """ENTRYPOINT is syncwatch; CMD parses and reaches the server start with its address."""
    assert instruction("ENTRYPOINT") == ["syncwatch"]
    served: dict[str, Any] = {}
    monkeypatch.setattr(uvicorn, "run", lambda asgi, **kwargs: served.update(kwargs))
    result = CliRunner().invoke(app, instruction("CMD"))
    assert result.exit_code == 0, result.output
    assert (served["host"], served["port"]) == ("0.0.0.0", 8900)


def test_the_image_runs_as_a_non_root_user() -> None:
    """USER names a numeric non-root id."""
    users = re.findall(r"^USER\s+(\S+)", DOCKERFILE.read_text(), flags=re.MULTILINE)
    assert users and users[-1].isdigit() and users[-1] != "0"
