"""Shared set-up of the command tests: a copy of the shipped project, the sandbox as
environment settings, and a command run in process with its stdout and stderr apart."""

from __future__ import annotations

import io
import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from connector.project import env_name
from connector.sandbox import Sandbox

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A copy of the shipped project, safe to edit."""
    root = tmp_path / "project"
    root.mkdir()
    shutil.copy(REPO / "connector.yaml", root)
    shutil.copytree(REPO / "mappings", root / "mappings")
    shutil.copytree(REPO / "rules", root / "rules")
    return root


@pytest.fixture
def sandbox() -> Iterator[Sandbox]:
    with Sandbox() as simulator:
        simulator.amazon.feeds_api.polls_before_done = 0  # no 30 s poll interval in a test
        yield simulator


def sandbox_env(simulator: Sandbox, state: Path) -> dict[str, str]:
    """The settings that point every system at the sandbox, and a state file."""
    env = {env_name(system, name): str(value)
           for system, values in simulator.settings().items() for name, value in values.items()}
    env["CONNECTOR_STATE"] = f"sqlite:///{state}"
    return env


@dataclass
class Ran:
    code: int
    out: str
    err: str


def call(func: Callable[..., int], *args: Any, **kwargs: Any) -> Ran:
    """A command's plain function with its own output streams."""
    out, err = io.StringIO(), io.StringIO()
    code = func(*args, out=out, err=err, **kwargs)
    return Ran(code, out.getvalue(), err.getvalue())
