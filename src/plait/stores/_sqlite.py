"""The SQLite store: durable runs in one file, shared safely by several processes.

Design:

- **One connection per store, behind a lock.** The connection is opened with
  ``check_same_thread=False`` and every method holds a :class:`threading.Lock` while it uses it,
  so a store may be shared by threads (the engine calls it from a writer thread, the CLI from
  its main thread).
- **WAL mode.** Readers never block the writer and the writer never blocks readers, so a
  ``plait status`` in another terminal does not stall a run. ``synchronous=NORMAL`` is the
  setting SQLite recommends with WAL: a crash of the process loses nothing; a power cut may lose
  the last transactions, never corrupt the file.
- **Writers queue rather than fail.** Every write is one ``BEGIN IMMEDIATE`` transaction, which
  takes the file's write lock up front (a deferred transaction could deadlock when upgrading a
  read lock); a process that finds the lock taken waits up to ``busy_timeout`` (10 s) for it,
  then gets :class:`StoreUnavailableError` (so does a full disk or an I/O error: failures that
  may pass, which the engine retries); other SQLite errors raise :class:`StoreError`.
- **Migrations.** :data:`_MIGRATIONS` is an ordered list of SQL scripts; a script's position
  (1-based) is the schema version it brings the file to, and the version is kept in
  ``PRAGMA user_version``. They are applied when the store opens, inside one exclusive
  transaction, so two processes opening a new file at once do not both migrate it: the second
  waits, then finds the file up to date. A file from a newer plait is refused, not damaged.
- **Fencing.** :meth:`SQLiteStore.write` first updates the run's row *where the writer is still
  its owner*; if no row matched, it rolls back and raises :class:`LeaseLostError`, so a process
  that lost its lease cannot overwrite the new owner's progress. Because the transaction holds
  the write lock from its first statement, no claim can slip in between the check and the
  writes. The same update records the batch's key (``runs.last_batch``) and skips a batch whose
  key is already there, so a batch written twice is applied once.
- **Keys.** Tasks are keyed by ``(run_id, task_id)`` and input requests by
  ``(run_id, task_id, key)``; writes are upserts (``INSERT ... ON CONFLICT DO UPDATE``), so a
  replayed write replaces rather than duplicates. An upsert keeps the row's ``rowid``, which is
  how input requests keep the order they were first made in. Events are appended with a rowid
  ``seq``: SQLite gives a new row a rowid above every existing one, so a run's log stays in order.
- **Requests to a live run** (``run_requests``, keyed by ``(run_id, request_id)``; sending again
  inserts nothing). The owner's look for pending requests is one read of an index that holds
  only pending rows; when it finds some, one ``UPDATE ... RETURNING`` takes them, so a request
  is taken once even when two processes look at the same moment.

How records become rows and back (JSON, statuses, errors) and the lease messages live in
``_sql.py``, shared with the PostgreSQL store, so both backends encode every field the same way.
"""

from __future__ import annotations

import functools
import os
import sqlite3
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from itertools import chain
from pathlib import Path
from typing import Any, ClassVar

from .._requests import RunRequest
from .._state import RunStatus
from ._base import (
    EventRecord,
    InputRequest,
    RunExistsError,
    RunRecord,
    Store,
    StoreError,
    StoreNotFoundError,
    StoreUnavailableError,
    TaskDuration,
    TaskHistory,
    TaskLog,
    TaskRecord,
    WriteBatch,
)
from ._listing import OpenQuestion, RunPage, check_limit, page_of
from ._migrations import SQLITE_MIGRATIONS
from ._sql import (
    _EVENT_COLUMNS,
    _HISTORY_COLUMNS,
    _LOG_COLUMNS,
    _REQUEST_COLUMNS,
    _RUN_COLUMNS,
    _RUN_REQUEST_COLUMNS,
    _TASK_COLUMNS,
    _definition_json,
    _event_record,
    _event_rows,
    _history_rows,
    _insert_run_request_sql,
    _lease_held,
    _lease_lost,
    _list_runs_query,
    _log_record,
    _log_rows,
    _not_found,
    _open_question,
    _open_questions_sql,
    _request_record,
    _request_rows,
    _run_record,
    _run_request_done_rows,
    _run_request_record,
    _run_request_row,
    _run_row,
    _storable,
    _task_history,
    _task_record,
    _task_rows,
    _upsert_request_sql,
)

