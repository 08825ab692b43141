"""The SQLite store's file itself: opened in WAL mode, its WAL bounded and checkpointed at quiet
moments, its schema migrated, and SQLite's errors told as the store's.

:class:`SQLiteFile` is a mixin of :class:`SQLiteStore` (``_sqlite.py``, the store's operations):
the store opens the connection and calls these methods when it opens, when a run ends or pauses,
and when it closes; the fields they read are the store's, declared here for type checkers only.

Design:

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
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import ClassVar

from ._base import StoreError, StoreUnavailableError
from ._migrations import SQLITE_MIGRATIONS

# What the SQLite store imports (the module is private; its names keep their underscores).
__all__ = ["_BUSY_TIMEOUT", "SQLiteFile", "_store_error"]

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


class SQLiteFile:
    """The SQLite store's file: WAL mode and its bound, quiet checkpoints, migrations (see the
    module docstring)."""

    #: The schema migrations this class applies; a subclass may extend them (tests do).
    _migrations: ClassVar[Sequence[str]] = _MIGRATIONS
    #: The WAL's bound, in pages: a commit that takes it past checkpoints (tests lower it).
    _wal_pages: ClassVar[int] = _WAL_PAGES

    # The store's fields that these methods read (see plait.stores._sqlite).
    path: Path
    _conn: sqlite3.Connection
    _lock: threading.Lock
    _closed: bool

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
