"""What only the PostgreSQL store does: psycopg as an extra, schemas, migrations, reconnecting.

Everything every store does is in ``test_conformance.py``. These tests need the server too,
and fail (saying how to start it) when it is down.
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime

import psycopg
import pytest

from plait import RunStatus, TaskStatus
from plait.stores import (
    LeaseHeldError,
    PostgresStore,
    RunRecord,
    StoreError,
    TaskRecord,
    WriteBatch,
)
from plait.stores._postgres import _MIGRATIONS

from .conftest import drop_schemas


def make_run(run_id: str = "run-1", owner: str | None = "alice") -> RunRecord:
    return RunRecord(
        run_id=run_id,
        workflow="etl",
        fingerprint="f",
        definition=[],
        config={},
        status=RunStatus.RUNNING,
        created_at=1.0,
        updated_at=1.0,
        owner=owner,
        lease_expires_at=None if owner is None else time.time() + 60,
    )


@pytest.fixture
def store(postgres_url: str, postgres_schema: str) -> Iterator[PostgresStore]:
    store = PostgresStore(postgres_url, schema=postgres_schema)
    yield store
    store.close()


def query(url: str, sql: str, *params: object) -> list[tuple[object, ...]]:
    """Run ``sql`` on a connection of its own; its rows, if it returns any."""
    with psycopg.connect(url, autocommit=True) as conn:
        cursor = conn.execute(sql.encode(), params)
        return cursor.fetchall() if cursor.description else []


def test_a_missing_psycopg_says_which_extra_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "psycopg", None)  # makes `import psycopg` fail
    with pytest.raises(
        StoreError,
        match=r"^the PostgreSQL store needs psycopg; install it with: "
        r"pip install 'plait\[postgres\]'$",
    ):
        PostgresStore("postgresql://localhost/db")


def test_importing_the_stores_does_not_import_psycopg() -> None:
    code = "import sys, plait.stores; print('psycopg' in sys.modules)"
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "False"


def test_an_unreachable_server_raises_store_error_without_the_password() -> None:
    url = "postgresql://someone:s3cret@127.0.0.1:1/nowhere?connect_timeout=3"
    with pytest.raises(StoreError) as caught:
        PostgresStore(url)
    message = str(caught.value)
    assert message.startswith("cannot connect to PostgreSQL at 127.0.0.1:1/nowhere schema 'plait'")
    assert "s3cret" not in message


def test_the_tables_live_in_the_given_schema(
    store: PostgresStore, postgres_url: str, postgres_schema: str
) -> None:
    rows = query(
        postgres_url,
        "SELECT table_name FROM information_schema.tables WHERE table_schema = %s",
        postgres_schema,
    )
    assert {name for (name,) in rows} == {
        "runs",
        "tasks",
        "input_requests",
        "events",
        "task_history",
        "run_traces",
        "task_logs",
        "run_requests",
        "plait_schema_version",
    }


def test_each_applied_migration_is_a_row_of_the_version_table(
    store: PostgresStore, postgres_url: str, postgres_schema: str
) -> None:
    rows = query(
        postgres_url, f'SELECT version FROM "{postgres_schema}".plait_schema_version ORDER BY 1'
    )
    assert rows == [(n,) for n in range(1, len(_MIGRATIONS) + 1)]
    assert store.schema_version == len(_MIGRATIONS)


def test_stores_in_two_schemas_of_one_database_are_separate(
    store: PostgresStore, postgres_url: str, postgres_schema: str
) -> None:
    other_schema = f"{postgres_schema}_other"
    try:
        with PostgresStore(postgres_url, schema=other_schema) as other:
            store.create_run(make_run())
            assert other.get_run("run-1") is None
            other.create_run(make_run(owner="bob"))  # the same id, in the other schema
            run = other.get_run("run-1")
            assert run is not None
            assert run.owner == "bob"
    finally:
        drop_schemas(other_schema)


def test_an_existing_schema_is_used_as_it_is(postgres_url: str, postgres_schema: str) -> None:
    query(postgres_url, f'CREATE SCHEMA "{postgres_schema}"')
    query(postgres_url, f'CREATE TABLE "{postgres_schema}".unrelated (x INTEGER)')
    with PostgresStore(postgres_url, schema=postgres_schema) as store:
        store.create_run(make_run())
    assert query(postgres_url, f'SELECT count(*) FROM "{postgres_schema}".unrelated') == [(0,)]


def test_a_failed_migration_changes_nothing(postgres_url: str, postgres_schema: str) -> None:
    PostgresStore(postgres_url, schema=postgres_schema).close()

    class Broken(PostgresStore):
        _migrations = (*_MIGRATIONS, "CREATE TABLE later (x INTEGER); SELECT * FROM no_such")

    with pytest.raises(StoreError, match='relation "no_such" does not exist'):
        Broken(postgres_url, schema=postgres_schema)
    tables = query(
        postgres_url,
        "SELECT table_name FROM information_schema.tables WHERE table_schema = %s",
        postgres_schema,
    )
    assert ("later",) not in tables
    store = PostgresStore(postgres_url, schema=postgres_schema)
    store.close()
    assert store.schema_version == len(_MIGRATIONS)


def test_a_broken_connection_is_replaced_for_the_next_call(
    store: PostgresStore, postgres_url: str
) -> None:
    store.create_run(make_run())
    query(postgres_url, "SELECT pg_terminate_backend(%s)", store._conn.info.backend_pid)
    with pytest.raises(StoreError, match="failed"):
        store.get_run("run-1")
    run = store.get_run("run-1")  # a new connection, with the schema's search_path
    assert run is not None
    store.write(
        "run-1", "alice", WriteBatch(tasks=[TaskRecord(task_id="t", status=TaskStatus.PENDING)])
    )
    assert list(store.load_tasks("run-1")) == ["t"]


def _tasks(names: range, status: TaskStatus) -> list[TaskRecord]:
    return [TaskRecord(task_id=f"t{n:03}", status=status, attempts=1) for n in names]


def test_a_run_s_new_tasks_are_copied_and_its_known_ones_upserted(store: PostgresStore) -> None:
    store.create_run(make_run())
    store.write("run-1", "alice", WriteBatch(tasks=_tasks(range(100), TaskStatus.RUNNING)))
    succeeded = _tasks(range(50, 250), TaskStatus.SUCCEEDED)  # 50 known, 150 new
    store.write("run-1", "alice", WriteBatch(tasks=succeeded))
    tasks = store.load_tasks("run-1")
    assert len(tasks) == 250
    assert [tasks[f"t{n:03}"].status for n in (0, 49, 50, 99, 100, 249)] == [
        TaskStatus.RUNNING,
        TaskStatus.RUNNING,
        *[TaskStatus.SUCCEEDED] * 4,
    ]


def test_tasks_another_store_wrote_into_a_run_this_one_created_are_upserted(
    store: PostgresStore, postgres_url: str, postgres_schema: str
) -> None:
    # The store believes none of the run's tasks has a row: its copy meets one, rolls back to
    # its savepoint, and upserts them all, in the same transaction.
    store.create_run(make_run())
    with PostgresStore(postgres_url, schema=postgres_schema) as other:
        other.write("run-1", "alice", WriteBatch(tasks=_tasks(range(70, 71), TaskStatus.RUNNING)))
    store.write("run-1", "alice", WriteBatch(tasks=_tasks(range(100), TaskStatus.SUCCEEDED)))
    store.write("run-1", "alice", WriteBatch(tasks=_tasks(range(100, 200), TaskStatus.SKIPPED)))
    tasks = store.load_tasks("run-1")
    assert len(tasks) == 200
    assert {tasks[f"t{n:03}"].status for n in range(100)} == {TaskStatus.SUCCEEDED}
    assert {tasks[f"t{n:03}"].status for n in range(100, 200)} == {TaskStatus.SKIPPED}


def test_lease_held_names_the_owner_the_time_in_utc_and_force(store: PostgresStore) -> None:
    run = make_run(owner="host-a:4711")
    store.create_run(run)
    assert run.lease_expires_at is not None
    when = datetime.fromtimestamp(run.lease_expires_at, UTC).strftime("%Y-%m-%d %H:%M:%S")
    with pytest.raises(LeaseHeldError) as caught:
        store.claim("run-1", "host-b:99", lease_seconds=60)
    assert str(caught.value) == (
        f"run 'run-1' is owned by 'host-a:4711' until {when} UTC; pass force=True to take it over"
    )


def test_a_closed_store_raises_store_error(postgres_url: str, postgres_schema: str) -> None:
    store = PostgresStore(postgres_url, schema=postgres_schema)
    store.close()
    store.close()
    with pytest.raises(StoreError, match=r"^<PostgresStore .* \(closed\)> is closed$"):
        store.get_run("run-1")


def test_repr_shows_server_database_and_schema(store: PostgresStore, postgres_schema: str) -> None:
    info = store._conn.info
    assert repr(store) == (
        f"<PostgresStore {info.host}:{info.port}/{info.dbname} schema {postgres_schema!r}>"
    )


def test_leases_run_on_the_database_clock_not_the_hosts(
    store: PostgresStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    # This host's clock runs an hour ahead of the database's.
    real_time = time.time
    monkeypatch.setattr("plait.stores._postgres.time.time", lambda: real_time() + 3600)
    store.create_run(make_run(owner="alice"))  # its lease: 60 s by the true clock
    with pytest.raises(LeaseHeldError):  # the skewed clock would call it expired
        store.claim("run-1", "bob", lease_seconds=5)
    store.renew("run-1", "alice", lease_seconds=5)
    record = store.get_run("run-1")
    assert record is not None and record.lease_expires_at is not None
    assert record.lease_expires_at < real_time() + 10  # stamped by the database, not the host
    claimed = store.claim("run-1", "alice", lease_seconds=5)
    assert claimed.lease_expires_at is not None
    assert claimed.lease_expires_at < real_time() + 10
