"""The PostgreSQL store: durable runs in a database that many machines can share.

Design (the same as the SQLite store's wherever the databases allow; see ``_sqlite.py``):

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
- **Migrations.** :data:`_MIGRATIONS` is an ordered list of SQL scripts; a script's position
  (1-based) is the schema version it brings the tables to. Applied versions are rows of
  ``plait_schema_version``. Opening a store takes a transaction-scoped advisory lock
  (``pg_advisory_xact_lock``, keyed by the schema's name) before looking, so two processes
  opening a new schema at once do not both migrate it. A schema from a newer plait is refused.
- **Atomic claims.** :meth:`PostgresStore.claim` is a single conditional
  ``UPDATE ... RETURNING``; the row lock it takes makes a concurrent claim wait, then re-check
  the condition against the winner's row, so exactly one of them succeeds.
- **Fencing.** :meth:`PostgresStore.write` first updates the run's row where the writer is still
  its owner, and rolls back with :class:`LeaseLostError` when no row matched. The row lock is
  held until the transaction ends, so no claim can land between the check and the writes.
- **Bulk writes.** The engine flushes batches of thousands of records. A large batch's events
  are appended with ``COPY`` (in order: ``seq`` follows the batch), and its task records are
  copied into a per-session temporary table and upserted from it in one
  ``INSERT ... ON CONFLICT DO UPDATE``: two to three times faster than ``executemany``. A
  small batch (fewer than :data:`_COPY_FROM` rows of a kind) uses ``executemany``, which costs
  less to start; so do input requests, which are few.
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
  must round-trip the same values. Times always come from the Python process
  (``time.time()``), never the database clock, so every backend agrees on them.
- **Requests to a live run** (``run_requests``, keyed by ``(run_id, request_id)``; sending again
  inserts nothing). The owner's look is one ``UPDATE ... RETURNING`` over an index that holds
  only pending rows: it writes nothing when none is pending, and the row locks it takes make a
  request taken once even when two processes look at the same moment. (LISTEN/NOTIFY would
  save the look, at the price of a second connection per run.)

psycopg is imported when a store is made, so ``import plait`` works without it.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, ClassVar

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
    TaskHistory,
    TaskLog,
    TaskRecord,
    WriteBatch,
)
from ._listing import OpenQuestion, RunPage, check_limit, page_of
from ._migrations import POSTGRES_MIGRATIONS
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

_INSERT_RUN = f"""
    INSERT INTO runs ({_RUN_COLUMNS})
    VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)
    ON CONFLICT (run_id) DO NOTHING
"""

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

# The fence of a write: touch the run only if ``owner`` still holds it, and the batch (if it
# has a key) was not applied already; the row stays locked until the transaction ends.
_FENCE = """
    UPDATE runs SET updated_at = %(now)s, last_batch = %(key)s
    WHERE run_id = %(run_id)s AND owner = %(owner)s
      AND (%(key)s::text IS NULL OR last_batch IS DISTINCT FROM %(key)s)
"""
_FENCE_AND_UPDATE = """
    UPDATE runs SET updated_at = %(now)s, last_batch = %(key)s,
        status = %(status)s, finished_at = %(finished_at)s, error = %(error)s
    WHERE run_id = %(run_id)s AND owner = %(owner)s
      AND (%(key)s::text IS NULL OR last_batch IS DISTINCT FROM %(key)s)
"""

#: Batches with at least this many task records (or events) are written with COPY.
_COPY_FROM = 64

_UPSERT_TASK = """
    INSERT INTO tasks (
        run_id, task_id, status, attempts, output, error, started_at, finished_at, skip_cause
    )
    VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)
    ON CONFLICT (run_id, task_id) DO UPDATE SET
        status = excluded.status,
        attempts = excluded.attempts,
        output = excluded.output,
        error = excluded.error,
        started_at = excluded.started_at,
        finished_at = excluded.finished_at,
        skip_cause = excluded.skip_cause
"""

# Large batches of task records are copied into a per-session staging table, then upserted in
# one statement; see "Bulk writes" in the module docstring.
_STAGING_TABLE = """
    CREATE TEMPORARY TABLE IF NOT EXISTS plait_tasks_in (
        run_id      TEXT,
        task_id     TEXT,
        status      TEXT,
        attempts    INTEGER,
        output      BYTEA,
        error       TEXT,
        started_at  DOUBLE PRECISION,
        finished_at DOUBLE PRECISION,
        skip_cause  TEXT
    ) ON COMMIT DELETE ROWS
