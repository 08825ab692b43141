"""Where the SQL stores write a run: :class:`SQLStore` -- runs, the batches that carry a run's
tasks, events, logs and history (one transaction each, fenced by the run's lease), and the
reads of them. Built on ``_sql.py`` (the dialect, transactions) and ``_sql_requests.py``.
"""

from __future__ import annotations

import time
from abc import abstractmethod
from collections.abc import Sequence
from typing import Any

from .._state import RunStatus
from ._base import (
    EventRecord,
    RunExistsError,
    RunRecord,
    TaskDuration,
    TaskHistory,
    TaskLog,
    TaskRecord,
    WriteBatch,
)
from ._listing import OpenQuestion, RunPage, check_limit, page_of
from ._sql import (
    _EVENT_COLUMNS,
    _HISTORY_COLUMNS,
    _LOG_COLUMNS,
    _RUN_COLUMNS,
    _TASK_COLUMNS,
    Database,
    _list_runs_query,
    _open_questions_sql,
)
from ._sql_log_rows import _event_record, _event_rows, _log_record, _log_rows
from ._sql_requests import SQLRequests
from ._sql_rows import (
    _definition_json,
    _open_question,
    _request_rows,
    _run_record,
    _run_request_done_rows,
    _run_row,
    _storable,
    _task_history,
    _task_record,
    _task_rows,
)

__all__ = ["_ON_TASK_CONFLICT", "_TASK_ROW_COLUMNS", "SQLStore"]

_INSERT_RUN = f"""
    INSERT INTO runs ({_RUN_COLUMNS})
    VALUES ({", ".join("?" * len(_RUN_COLUMNS.split(", ")))})
    ON CONFLICT (run_id) DO NOTHING
"""

#: A task row's columns, and what an upsert of task rows changes in a row already there.
_TASK_ROW_COLUMNS = (
    "run_id, task_id, status, attempts, output, error, started_at, finished_at, skip_cause"
)
_ON_TASK_CONFLICT = """
    ON CONFLICT (run_id, task_id) DO UPDATE SET
        status = excluded.status,
        attempts = excluded.attempts,
        output = excluded.output,
        error = excluded.error,
        started_at = excluded.started_at,
        finished_at = excluded.finished_at,
        skip_cause = excluded.skip_cause
"""
# The row inserts are templates: ``{values}`` becomes one ``(?, ...)`` per row (_insert_rows).
_UPSERT_TASKS = f"INSERT INTO tasks ({_TASK_ROW_COLUMNS}) VALUES {{values}} {_ON_TASK_CONFLICT}"
_INSERT_EVENTS = "INSERT INTO events (run_id, kind, task_id, time, data, started) VALUES {values}"
_UPSERT_LOGS = """
    INSERT INTO task_logs (run_id, task_id, attempt, lines)
    VALUES {values}
    ON CONFLICT (run_id, task_id, attempt) DO UPDATE SET lines = excluded.lines
"""

# The fence of a write: touch the run only if ``owner`` still holds it, and the batch (if it has
# a key) was not applied already. ``{distinct}`` is the dialect's null-safe "differs".
_FENCE = """
    UPDATE runs SET updated_at = ?, last_batch = ?{update}
    WHERE run_id = ? AND owner = ? AND (CAST(? AS TEXT) IS NULL OR last_batch {distinct} ?)
"""
_RUN_UPDATE = ", status = ?, finished_at = ?, error = ?"


