"""What the SQL stores (SQLite, PostgreSQL) share: the columns they read, how records become
rows and back, and the errors they raise. Each backend keeps its own SQL, connections and
transactions in its own module.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from .._graph import LazyDefinition
from .._logs import LogLine
from .._requests import RequestKind, RequestState, RunRequest
from .._results import TaskError
from .._state import RunStatus, SkipCause, TaskStatus
from .._text import storable
from ._base import (
    EventRecord,
    EventRecordColumns,
    InputRequest,
    LeaseHeldError,
    LeaseLostError,
    RunNotFoundError,
    RunRecord,
    TaskLog,
    TaskRecord,
    TaskRecordColumns,
)

# What the SQL stores import (the module is private; its names keep their underscores).
__all__ = [
    "_EVENT_COLUMNS",
    "_LOG_COLUMNS",
    "_MIGRATION_7",
    "_REQUEST_COLUMNS",
    "_RUN_COLUMNS",
    "_RUN_REQUEST_COLUMNS",
    "_TASK_COLUMNS",
    "_definition_json",
    "_event_json",
    "_event_record",
    "_event_rows",
    "_lease_held",
    "_lease_lost",
    "_log_record",
    "_log_rows",
    "_not_found",
    "_request_record",
    "_request_rows",
    "_run_record",
    "_run_request_done_rows",
    "_run_request_record",
    "_run_request_row",
    "_run_row",
    "_storable",
    "_task_record",
    "_task_rows",
]

# Columns in the order the record builders below expect them.
_RUN_COLUMNS = (
    "run_id, workflow, fingerprint, definition, config, status, created_at, updated_at, "
    "owner, lease_expires_at, finished_at, error, target"
)
_TASK_COLUMNS = "task_id, status, attempts, output, error, started_at, finished_at, skip_cause"

#: Migration 7, the same for both SQL stores: why a skipped task was skipped (a SkipCause).
_MIGRATION_7 = """
    ALTER TABLE tasks ADD COLUMN skip_cause TEXT;
"""
_REQUEST_COLUMNS = (
    "task_id, key, prompt, schema, requested_at, deadline, answered, value, answered_at"
)
_EVENT_COLUMNS = "kind, time, task_id, data"
_LOG_COLUMNS = "task_id, attempt, lines"
_RUN_REQUEST_COLUMNS = (
    "request_id, kind, owner, sent_at, sent_by, data, state, taken_at, done_at, outcome"
)


# -- errors --------------------------------------------------------


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


# -- how records become rows and back --------------------------------


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
    task_ids, status, attempts, output, error, started_at, finished_at, skip_cause = (
        TaskRecordColumns.of(tasks).columns()
    )
    return list(
        zip(
            [run_id] * len(task_ids),
            task_ids,
            map(_STATUS_TEXT.__getitem__, status),
            attempts,
            output,
            [None if e is None else _error_json(e) for e in error],
            started_at,
            finished_at,
            [None if cause is None else cause.value for cause in skip_cause],
            strict=True,
        )
    )


# A dict lookup is some twenty times faster than ``TaskStatus(value)`` or ``status.value``; a
# batch writes, and a load builds, many records.
_TASK_STATUSES = {status.value: status for status in TaskStatus}
_STATUS_TEXT = {status: status.value for status in TaskStatus}


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
    )


def _event_rows(run_id: str, events: Sequence[EventRecord]) -> list[tuple[Any, ...]]:
    kinds, times, task_ids, data = EventRecordColumns.of(events).columns()
    return list(
        zip([run_id] * len(kinds), kinds, task_ids, times, map(_event_json, data), strict=True)
    )


def _event_json(data: Mapping[str, Any]) -> str:
    """An event's data as JSON. Nearly every row holds an attempt's number, and maybe its start
    time: those two shapes are formatted directly (a finite float's ``repr`` is its JSON), some
    five times faster than the encoder; everything else goes through it."""
    attempt = data.get("attempt")
    if type(attempt) is int:
        size = len(data)
        if size == 1:
            return f'{{"attempt":{attempt}}}'
        started = data.get("started")
        if size == 2 and type(started) is float and math.isfinite(started):
            return f'{{"attempt":{attempt},"started":{started!r}}}'
    return _dumps(data) if data else "{}"


def _event_record(row: Sequence[Any]) -> EventRecord:
    data = {} if row[3] == "{}" else _loads(row[3])
    return EventRecord(kind=row[0], time=row[1], task_id=row[2], data=data)


def _log_rows(run_id: str, logs: Sequence[TaskLog]) -> list[tuple[Any, ...]]:
    """One row per attempt (the last log of an attempt given twice wins): its lines as JSON
    ``[[number, time, stream, text], ...]``."""
    rows = {
        (log.task_id, log.attempt): (
            run_id,
            log.task_id,
            log.attempt,
            _dumps([[line.number, line.time, line.stream, line.text] for line in log.lines]),
        )
        for log in logs
    }
    return list(rows.values())


def _log_record(row: Sequence[Any]) -> TaskLog:
    task_id, attempt = row[0], row[1]
    return TaskLog(
        task_id=task_id,
        attempt=attempt,
        lines=[LogLine(task_id, attempt, *line) for line in _loads(row[2])],
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