__all__ = ["SQLiteStore"]

#: Seconds a process waits for another one's write lock before giving up.
_BUSY_TIMEOUT = 10.0

#: Schema migrations (see ``_migrations.py``); a subclass may extend them (tests do).
_MIGRATIONS: tuple[str, ...] = SQLITE_MIGRATIONS

_INSERT_RUN = f"""
    INSERT INTO runs ({_RUN_COLUMNS})
    VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
    ON CONFLICT (run_id) DO NOTHING
"""

_CLAIM = f"""
    UPDATE runs SET owner = ?, lease_expires_at = ?
    WHERE run_id = ?
      AND (? OR owner IS NULL OR owner = ? OR lease_expires_at IS NULL OR lease_expires_at <= ?)
    RETURNING {_RUN_COLUMNS}
"""

# The row inserts are templates: ``{values}`` becomes one ``(?, ...)`` per row (see _insert).
_UPSERT_TASKS = """
    INSERT INTO tasks (
        run_id, task_id, status, attempts, output, error, started_at, finished_at, skip_cause
    )
    VALUES {values}
    ON CONFLICT (run_id, task_id) DO UPDATE SET
        status = excluded.status,
        attempts = excluded.attempts,
        output = excluded.output,
        error = excluded.error,
        started_at = excluded.started_at,
        finished_at = excluded.finished_at,
        skip_cause = excluded.skip_cause
"""

_UPSERT_REQUEST = _upsert_request_sql("?")

_OPEN_QUESTIONS = _open_questions_sql("?")

_UPSERT_LOGS = """
    INSERT INTO task_logs (run_id, task_id, attempt, lines)
    VALUES {values}
    ON CONFLICT (run_id, task_id, attempt) DO UPDATE SET lines = excluded.lines
"""

_INSERT_EVENTS = "INSERT INTO events (run_id, kind, task_id, time, data) VALUES {values}"

# A duration joins its task's history as s0, the others moving one along (SQL evaluates every
# right-hand side before it assigns: s1 gets the old s0).
_UPSERT_HISTORY = """
    INSERT INTO task_history (workflow, task_id, function, s0) VALUES {values}
    ON CONFLICT (workflow, task_id) DO UPDATE SET
        s4 = task_history.s3, s3 = task_history.s2, s2 = task_history.s1, s1 = task_history.s0,
        s0 = excluded.s0, function = excluded.function
"""

_INSERT_RUN_REQUEST = _insert_run_request_sql("?")

# The owner's look for requests: whether it still holds the run, and whether any wait for it.
_PENDING_FOR = """
    SELECT owner, EXISTS (
        SELECT 1 FROM run_requests
        WHERE run_id = runs.run_id AND owner = ? AND state = 'pending'
    )
    FROM runs WHERE run_id = ?
"""

_TAKE_REQUESTS = f"""
    UPDATE run_requests SET state = 'taken', taken_at = ?
    WHERE run_id = ? AND owner = ? AND state = 'pending'
    RETURNING rowid, {_RUN_REQUEST_COLUMNS}
"""

_FINISH_REQUEST = """
    UPDATE run_requests SET state = ?, done_at = ?, outcome = ?
    WHERE run_id = ? AND request_id = ?
"""

#: Rows per INSERT statement, at most. SQLite steps once per statement, and Python's sqlite3
#: gives up the GIL at every step: a statement per row hands the GIL back and forth with the event
#: loop of the run being recorded, which slows both threads (some 3x for the writer); 500 rows a
#: statement hand it over five times less often than 100 did. Fewer where the SQLite build allows
#: fewer parameters a statement (999 in older builds; see ``_insert``).
_ROWS_PER_INSERT = 500


