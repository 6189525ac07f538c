"""Fixtures of the end-to-end tests: the shipped configuration and a fresh sandbox each."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from e2e_helpers import REPO

from connector.project import Config, load_config, require
from connector.sandbox import Sandbox


@pytest.fixture(scope="module")
def config() -> Config:
    return require(load_config(REPO))


@pytest.fixture
def sandbox() -> Iterator[Sandbox]:
    with Sandbox() as box:
        yield box
