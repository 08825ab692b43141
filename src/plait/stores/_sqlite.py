"""The SQLite store: durable runs in one file, shared safely by several processes.

Design (of the store's operations; that of the file itself -- WAL mode, its bound and the quiet
checkpoints, writers that queue rather than fail, migrations -- is in ``_sqlite_file.py``):

- **One connection per store, behind a lock.** The connection is opened with
  ``check_same_thread=False`` and every method holds a :class:`threading.Lock` while it uses it,
  so a store may be shared by threads (the engine calls it from a writer thread, the CLI from
  its main thread).
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

What both SQL stores do alike -- the statements, the fence, how records become rows and back,
the lease messages -- is written once, in ``_sql.py`` and the modules it names, so both backends
encode every field the same way; the schema is in ``_migrations.py``.
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
from typing import Any

from .._requests import RunRequest
from ._base import RunRecord, StoreError, StoreNotFoundError, TaskDuration
from ._sql import _RUN_COLUMNS, _RUN_REQUEST_COLUMNS, Database, _lease_held, _lease_lost, _not_found
from ._sql_rows import _history_rows, _run_record, _run_request_record
from ._sql_store import SQLStore
from ._sqlite_file import _BUSY_TIMEOUT, SQLiteFile, _store_error

__all__ = ["SQLiteStore"]

_CLAIM = f"""
    UPDATE runs SET owner = ?, lease_expires_at = ?
    WHERE run_id = ?
      AND (? OR owner IS NULL OR owner = ? OR lease_expires_at IS NULL OR lease_expires_at <= ?)
    RETURNING {_RUN_COLUMNS}
"""


# A duration joins its task's history as s0, the others moving one along (SQL evaluates every
# right-hand side before it assigns: s1 gets the old s0).
_UPSERT_HISTORY = """
    INSERT INTO task_history (workflow, task_id, function, s0) VALUES {values}
    ON CONFLICT (workflow, task_id) DO UPDATE SET
        s4 = task_history.s3, s3 = task_history.s2, s2 = task_history.s1, s1 = task_history.s0,
        s0 = excluded.s0, function = excluded.function
"""


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


#: Rows per INSERT statement, at most. SQLite steps once per statement, and Python's sqlite3
#: gives up the GIL at every step: a statement per row hands the GIL back and forth with the event
#: loop of the run being recorded, which slows both threads (some 3x for the writer); 500 rows a
#: statement hand it over five times less often than 100 did. Fewer where the SQLite build allows
#: fewer parameters a statement (999 in older builds; see ``_insert``).
_ROWS_PER_INSERT = 500


class SQLiteStore(SQLiteFile, SQLStore):
    """Keeps runs in an SQLite file; several processes may use the same file at once.

    The file and its parent directories are created if missing (unless ``create`` is false),
    and the schema is brought up to date when the store opens. See the module docstrings
    (this one's and ``_sqlite_file.py``'s) for the design.

    Args:
        path: the database file (``~`` is expanded).
        create: whether a missing file is created; with False, a missing file raises
            :class:`StoreNotFoundError` and nothing is written to disk (commands that only read).

    Raises:
        StoreError: the file cannot be opened, is not an SQLite database, or was written by a
            newer plait.
        StoreNotFoundError: ``create`` is false and there is no file at ``path``.
    """

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
            self._bound_wal()
            #: How many parameters one statement may have (the build's limit; see _insert_rows).
            self._parameters_allowed = self._conn.getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER)
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

    # -- leases, and the owner's requests ----------------------------------------------------

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

    def release(self, run_id: str, owner: str) -> None:
        super().release(run_id, owner)
        self._checkpoint_if_large(wait=True)  # the run ended or paused: its writer is idle

    def close(self) -> None:
        if not self._closed:
            self._checkpoint_if_large(wait=False)
        super().close()

    def renew(self, run_id: str, owner: str, *, lease_seconds: float) -> None:
        with self._transaction() as conn:
            cursor = conn.execute(
                "UPDATE runs SET lease_expires_at = ? WHERE run_id = ? AND owner = ?",
                (time.time() + lease_seconds, run_id, owner),
            )
            if cursor.rowcount == 0:
                raise self._missing_or_lost(conn, run_id, owner)

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

    # -- many rows at once --------------------------------------------------------------------

    def _insert_rows(self, db: Database, template: str, rows: Sequence[tuple[Any, ...]]) -> None:
        """Insert ``rows`` with ``template``, at most :data:`_ROWS_PER_INSERT` rows per
        statement (fewer if their parameters would pass the connection's limit)."""
        if not rows:
            return
        width = len(rows[0])
        per = max(1, min(_ROWS_PER_INSERT, self._parameters_allowed // width))
        for start in range(0, len(rows), per):
            chunk = rows[start : start + per]
            db.execute(_statement(template, width, len(chunk)), list(chain.from_iterable(chunk)))

    def _write_history(
        self, db: Database, workflow: str, durations: Sequence[TaskDuration]
    ) -> None:
        # One statement applies its rows in order: a task twice in it shifts twice.
        self._insert_rows(db, _UPSERT_HISTORY, _history_rows(workflow, durations))


@functools.lru_cache(maxsize=256)
def _statement(template: str, width: int, rows: int) -> str:
    row = "(" + ", ".join("?" * width) + ")"
    return template.format(values=", ".join([row] * rows))