class SQLStore(SQLRequests):
    """A store kept in an SQL database; see ``_sql.py`` for what a backend supplies.

    Thread contract: every method holds the store's lock for its transaction.
    """

    # -- runs ---------------------------------------------------------------------------------

    def create_run(self, run: RunRecord) -> None:
        with self._transaction() as db:
            if db.execute(self._q(_INSERT_RUN), _run_row(run)).rowcount == 0:
                raise RunExistsError(f"run {run.run_id!r} already exists")

    def get_run(self, run_id: str) -> RunRecord | None:
        with self._read() as db:
            row = db.execute(
                self._q(f"SELECT {_RUN_COLUMNS} FROM runs WHERE run_id = ?"), (run_id,)
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
        query, params = _list_runs_query(self._param, status, workflow, before, limit)
        with self._read() as db:
            rows = db.execute(query, params).fetchall()
        return page_of([_run_record(row) for row in rows], limit)

    def open_questions(self, *, limit: int = 100) -> list[OpenQuestion]:
        check_limit(limit)
        with self._read() as db:
            rows = db.execute(_open_questions_sql(self._param), (limit,)).fetchall()
        return [_open_question(row) for row in rows]

    def release(self, run_id: str, owner: str) -> None:
        with self._transaction() as db:
            db.execute(
                self._q(
                    "UPDATE runs SET owner = NULL, lease_expires_at = NULL "
                    "WHERE run_id = ? AND owner = ?"
                ),
                (run_id, owner),
            )

    # -- a batch ------------------------------------------------------------------------------

    def write(self, run_id: str, owner: str, batch: WriteBatch) -> None:
        # Build the rows before taking the lock: other threads may use the store meanwhile.
        tasks = self._task_rows(run_id, batch.tasks)
        requests = _request_rows(run_id, batch.requests)
        events = _event_rows(run_id, batch.events)
        logs = _log_rows(run_id, batch.logs)
        done = _run_request_done_rows(run_id, batch.requests_done)
        durations = batch.durations
        update = batch.run
        key = batch.key
        fence: tuple[Any, ...] = (time.time(), key)
        if update is not None:
            fence += (update.status.value, update.finished_at, _storable(update.error))
        fence += (run_id, owner, key, key)
        sql = _FENCE.format(update="" if update is None else _RUN_UPDATE, distinct=self._distinct)
        with self._transaction() as db:
            if db.execute(self._q(sql), fence).rowcount == 0:
                if self._applied(db, run_id, owner, key):
                    return
                raise self._missing_or_lost(db, run_id, owner)
            if update is not None and update.definition is not None:
                db.execute(
                    self._q("UPDATE runs SET definition = ?, fingerprint = ? WHERE run_id = ?"),
                    (_definition_json(update.definition), update.fingerprint, run_id),
                )
            if batch.dropped:
                dropped = [(run_id, task_id) for task_id in batch.dropped]
                db.executemany(
                    self._q("DELETE FROM tasks WHERE run_id = ? AND task_id = ?"), dropped
                )
                db.executemany(
                    self._q("DELETE FROM input_requests WHERE run_id = ? AND task_id = ?"), dropped
                )
            self._write_tasks(db, tasks)
            self._write_requests(db, requests)
            self._write_events(db, events)
            if durations:
                (workflow,) = db.execute(
                    self._q("SELECT workflow FROM runs WHERE run_id = ?"), (run_id,)
                ).fetchone()
                self._write_history(db, workflow, durations)
            self._insert_rows(db, _UPSERT_LOGS, logs)
            self._finish_requests(db, done)

    def _task_rows(self, run_id: str, tasks: Sequence[TaskRecord]) -> list[tuple[Any, ...]]:
        """The rows of ``tasks`` (see ``_sql_rows._task_rows``)."""
        return _task_rows(run_id, tasks)

    @abstractmethod
    def _insert_rows(self, db: Database, template: str, rows: Sequence[tuple[Any, ...]]) -> None:
        """Insert ``rows`` with ``template`` (an INSERT whose ``{values}`` takes rows)."""

    def _write_tasks(self, db: Database, rows: Sequence[tuple[Any, ...]]) -> None:
        """Upsert a batch's task rows (in task id order)."""
        self._insert_rows(db, _UPSERT_TASKS, rows)

    def _write_events(self, db: Database, rows: Sequence[tuple[Any, ...]]) -> None:
        """Append a batch's log entries, in order."""
        self._insert_rows(db, _INSERT_EVENTS, rows)

    @abstractmethod
    def _write_history(
        self, db: Database, workflow: str, durations: Sequence[TaskDuration]
    ) -> None:
        """Add ``durations`` to ``workflow``'s history (see ``_sql_rows._history_rows``)."""

    # -- reads --------------------------------------------------------------------------------

    def load_tasks(self, run_id: str) -> dict[str, TaskRecord]:
        with self._read() as db:
            self._check_run(db, run_id)
            rows = db.execute(
                self._q(f"SELECT {_TASK_COLUMNS} FROM tasks WHERE run_id = ?"), (run_id,)
            ).fetchall()
        return {row[0]: _task_record(row) for row in rows}

    def load_events(self, run_id: str, *, after: int | None = None) -> list[EventRecord]:
        with self._read() as db:
            self._check_run(db, run_id)
            rows = db.execute(
                self._q(
                    f"SELECT {_EVENT_COLUMNS} FROM events WHERE run_id = ? AND seq > ? ORDER BY seq"
                ),
                (run_id, -1 if after is None else after),
            ).fetchall()
        return [_event_record(row) for row in rows]

    def load_logs(
        self, run_id: str, *, task_id: str | None = None, attempt: int | None = None
    ) -> list[TaskLog]:
        with self._read() as db:
            self._check_run(db, run_id)
            rows = db.execute(
                self._q(
                    f"SELECT {_LOG_COLUMNS} FROM task_logs WHERE run_id = ? "
                    "AND (CAST(? AS TEXT) IS NULL OR task_id = ?) "
                    "AND (CAST(? AS INTEGER) IS NULL OR attempt = ?) "
                    "ORDER BY task_id, attempt"
                ),
                (run_id, task_id, task_id, attempt, attempt),
            ).fetchall()
        return [_log_record(row) for row in rows]

    def task_history(self, workflow: str) -> list[TaskHistory]:
        with self._read() as db:
            rows = db.execute(
                self._q(f"SELECT {_HISTORY_COLUMNS} FROM task_history WHERE workflow = ?"),
                (workflow,),
            ).fetchall()
        return _task_history(rows)

    def set_trace_context(self, run_id: str, trace_context: str) -> None:
        with self._transaction() as db:
            self._check_run(db, run_id)
            db.execute(
                self._q(
                    "INSERT INTO run_traces (run_id, trace_context) VALUES (?, ?) "
                    "ON CONFLICT (run_id) DO NOTHING"
                ),
                (run_id, _storable(trace_context)),
            )

    def get_trace_context(self, run_id: str) -> str | None:
        with self._read() as db:
            row = db.execute(
                self._q("SELECT trace_context FROM run_traces WHERE run_id = ?"), (run_id,)
            ).fetchone()
        return None if row is None else str(row[0])