class SQLiteStore(Store):
    """Keeps runs in an SQLite file; several processes may use the same file at once.

    The file and its parent directories are created if missing (unless ``create`` is false),
    and the schema is brought up to date when the store opens. See the module docstring for
    the design.

    Args:
        path: the database file (``~`` is expanded).
        create: whether a missing file is created; with False, a missing file raises
            :class:`StoreNotFoundError` and nothing is written to disk (commands that only read).

    Raises:
        StoreError: the file cannot be opened, is not an SQLite database, or was written by a
            newer plait.
        StoreNotFoundError: ``create`` is false and there is no file at ``path``.
    """

    #: The schema migrations this class applies; a subclass may extend them (tests do).
    _migrations: ClassVar[Sequence[str]] = _MIGRATIONS

    def __init__(self, path: str | os.PathLike[str], *, create: bool = True) -> None:
        self.path = Path(path).expanduser()
        self._lock = threading.Lock()
        self._closed = False
        if not create and not self.path.is_file():
            raise StoreNotFoundError(f"there is no SQLite store at {str(self.path)!r}")
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._conn = sqlite3.connect(
                self.path,
                timeout=_BUSY_TIMEOUT,
                isolation_level=None,  # we issue BEGIN and COMMIT ourselves
                check_same_thread=False,
            )
        except (OSError, sqlite3.Error) as error:
            raise StoreError(f"cannot open the SQLite store {str(self.path)!r}: {error}") from None
        try:
            self._enable_wal()
            self._conn.execute("PRAGMA synchronous = NORMAL")
            #: The schema version of the file, once migrated: ``len(self._migrations)``.
            self.schema_version = self._migrate()
        except sqlite3.Error as error:
            self._conn.close()
            raise StoreError(f"cannot open the SQLite store {str(self.path)!r}: {error}") from None
        except BaseException:
            self._conn.close()
            raise

    def __repr__(self) -> str:
        state = " (closed)" if self._closed else ""
        return f"<SQLiteStore {str(self.path)!r}{state}>"

    def _enable_wal(self) -> None:
        """Switch the file to WAL mode (a no-op once it is: the mode is kept in the file).

        The switch needs the file to itself. When two processes open a new file at once,
        SQLite may refuse one of them at once rather than have both wait for each other, so
        a refused switch is retried until the busy timeout runs out.
        """
        deadline = time.monotonic() + _BUSY_TIMEOUT
        while True:
            try:
                self._conn.execute("PRAGMA journal_mode = WAL")
                return
            except sqlite3.OperationalError as error:
                if error.sqlite_errorcode != sqlite3.SQLITE_BUSY or time.monotonic() > deadline:
                    raise
            time.sleep(0.005)

    def _migrate(self) -> int:
        """Apply the migrations the file lacks, in one exclusive transaction; return the version.

        A file already at the latest version is only read: opening a store never waits for
        another process's write (nor for a process stopped in the middle of one).
        """
        latest = len(self._migrations)
        conn = self._conn
        (current,) = conn.execute("PRAGMA user_version").fetchone()
        if current == latest:
            return latest
        conn.execute("BEGIN EXCLUSIVE")
        try:
            (current,) = conn.execute("PRAGMA user_version").fetchone()
            if current > latest:
                raise StoreError(
                    f"the SQLite store {str(self.path)!r} has schema version {current}, newer "
                    f"than this plait knows ({latest}); upgrade plait to open it"
                )
            for script in self._migrations[current:]:
                for statement in _statements(script):
                    conn.execute(statement)
            if current < latest:
                conn.execute(f"PRAGMA user_version = {latest:d}")
        except BaseException:
            conn.rollback()
            raise
        conn.execute("COMMIT")
        return latest

    # -- transactions -----------------------------------------------------------------------

    @contextmanager
    def _transaction(self, begin: str = "BEGIN IMMEDIATE") -> Iterator[sqlite3.Connection]:
        """Hold the lock and run the block in one transaction: committed if it returns, rolled
        back if it raises. SQLite errors become :class:`StoreError`."""
        if self._closed:  # before waiting for the lock: a closed store answers at once
            raise StoreError(f"{self!r} is closed")
        with self._lock:
            if self._closed:
                raise StoreError(f"{self!r} is closed")
            conn = self._conn
            try:
                conn.execute(begin)
                try:
                    yield conn
                except BaseException:
                    conn.rollback()
                    raise
                conn.execute("COMMIT")
            except sqlite3.Error as error:
                if conn.in_transaction:  # COMMIT itself failed
                    conn.rollback()
                raise _store_error(self.path, error) from error
            finally:
                if self._closed:  # close() was called meanwhile, from another thread
                    conn.close()

    def _read(self) -> AbstractContextManager[sqlite3.Connection]:
        """A read-only transaction: one consistent snapshot of the file."""
        return self._transaction("BEGIN DEFERRED")

    # -- the Store interface ----------------------------------------------------------------

    def create_run(self, run: RunRecord) -> None:
        with self._transaction() as conn:
            if conn.execute(_INSERT_RUN, _run_row(run)).rowcount == 0:
                raise RunExistsError(f"run {run.run_id!r} already exists")

    def get_run(self, run_id: str) -> RunRecord | None:
        with self._read() as conn:
            row = conn.execute(
                f"SELECT {_RUN_COLUMNS} FROM runs WHERE run_id = ?", (run_id,)
            ).fetchone()
        return None if row is None else _run_record(row)

    def list_runs(
        self,
        *,
        status: RunStatus | None = None,
        workflow: str | None = None,
        before: str | None = None,
        limit: int = 50,
    ) -> RunPage:
        query, params = _list_runs_query("?", status, workflow, before, limit)
        with self._read() as conn:
            rows = conn.execute(query, params).fetchall()
        return page_of([_run_record(row) for row in rows], limit)

    def open_questions(self, *, limit: int = 100) -> list[OpenQuestion]:
        check_limit(limit)
        with self._read() as conn:
            rows = conn.execute(_OPEN_QUESTIONS, (limit,)).fetchall()
        return [_open_question(row) for row in rows]

    def claim(
        self, run_id: str, owner: str, *, lease_seconds: float, force: bool = False
    ) -> RunRecord:
        now = time.time()
        with self._transaction() as conn:
            row = conn.execute(
                _CLAIM, (owner, now + lease_seconds, run_id, force, owner, now)
            ).fetchone()
            if row is None:
                # The write lock is ours, so this is the state that made the claim fail.
                held = conn.execute(
                    "SELECT owner, lease_expires_at FROM runs WHERE run_id = ?", (run_id,)
                ).fetchone()
                if held is None:
                    raise _not_found(run_id)
                raise _lease_held(run_id, held[0], held[1])
        return _run_record(row)

    def renew(self, run_id: str, owner: str, *, lease_seconds: float) -> None:
        with self._transaction() as conn:
            cursor = conn.execute(
                "UPDATE runs SET lease_expires_at = ? WHERE run_id = ? AND owner = ?",
                (time.time() + lease_seconds, run_id, owner),
            )
            if cursor.rowcount == 0:
                raise _missing_or_lost(conn, run_id, owner)

    def release(self, run_id: str, owner: str) -> None:
        with self._transaction() as conn:
            conn.execute(
                "UPDATE runs SET owner = NULL, lease_expires_at = NULL "
                "WHERE run_id = ? AND owner = ?",
                (run_id, owner),
            )

    def write(self, run_id: str, owner: str, batch: WriteBatch) -> None:
        # Build the rows before taking the lock: other threads may use the store meanwhile.
        tasks = _task_rows(run_id, batch.tasks)
        requests = _request_rows(run_id, batch.requests)
        events = _event_rows(run_id, batch.events)
        logs = _log_rows(run_id, batch.logs)
        done = _run_request_done_rows(run_id, batch.requests_done)
        durations = batch.durations
        now = time.time()
        key = batch.key
        with self._transaction() as conn:
            # The fence: touch the run only if ``owner`` still holds it (and this batch was not
            # applied already).
            if batch.run is None:
                cursor = conn.execute(
                    "UPDATE runs SET updated_at = ?, last_batch = ? "
                    "WHERE run_id = ? AND owner = ? AND (? IS NULL OR last_batch IS NOT ?)",
                    (now, key, run_id, owner, key, key),
                )
            else:
                cursor = conn.execute(
                    "UPDATE runs SET updated_at = ?, status = ?, finished_at = ?, error = ?, "
                    "last_batch = ? "
                    "WHERE run_id = ? AND owner = ? AND (? IS NULL OR last_batch IS NOT ?)",
                    (
                        now,
                        batch.run.status.value,
                        batch.run.finished_at,
                        _storable(batch.run.error),
                        key,
                        run_id,
                        owner,
                        key,
                        key,
                    ),
                )
            if cursor.rowcount == 0:
                if _applied(conn, run_id, owner, key):
                    return
                raise _missing_or_lost(conn, run_id, owner)
            if batch.run is not None and batch.run.definition is not None:
                conn.execute(
                    "UPDATE runs SET definition = ?, fingerprint = ? WHERE run_id = ?",
                    (_definition_json(batch.run.definition), batch.run.fingerprint, run_id),
                )
            if batch.dropped:
                dropped = [(run_id, task_id) for task_id in batch.dropped]
                conn.executemany("DELETE FROM tasks WHERE run_id = ? AND task_id = ?", dropped)
                conn.executemany(
                    "DELETE FROM input_requests WHERE run_id = ? AND task_id = ?", dropped
                )
            _insert(conn, _UPSERT_TASKS, tasks)
            if requests:
                conn.executemany(_UPSERT_REQUEST, requests)
            _insert(conn, _INSERT_EVENTS, events)
            if durations:
                _add_history(conn, run_id, durations)
            _insert(conn, _UPSERT_LOGS, logs)
            if done:
                conn.executemany(_FINISH_REQUEST, done)

    def load_tasks(self, run_id: str) -> dict[str, TaskRecord]:
        with self._read() as conn:
            _check_run(conn, run_id)
            rows = conn.execute(
                f"SELECT {_TASK_COLUMNS} FROM tasks WHERE run_id = ?", (run_id,)
            ).fetchall()
        return {row[0]: _task_record(row) for row in rows}

    def load_requests(self, run_id: str) -> list[InputRequest]:
        with self._read() as conn:
            _check_run(conn, run_id)
            rows = conn.execute(
                f"SELECT {_REQUEST_COLUMNS} FROM input_requests WHERE run_id = ? ORDER BY rowid",
                (run_id,),
            ).fetchall()
        return [_request_record(row) for row in rows]

    def set_trace_context(self, run_id: str, trace_context: str) -> None:
        with self._transaction() as conn:
            _check_run(conn, run_id)
            conn.execute(
                "INSERT INTO run_traces (run_id, trace_context) VALUES (?, ?) "
                "ON CONFLICT (run_id) DO NOTHING",
                (run_id, _storable(trace_context)),
            )

    def get_trace_context(self, run_id: str) -> str | None:
        with self._read() as conn:
            row = conn.execute(
                "SELECT trace_context FROM run_traces WHERE run_id = ?", (run_id,)
            ).fetchone()
        return None if row is None else str(row[0])

    def task_history(self, workflow: str) -> list[TaskHistory]:
        with self._read() as conn:
            rows = conn.execute(
                f"SELECT {_HISTORY_COLUMNS} FROM task_history WHERE workflow = ?",
                (workflow,),
            ).fetchall()
        return _task_history(rows)

    def load_events(self, run_id: str, *, after: int | None = None) -> list[EventRecord]:
        with self._read() as conn:
            _check_run(conn, run_id)
            rows = conn.execute(
                f"SELECT {_EVENT_COLUMNS} FROM events WHERE run_id = ? AND seq > ? ORDER BY seq",
                (run_id, -1 if after is None else after),
            ).fetchall()
        return [_event_record(row) for row in rows]

    def load_logs(
        self, run_id: str, *, task_id: str | None = None, attempt: int | None = None
    ) -> list[TaskLog]:
        with self._read() as conn:
            _check_run(conn, run_id)
            rows = conn.execute(
                f"SELECT {_LOG_COLUMNS} FROM task_logs WHERE run_id = ? "
                "AND (? IS NULL OR task_id = ?) AND (? IS NULL OR attempt = ?) "
                "ORDER BY task_id, attempt",
                (run_id, task_id, task_id, attempt, attempt),
            ).fetchall()
        return [_log_record(row) for row in rows]

    def send_request(self, run_id: str, request: RunRequest) -> None:
        with self._transaction() as conn:
            _check_run(conn, run_id)
            conn.execute(_INSERT_RUN_REQUEST, _run_request_row(run_id, request))

    def take_requests(self, run_id: str, owner: str) -> list[RunRequest]:
        # A live run looks several times a second: a read (no write lock) usually finds nothing.
        with self._read() as conn:
            row = conn.execute(_PENDING_FOR, (owner, run_id)).fetchone()
        if row is None:
            raise _not_found(run_id)
        if row[0] != owner:
            raise _lease_lost(run_id, owner, row[0])
        if not row[1]:
            return []
        with self._transaction() as conn:
            (current,) = conn.execute(
                "SELECT owner FROM runs WHERE run_id = ?", (run_id,)
            ).fetchone() or (None,)
            if current != owner:
                raise _lease_lost(run_id, owner, current)
            rows = conn.execute(_TAKE_REQUESTS, (time.time(), run_id, owner)).fetchall()
        return [_run_request_record(row[1:]) for row in sorted(rows)]

    def get_request(self, run_id: str, request_id: str) -> RunRequest | None:
        with self._read() as conn:
            _check_run(conn, run_id)
            row = conn.execute(
                f"SELECT {_RUN_REQUEST_COLUMNS} FROM run_requests "
                "WHERE run_id = ? AND request_id = ?",
                (run_id, request_id),
            ).fetchone()
        return None if row is None else _run_request_record(row)

    def close(self) -> None:
        """Close the connection; closing a closed store does nothing.

        A call under way in another thread (a writer waiting for a lock, or for a server that
        does not answer) is not waited for: the connection is closed when that call returns.
        """
        self._closed = True  # no call starts from now on
        if self._lock.acquire(blocking=False):
            try:
                self._conn.close()
            finally:
                self._lock.release()
        # else: the call under way closes it on its way out (see _transaction)


