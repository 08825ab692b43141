"""The JSON documents of ``plait runs --json``, ``plait status --json`` and ``plait inputs --json``.

They follow the conventions of ``plait run --json`` (see :mod:`plait.cli._lines`): snake_case
keys, times as Unix seconds (float) or null, durations in seconds, statuses as their lower-case
names, errors as ``{"type": ..., "message": ...}``. The schema is stable: new keys may be added,
none removed or renamed.

``plait runs --json`` writes one object per line per run, newest first::

    run_id, workflow, status, created_at, updated_at, finished_at (or null),
    duration (finished_at or updated_at, minus created_at), error (string or null),
    live_owner (the process that holds the run's live lease, or null),
    stale_since (for a run recorded running whose owner's lease ran out: when it did; else null),
    target (how to import the run's workflow, as the run recorded it, or null)

``plait status RUN_ID --json`` writes one object::

    the keys of a ``runs`` line, and
    tasks      [{task_id, status, attempts, started_at, finished_at, duration, error}]
               (in the workflow's order; error is {type, message} or null)
    figures    {makespan, task_time, parallelism, critical_path (ids), critical_path_seconds}
    waiting    [a question, as in ``inputs``, without run_id and workflow]

``plait inputs --json`` writes one object per line per waiting question::

    run_id, workflow, task_id, key, prompt, schema (JSON Schema or null),
    deadline (Unix time or null), asked_at, command (the ``plait resume`` command that answers it),
    expired (the deadline passed: the next resume applies the question's timeout)
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from .._pause import Question
from .._results import RunResult, TaskError
from ..stores import InputRequest, RunRecord
from ._summary import RunFigures

__all__ = ["answered_record", "question_record", "run_record", "status_record"]


def _error(error: TaskError | None) -> dict[str, str] | None:
    return None if error is None else {"type": error.type, "message": error.message}


def run_record(record: RunRecord, *, live_owner: str | None) -> dict[str, Any]:
    """A line of ``plait runs --json``: what the store knows about the run as a whole."""
    return {
        "run_id": record.run_id,
        "workflow": record.workflow,
        "status": str(record.status),
        "created_at": record.created_at,
        "updated_at": record.updated_at,
        "finished_at": record.finished_at,
        "duration": (record.finished_at or record.updated_at) - record.created_at,
        "error": record.error,
        "live_owner": live_owner,
        "stale_since": record.stale_since,
        "target": record.target,
    }


def question_record(question: Question, *, command: str) -> dict[str, Any]:
    """A waiting question, with the command that answers it."""
    return {
        "task_id": question.task_id,
        "key": question.key,
        "prompt": question.prompt,
        "schema": None if question.schema is None else dict(question.schema),
        "deadline": question.deadline,
        "asked_at": question.asked_at,
        "command": command,
        "expired": question.deadline is not None and question.deadline <= time.time(),
    }


def answered_record(request: InputRequest) -> dict[str, Any]:
    """Whether a question was answered, and by whom, when and through what (or nulls)."""
    return {
        "answered": request.answered,
        "answered_by": request.answered_by,
        "answered_at": request.answered_at,
        "answered_via": request.answered_via,
    }


def status_record(
    record: RunRecord,
    result: RunResult,
    figures: RunFigures,
    *,
    live_owner: str | None,
    commands: Mapping[str, str],
) -> dict[str, Any]:
    """The document of ``plait status --json``; ``commands`` maps each waiting task to the
    command that answers its question."""
    return {
        **run_record(record, live_owner=live_owner),
        "tasks": [
            {
                "task_id": task_id,
                "status": str(task.status),
                "attempts": task.attempts,
                "started_at": task.started_at,
                "finished_at": task.finished_at,
                "duration": task.duration,
                "error": _error(task.error),
            }
            for task_id, task in result.tasks.items()
        ],
        "figures": {
            "makespan": figures.makespan,
            "task_time": figures.task_time,
            "parallelism": figures.parallelism,
            "critical_path": list(figures.critical_path),
            "critical_path_seconds": figures.critical_seconds,
        },
        "waiting": [
            question_record(question, command=commands[task_id])
            for task_id, question in result.waiting.items()
        ],
    }
