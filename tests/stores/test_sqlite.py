"""What only the SQLite store does: the file, WAL, the busy timeout, migrations, its messages.

Everything every store does is in ``test_conformance.py``.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from plait import RunStatus, TaskStatus
from plait.stores import (
    EventRecord,
    LeaseHeldError,
    LeaseLostError,
    RunRecord,
    SQLiteStore,
    StoreError,
    TaskRecord,
    WriteBatch,
)
from plait.stores._sql import _event_data, _list_runs_query, _open_questions_sql
from plait.stores._sqlite_file import _MIGRATIONS, _statements


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
def path(tmp_path: Path) -> Path:
    return tmp_path / "plait.db"


@pytest.fixture
def store(path: Path) -> Iterator[SQLiteStore]:
    store = SQLiteStore(path)
    yield store
    store.close()


def raw(path: Path) -> sqlite3.Connection:
    """A plain connection to the store's file, to look behind the store's back."""
    return sqlite3.connect(path, isolation_level=None, check_same_thread=False)


def test_pages_of_runs_and_the_inbox_read_an_index(store: SQLiteStore, path: Path) -> None:
    """The queries of ``list_runs`` and ``open_questions`` search an index, never the table."""
    cursor = "MS4wOnJ1bi0x"  # (1.0, "run-1")
    connection = raw(path)
    queries = [
        _list_runs_query("?", status, workflow, before, 50)
        for status in (None, RunStatus.PAUSED)
        for workflow in (None, "etl")
        for before in (None, cursor)
    ]
    queries.append((_open_questions_sql("?"), [50]))
    for query, params in queries:
        plan = " ".join(
            row[-1] for row in connection.execute(f"EXPLAIN QUERY PLAN {query}", params)
        )
        assert "USING INDEX" in plan or "USING COVERING INDEX" in plan, (query, plan)
        assert "SCAN input_requests" not in plan and "SCAN q" not in plan, (query, plan)


def test_a_page_of_10000_runs_is_read_well_under_100_ms(store: SQLiteStore) -> None:
    """The target is 100 ms (``make bench`` measures it); this only guards against a query
    that stops using its index, with a margin wide enough for a loaded machine."""
    for n in range(10_000):
        store.create_run(replace(make_run(f"run-{n:05d}", owner=None), created_at=float(n)))
    cursor = store.list_runs(limit=50).next_cursor
    start = time.perf_counter()
    for _ in range(5):
        page = store.list_runs(limit=50, before=cursor, workflow="etl")
    took = (time.perf_counter() - start) / 5
    assert [r.run_id for r in page.runs][:2] == ["run-09949", "run-09948"]
    assert took < 1.0, f"a page took {took * 1000:.0f} ms"


def test_the_file_and_its_missing_directories_are_created(tmp_path: Path) -> None:
    path = tmp_path / "a" / "b" / "plait.db"
    SQLiteStore(path).close()
    assert path.is_file()


def test_a_path_may_be_a_string_and_start_with_a_tilde(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    store = SQLiteStore("~/runs/plait.db")
    store.close()
    assert store.path == tmp_path / "runs" / "plait.db"
    assert (tmp_path / "runs" / "plait.db").is_file()


def test_the_file_is_in_wal_mode(store: SQLiteStore, path: Path) -> None:
    assert raw(path).execute("PRAGMA journal_mode").fetchone() == ("wal",)


def test_the_connection_waits_ten_seconds_for_a_lock(store: SQLiteStore) -> None:
    assert store._conn.execute("PRAGMA busy_timeout").fetchone() == (10_000,)


def test_a_writer_waits_for_another_processs_write_instead_of_failing(
    store: SQLiteStore, path: Path
) -> None:
    store.create_run(make_run())
    other = raw(path)
    other.execute("BEGIN IMMEDIATE")  # another writer holds the lock for a while
    releasing: list[float] = []

    def release() -> None:
        releasing.append(time.monotonic())  # before the commit: the write cannot end earlier
        other.commit()

    timer = threading.Timer(0.3, release)
    timer.start()
    store.write(
        "run-1", "alice", WriteBatch(tasks=[TaskRecord(task_id="t", status=TaskStatus.PENDING)])
    )
    returned = time.monotonic()
    timer.join()
    assert releasing and releasing[0] <= returned  # it waited for the lock, by causality
    assert list(store.load_tasks("run-1")) == ["t"]


def test_opening_a_current_store_does_not_wait_for_another_processs_write(
    store: SQLiteStore, path: Path
) -> None:
    store.create_run(make_run())
    other = raw(path)
    other.execute("BEGIN IMMEDIATE")  # a writer (or one stopped mid-write) holds the lock
    opened: list[SQLiteStore] = []
    opener = threading.Thread(target=lambda: opened.append(SQLiteStore(path)), daemon=True)
    opener.start()
    opener.join(timeout=5)  # the busy timeout is 10 s: a store that waited is still waiting
    try:
        assert opened, "opening the store waited for the other process's write lock"
        assert opened[0].get_run("run-1") is not None  # and it reads, beside the writer
    finally:
        other.execute("ROLLBACK")
        for each in opened:
            each.close()


def test_closing_does_not_wait_for_a_write_stuck_behind_another_process(
    store: SQLiteStore, path: Path
) -> None:
    store.create_run(make_run())
    other = raw(path)
    other.execute("BEGIN IMMEDIATE")  # holds the lock until the end of the test
    failed: list[BaseException] = []

    def write() -> None:
        try:
            store.write("run-1", "alice", WriteBatch())
        except StoreError as error:
            failed.append(error)

    writer = threading.Thread(target=write, daemon=True)
    writer.start()
    while not store._lock.locked():  # the writer is inside its call, waiting for the lock
        time.sleep(0.001)
    closed = threading.Thread(target=store.close)
    closed.start()
    closed.join(timeout=5)  # the write waits up to 10 s: closing must not
    assert not closed.is_alive()
    with pytest.raises(StoreError, match="is closed"):
        store.get_run("run-1")
    other.rollback()  # the stuck write goes through, and closes the connection on its way out
    writer.join(timeout=10)
    assert not writer.is_alive() and not failed
    with pytest.raises(sqlite3.ProgrammingError):
        store._conn.execute("SELECT 1")


def test_readers_are_not_blocked_by_a_writer(store: SQLiteStore, path: Path) -> None:
    store.create_run(make_run())
    other = raw(path)
    other.execute("BEGIN IMMEDIATE")
    other.execute("UPDATE runs SET workflow = 'uncommitted'")
    # A blocked reader would wait out the 10 s busy timeout and then fail: reading the committed
    # value while the other transaction is still open is the proof, no stopwatch needed.
    run = store.get_run("run-1")
    assert other.in_transaction
    assert run is not None
    assert run.workflow == "etl"
    other.rollback()


def test_a_build_that_allows_few_parameters_gets_smaller_statements(
    path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    connect = sqlite3.connect

    def older_build(*args: Any, **kwargs: Any) -> sqlite3.Connection:
        conn = connect(*args, **kwargs)
        conn.setlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER, 999)  # before SQLite 3.32
        return conn

    monkeypatch.setattr(sqlite3, "connect", older_build)
    store = SQLiteStore(path)
    store.create_run(make_run())
    tasks = [TaskRecord(task_id=f"t{n}", status=TaskStatus.SUCCEEDED) for n in range(1000)]
    events = [EventRecord(kind="TaskSucceeded", time=float(n)) for n in range(1000)]
    store.write("run-1", "alice", WriteBatch(tasks=tasks, events=events))
    assert store.load_tasks("run-1") == {t.task_id: t for t in tasks}
    assert store.load_events("run-1") == events
    store.close()


def test_the_schema_version_is_kept_in_user_version(store: SQLiteStore, path: Path) -> None:
    assert store.schema_version == len(_MIGRATIONS)
    assert raw(path).execute("PRAGMA user_version").fetchone() == (len(_MIGRATIONS),)


def test_an_existing_empty_file_is_migrated(path: Path) -> None:
    raw(path).close()
    assert path.exists()
    store = SQLiteStore(path)
    assert store.schema_version == len(_MIGRATIONS)
    store.create_run(make_run())
    store.close()


def test_a_failed_migration_changes_nothing(path: Path) -> None:
    SQLiteStore(path).close()

    class Broken(SQLiteStore):
        _migrations = (*_MIGRATIONS, "CREATE TABLE later (x); SELECT * FROM no_such_table")

    with pytest.raises(StoreError, match="no such table: no_such_table"):
        Broken(path)
    connection = raw(path)
    assert connection.execute("PRAGMA user_version").fetchone() == (len(_MIGRATIONS),)
    tables = {row[0] for row in connection.execute("SELECT name FROM sqlite_master")}
    assert "later" not in tables
    SQLiteStore(path).close()  # still usable


def test_a_file_that_is_not_a_database_raises_store_error(path: Path) -> None:
    path.write_bytes(b"this is not an SQLite database, just some text" * 100)
    with pytest.raises(StoreError, match=r"^cannot open the SQLite store '.*plait\.db': "):
        SQLiteStore(path)


def test_a_directory_raises_store_error(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="cannot open the SQLite store"):
        SQLiteStore(tmp_path)


def test_a_closed_store_raises_store_error(path: Path) -> None:
    store = SQLiteStore(path)
    store.close()
    with pytest.raises(StoreError, match=r"^<SQLiteStore '.*plait\.db' \(closed\)> is closed$"):
        store.get_run("run-1")


def test_repr_shows_the_path(store: SQLiteStore, path: Path) -> None:
    assert repr(store) == f"<SQLiteStore {str(path)!r}>"


def test_lease_held_names_the_owner_the_time_in_utc_and_force(store: SQLiteStore) -> None:
    run = make_run(owner="host-a:4711")
    store.create_run(run)
    assert run.lease_expires_at is not None
    when = datetime.fromtimestamp(run.lease_expires_at, UTC).strftime("%Y-%m-%d %H:%M:%S")
    with pytest.raises(LeaseHeldError) as caught:
        store.claim("run-1", "host-b:99", lease_seconds=60)
    assert str(caught.value) == (
        f"run 'run-1' is owned by 'host-a:4711' until {when} UTC; pass force=True to take it over"
    )


def test_lease_lost_names_the_run_the_writer_and_the_new_owner(store: SQLiteStore) -> None:
    store.create_run(make_run(owner="alice"))
    with pytest.raises(LeaseLostError) as caught:
        store.write("run-1", "bob", WriteBatch())
    assert str(caught.value) == "run 'run-1' is no longer owned by 'bob': its owner is now 'alice'"
    store.release("run-1", "alice")
    with pytest.raises(LeaseLostError, match=r"^run 'run-1' is no longer owned by 'alice': it "):
        store.renew("run-1", "alice", lease_seconds=60)


def test_threads_may_share_a_store(store: SQLiteStore) -> None:
    errors: list[BaseException] = []

    def work(n: int) -> None:
        try:
            store.create_run(make_run(f"run-{n}", owner=f"thread-{n}"))
            for k in range(20):
                tasks = [TaskRecord(task_id=f"t{k}", status=TaskStatus.SUCCEEDED)]
                events = [EventRecord(kind="k", time=float(k))]
                store.write(f"run-{n}", f"thread-{n}", WriteBatch(tasks=tasks, events=events))
                store.get_run(f"run-{n}")
        except BaseException as error:
            errors.append(error)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert all(len(store.load_events(f"run-{n}")) == 20 for n in range(8))


def test_statements_splits_a_script_where_sqlite_would() -> None:
    script = """
        CREATE TABLE a (x TEXT DEFAULT ';');
        INSERT INTO a VALUES ('semi;colon'); -- a comment; with a semicolon
        CREATE TRIGGER t AFTER INSERT ON a BEGIN
            SELECT 1;
            SELECT 2;
        END;
    """
    statements = [" ".join(s.split()) for s in _statements(script)]
    assert statements == [
        "CREATE TABLE a (x TEXT DEFAULT ';');",
        "INSERT INTO a VALUES ('semi;colon');",
        "-- a comment; with a semicolon CREATE TRIGGER t AFTER INSERT ON a BEGIN SELECT 1; "
        "SELECT 2; END;",
    ]


def test_statements_passes_on_text_after_the_last_semicolon() -> None:
    assert list(_statements("CREATE TABLE a (x); CREATE TABLE b (y)")) == [
        "CREATE TABLE a (x);",
        " CREATE TABLE b (y)",
    ]
    assert list(_statements("CREATE TABLE a (x);\n  ")) == ["CREATE TABLE a (x);"]


@pytest.mark.parametrize(
    "data",
    [
        {},
        {"attempt": 3},
        {"attempt": 2, "started": 1764312345.1234567},
        {"attempt": 1, "started": 1e-7},
        {"attempt": 1, "started": 5},  # an int: the encoder's way
        {"attempt": True},
        {"attempt": 1, "error": {"type": "E", "message": 'm\n"x"', "traceback": ""}},
        {"started": 1.5, "attempt": 2},
        {"cause": "a"},
    ],
)
def test_event_data_is_json_the_encoder_would_write(data: dict[str, object]) -> None:
    text, started = _event_data(data)
    written = json.loads(text)
    if started is not None:  # a start taken out of the JSON, to its column
        assert type(started) is float and "started" not in written
        written["started"] = started
    assert written == data
    assert written == json.loads(json.dumps(data))


# -- checkpoints: the WAL stays bounded, and is copied at quiet moments ---------------------


class SmallWAL(SQLiteStore):
    """A store whose WAL bound is 64 pages (256 kB), so that a test reaches it quickly."""

    _wal_pages = 64


def write_runs(
    store: SQLiteStore, runs: int, *, first: int = 0, tasks: int = 50, release: bool = True
) -> None:
    """Write ``runs`` runs (``run-{first}``...) of ``tasks`` tasks with some output each to
    ``store``, a batch per ten tasks; release each run once written, as a recorder does when a
    run ends."""
    for n in range(first, first + runs):
        run_id = f"run-{n}"
        store.create_run(make_run(run_id))
        for start in range(0, tasks, 10):
            batch = [
                TaskRecord(task_id=f"t{k}", status=TaskStatus.SUCCEEDED, output=b"x" * 400)
                for k in range(start, start + 10)
            ]
            events = [EventRecord(kind="TaskSucceeded", time=1.0, task_id=t.task_id) for t in batch]
            store.write(run_id, "alice", WriteBatch(tasks=batch, events=events))
        if release:
            store.release(run_id, "alice")


def wal_size(path: Path) -> int:
    return Path(f"{path}-wal").stat().st_size


class DefaultWAL(SQLiteStore):
    """A store with SQLite's default WAL bound (1,000 pages): a quarter of it is 1 MB."""

    _wal_pages = 1000


