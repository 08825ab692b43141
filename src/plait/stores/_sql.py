"""What the SQL stores (SQLite, PostgreSQL) share, at the bottom: :class:`SQLBase`, the dialect
and transactions every statement runs in, the queries of pages of runs and of the inbox, and
the errors the stores raise.

The SQL stores are layered, one concept a module:

- ``_sql.py`` (this module): :class:`SQLBase`;
- ``_sql_requests.py``: questions to people (input requests) and requests to a live run;
- ``_sql_store.py``: :class:`SQLStore` -- runs, batches (tasks, events, logs, history) and reads;
- ``_sql_rows.py``: how records become rows and back (a run's log: ``_sql_log_rows.py``);
  ``_migrations.py``: the schema;
- ``_sqlite.py``, ``_postgres.py``: each backend -- its connection and transactions, leases (on
  the database's clock where it has one), and its fastest way to write many rows; SQLite's file
  itself (WAL mode and its bound, quiet checkpoints, migrations, errors) in ``_sqlite_file.py``.

A backend supplies what truly differs between the databases:

- its connection, and a transaction on it (:meth:`SQLBase._transaction`; a read-only one,
  :meth:`SQLBase._read`, where the database has a cheaper kind), behind the store's lock;
- its dialect, in a few class attributes: the placeholder of a parameter (``?`` or ``%s``; the
  shared statements are written with ``?``), the column that orders input requests the way they
  were first made (SQLite's ``rowid``, PostgreSQL's ``seq``), and the null-safe "differs"
  (``IS NOT`` or ``IS DISTINCT FROM``);
- how rows are inserted many at once (multi-row ``VALUES``, ``executemany`` or ``COPY``);
- leases -- :meth:`Store.claim` and :meth:`Store.renew` -- and how the owner takes the requests
  sent to its run.
"""

from __future__ import annotations

import functools
import threading
from abc import abstractmethod
from contextlib import AbstractContextManager
from datetime import UTC, datetime
from typing import Any, ClassVar, Protocol

from .._state import RunStatus
from ._base import LeaseHeldError, LeaseLostError, RunNotFoundError, Store, StoreError
from ._listing import OPEN_RUN_STATUSES, check_limit, decode_cursor
from ._sql_log_rows import _event_data

# What the SQL stores import (the module is private; its names keep their underscores).
__all__ = [
    "_EVENT_COLUMNS",
    "_HISTORY_COLUMNS",
    "_LOG_COLUMNS",
    "_REQUEST_COLUMNS",
    "_RUN_COLUMNS",
    "_RUN_REQUEST_COLUMNS",
    "_TASK_COLUMNS",
    "Database",
    "Rows",
    "SQLBase",
    "_event_data",
    "_lease_held",
    "_lease_lost",
    "_list_runs_query",
    "_not_found",
    "_open_questions_sql",
]

# Columns in the order the record builders of ``_sql_rows.py`` expect them.
_RUN_COLUMNS = (
    "run_id, workflow, fingerprint, definition, config, status, created_at, updated_at, "
    "owner, lease_expires_at, finished_at, error, target"
)
_TASK_COLUMNS = "task_id, status, attempts, output, error, started_at, finished_at, skip_cause"
_REQUEST_COLUMNS = (
    "task_id, key, prompt, schema, requested_at, deadline, answered, value, answered_at, "
    "answered_by, answered_via, default_value"
)
_EVENT_COLUMNS = "kind, time, task_id, data, seq, started"
_HISTORY_COLUMNS = "task_id, function, s0, s1, s2, s3, s4"
_LOG_COLUMNS = "task_id, attempt, lines"
_RUN_REQUEST_COLUMNS = (
    "request_id, kind, owner, sent_at, sent_by, data, state, taken_at, done_at, outcome"
)


class Rows(Protocol):
    """What a statement returns: a DB-API cursor, as far as the stores read it."""

    @property
    def rowcount(self) -> int: ...

    def fetchone(self) -> Any: ...

    def fetchall(self) -> list[Any]: ...


class Database(Protocol):
    """What a transaction hands its block: an SQLite connection or a psycopg cursor."""

    def execute(self, sql: Any, parameters: Any = ..., /) -> Rows: ...

    def executemany(self, sql: Any, parameters: Any, /) -> Any: ...


