"""PostgreSQL for the tests: the server CI starts, a fresh schema per test, the store fixtures.

Shared by the state-store, rate-limit and worker tests (imported, as fixtures are, by name).
CONNECTOR_TEST_POSTGRES names a database where each test gets a schema of its own
(`. .ci/postgres.sh` starts a throwaway server and sets it, as CI does); without it the
PostgreSQL cases are skipped and the SQLite ones run.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

# Read at import: the autouse fixture of conftest.py removes CONNECTOR_* variables per test.
POSTGRES = os.environ.get("CONNECTOR_TEST_POSTGRES", "")
needs_postgres = pytest.mark.skipif(
    not POSTGRES, reason="CONNECTOR_TEST_POSTGRES is not set: start a throwaway server with "
                         "`. .ci/postgres.sh` (CI does)")


def in_schema(url: str, schema: str) -> str:
    """The URL with its tables (ours and the queue's) in `schema`."""
    return f"{url}{'&' if '?' in url else '?'}options=-csearch_path%3D{schema}"


@contextmanager
def fresh_postgres() -> Iterator[str]:
    """A PostgreSQL state URL whose tables live in a new, empty schema, dropped afterwards."""
    import psycopg

    schema = f"test_{uuid.uuid4().hex[:16]}"
    with psycopg.connect(POSTGRES, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"'.encode())
    try:
        yield in_schema(POSTGRES, schema)
    finally:
        with psycopg.connect(POSTGRES, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA "{schema}" CASCADE'.encode())


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=needs_postgres)])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A state URL of each kind, empty (SQLite: in a directory not created yet)."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path}/deep/er/state.db"
    else:
        with fresh_postgres() as url:
            yield url


@pytest.fixture
def pg_url() -> Iterator[str]:
    """A fresh database for the store, worker and queue tests (procrastinate comes with
    psycopg in the `postgres` extra: without it, the test is skipped, not failed)."""
    if not POSTGRES:
        pytest.skip("CONNECTOR_TEST_POSTGRES is not set: start a throwaway server with "
                    "`. .ci/postgres.sh` (CI does)")
    pytest.importorskip("procrastinate")
    with fresh_postgres() as url:
        yield url


def sql(url: str, statement: str) -> list[tuple[Any, ...]]:
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        cursor = conn.execute(statement.encode())
        return cursor.fetchall() if cursor.description else []
