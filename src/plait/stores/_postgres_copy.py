"""How the PostgreSQL store writes many rows at once: ``COPY``.

The engine flushes batches of thousands of records. A large batch's events are appended with
``COPY`` (in order: ``seq`` follows the batch), and its task records are copied into a
per-session temporary table and upserted from it in one ``INSERT ... ON CONFLICT DO UPDATE``:
two to three times faster than ``executemany``. A small batch (fewer than :data:`COPY_FROM`
rows of a kind) uses ``executemany``, which costs less to start (see ``_postgres.py``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from ._sql_store import _ON_TASK_CONFLICT, _TASK_ROW_COLUMNS

if TYPE_CHECKING:
    import psycopg

__all__ = ["COPY_FROM", "STAGING_TABLE", "copy_events", "copy_tasks"]

#: Batches with at least this many task records (or events) are written with COPY.
COPY_FROM = 64

#: The per-session staging table of task records (made when the store opens; emptied by every
#: commit).
STAGING_TABLE = """
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

_COPY_TASKS = f"COPY plait_tasks_in ({_TASK_ROW_COLUMNS}) FROM STDIN (FORMAT BINARY)"
_TASK_TYPES = ("text", "text", "text", "int4", "bytea", "text", "float8", "float8", "text")
_UPSERT_TASKS = (
    f"INSERT INTO tasks ({_TASK_ROW_COLUMNS}) "
    f"SELECT {_TASK_ROW_COLUMNS} FROM plait_tasks_in {_ON_TASK_CONFLICT}"
)

# COPY appends rows in order, so ``seq`` keeps the order of the batch.
_COPY_EVENTS = "COPY events (run_id, kind, task_id, time, data) FROM STDIN (FORMAT BINARY)"
_EVENT_TYPES = ("text", "text", "text", "float8", "text")


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
