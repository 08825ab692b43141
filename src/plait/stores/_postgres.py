"""The PostgreSQL store: durable runs in a database that many machines can share.

Design (the same as the SQLite store's wherever the databases allow; see ``_sqlite.py`` and
``_sqlite_file.py``):

- **One connection per store, behind a lock.** psycopg 3, autocommit off; every method runs one
  explicit transaction while holding a :class:`threading.Lock`, so the store may be shared by
  threads. A connection found broken (the server restarted, an admin ended the session) is
  replaced before the next method runs; the method that met the failure raises
  :class:`StoreUnavailableError` (as does any ``OperationalError``: a failure that may pass),
  and the engine writes its batch again -- with the batch's key, so a batch whose commit did
  land is not applied twice. Other database errors raise :class:`StoreError`.
- **A schema of its own.** Tables live in the schema given (``plait`` by default), created if
  missing; the connection's ``search_path`` points there, so one database can hold several
  independent stores.
- **Migrations.** :data:`_MIGRATIONS` (``_migrations.py``) is an ordered list of SQL scripts; a
  script's position (1-based) is the schema version it brings the tables to. Applied versions
  are rows of ``plait_schema_version``. Opening a store takes a transaction-scoped advisory lock
  (``pg_advisory_xact_lock``, keyed by the schema's name) before looking, so two processes
  opening a new schema at once do not both migrate it. A schema from a newer plait is refused.
- **Atomic claims.** :meth:`PostgresStore.claim` is a single conditional
  ``UPDATE ... RETURNING``; the row lock it takes makes a concurrent claim wait, then re-check
  the condition against the winner's row, so exactly one of them succeeds.
- **Fencing.** :meth:`PostgresStore.write` first updates the run's row where the writer is still
  its owner, and rolls back with :class:`LeaseLostError` when no row matched. The row lock is
  held until the transaction ends, so no claim can land between the check and the writes.
- **Bulk writes.** A large batch's tasks, events and durations are written with ``COPY`` (see
  ``_postgres_copy.py``); a small one with ``executemany``. A store remembers which tasks of
  the runs it created it has written (:class:`WrittenTasks`): the others' rows are copied
  straight into ``tasks``, not upserted (4.4 µs of the server's CPU a row, not 6.7-7.8; a
  run's first write of a task is nearly every write of a busy run). Should one be there after
  all (another store wrote it), the copy is rolled back to its savepoint and the rows upserted.
- **Keys and types.** The same keys and upserts as SQLite; bytes are ``BYTEA`` and times
  ``DOUBLE PRECISION``. JSON is kept as ``TEXT``, encoded and decoded by Python exactly as
  the SQLite store does: ``JSONB`` would reject ``NaN`` and rewrite numbers, and the backends
  must round-trip the same values. Times of runs, tasks and events come from the Python
  process (``time.time()``), so every backend agrees on them.
- **Leases.** A lease's expiry is stamped by the database's clock (``clock_timestamp()``) when
  a run is claimed or its lease renewed, and compared with it when a run is claimed: hosts whose
  clocks disagree still agree on when a lease has expired. (A new run's record is stored as
  given; its owner's first renewal moves its lease onto the database's clock.) The owner
  itself keeps its own deadline, on its monotonic clock (see ``plait._recorder``).
- **Requests to a live run** (``run_requests``, keyed by ``(run_id, request_id)``; sending again
  inserts nothing). The owner's look is one ``UPDATE ... RETURNING`` over an index that holds
  only pending rows: it writes nothing when none is pending, and the row locks it takes make a
  request taken once even when two processes look at the same moment. (LISTEN/NOTIFY would
  save the look, at the price of a second connection per run.)

psycopg is imported when a store is made, so ``import plait`` works without it.
"""

from __future__ import annotations

import hashlib
import operator
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, ClassVar, cast

from .._requests import RunRequest
from ._base import (
    RunRecord,
    StoreError,
    StoreNotFoundError,
    StoreUnavailableError,
    TaskDuration,
    TaskRecord,
)
from ._migrations import POSTGRES_MIGRATIONS
from ._postgres_copy import (
    COPY_FROM,
    STAGING_TABLES,
    WrittenTasks,
    copy_events,
    copy_new_tasks,
    copy_tasks,
    each_task_once,
    write_history,
)
from ._sql import (
    _RUN_COLUMNS,
    _RUN_REQUEST_COLUMNS,
    Database,
    _lease_held,
    _lease_lost,
    _not_found,
)
from ._sql_rows import _history_rows, _run_record, _run_request_record, _task_rows
from ._sql_store import SQLStore

