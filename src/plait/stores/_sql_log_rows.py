"""How a run's log -- its events and its tasks' logs -- becomes rows of the SQL stores and back,
encoded the same way by both (see ``_sql_rows`` for the rest of a run's records).

A busy run's batches are nearly all tasks' starts and successes: their data, an attempt's
number, is written from the numbers (:class:`~plait.stores._columns.AttemptData`), and the start
folded into an attempt's end goes to a column of its own (``started``), not into its JSON.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any, TypeGuard

from .._logs import LogLine
from ._columns import AttemptData, EventRecordColumns
from ._records import EventRecord, TaskLog
from ._sql_rows import _dumps, _loads

__all__ = [
    "_event_data",
    "_event_record",
    "_event_rows",
    "_log_record",
    "_log_rows",
]


def _event_rows(run_id: str, events: Sequence[EventRecord]) -> list[tuple[Any, ...]]:
    """(run_id, kind, task_id, time, data, started) of each event (see :func:`_event_data`)."""
    columns = EventRecordColumns.of(events)
    kinds, times, task_ids, data = columns.columns()
    if not kinds:
        return []
    folded = columns.started()
    texts: Sequence[str]
    started: Sequence[float | None]
    if isinstance(data, AttemptData) and (folded is None or _times(folded)):
        # Nearly all attempts' numbers (a busy run's batch): written from the numbers, with no
        # mapping made, and the few others through _event_data.
        others = data.others
        texts = list(map(_ATTEMPT_JSON.__getitem__, data.numbers))
        started = [None] * len(kinds) if folded is None else list(folded)
        for i, fields in others.items():
            texts[i], started[i] = _event_data(fields, None if folded is None else folded[i])
    else:
        encoded = map(_event_data, data) if folded is None else map(_event_data, data, folded)
        texts, started = zip(*encoded, strict=True)
    return list(zip([run_id] * len(kinds), kinds, task_ids, times, texts, started, strict=True))


class _AttemptJSON(dict[int, str]):
    """``{"attempt": n}`` as JSON, by ``n``: made once per number."""

    def __missing__(self, number: int) -> str:
        text = self[number] = _dumps({"attempt": number})
        return text


_ATTEMPT_JSON = _AttemptJSON()


def _times(started: Sequence[float | None]) -> bool:
    """Whether each of ``started`` is None or a finite float (a time): a column of its own as
    it is (see :func:`_event_data`). Tested in C: a sum of floats is finite only if each is
    (a sum too large for a float fails the test, and takes the general path)."""
    times = list(filter(None, started))  # Nones (and zeros, finite) left out
    return set(map(type, times)) <= _FLOAT and math.isfinite(sum(times))


_FLOAT = frozenset({float})


def _event_data(data: Mapping[str, Any], folded: float | None = None) -> tuple[str, float | None]:
    """An event's data (with ``folded``, the start folded into it, if any: see
    ``EventRecordColumns``) as JSON, and the start of the attempt it ends (the ``started``
    column), if that is kept out of the JSON.

    Nearly every row holds an attempt's number, and maybe its start time: those two shapes are
    formatted directly, some five times faster than the encoder, and the start (a finite float)
    goes to its column as a number -- JSON would spell it out (its shortest ``repr``, most of
    the cost). Everything else goes through the encoder whole."""
    attempt = data.get("attempt")
    if type(attempt) is int:
        size = len(data)
        if size == 1 and folded is None:
            return f'{{"attempt":{attempt}}}', None
        started = data.get("started") if folded is None else folded
        if size == (1 if folded is not None else 2) and _finite(started):
            return f'{{"attempt":{attempt}}}', started
    if folded is not None:
        data = {**data, "started": folded}
    return (_dumps(data) if data else "{}"), None


def _finite(value: object) -> TypeGuard[float]:
    return type(value) is float and math.isfinite(value)


def _event_record(row: Sequence[Any]) -> EventRecord:
    """The record of an ``events`` row (:data:`_EVENT_COLUMNS`): ``started``, if the row has
    it, back in the data."""
    data = {} if row[3] == "{}" else _loads(row[3])
    if row[5] is not None:
        data["started"] = row[5]
    return EventRecord(kind=row[0], time=row[1], task_id=row[2], data=data, seq=row[4])


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
