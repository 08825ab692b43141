"""How records become rows of the SQL stores (SQLite, PostgreSQL) and back: JSON, statuses,
errors and times, encoded the same way by both, so the backends round-trip the same values (a
run's log, its events and its tasks' logs: ``_sql_log_rows``).

Rows are tuples in the order of the columns the statements of ``_sql.py`` name.
"""

from __future__ import annotations

import contextlib
import json
import operator
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from .._definition import LazyDefinition
from .._requests import RequestKind, RequestState, RunRequest
from .._results import TaskError
from .._state import RunStatus, SkipCause, TaskStatus
from .._text import storable
from ._columns import TaskRecordColumns
from ._history import TimedDurations
from ._listing import OpenQuestion, inbox_default
from ._records import (
    InputRequest,
    RunRecord,
    TaskDuration,
    TaskHistory,
    TaskRecord,
)

# What the SQL stores import (the module is private; its names keep their underscores).
__all__ = [
    "_definition_json",
    "_dumps",
    "_history_rows",
    "_loads",
    "_open_question",
    "_request_record",
    "_request_rows",
    "_run_record",
    "_run_request_done_rows",
    "_run_request_record",
    "_run_request_row",
    "_run_row",
    "_storable",
    "_task_history",
    "_task_record",
    "_task_rows",
]


def _storable(text: str | None) -> str | None:
    """Free text (a run's error, a prompt) with what the stores cannot hold escaped."""
    return None if text is None else storable(text)


def _to_json(value: object) -> Any:
    """``json`` hook: mappings other than dicts (``MappingProxyType``...) encode as objects,
    sequences other than lists and tuples (a run's lazy definition) as arrays."""
    if isinstance(value, Mapping):
        return dict(value)
    if isinstance(value, Sequence) and not isinstance(value, str | bytes):
        return list(value)
    raise TypeError(f"{type(value).__qualname__} is not JSON-able: {value!r}")


# Compact, and ASCII-only so that any text (even lone surrogates) can be stored.
_dumps = json.JSONEncoder(separators=(",", ":"), default=_to_json).encode
_loads = json.loads


def _error_json(error: TaskError) -> str:
    return _dumps({"type": error.type, "message": error.message, "traceback": error.traceback})


def _task_error(text: str) -> TaskError:
    data = _loads(text)
    return TaskError(data["type"], data["message"], data["traceback"])


def _definition_json(definition: Sequence[Mapping[str, Any]]) -> str:
    """A run's definition as JSON; the engine's (built lazily) writes its own, faster."""
    if isinstance(definition, LazyDefinition):
        return definition.json()
    return _dumps(definition)


def _run_row(run: RunRecord) -> tuple[Any, ...]:
    return (
        run.run_id,
        run.workflow,
        run.fingerprint,
        _definition_json(run.definition),
        _dumps(run.config),
        run.status.value,
        run.created_at,
        run.updated_at,
        run.owner,
        run.lease_expires_at,
        run.finished_at,
        _storable(run.error),
        run.target,
    )


def _run_record(row: Sequence[Any]) -> RunRecord:
    return RunRecord(
        run_id=row[0],
        workflow=row[1],
        fingerprint=row[2],
        definition=_loads(row[3]),
        config=_loads(row[4]),
        status=RunStatus(row[5]),
        created_at=row[6],
        updated_at=row[7],
        owner=row[8],
        lease_expires_at=row[9],
        finished_at=row[10],
        error=row[11],
        target=row[12],
    )


def _task_rows(run_id: str, tasks: Sequence[TaskRecord]) -> list[tuple[Any, ...]]:
    """The rows of ``tasks``, in task id order (a task given twice keeps its order: the last
    wins). Both databases insert into their ``(run_id, task_id)`` index faster in its own order
    than in the order tasks finished: a fifth less time for SQLite's upsert."""
    task_ids, status, attempts, output, error, started_at, finished_at, skip_cause = (
        TaskRecordColumns.of(tasks).columns()
    )
    rows = list(
        zip(
            [run_id] * len(task_ids),
            task_ids,
            map(_STATUS_TEXT.__getitem__, status),
            attempts,
            output,
            _encoded(error, _error_json),
            started_at,
            finished_at,
            _encoded(skip_cause, _VALUE),
            strict=True,
        )
    )
    _sort_by_task_id(rows)
    return rows


def _encoded(column: Sequence[Any], encode: Callable[[Any], Any]) -> Sequence[Any]:
    """``column`` with each value but None encoded. Most tasks have no error and no skip
    cause: a column of Nones only is found in C (``count``) and kept as it is, rather than
    copied with a test per task."""
    if column.count(None) == len(column):
        return column
    return [None if value is None else encode(value) for value in column]


def _sort_by_task_id(rows: list[tuple[Any, ...]]) -> None:
    """Sort rows of :func:`_task_rows` or :func:`_history_rows` by task id, stably (a task's own
    rows keep their order). Rows whose ids cannot be ordered (not text) are left as they came:
    the database refuses them, in the transaction, as it would have."""
    with contextlib.suppress(TypeError):
        rows.sort(key=_BY_TASK_ID)


