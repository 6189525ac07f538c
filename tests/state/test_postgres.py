"""The PostgreSQL state store and run exclusion (`StateStore.lock`) on both stores.

test_store.py runs the shared behaviours on both stores through the `store` and `store_url`
fixtures defined or imported there; this file has what is particular to PostgreSQL
(migrations, errors, pool) and the lock tests. The PostgreSQL cases need a server:
CONNECTOR_TEST_POSTGRES names a database where each test gets a schema of its own
(`. .ci/postgres.sh` starts a throwaway server and sets it, as CI does).
"""

from __future__ import annotations

import io
import os
import re
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from connector.errors import ConnectorError
from connector.state.store import Busy, migrations, open_store
from postgres_helpers import pg_url, sql, store_url  # noqa: F401 (fixtures)

REPO = Path(__file__).resolve().parents[2]


# --- PostgreSQL: migrations, errors ---------------------------------------------------------


def test_migrations_are_recorded_once(pg_url: str) -> None:
    open_store(pg_url).close()
    open_store(pg_url).close()  # not re-applied
    rows = sql(pg_url, "SELECT version, name FROM schema_version ORDER BY version")
    assert rows == [(v, name) for v, name, _ in migrations("postgresql")]
    assert rows[0] == (1, "0001_initial.sql")
    tables = {name for (name,) in sql(pg_url, "SELECT tablename FROM pg_tables "
                                              "WHERE schemaname = current_schema()")}
    assert {"cursors", "ledger", "watch", "schema_version"} <= tables


def test_sqlite_and_postgresql_schemas_have_the_same_columns(pg_url: str,
                                                             tmp_path: Path) -> None:
    import sqlite3

    open_store(pg_url).close()
    open_store(f"sqlite:///{tmp_path}/s.db").close()
    with sqlite3.connect(tmp_path / "s.db") as conn:
        lite = {(table, row[1]) for table in ("cursors", "ledger", "watch")
                for row in conn.execute(f"PRAGMA table_info({table})")}
    conn.close()
    pg = set(sql(pg_url, "SELECT table_name, column_name FROM information_schema.columns "
                         "WHERE table_schema = current_schema() "
                         "AND table_name IN ('cursors', 'ledger', 'watch')"))
    assert pg == lite


def test_processes_starting_together_migrate_once(pg_url: str) -> None:
    errors: list[BaseException] = []

    def start() -> None:
        try:
            open_store(pg_url).close()
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=start) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert sql(pg_url, "SELECT count(*) FROM schema_version") == [(len(migrations("postgresql")),)]


def test_newer_schema_is_refused(pg_url: str) -> None:
    open_store(pg_url).close()
    sql(pg_url, "INSERT INTO schema_version VALUES (999, '0999_future.sql', 'x')")
    with pytest.raises(ConnectorError, match="schema version 999, newer"):
        open_store(pg_url)


def test_write_failure_raises_and_rolls_back(pg_url: str) -> None:
    with open_store(pg_url) as store:
        sql(pg_url, "CREATE FUNCTION no_cursors() RETURNS trigger LANGUAGE plpgsql AS "
                    "$$BEGIN RAISE EXCEPTION 'disk on fire'; END$$; "
                    "CREATE TRIGGER no_cursors BEFORE INSERT ON cursors "
                    "FOR EACH ROW EXECUTE FUNCTION no_cursors()")
        with pytest.raises(ConnectorError, match=r"^state store write failed: disk on fire$"):
            store.set_cursor("f", "c")
        assert store.get_cursor("f") is None
        entry = store.begin("k1", flow="f", order_id="o1", action="a", summary="")
        assert entry.new  # the pool's connections are usable again: rolled back


def test_closed_store_raises(pg_url: str) -> None:
    store = open_store(pg_url)
    store.close()
    with pytest.raises(ConnectorError, match="state store write failed"):
        store.set_cursor("f", "c")
    with pytest.raises(ConnectorError, match="state store read failed"):
        store.get_cursor("f")


@pytest.mark.parametrize("scheme", ["postgresql", "postgres", "postgresql+psycopg"])
def test_unreachable_server_hides_the_password(scheme: str) -> None:
    pytest.importorskip("psycopg")
    with pytest.raises(ConnectorError, match=re.escape(
            "cannot open state store postgresql://user:***@127.0.0.1:1/connector: ")) as info:
        open_store(f"{scheme}://user:hunter2@127.0.0.1:1/connector")
    assert "hunter2" not in str(info.value)


