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
- **Checkpoints off the busy writer's path.** A commit appends to the WAL; a *checkpoint* copies
  the WAL's pages into the database file and syncs it (the only fsync with
  ``synchronous=NORMAL``), after which the WAL starts over. SQLite's default runs one in the
  commit that takes the WAL past 1,000 pages (4 MB): a run of 10,000 tasks writes some 1,900
  pages, so its writer thread met one or two of them, each some 60 ms (its fsyncs) while the
  engine ran: a fifth of what the SQLite store cost the Part 3 benchmark. The store raises that
  bound to :attr:`SQLiteStore._wal_pages` (10,000 pages, 40 MB) -- it still holds, on the writer's
  path, in a long run -- and checkpoints at quiet moments instead: when a run ends or pauses
  (:meth:`SQLiteStore.release`) and when the store closes, if the WAL then holds more than a
  quarter of the bound. Such a checkpoint is ``PASSIVE``: it never waits for, nor blocks, a reader
  or writer in another process; what those still need is copied by a later one. The WAL file is
  cut back to an eighth of the bound when it starts over (``journal_size_limit``), so many short
  runs in one process (``plait serve``) keep it at most the bound plus a batch, as long as no
  reader holds one snapshot for ever (which would stop any checkpoint). SQLite itself checkpoints
  the rest when the last connection to the file closes.
- **Writers queue rather than fail.** Every write is one ``BEGIN IMMEDIATE`` transaction, which
  takes the file's write lock up front (a deferred transaction could deadlock when upgrading a
  read lock); a process that finds the lock taken waits up to ``busy_timeout`` (10 s) for it,
  then gets :class:`StoreUnavailableError` (so does a full disk or an I/O error: failures that
  may pass, which the engine retries); other SQLite errors raise :class:`StoreError`.
- **Migrations.** :data:`_MIGRATIONS` (``_migrations.py``) is an ordered list of SQL scripts; a
  script's position (1-based) is the schema version it brings the file to, and the version is
  kept in ``PRAGMA user_version``. They are applied when the store opens, inside one exclusive
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

What both SQL stores do alike -- the statements, the fence, how records become rows and back,
the lease messages -- is written once, in ``_sql.py`` and the modules it names, so both backends
encode every field the same way; the schema is in ``_migrations.py``.
"""

from __future__ import annotations

import functools
import logging
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
from ._base import (
    RunRecord,
    StoreError,
    StoreNotFoundError,
    StoreUnavailableError,
    TaskDuration,
)
from ._migrations import SQLITE_MIGRATIONS
from ._sql import _RUN_COLUMNS, _RUN_REQUEST_COLUMNS, Database, _lease_held, _lease_lost, _not_found
from ._sql_rows import _history_rows, _run_record, _run_request_record
from ._sql_store import SQLStore

__all__ = ["SQLiteStore"]

_log = logging.getLogger("plait.store")

#: Seconds a process waits for another one's write lock before giving up.
_BUSY_TIMEOUT = 10.0

#: Pages the WAL may hold before a commit checkpoints it (SQLite's default: 1,000); see the
#: module docstring. A 10,000-task run writes some 1,900 (7.6 MB), so it now meets none: three
#: fsyncs and 3.5 MB of writes fewer (strace, /proc/self/io). Measured on Part 3's workload
#: (10,000 no-op tasks, quiet machine), a WAL unbounded during the run took the SQLite store from
#: 2.88x to 2.32x the memory store's time (sync), and from 3.24x to 2.71x (async).
_WAL_PAGES = 10_000

#: Schema migrations (see ``_migrations.py``); a subclass may extend them (tests do).
_MIGRATIONS: tuple[str, ...] = SQLITE_MIGRATIONS


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


class SQLiteStore(SQLStore):
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
    #: The WAL's bound, in pages: a commit that takes it past checkpoints (tests lower it).
    _wal_pages: ClassVar[int] = _WAL_PAGES

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

    def _bound_wal(self) -> None:
        """Set the WAL's bound and its size once it starts over (see the module docstring)."""
        conn = self._conn
        (page_size,) = conn.execute("PRAGMA page_size").fetchone()
        conn.execute(f"PRAGMA wal_autocheckpoint = {self._wal_pages:d}")
        conn.execute(f"PRAGMA journal_size_limit = {self._wal_pages // 8 * page_size:d}")
        #: The WAL's size past which a quiet moment checkpoints it.
        self._quiet_checkpoint_bytes = self._wal_pages // 4 * page_size
        self._wal_path = Path(f"{self.path}-wal")

    def _checkpoint_if_large(self, *, wait: bool) -> None:
        """Checkpoint the WAL (``PASSIVE``) if it holds more than a quarter of its bound; at a
        quiet moment, so that the busy writer rarely meets the bound's checkpoint.

        The WAL file's size tells: it is cut back to an eighth of the bound when it starts over,
        and grows with every page written since. Without ``wait``, a store in use by another
        thread is left alone. A failed checkpoint loses nothing (a later one copies the pages);
        it is logged.
        """
        try:
            if self._wal_path.stat().st_size <= self._quiet_checkpoint_bytes:
                return
        except OSError:  # no WAL: nothing to copy
            return
        if not self._lock.acquire(blocking=wait):
            return
        try:
            if not self._closed:
                self._conn.execute("PRAGMA wal_checkpoint(PASSIVE)")
        except sqlite3.Error as error:
            _log.warning("could not checkpoint the SQLite store %r: %s", str(self.path), error)
        finally:
            if self._closed:  # close() was called meanwhile, from another thread
                self._conn.close()
            self._lock.release()

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


@functools.lru_cache(maxsize=256)
def _statement(template: str, width: int, rows: int) -> str:
    row = "(" + ", ".join("?" * width) + ")"
    return template.format(values=", ".join([row] * rows))


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
