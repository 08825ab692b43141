"""How the PostgreSQL store writes many rows at once: ``COPY``.

The engine flushes batches of thousands of records. A large batch's events are appended with
``COPY`` (in order: ``seq`` follows the batch). Task records the store has not written before
(:func:`copy_new_tasks`) are copied straight into ``tasks``; the others are copied into a
per-session temporary table and upserted from it in one ``INSERT ... ON CONFLICT DO UPDATE``:
two to three times faster than ``executemany``. A large batch's durations join the task history
through a staging table too (``plait_history_in``): upserted from it, or (from :data:`JOIN_FROM`
rows) the rows there updated by a join and the rest inserted (:func:`copy_history`). The array
parameters of a single ``unnest`` upsert are quoted element by element in Python, some 2 µs of
the writer's CPU per row, where ``COPY`` formats the rows in psycopg's C code. A small batch
(fewer than :data:`COPY_FROM` rows of a kind) uses ``executemany``, which costs less to start
(see ``_postgres.py``).

The server's CPU per row of a batch of 9,000 (the backend's, from /proc/<pid>/stat, best of 5):
a new task row 4.4 µs copied straight, 6.7-7.8 through the staging upsert; a task's history row
that exists 5.6 µs with an ``UPDATE ... FROM``, 9-11 with the upsert (``ON CONFLICT DO UPDATE``
locks each row before it updates it: 34,884 WAL records for 9,000 rows, against 9,218).
"""

from __future__ import annotations

import operator
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from ._sql_store import _ON_TASK_CONFLICT, _TASK_ROW_COLUMNS

if TYPE_CHECKING:
    import psycopg

__all__ = [
    "COPY_FROM",
    "STAGING_TABLES",
    "WrittenTasks",
    "copy_events",
    "copy_history",
    "copy_new_tasks",
    "copy_tasks",
    "each_task_once",
    "write_history",
]

#: Batches with at least this many task records (or events) are written with COPY.
COPY_FROM = 64

#: The per-session staging tables of task records and of durations (made when the store opens;
#: emptied by every commit).
STAGING_TABLES = (
    """
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
    """,
    """
    CREATE TEMPORARY TABLE IF NOT EXISTS plait_history_in (
        task_id  TEXT,
        function TEXT,
        s0       DOUBLE PRECISION
    ) ON COMMIT DELETE ROWS
    """,
)

_COPY_TASKS = f"COPY plait_tasks_in ({_TASK_ROW_COLUMNS}) FROM STDIN (FORMAT BINARY)"
_COPY_NEW_TASKS = f"COPY tasks ({_TASK_ROW_COLUMNS}) FROM STDIN (FORMAT BINARY)"
_NEW_TASKS = "plait_new_tasks"  # the savepoint of a copy that may meet rows already there
_TASK_TYPES = ("text", "text", "text", "int4", "bytea", "text", "float8", "float8", "text")
_UPSERT_TASKS = (
    f"INSERT INTO tasks ({_TASK_ROW_COLUMNS}) "
    f"SELECT {_TASK_ROW_COLUMNS} FROM plait_tasks_in {_ON_TASK_CONFLICT}"
)

_COPY_HISTORY = "COPY plait_history_in (task_id, function, s0) FROM STDIN (FORMAT BINARY)"
_HISTORY_TYPES = ("text", "text", "float8")
# A task's history row shifts its durations along (SQL evaluates every right-hand side before it
# assigns: s1 gets the old s0). Rows that exist are updated through a join, which takes no row
# lock before it updates (an upsert does: a WAL record more per row); the rest are inserted, and
# a row another run of the workflow inserted meanwhile is upserted after all. The join takes the
# rows in its plan's order: the staging table's (task ids'), probing a hash of the history or
# its index, in the plans PostgreSQL 15 makes. Two runs of a workflow writing at the same instant
# with plans that differ could deadlock, which the server breaks (deadlock_timeout, 1 s): that
# batch fails as unavailable and is written again.
_SHIFT = """
    s4 = task_history.s3, s3 = task_history.s2, s2 = task_history.s1, s1 = task_history.s0,
    s0 = {new}.s0, function = {new}.function
"""
_UPDATE_HISTORY = f"""
    UPDATE task_history SET {_SHIFT.format(new="i")}
    FROM plait_history_in i WHERE task_history.workflow = %s AND task_history.task_id = i.task_id
"""
# Fewer rows than this are upserted from the staging table as they are: the table has no
# statistics, so the planner takes it for a page's worth of rows (~800) and may hash the
# workflow's whole history for the join (10,000 rows: a few ms) to update a few dozen.
JOIN_FROM = 1000
_UPSERT_HISTORY = f"""
    INSERT INTO task_history (workflow, task_id, function, s0)
    SELECT %s, task_id, function, s0 FROM plait_history_in
    ON CONFLICT (workflow, task_id) DO UPDATE SET {_SHIFT.format(new="excluded")}
"""
_INSERT_HISTORY = f"""
    INSERT INTO task_history (workflow, task_id, function, s0)
    SELECT %s, i.task_id, i.function, i.s0 FROM plait_history_in i
    WHERE NOT EXISTS (SELECT FROM task_history h WHERE h.workflow = %s AND h.task_id = i.task_id)
    ON CONFLICT (workflow, task_id) DO UPDATE SET {_SHIFT.format(new="excluded")}
"""

# A small batch's durations: one statement, its rows as arrays.
_UPSERT_HISTORY_ARRAYS = f"""
    INSERT INTO task_history (workflow, task_id, function, s0)
    SELECT %s, * FROM unnest(%s::text[], %s::text[], %s::float8[])
    ON CONFLICT (workflow, task_id) DO UPDATE SET {_SHIFT.format(new="excluded")}
"""