# --- run exclusion, both stores -------------------------------------------------------------


def holder(url: str) -> str:
    """How a Busy message names this process."""
    return f"pid {os.getpid()}" if url.startswith("sqlite") else f"connector pid {os.getpid()} on"


def test_second_lock_is_refused_until_released(store_url: str) -> None:
    with open_store(store_url) as mine, open_store(store_url) as theirs:
        with mine.lock("amazon-to-vtex"):
            with pytest.raises(Busy) as info, theirs.lock("amazon-to-vtex"):
                pytest.fail("two holders")
            with theirs.lock("adobe-commerce-to-amazon"):  # another flow: independent
                pass
        message = str(info.value)
        assert message.startswith("flow amazon-to-vtex is already running in another process (")
        assert holder(store_url) in message
        assert message.endswith("); this run stops without acting")
        assert isinstance(info.value, ConnectorError) and info.value.exit_code == 1
        with theirs.lock("amazon-to-vtex"):  # released when the block ended
            pass


def test_partitions_exclude_the_whole_flow_not_each_other(store_url: str) -> None:
    with open_store(store_url) as a, open_store(store_url) as b, open_store(store_url) as c:
        with a.lock("f@ATVPDKIKX0DER", within="f"), b.lock("f@A2EUQ1WTGCTBG2", within="f"):
            with pytest.raises(Busy, match="flow f is already running"), c.lock("f"):
                pass
            with pytest.raises(Busy, match="flow f@ATVPDKIKX0DER is already running"):
                with c.lock("f@ATVPDKIKX0DER", within="f"):
                    pass
        with a.lock("f"):
            with pytest.raises(Busy, match=re.escape(f"flow f is already running in another "
                                                     f"process ({holder(store_url)}")):
                with b.lock("f@ATVPDKIKX0DER", within="f"):
                    pass
        with c.lock("f"):  # all released
            pass


def test_lock_held_by_another_process_is_freed_when_it_is_killed(store_url: str) -> None:
    script = (
        "import sys, time\n"
        "from connector.state.store import open_store\n"
        f"store = open_store({store_url!r})\n"
        "with store.lock('amazon-to-vtex'):\n"
        "    print('locked', flush=True)\n"
        "    time.sleep(120)\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None and proc.stdout.readline() == "locked\n"
        with open_store(store_url) as store:
            with pytest.raises(Busy, match=re.escape(f"pid {proc.pid}")):
                with store.lock("amazon-to-vtex"):
                    pass
            proc.kill()  # SIGKILL: no cleanup runs in the holder
            assert proc.wait(timeout=10) == -9
            deadline = time.monotonic() + 15
            while True:
                try:
                    with store.lock("amazon-to-vtex"):
                        break
                except Busy:  # PostgreSQL: the server notices the closed session promptly
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.1)
    finally:
        proc.kill()
        proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()


def test_apply_stops_without_acting_while_a_partition_runs(store_url: str,
                                                            tmp_path: Path) -> None:
    """`connector apply` (the whole flow) during a worker's run of one of its partitions:
    the run stops at the lock, before fetching anything (no system is reachable here)."""
    from connector.commands import apply

    env = {"CONNECTOR_STATE": store_url, "CONNECTOR_AMAZON_CLIENT_ID": "id",
           "CONNECTOR_AMAZON_CLIENT_SECRET": "secret-1", "CONNECTOR_AMAZON_REFRESH_TOKEN": "r-1",
           "CONNECTOR_VTEX_ACCOUNT": "acme", "CONNECTOR_VTEX_APP_KEY": "key",
           "CONNECTOR_VTEX_APP_TOKEN": "token-1",
           "CONNECTOR_AMAZON_BASE_URL": "http://127.0.0.1:1/amazon",
           "CONNECTOR_AMAZON_TOKEN_URL": "http://127.0.0.1:1/token",
           "CONNECTOR_VTEX_BASE_URL": "http://127.0.0.1:1/vtex"}
    with open_store(store_url) as worker:
        with worker.lock("amazon-to-vtex@ATVPDKIKX0DER", within="amazon-to-vtex"):
            out = io.StringIO()
            code = apply.run(REPO, "amazon-to-vtex", None, None, False, False, "text", None,
                             out, environ=env)
    assert code == 1
    assert "flow amazon-to-vtex is already running in another process" in out.getvalue()