if TYPE_CHECKING:
    import psycopg

__all__ = ["PostgresStore"]

#: Schema migrations (see ``_migrations.py``); a subclass may extend them (tests do).
_MIGRATIONS: tuple[str, ...] = POSTGRES_MIGRATIONS

_VERSION_TABLE = """
    CREATE TABLE IF NOT EXISTS plait_schema_version (
        version    INTEGER PRIMARY KEY,
        applied_at DOUBLE PRECISION NOT NULL
    )
"""

#: The database's clock, in Unix seconds: leases run on it (see "Leases" in the module docstring).
_NOW = "extract(epoch FROM clock_timestamp())::float8"


_CLAIM = f"""
    UPDATE runs SET owner = %(owner)s, lease_expires_at = {_NOW} + %(lease)s
    WHERE run_id = %(run_id)s
      AND (%(force)s OR owner IS NULL OR owner = %(owner)s
           OR lease_expires_at IS NULL OR lease_expires_at <= {_NOW})
    RETURNING {_RUN_COLUMNS}
"""

_RENEW = f"""
    UPDATE runs SET lease_expires_at = {_NOW} + %s WHERE run_id = %s AND owner = %s
"""


# The owner's look for requests: one statement that takes nothing (and writes nothing) when
# none is pending, and that no other owner's look can race (each row is updated once).
_TAKE_REQUESTS = f"""
    UPDATE run_requests SET state = 'taken', taken_at = %(now)s
    WHERE run_id = %(run_id)s AND owner = %(owner)s AND state = 'pending'
      AND EXISTS (SELECT 1 FROM runs WHERE run_id = %(run_id)s AND owner = %(owner)s)
    RETURNING seq, {_RUN_REQUEST_COLUMNS}
"""


