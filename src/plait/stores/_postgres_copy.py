"""How the PostgreSQL store writes many rows at once: ``COPY``.

The engine flushes batches of thousands of records. A large batch's events are appended with
``COPY`` (in order: ``seq`` follows the batch), and its task records are copied into a
per-session temporary table and upserted from it in one ``INSERT ... ON CONFLICT DO UPDATE``:
two to three times faster than ``executemany``. A large batch's durations join the task history
the same way (``plait_history_in``, then one upsert): the array parameters of a single
``unnest`` upsert are quoted element by element in Python, some 2 µs of the writer's CPU per
row, where ``COPY`` formats the rows in psycopg's C code. A small batch (fewer than
:data:`COPY_FROM` rows of a kind) uses ``executemany``, which costs less to start (see
``_postgres.py``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from ._sql_store import _ON_TASK_CONFLICT, _TASK_ROW_COLUMNS

if TYPE_CHECKING:
    import psycopg

__all__ = ["COPY_FROM", "STAGING_TABLES", "copy_events", "copy_history", "copy_tasks"]

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
_TASK_TYPES = ("text", "text", "text", "int4", "bytea", "text", "float8", "float8", "text")
_UPSERT_TASKS = (
    f"INSERT INTO tasks ({_TASK_ROW_COLUMNS}) "
    f"SELECT {_TASK_ROW_COLUMNS} FROM plait_tasks_in {_ON_TASK_CONFLICT}"
)

_COPY_HISTORY = "COPY plait_history_in (task_id, function, s0) FROM STDIN (FORMAT BINARY)"
_HISTORY_TYPES = ("text", "text", "float8")
# A scan of the staging table, filled once since the last commit, reads its rows in the order
# they were copied: the task id order that keeps two runs of a workflow from deadlocking.
_UPSERT_HISTORY = """
    INSERT INTO task_history (workflow, task_id, function, s0)
    SELECT %s, task_id, function, s0 FROM plait_history_in
    ON CONFLICT (workflow, task_id) DO UPDATE SET
        s4 = task_history.s3, s3 = task_history.s2, s2 = task_history.s1, s1 = task_history.s0,
        s0 = excluded.s0, function = excluded.function
"""

# COPY appends rows in order, so ``seq`` keeps the order of the batch.
_COPY_EVENTS = "COPY events (run_id, kind, task_id, time, data, started) FROM STDIN (FORMAT BINARY)"
_EVENT_TYPES = ("text", "text", "text", "float8", "text", "float8")


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
    cursor.execute(_UPSERT_HISTORY, (workflow,))