def fill_a_quarter(store: DefaultWAL, path: Path) -> int:
    """Write runs to ``store`` (none released) until its WAL holds more than a quarter of its
    bound, before the bound's own checkpoint; return how many."""
    runs = 0
    while wal_size(path) <= 250 * 4096:
        write_runs(store, 1, first=runs, release=False)
        runs += 1
    return runs


def test_the_wal_stays_bounded_over_many_runs(path: Path) -> None:
    with SmallWAL(path) as store:
        sizes = []
        for n in range(40):
            write_runs(store, 1, first=n)
            sizes.append(wal_size(path))
        assert len(store.list_runs(limit=100).runs) == 40
    # The bound (256 kB) plus one batch; SQLite's own default would have been 4 MB.
    assert max(sizes) < 64 * 4096 + 64 * 1024


def test_the_wal_stays_bounded_without_quiet_moments(path: Path) -> None:
    # Runs that never end (no release): only the bound's own checkpoints keep the WAL small.
    with SmallWAL(path) as store:
        write_runs(store, 30, release=False)
        assert wal_size(path) < 64 * 4096 + 64 * 1024
        assert len(store.list_runs(limit=100).runs) == 30


def test_a_run_that_ends_checkpoints_a_large_wal(path: Path) -> None:
    with DefaultWAL(path) as store:
        runs = fill_a_quarter(store, path)
        before = path.stat().st_size
        store.release(f"run-{runs - 1}", "alice")
        after = path.stat().st_size
    assert after > before  # the WAL's pages were copied into the database file