# COPY appends rows in order, so ``seq`` keeps the order of the batch.
_COPY_EVENTS = "COPY events (run_id, kind, task_id, time, data, started) FROM STDIN (FORMAT BINARY)"
_EVENT_TYPES = ("text", "text", "text", "float8", "text", "float8")


def copy_new_tasks(
    cursor: psycopg.Cursor[tuple[Any, ...]], rows: Sequence[tuple[Any, ...]]
) -> bool:
    """Insert task rows that the store believes new straight into ``tasks``; return False, with
    nothing written, if one was there after all (the caller upserts them instead)."""
    from psycopg.errors import UniqueViolation  # noqa: PLC0415 - optional dependency

    cursor.execute(f"SAVEPOINT {_NEW_TASKS}")
    try:
        with cursor.copy(_COPY_NEW_TASKS) as copy:
            copy.set_types(_TASK_TYPES)
            for row in rows:
                copy.write_row(row)
    except UniqueViolation:
        cursor.execute(f"ROLLBACK TO SAVEPOINT {_NEW_TASKS}")
        return False
    cursor.execute(f"RELEASE SAVEPOINT {_NEW_TASKS}")
    return True


def copy_tasks(cursor: psycopg.Cursor[tuple[Any, ...]], rows: Sequence[tuple[Any, ...]]) -> None:
    """Upsert task rows (each task once) through the staging table."""
    with cursor.copy(_COPY_TASKS) as copy:
        copy.set_types(_TASK_TYPES)
        for row in rows:
            copy.write_row(row)
    cursor.execute(_UPSERT_TASKS)


def copy_events(cursor: psycopg.Cursor[tuple[Any, ...]], rows: Sequence[tuple[Any, ...]]) -> None:
    """Append event rows, in order."""
    with cursor.copy(_COPY_EVENTS) as copy:
        copy.set_types(_EVENT_TYPES)
        for row in rows:
            copy.write_row(row)


def write_history(
    cursor: psycopg.Cursor[tuple[Any, ...]],
    workflow: str,
    rows: Sequence[tuple[str, str, str, float]],
) -> None:
    """Add ``workflow``'s history rows (``_sql_rows._history_rows``: in task id order, a task's
    own oldest first). A statement may touch a row once: a task twice in the batch (it cannot
    succeed twice in one part of a run, so hardly ever) is written in a statement of its own
    each time; a large batch goes through the staging table (once: it empties at the commit)."""
    copied = False
    while rows:
        again: list[tuple[str, str, str, float]] = []
        if each_task_once(rows):  # nearly always: rows are in task id order already
            ordered = rows
        else:
            once: dict[str, tuple[str, str, str, float]] = {}
            for row in rows:  # oldest first: a task's later durations go after
                if row[1] in once:
                    again.append(row)
                else:
                    once[row[1]] = row
            ordered = sorted(once.values(), key=_TASK_ID)
        if len(ordered) >= COPY_FROM and not copied:
            copy_history(cursor, workflow, ordered)
            copied = True
        else:
            cursor.execute(
                _UPSERT_HISTORY_ARRAYS,
                (
                    workflow,
                    [row[1] for row in ordered],
                    [row[2] for row in ordered],
                    [row[3] for row in ordered],
                ),
            )
        rows = again


def copy_history(
    cursor: psycopg.Cursor[tuple[Any, ...]],
    workflow: str,
    rows: Sequence[tuple[str, str, str, float]],
) -> None:
    """Add ``workflow``'s history rows (``_sql_rows._history_rows``: each task once, in task id
    order) through the staging table. Once per transaction: the table empties at its commit."""
    with cursor.copy(_COPY_HISTORY) as copy:
        copy.set_types(_HISTORY_TYPES)
        for row in rows:
            copy.write_row(row[1:])
    if len(rows) < JOIN_FROM:
        cursor.execute(_UPSERT_HISTORY, (workflow,))
        return
    cursor.execute(_UPDATE_HISTORY, (workflow,))
    if cursor.rowcount < len(rows):  # tasks new to the history (a workflow's first runs)
        cursor.execute(_INSERT_HISTORY, (workflow, workflow))


def each_task_once(rows: Sequence[tuple[Any, ...]]) -> bool:
    """Whether no task id (a row's second field) is in ``rows`` twice; found in C."""
    return len(set(map(_TASK_ID, rows))) == len(rows)


_TASK_ID = operator.itemgetter(1)


class WrittenTasks:
    """The ids of the tasks whose rows a store has written, for the runs it created (so it
    knows every row they have) and still owns: a task not among them has no row. At most
    :attr:`RUNS` runs are kept (a run ends with ``release``); any other run's tasks are upserted,
    as are any if a copy meets a row (another store wrote it).

    Thread contract: called with the store's lock held, or (``forget``) atomically."""

    RUNS = 16

    def __init__(self) -> None:
        self._runs: dict[str, set[str]] = {}

    def start(self, run_id: str) -> None:
        """``run_id`` was just created: none of its tasks has a row."""
        self._runs[run_id] = set()
        while len(self._runs) > self.RUNS:
            del self._runs[next(iter(self._runs))]  # the oldest

    def of(self, run_id: str) -> set[str] | None:
        """The tasks of ``run_id`` that have rows, if this store knows them all."""
        return self._runs.get(run_id)

    def forget(self, run_id: str) -> None:
        self._runs.pop(run_id, None)
