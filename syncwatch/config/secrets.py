"""Secret references: ``{env: NAME}`` or ``{file: PATH}``, never the secret itself.

A config file is reviewed, diffed and pasted into tickets; a token written into it leaks. So a
plain string where a secret goes is refused, and error messages never repeat what was written
there (it may be the token). The value is read at use time by ``resolve()``, never stored on the
model, so no repr, log line or validation error can show it.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Annotated, Any

from pydantic import BeforeValidator, PrivateAttr, field_validator, model_validator

from syncwatch.config.base import Strict
from syncwatch.errors import ConfigError

LITERAL_SECRET = "literal secrets are not allowed; use {env: NAME} or {file: PATH}"
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


class SecretRef(Strict):
    """Where a secret lives: exactly one of ``env`` (a variable name) or ``file`` (a path)."""

    env: str | None = None
    file: Path | None = None
    # "config/prod.yaml: accounts[0].token: ", set by the loader so resolve() errors say where.
    _where: str = PrivateAttr(default="")

    @field_validator("env")
    @classmethod
    def _env_name(cls, name: str | None) -> str | None:
        # The name is not echoed: a token pasted in the wrong place lands here too.
        if name is not None and not _ENV_NAME.fullmatch(name):
            raise ValueError("must be an environment variable name, e.g. HUBSPOT_TOKEN")
        return name

    @field_validator("file")
    @classmethod
    def _file_path(cls, path: Path | None) -> Path | None:
        if path is not None and (str(path) in ("", ".") or "\0" in str(path)):
            raise ValueError("must be the path of a file holding the secret")
        return path

    @model_validator(mode="after")
    def _exactly_one(self) -> SecretRef:
        if (self.env is None) == (self.file is None):
            raise ValueError("a secret reference needs exactly one of env or file")
        return self

    def __repr__(self) -> str:
        return f"SecretRef(env={self.env!r})" if self.env else f"SecretRef(file={str(self.file)!r})"

    __str__ = __repr__

    def locate(self, where: str, base_dir: Path) -> None:
        """Remember the key path for messages; read a relative file next to the config file."""
        self._where = where
        if self.file is not None and not self.file.is_absolute():
            self.file = base_dir / self.file

    def problem(self) -> str | None:
        """Why ``resolve()`` would fail now, without reading the secret; None if it would not."""
        if self.env is not None:
            if os.environ.get(self.env, "").strip():
                return None
            return f"environment variable {self.env} is not set"
        assert self.file is not None
        if not self.file.is_file() or not os.access(self.file, os.R_OK):
            return f"secret file {self.file} does not exist or is not readable"
        return None

    def resolve(self) -> str:
        """The value, read now (rotation needs no restart); ConfigError names its source."""
        if self.env is not None:
            value = os.environ.get(self.env, "").strip()
            if not value:
                raise ConfigError([f"{self._where}environment variable {self.env} is not set"])
            return value
        assert self.file is not None
        try:
            value = self.file.read_text(encoding="utf-8").strip()
        except (OSError, UnicodeDecodeError) as exc:
            reason = exc.strerror if isinstance(exc, OSError) else "not UTF-8 text"
            problem = f"{self._where}cannot read secret file {self.file}: {reason}"
            raise ConfigError([problem]) from exc
        if not value:
            raise ConfigError([f"{self._where}secret file {self.file} is empty"])
        return value


def _refuse_literal(value: Any) -> Any:
    if isinstance(value, str | int | float | bytes):
        raise ValueError(LITERAL_SECRET)
    return value


Secret = Annotated[SecretRef, BeforeValidator(_refuse_literal)]
"""A field that holds a secret: a reference only, a literal is refused without being echoed."""