def test_a_run_that_ends_leaves_a_small_wal_alone(store: SQLiteStore, path: Path) -> None:
    # The default bound (10,000 pages): 50 tasks are far from a quarter of it.
    write_runs(store, 1, release=False)
    before = path.stat().st_size
    store.release("run-0", "alice")
    assert path.stat().st_size == before
    assert store._conn.execute("PRAGMA wal_autocheckpoint").fetchone() == (10_000,)


def test_closing_checkpoints_a_large_wal_that_a_reader_keeps(path: Path) -> None:
    # Another process is reading: SQLite's own checkpoint at the last close cannot happen.
    store = DefaultWAL(path)
    runs = fill_a_quarter(store, path)
    reader = raw(path)
    reader.execute("BEGIN")
    assert reader.execute("SELECT count(*) FROM runs").fetchone() == (runs,)
    before = path.stat().st_size
    store.close()
    assert path.stat().st_size > before
    reader.execute("COMMIT")
    reader.close()


def test_a_quiet_checkpoint_does_not_wait_for_a_reader(path: Path) -> None:
    with DefaultWAL(path) as store:
        runs = fill_a_quarter(store, path)
        reader = raw(path)  # another process's reader, in the middle of a read
        reader.execute("BEGIN")
        assert reader.execute("SELECT count(*) FROM runs").fetchone() == (runs,)
        started = time.monotonic()
        store.release(f"run-{runs - 1}", "alice")
        assert time.monotonic() - started < 1.0  # not the 10 s busy timeout
        assert reader.execute("SELECT count(*) FROM runs").fetchone() == (runs,)
        reader.execute("COMMIT")
        reader.close()