"""

_COPY_TASKS = """
    COPY plait_tasks_in (
        run_id, task_id, status, attempts, output, error, started_at, finished_at, skip_cause
    ) FROM STDIN (FORMAT BINARY)
"""
_TASK_TYPES = ("text", "text", "text", "int4", "bytea", "text", "float8", "float8", "text")

_UPSERT_TASKS = """
    INSERT INTO tasks (
        run_id, task_id, status, attempts, output, error, started_at, finished_at, skip_cause
    )
    SELECT run_id, task_id, status, attempts, output, error, started_at, finished_at, skip_cause
    FROM plait_tasks_in
    ON CONFLICT (run_id, task_id) DO UPDATE SET
        status = excluded.status,
        attempts = excluded.attempts,
        output = excluded.output,
        error = excluded.error,
        started_at = excluded.started_at,
        finished_at = excluded.finished_at,
        skip_cause = excluded.skip_cause
"""

_UPSERT_REQUEST = _upsert_request_sql("%s")

_OPEN_QUESTIONS = _open_questions_sql("%s")

_UPSERT_LOG = """
    INSERT INTO task_logs (run_id, task_id, attempt, lines) VALUES (%s, %s, %s, %s)
    ON CONFLICT (run_id, task_id, attempt) DO UPDATE SET lines = excluded.lines
"""

# COPY appends rows in order, so ``seq`` keeps the order of the batch.
_INSERT_EVENT = "INSERT INTO events (run_id, kind, task_id, time, data) VALUES (%s, %s, %s, %s, %s)"
_COPY_EVENTS = "COPY events (run_id, kind, task_id, time, data) FROM STDIN (FORMAT BINARY)"
_EVENT_TYPES = ("text", "text", "text", "float8", "text")

# A duration joins its task's history as s0, the others moving one along (SQL evaluates every
# right-hand side before it assigns: s1 gets the old s0).
_UPSERT_HISTORY = """
    INSERT INTO task_history (workflow, task_id, function, s0)
    SELECT %s, * FROM unnest(%s::text[], %s::text[], %s::float8[])
    ON CONFLICT (workflow, task_id) DO UPDATE SET
        s4 = task_history.s3, s3 = task_history.s2, s2 = task_history.s1, s1 = task_history.s0,
        s0 = excluded.s0, function = excluded.function
"""

_INSERT_RUN_REQUEST = _insert_run_request_sql("%s")

# The owner's look for requests: one statement that takes nothing (and writes nothing) when
# none is pending, and that no other owner's look can race (each row is updated once).
_TAKE_REQUESTS = f"""
    UPDATE run_requests SET state = 'taken', taken_at = %(now)s
    WHERE run_id = %(run_id)s AND owner = %(owner)s AND state = 'pending'
      AND EXISTS (SELECT 1 FROM runs WHERE run_id = %(run_id)s AND owner = %(owner)s)
    RETURNING seq, {_RUN_REQUEST_COLUMNS}
"""

_FINISH_REQUEST = """
    UPDATE run_requests SET state = %s, done_at = %s, outcome = %s
    WHERE run_id = %s AND request_id = %s