class SQLBase(Store):
    """What every part of an SQL store stands on: the dialect, transactions, and the checks
    that tell why a statement matched no row. See the module docstring.

    Thread contract: every method holds the store's lock for its transaction.
    """

    #: The dialect: the placeholder of a parameter, the column that orders input requests as
    #: first made, and the null-safe "differs" operator.
    _param: ClassVar[str] = "?"
    _request_order: ClassVar[str] = "rowid"
    _distinct: ClassVar[str] = "IS NOT"

    _lock: threading.Lock
    _closed: bool
    _conn: Any  # the backend's connection

    @abstractmethod
    def _transaction(self) -> AbstractContextManager[Database]:
        """Hold the lock and run the block in one transaction: committed if it returns, rolled
        back if it raises; the database's errors become :class:`StoreError`."""

    def _read(self) -> AbstractContextManager[Database]:
        """A transaction that only reads (the same as :meth:`_transaction` unless the
        database has a cheaper kind)."""
        return self._transaction()

    def _q(self, sql: str) -> str:
        """``sql``, written with ``?``, in this store's dialect."""
        return _in_dialect(sql, self._param)

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

    # -- why a statement matched no row -------------------------------------------------------

    def _check_run(self, db: Database, run_id: str) -> None:
        if db.execute(self._q("SELECT 1 FROM runs WHERE run_id = ?"), (run_id,)).fetchone() is None:
            raise _not_found(run_id)

    def _applied(self, db: Database, run_id: str, owner: str, key: str | None) -> bool:
        """Whether ``owner`` already applied the batch ``key`` to ``run_id`` (it is the last)."""
        if key is None:
            return False
        row = db.execute(
            self._q("SELECT owner, last_batch FROM runs WHERE run_id = ?"), (run_id,)
        ).fetchone()
        return row is not None and row[0] == owner and row[1] == key

    def _missing_or_lost(self, db: Database, run_id: str, owner: str) -> StoreError:
        """Why ``owner``'s conditional update of ``run_id`` matched no row."""
        row = db.execute(self._q("SELECT owner FROM runs WHERE run_id = ?"), (run_id,)).fetchone()
        return _not_found(run_id) if row is None else _lease_lost(run_id, owner, row[0])


@functools.cache
def _in_dialect(sql: str, param: str) -> str:
    """``sql``, written with ``?`` placeholders, with ``param`` in their place."""
    return sql if param == "?" else sql.replace("?", param)


# -- pages of runs, and the inbox ----------------------------------------------------------------


@functools.cache
def _list_runs_sql(param: str, *, status: bool, workflow: bool, before: bool) -> str:
    """The query of a page of runs, with ``param`` as the placeholder (``?`` or ``%s``); its
    parameters, in order: status, workflow, the cursor's created_at and run_id (each when
    asked for), then the limit. Both databases serve it from an index (``runs_newest_first``,
    ``runs_by_status`` or ``runs_by_workflow``)."""
    where = []
    if status:
        where.append(f"status = {param}")
    if workflow:
        where.append(f"workflow = {param}")
    if before:
        # A row value: both databases read it as a range of the index, not a filter.
        where.append(f"(created_at, run_id) < ({param}, {param})")
    clause = f"WHERE {' AND '.join(where)} " if where else ""
    return (
        f"SELECT {_RUN_COLUMNS} FROM runs {clause}"
        f"ORDER BY created_at DESC, run_id DESC LIMIT {param}"
    )


def _list_runs_query(
    param: str,
    status: RunStatus | None,
    workflow: str | None,
    before: str | None,
    limit: int,
) -> tuple[str, list[Any]]:
    """The query of a page of runs and its parameters (it fetches ``limit + 1`` rows: one more
    than the page, which tells whether a next page exists; see ``_listing.page_of``).

    Raises:
        InvalidCursorError: ``before`` is not a cursor.
        ValueError: ``limit`` is not a whole number >= 0.
    """
    check_limit(limit)
    params: list[Any] = []
    if status is not None:
        params.append(status.value)
    if workflow is not None:
        params.append(workflow)
    if before is not None:
        params += decode_cursor(before)
    params.append(limit + 1)
    sql = _list_runs_sql(
        param, status=status is not None, workflow=workflow is not None, before=before is not None
    )
    return sql, params


@functools.cache
def _open_questions_sql(param: str) -> str:
    """The inbox's query (see ``_listing.py``), with ``param`` as the placeholder: open
    questions of paused or running runs, earliest deadline first, no deadline last, then the
    oldest first; its one parameter is the limit."""
    statuses = ", ".join(f"'{status.value}'" for status in OPEN_RUN_STATUSES)
    return (
        "SELECT q.run_id, r.workflow, r.status, q.task_id, q.key, q.prompt, q.schema, "
        "q.requested_at, q.deadline, q.default_value, r.config "
        "FROM input_requests q JOIN runs r ON r.run_id = q.run_id "
        f"WHERE NOT q.answered AND r.status IN ({statuses}) "
        "ORDER BY (q.deadline IS NULL), q.deadline, q.requested_at, q.run_id, q.task_id, q.key "
        f"LIMIT {param}"
    )


# -- errors --------------------------------------------------------------------------------------


def _not_found(run_id: str) -> RunNotFoundError:
    return RunNotFoundError(f"there is no run {run_id!r} in this store")


def _lease_lost(run_id: str, owner: str, current: str | None) -> LeaseLostError:
    now = "it has no owner" if current is None else f"its owner is now {current!r}"
    return LeaseLostError(
        f"run {run_id!r} is no longer owned by {owner!r}: {now}", run_id=run_id, owner=current
    )


def _lease_held(run_id: str, owner: str, until: float) -> LeaseHeldError:
    when = datetime.fromtimestamp(until, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    return LeaseHeldError(
        f"run {run_id!r} is owned by {owner!r} until {when}; pass force=True to take it over",
        owner,
        until,
    )