_BY_TASK_ID = operator.itemgetter(1)
_BY_FINISHED_AT = operator.attrgetter("finished_at")


# A dict lookup is some twenty times faster than ``TaskStatus(value)`` or ``status.value``; a
# batch writes, and a load builds, many records.
_TASK_STATUSES = {status.value: status for status in TaskStatus}
_STATUS_TEXT = {status: status.value for status in TaskStatus}
_VALUE = operator.attrgetter("value")


def _task_record(row: Sequence[Any]) -> TaskRecord:
    return TaskRecord(
        task_id=row[0],
        status=_TASK_STATUSES[row[1]],
        attempts=row[2],
        output=row[3],
        error=None if row[4] is None else _task_error(row[4]),
        started_at=row[5],
        finished_at=row[6],
        skip_cause=None if row[7] is None else SkipCause(row[7]),
    )


def _request_rows(run_id: str, requests: Sequence[InputRequest]) -> list[tuple[Any, ...]]:
    return [
        (
            run_id,
            r.task_id,
            r.key,
            _storable(r.prompt),
            None if r.schema is None else _dumps(r.schema),
            r.requested_at,
            r.deadline,
            r.answered,
            r.value,
            r.answered_at,
            _storable(r.answered_by),
            r.answered_via,
            r.default,
        )
        for r in requests
    ]


def _request_record(row: Sequence[Any]) -> InputRequest:
    return InputRequest(
        task_id=row[0],
        key=row[1],
        prompt=row[2],
        schema=None if row[3] is None else _loads(row[3]),
        requested_at=row[4],
        deadline=row[5],
        answered=bool(row[6]),
        value=row[7],
        answered_at=row[8],
        answered_by=row[9],
        answered_via=row[10],
        default=row[11],
    )


def _run_request_row(run_id: str, request: RunRequest) -> tuple[Any, ...]:
    """``run_id`` and the request's fields, in :data:`_RUN_REQUEST_COLUMNS` order."""
    return (
        run_id,
        request.request_id,
        str(request.kind),
        request.owner,
        request.sent_at,
        request.sent_by,
        _dumps(request.data),
        request.state.value,
        request.taken_at,
        request.done_at,
        request.outcome,
    )


def _run_request_done_rows(run_id: str, done: Sequence[RunRequest]) -> list[tuple[Any, ...]]:
    """(state, done_at, outcome, run_id, request_id) of each request marked done."""
    return [(r.state.value, r.done_at, r.outcome, run_id, r.request_id) for r in done]


_REQUEST_KINDS = {kind.value: kind for kind in RequestKind}


def _run_request_record(row: Sequence[Any]) -> RunRequest:
    return RunRequest(
        request_id=row[0],
        kind=_REQUEST_KINDS.get(row[1], row[1]),
        owner=row[2],
        sent_at=row[3],
        sent_by=row[4],
        data=_loads(row[5]),
        state=RequestState(row[6]),
        taken_at=row[7],
        done_at=row[8],
        outcome=row[9],
    )


# -- task history (learned estimates) ---------------------------------------------------------


def _history_rows(
    workflow: str, durations: Sequence[TaskDuration]
) -> list[tuple[str, str, str, float]]:
    """The rows (workflow, task id, function, seconds) that add ``durations`` to the history:
    in task id order (the index's, as for :func:`_task_rows`), and a task's own oldest first:
    each becomes its task's newest (``s0``) in turn, so the latest written -- within a batch,
    the latest finished -- is the newest."""
    rows: list[tuple[str, str, str, float]] | None = None
    if isinstance(durations, TimedDurations) and durations.timed:  # a recorder's: by column
        task_ids, seconds, finished_at = zip(*durations.timed, strict=True)
        if all(map(operator.le, finished_at, finished_at[1:])):  # as they finished (the clock)
            functions = map(durations.functions.__getitem__, task_ids)
            rows = list(zip([workflow] * len(task_ids), task_ids, functions, seconds, strict=True))
    if rows is None:
        rows = [
            (workflow, d.task_id, d.function, d.seconds)
            for d in sorted(durations, key=_BY_FINISHED_AT)
        ]
    _sort_by_task_id(rows)
    return rows


def _task_history(rows: Sequence[tuple[Any, ...]]) -> list[TaskHistory]:
    """The records of ``task_history`` rows (:data:`_HISTORY_COLUMNS`)."""
    return [
        TaskHistory(row[0], row[1], tuple([s for s in row[2:] if s is not None])) for row in rows
    ]


def _open_question(row: Sequence[Any]) -> OpenQuestion:
    schema = None if row[6] is None else _loads(row[6])
    return OpenQuestion(
        run_id=row[0],
        workflow=row[1],
        run_status=RunStatus(row[2]),
        task_id=row[3],
        key=row[4],
        prompt=row[5],
        schema=schema,
        asked_at=row[7],
        deadline=row[8],
        default=inbox_default(schema, row[9], _loads(row[10]).get("serializer", "json")),
    )