#: SQLite's result codes for failures that may pass: another process holds the lock past the
#: busy timeout, the disk is full, an I/O error.
_TRANSIENT = frozenset(
    {sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED, sqlite3.SQLITE_FULL, sqlite3.SQLITE_IOERR}
)


def _store_error(path: Path, error: sqlite3.Error) -> StoreError:
    """The store's error for ``error``: :class:`StoreUnavailableError` if it may pass."""
    message = f"the SQLite store {str(path)!r} failed: {error}"
    code = getattr(error, "sqlite_errorcode", None)
    if code is not None and code & 0xFF in _TRANSIENT:  # the primary code of an extended one
        return StoreUnavailableError(message)
    return StoreError(message)


def _insert(conn: sqlite3.Connection, template: str, rows: Sequence[tuple[Any, ...]]) -> None:
    """Insert ``rows`` with ``template``, at most :data:`_ROWS_PER_INSERT` rows per statement
    (fewer if their parameters would pass the connection's limit)."""
    if not rows:
        return
    width = len(rows[0])
    per = max(1, min(_ROWS_PER_INSERT, _parameters_allowed(conn) // width))
    for start in range(0, len(rows), per):
        chunk = rows[start : start + per]
        conn.execute(_statement(template, width, len(chunk)), list(chain.from_iterable(chunk)))


def _parameters_allowed(conn: sqlite3.Connection) -> int:
    """How many parameters one statement may have on ``conn`` (the build's limit)."""
    return conn.getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER)


@functools.lru_cache(maxsize=256)
def _statement(template: str, width: int, rows: int) -> str:
    row = "(" + ", ".join("?" * width) + ")"
    return template.format(values=", ".join([row] * rows))


def _add_history(conn: sqlite3.Connection, run_id: str, durations: Sequence[TaskDuration]) -> None:
    """Add ``durations`` to the history of the run's workflow (see ``_history_rows``)."""
    (workflow,) = conn.execute("SELECT workflow FROM runs WHERE run_id = ?", (run_id,)).fetchone()
    # One statement applies its rows in order: a task twice in it shifts twice.
    _insert(conn, _UPSERT_HISTORY, _history_rows(workflow, durations))


def _check_run(conn: sqlite3.Connection, run_id: str) -> None:
    if conn.execute("SELECT 1 FROM runs WHERE run_id = ?", (run_id,)).fetchone() is None:
        raise _not_found(run_id)


def _applied(conn: sqlite3.Connection, run_id: str, owner: str, key: str | None) -> bool:
    """Whether ``owner`` already applied the batch ``key`` to ``run_id`` (it is the last)."""
    if key is None:
        return False
    row = conn.execute("SELECT owner, last_batch FROM runs WHERE run_id = ?", (run_id,)).fetchone()
    return row is not None and row[0] == owner and row[1] == key


def _missing_or_lost(conn: sqlite3.Connection, run_id: str, owner: str) -> StoreError:
    """Why ``owner``'s conditional update of ``run_id`` matched no row."""
    row = conn.execute("SELECT owner FROM runs WHERE run_id = ?", (run_id,)).fetchone()
    return _not_found(run_id) if row is None else _lease_lost(run_id, owner, row[0])


def _statements(script: str) -> Iterator[str]:
    """Split an SQL script into statements (``executescript`` would commit our transaction).

    A semicolon ends a statement only where SQLite says it does (not inside a string, a
    comment or a trigger's body); text after the last one is passed on as it is.
    """
    *pieces, tail = script.split(";")
    statement = ""
    for piece in pieces:
        statement += piece + ";"
        if sqlite3.complete_statement(statement):
            yield statement
            statement = ""
    statement += tail
    if statement.strip():
        yield statement