"""


class PostgresStore(Store):
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
            conn.execute(_STAGING_TABLE)
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
                with self._conn.transaction(), self._conn.cursor() as cursor:
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
        with self._transaction() as cursor:
            cursor.execute(_INSERT_RUN, _run_row(run))
            if cursor.rowcount == 0:
                raise RunExistsError(f"run {run.run_id!r} already exists")

    def get_run(self, run_id: str) -> RunRecord | None:
        with self._transaction() as cursor:
            row = cursor.execute(
                f"SELECT {_RUN_COLUMNS} FROM runs WHERE run_id = %s", (run_id,)
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
        query, params = _list_runs_query("%s", status, workflow, before, limit)
        with self._transaction() as cursor:
            rows = cursor.execute(query, params).fetchall()
        return page_of([_run_record(row) for row in rows], limit)

    def open_questions(self, *, limit: int = 100) -> list[OpenQuestion]:
        check_limit(limit)
        with self._transaction() as cursor:
            rows = cursor.execute(_OPEN_QUESTIONS, (limit,)).fetchall()
        return [_open_question(row) for row in rows]

    def claim(
        self, run_id: str, owner: str, *, lease_seconds: float, force: bool = False
    ) -> RunRecord:
        params = {"owner": owner, "lease": lease_seconds, "run_id": run_id, "force": force}
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
                raise _missing_or_lost(cursor, run_id, owner)

    def release(self, run_id: str, owner: str) -> None:
        with self._transaction() as cursor:
            cursor.execute(
                "UPDATE runs SET owner = NULL, lease_expires_at = NULL "
                "WHERE run_id = %s AND owner = %s",
                (run_id, owner),
            )

    def write(self, run_id: str, owner: str, batch: WriteBatch) -> None:
        # Build the rows before taking the lock: other threads may use the store meanwhile.
        # One INSERT ... ON CONFLICT may not touch a row twice, so a task that appears twice in
        # the batch is written once, with its last record (which is what replaying gives).
        tasks = list({row[1]: row for row in _task_rows(run_id, batch.tasks)}.values())
        requests = _request_rows(run_id, batch.requests)
        events = _event_rows(run_id, batch.events)
        logs = _log_rows(run_id, batch.logs)
        done = _run_request_done_rows(run_id, batch.requests_done)
        durations = batch.durations
        now = time.time()
        fence: dict[str, Any] = {"now": now, "key": batch.key, "run_id": run_id, "owner": owner}
        if batch.run is not None:
            fence["status"] = batch.run.status.value
            fence["finished_at"] = batch.run.finished_at
            fence["error"] = _storable(batch.run.error)
        with self._transaction() as cursor:
            cursor.execute(_FENCE if batch.run is None else _FENCE_AND_UPDATE, fence)
            if cursor.rowcount == 0:
                if _applied(cursor, run_id, owner, batch.key):
                    return
                raise _missing_or_lost(cursor, run_id, owner)
            if batch.run is not None and batch.run.definition is not None:
                cursor.execute(
                    "UPDATE runs SET definition = %s, fingerprint = %s WHERE run_id = %s",
                    (_definition_json(batch.run.definition), batch.run.fingerprint, run_id),
                )
            if batch.dropped:
                cursor.execute(
                    "DELETE FROM tasks WHERE run_id = %s AND task_id = ANY(%s)",
                    (run_id, list(batch.dropped)),
                )
                cursor.execute(
                    "DELETE FROM input_requests WHERE run_id = %s AND task_id = ANY(%s)",
                    (run_id, list(batch.dropped)),
                )
            if len(tasks) >= _COPY_FROM:
                with cursor.copy(_COPY_TASKS) as copy:
                    copy.set_types(_TASK_TYPES)
                    for row in tasks:
                        copy.write_row(row)
                cursor.execute(_UPSERT_TASKS)
            elif tasks:
                cursor.executemany(_UPSERT_TASK, tasks)
            if requests:
                cursor.executemany(_UPSERT_REQUEST, requests)
            if len(events) >= _COPY_FROM:
                with cursor.copy(_COPY_EVENTS) as copy:
                    copy.set_types(_EVENT_TYPES)
                    for row in events:
                        copy.write_row(row)
            elif events:
                cursor.executemany(_INSERT_EVENT, events)
            if durations:
                cursor.execute("SELECT workflow FROM runs WHERE run_id = %s", (run_id,))
                (workflow,) = cursor.fetchone() or ("",)
                # One statement for the batch, in task id order (two runs of one workflow
                # writing at once wait for each other rather than deadlock). An upsert may touch
                # a row once: a task twice in the batch (it cannot succeed twice in one part of
                # a run, so hardly ever) is written in a statement of its own each time.
                rows = _history_rows(workflow, durations)
                while rows:
                    once: dict[str, tuple[str, str, str, float]] = {}
                    again = []
                    for row in rows:  # oldest first: a task's later durations go after
                        if row[1] in once:
                            again.append(row)
                        else:
                            once[row[1]] = row
                    ordered = sorted(once.values(), key=lambda row: row[1])
                    cursor.execute(
                        _UPSERT_HISTORY,
                        (
                            workflow,
                            [row[1] for row in ordered],
                            [row[2] for row in ordered],
                            [row[3] for row in ordered],
                        ),
                    )
                    rows = again
            if logs:
                cursor.executemany(_UPSERT_LOG, logs)
            if done:
                cursor.executemany(_FINISH_REQUEST, done)

    def load_tasks(self, run_id: str) -> dict[str, TaskRecord]:
        with self._transaction() as cursor:
            _check_run(cursor, run_id)
            cursor.execute(f"SELECT {_TASK_COLUMNS} FROM tasks WHERE run_id = %s", (run_id,))
            rows = cursor.fetchall()
        return {row[0]: _task_record(row) for row in rows}

    def load_requests(self, run_id: str) -> list[InputRequest]:
        with self._transaction() as cursor:
            _check_run(cursor, run_id)
            cursor.execute(
                f"SELECT {_REQUEST_COLUMNS} FROM input_requests WHERE run_id = %s ORDER BY seq",
                (run_id,),
            )
            rows = cursor.fetchall()
        return [_request_record(row) for row in rows]

    def set_trace_context(self, run_id: str, trace_context: str) -> None:
        with self._transaction() as cursor:
            _check_run(cursor, run_id)
            cursor.execute(
                "INSERT INTO run_traces (run_id, trace_context) VALUES (%s, %s) "
                "ON CONFLICT (run_id) DO NOTHING",
                (run_id, _storable(trace_context)),
            )

    def get_trace_context(self, run_id: str) -> str | None:
        with self._transaction() as cursor:
            cursor.execute("SELECT trace_context FROM run_traces WHERE run_id = %s", (run_id,))
            row = cursor.fetchone()
        return None if row is None else str(row[0])

    def task_history(self, workflow: str) -> list[TaskHistory]:
        with self._transaction() as cursor:
            cursor.execute(
                f"SELECT {_HISTORY_COLUMNS} FROM task_history WHERE workflow = %s",
                (workflow,),
            )
            rows = cursor.fetchall()
        return _task_history(rows)

    def load_events(self, run_id: str, *, after: int | None = None) -> list[EventRecord]:
        with self._transaction() as cursor:
            _check_run(cursor, run_id)
            cursor.execute(
                f"SELECT {_EVENT_COLUMNS} FROM events WHERE run_id = %s AND seq > %s ORDER BY seq",
                (run_id, -1 if after is None else after),
            )
            rows = cursor.fetchall()
        return [_event_record(row) for row in rows]

    def load_logs(
        self, run_id: str, *, task_id: str | None = None, attempt: int | None = None
    ) -> list[TaskLog]:
        with self._transaction() as cursor:
            _check_run(cursor, run_id)
            cursor.execute(
                f"SELECT {_LOG_COLUMNS} FROM task_logs WHERE run_id = %(run_id)s "
                "AND (%(task_id)s::text IS NULL OR task_id = %(task_id)s) "
                "AND (%(attempt)s::integer IS NULL OR attempt = %(attempt)s) "
                "ORDER BY task_id, attempt",
                {"run_id": run_id, "task_id": task_id, "attempt": attempt},
            )
            rows = cursor.fetchall()
        return [_log_record(row) for row in rows]

    def send_request(self, run_id: str, request: RunRequest) -> None:
        with self._transaction() as cursor:
            _check_run(cursor, run_id)
            cursor.execute(_INSERT_RUN_REQUEST, _run_request_row(run_id, request))

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

    def get_request(self, run_id: str, request_id: str) -> RunRequest | None:
        with self._transaction() as cursor:
            _check_run(cursor, run_id)
            row = cursor.execute(
                f"SELECT {_RUN_REQUEST_COLUMNS} FROM run_requests "
                "WHERE run_id = %s AND request_id = %s",
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


def _check_run(cursor: psycopg.Cursor[tuple[Any, ...]], run_id: str) -> None:
    if cursor.execute("SELECT 1 FROM runs WHERE run_id = %s", (run_id,)).fetchone() is None:
        raise _not_found(run_id)


def _applied(
    cursor: psycopg.Cursor[tuple[Any, ...]], run_id: str, owner: str, key: str | None
) -> bool:
    """Whether ``owner`` already applied the batch ``key`` to ``run_id`` (it is the last)."""
    if key is None:
        return False
    row = cursor.execute(
        "SELECT owner, last_batch FROM runs WHERE run_id = %s", (run_id,)
    ).fetchone()
    return row is not None and row[0] == owner and row[1] == key


def _missing_or_lost(
    cursor: psycopg.Cursor[tuple[Any, ...]], run_id: str, owner: str
) -> StoreError:
    """Why ``owner``'s conditional update of ``run_id`` matched no row."""
    row = cursor.execute("SELECT owner FROM runs WHERE run_id = %s", (run_id,)).fetchone()
    return _not_found(run_id) if row is None else _lease_lost(run_id, owner, row[0])