class PostgresStore(SQLStore):
    """Keeps runs in a PostgreSQL database, in tables of their own schema.

    The schema is created if missing (unless ``create`` is false), and its tables brought up to
    date, when the store opens. See the module docstring for the design.

    Args:
        url: a libpq connection string or URL, e.g. ``postgresql://user@host:5432/db``.
        schema: the schema that holds plait's tables.
        create: whether a missing schema is created; with False, a schema without plait's
            tables raises :class:`StoreNotFoundError` and nothing is written (read-only commands).

    Raises:
        StoreError: psycopg is not installed, the server cannot be reached, or the schema was
            written by a newer plait.
        StoreNotFoundError: ``create`` is false and the schema holds no plait store.
    """

    #: The schema migrations this class applies; a subclass may extend them (tests do).
    _migrations: ClassVar[Sequence[str]] = _MIGRATIONS
    _param = "%s"
    _request_order = "seq"  # an identity column: SQLite's rowid is PostgreSQL's seq
    _distinct = "IS DISTINCT FROM"

    def __init__(self, url: str, *, schema: str = "plait", create: bool = True) -> None:
        try:
            import psycopg  # noqa: PLC0415 - optional dependency, imported on use
        except ImportError:
            raise StoreError(
                "the PostgreSQL store needs psycopg; install it with: pip install 'plait[postgres]'"
            ) from None
        self._psycopg = psycopg
        self.url = url
        self.schema = schema
        self._lock = threading.Lock()
        self._closed = False
        self._written = WrittenTasks()
        self._conn = self._connect()
        if not create:
            self._require_tables()
        try:
            #: The schema version of the tables, once migrated: ``len(self._migrations)``.
            self.schema_version = self._migrate()
        except psycopg.Error as error:
            self._conn.close()
            raise StoreError(f"cannot open the PostgreSQL store {self._where()}: {error}") from None
        except BaseException:
            self._conn.close()
            raise

    def __repr__(self) -> str:
        state = " (closed)" if self._closed else ""
        return f"<PostgresStore {self._where()}{state}>"

    def _where(self) -> str:
        """Where the store is, for messages: host, port, database and schema; no password."""
        try:
            info = self._psycopg.conninfo.conninfo_to_dict(self.url)
        except self._psycopg.Error:
            return f"schema {self.schema!r}"
        host = info.get("host") or "localhost"
        port = info.get("port") or "5432"
        database = info.get("dbname") or info.get("user") or ""
        return f"{host}:{port}/{database} schema {self.schema!r}"

    def _connect(self) -> psycopg.Connection[tuple[Any, ...]]:
        try:
            return self._psycopg.connect(self.url, autocommit=False)
        except self._psycopg.Error as error:
            raise StoreUnavailableError(
                f"cannot connect to PostgreSQL at {self._where()}: {error}"
            ) from None

    def _require_tables(self) -> None:
        """Raise :class:`StoreNotFoundError` (and close) if the schema holds no plait tables."""
        try:
            found = self._conn.execute(
                "SELECT 1 FROM pg_tables WHERE schemaname = %s AND tablename = %s",
                (self.schema, "plait_schema_version"),
            ).fetchone()
            self._conn.rollback()
        except self._psycopg.Error as error:
            self._conn.close()
            raise StoreError(f"cannot open the PostgreSQL store {self._where()}: {error}") from None
        if found is None:
            self._conn.close()
            raise StoreNotFoundError(f"there is no plait store at {self._where()}")

    def _migrate(self) -> int:
        """Create the schema and apply the migrations it lacks, in one transaction holding an
        advisory lock; return the version. Leaves ``search_path`` set to the schema."""
        from psycopg import sql  # noqa: PLC0415 - optional dependency

        latest = len(self._migrations)
        schema = sql.Identifier(self.schema)
        # A stable 64-bit key per schema: stores of different schemas do not wait on each other.
        digest = hashlib.blake2b(f"plait:{self.schema}".encode(), digest_size=8).digest()
        lock_key = int.from_bytes(digest, "big", signed=True)
        conn = self._conn
        with conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (lock_key,))
            # CREATE SCHEMA IF NOT EXISTS would need the CREATE privilege even when it exists.
            exists = conn.execute(
                "SELECT 1 FROM pg_namespace WHERE nspname = %s", (self.schema,)
            ).fetchone()
            if exists is None:
                conn.execute(sql.SQL("CREATE SCHEMA {}").format(schema))
            conn.execute(sql.SQL("SET search_path TO {}").format(schema))
            conn.execute(_VERSION_TABLE)
            row = conn.execute("SELECT coalesce(max(version), 0) FROM plait_schema_version")
            (current,) = row.fetchone() or (0,)
            if current > latest:
                raise StoreError(
                    f"the PostgreSQL store {self._where()} has schema version {current}, newer "
                    f"than this plait knows ({latest}); upgrade plait to open it"
                )
            for version, script in enumerate(self._migrations[current:], start=current + 1):
                conn.execute(script)  # no parameters, so it may hold several statements
                conn.execute(
                    "INSERT INTO plait_schema_version (version, applied_at) VALUES (%s, %s)",
                    (version, time.time()),
                )
            for table in STAGING_TABLES:
                conn.execute(table)
        return latest

    @contextmanager
    def _transaction(self) -> Iterator[psycopg.Cursor[tuple[Any, ...]]]:
        """Hold the lock and run the block in one transaction: committed if it returns, rolled
        back if it raises. psycopg errors become :class:`StoreError`."""
        psycopg = self._psycopg
        if self._closed:  # before waiting for the lock: a closed store answers at once
            raise StoreError(f"{self!r} is closed")
        with self._lock:
            if self._closed:
                raise StoreError(f"{self!r} is closed")
            try:
                if self._conn.broken:
                    self._conn = self._connect()
                    self._migrate()  # sets search_path on the new connection
                # Results in binary: floats and integers need no parsing from text (a run's
                # start reads 10,000 history rows in 5.5-9 ms of CPU, not 15-43).
                with self._conn.transaction(), self._conn.cursor(binary=True) as cursor:
                    yield cursor
            except psycopg.OperationalError as error:  # the connection, or the server: may pass
                raise StoreUnavailableError(
                    f"the PostgreSQL store {self._where()} failed: {error}"
                ) from error
            except psycopg.Error as error:
                raise StoreError(f"the PostgreSQL store {self._where()} failed: {error}") from error
            finally:
                if self._closed:  # close() was called meanwhile, from another thread
                    self._conn.close()

    # -- the Store interface ----------------------------------------------------------------

    def create_run(self, run: RunRecord) -> None:
        super().create_run(run)
        with self._lock:
            self._written.start(run.run_id)  # a new run: none of its tasks has a row

    def release(self, run_id: str, owner: str) -> None:
        self._written.forget(run_id)
        super().release(run_id, owner)

    def claim(
        self, run_id: str, owner: str, *, lease_seconds: float, force: bool = False
    ) -> RunRecord:
        params = {"owner": owner, "lease": lease_seconds, "run_id": run_id, "force": force}
        self._written.forget(run_id)  # others may have written its tasks meanwhile
        with self._transaction() as cursor:
            row = cursor.execute(_CLAIM, params).fetchone()
            if row is None:
                # Lock the row so that what we report is what made the claim fail; a lease
                # released in the meantime is simply taken.
                held = cursor.execute(
                    "SELECT owner, lease_expires_at FROM runs WHERE run_id = %s FOR UPDATE",
                    (run_id,),
                ).fetchone()
                if held is None:
                    raise _not_found(run_id)
                row = cursor.execute(_CLAIM, params).fetchone()
                if row is None:
                    raise _lease_held(run_id, held[0], held[1])
        return _run_record(row)

    def renew(self, run_id: str, owner: str, *, lease_seconds: float) -> None:
        with self._transaction() as cursor:
            cursor.execute(_RENEW, (lease_seconds, run_id, owner))
            if cursor.rowcount == 0:
                raise self._missing_or_lost(cursor, run_id, owner)

    def take_requests(self, run_id: str, owner: str) -> list[RunRequest]:
        params = {"now": time.time(), "run_id": run_id, "owner": owner}
        with self._transaction() as cursor:
            rows = cursor.execute(_TAKE_REQUESTS, params).fetchall()
            if not rows:  # nothing pending, or not ours to take: which?
                row = cursor.execute(
                    "SELECT owner FROM runs WHERE run_id = %s", (run_id,)
                ).fetchone()
                if row is None:
                    raise _not_found(run_id)
                if row[0] != owner:
                    raise _lease_lost(run_id, owner, row[0])
        return [_run_request_record(row[1:]) for row in sorted(rows)]

    # -- many rows at once --------------------------------------------------------------------

    def _task_rows(self, run_id: str, tasks: Sequence[TaskRecord]) -> list[tuple[Any, ...]]:
        # One INSERT ... ON CONFLICT may not touch a row twice, so a task that appears twice in
        # the batch is written once, with its last record (which is what replaying gives).
        rows = _task_rows(run_id, tasks)
        if each_task_once(rows):  # nearly always: nothing to drop
            return rows
        return list({row[1]: row for row in rows}.values())

    def _insert_rows(self, db: Database, template: str, rows: Sequence[tuple[Any, ...]]) -> None:
        """Insert ``rows`` with ``template``, one ``executemany`` of one-row statements."""
        if rows:
            values = "(" + ", ".join(["%s"] * len(rows[0])) + ")"
            db.executemany(template.format(values=values), rows)

    def _write_tasks(self, db: Database, rows: Sequence[tuple[Any, ...]]) -> None:
        written = self._written.of(rows[0][0]) if rows else None
        if written is not None:
            new = [row for row in rows if row[1] not in written]
            if len(new) >= COPY_FROM:
                if copy_new_tasks(_cursor(db), new):
                    rows = [row for row in rows if row[1] in written]
                else:  # not new after all: this store's view of the run is stale
                    self._written.forget(rows[0][0])
                    written = None
        if len(rows) < COPY_FROM:
            super()._write_tasks(db, rows)
        else:
            copy_tasks(_cursor(db), rows)
        if written is not None:  # (a rolled back batch leaves ids here: they are upserted)
            written.update(map(_TASK_ID, new))

    def _write_events(self, db: Database, rows: Sequence[tuple[Any, ...]]) -> None:
        if len(rows) < COPY_FROM:
            super()._write_events(db, rows)
        else:
            copy_events(_cursor(db), rows)

    def _write_history(
        self, db: Database, workflow: str, durations: Sequence[TaskDuration]
    ) -> None:
        write_history(_cursor(db), workflow, _history_rows(workflow, durations))


_TASK_ID = operator.itemgetter(1)


def _cursor(db: Database) -> psycopg.Cursor[tuple[Any, ...]]:
    """The psycopg cursor a transaction of this store hands its block."""
    return cast("psycopg.Cursor[tuple[Any, ...]]", db)
