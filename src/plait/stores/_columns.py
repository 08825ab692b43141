"""Records as columns: how the engine hands a batch's task records and log entries to a store.

A column per field costs the engine a list copy per field instead of a record per task; a
record is built only when someone reads it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, overload

from .._results import TaskError
from .._state import SkipCause, TaskStatus
from ._records import EventRecord, TaskRecord

__all__ = ["AttemptData", "EventRecordColumns", "TaskRecordColumns"]


_NO_CAUSES: list[SkipCause | None] = [None]


class TaskRecordColumns(Sequence[TaskRecord]):
    """Task records as columns (one list per field); a record is built only when it is read.

    The engine hands its records to the stores this way: the memory store keeps a whole run's
    columns as they are, so recording 100,000 tasks does not build 100,000 records that nobody
    may read, and the SQL stores turn the columns into rows without a record in between.
    ``output`` holds None for every task that did not succeed.
    """

    __slots__ = ("_columns",)

    def __init__(
        self,
        *,
        task_ids: Sequence[str],
        status: Sequence[TaskStatus],
        attempts: Sequence[int],
        output: Sequence[Any],
        error: Sequence[TaskError | None],
        started_at: Sequence[float | None],
        finished_at: Sequence[float | None],
        skip_cause: Sequence[SkipCause | None] | None = None,
    ) -> None:
        if skip_cause is None:
            skip_cause = _NO_CAUSES * len(task_ids)
        self._columns = (
            task_ids,
            status,
            attempts,
            output,
            error,
            started_at,
            finished_at,
            skip_cause,
        )

    def __len__(self) -> int:
        return len(self._columns[0])

    @classmethod
    def of(cls, records: Sequence[TaskRecord]) -> TaskRecordColumns:
        """``records`` as columns (the same object if they already are)."""
        if isinstance(records, TaskRecordColumns):
            return records
        return cls(
            task_ids=[r.task_id for r in records],
            status=[r.status for r in records],
            attempts=[r.attempts for r in records],
            output=[r.output for r in records],
            error=[r.error for r in records],
            started_at=[r.started_at for r in records],
            finished_at=[r.finished_at for r in records],
            skip_cause=[r.skip_cause for r in records],
        )

    def columns(self) -> tuple[Sequence[Any], ...]:
        """The eight columns, in :class:`TaskRecord`'s field order."""
        return self._columns

    @overload
    def __getitem__(self, i: int) -> TaskRecord: ...

    @overload
    def __getitem__(self, i: slice) -> Sequence[TaskRecord]: ...

    def __getitem__(self, i: int | slice) -> TaskRecord | Sequence[TaskRecord]:
        if isinstance(i, slice):
            return [self[j] for j in range(*i.indices(len(self)))]
        task_id, status, attempts, output, error, started_at, finished_at, cause = self._columns
        return TaskRecord(
            task_id=task_id[i],
            status=status[i],
            attempts=attempts[i],
            output=output[i],
            error=error[i],
            started_at=started_at[i],
            finished_at=finished_at[i],
            skip_cause=cause[i],
        )


class AttemptData(Sequence[Mapping[str, Any]]):
    """Log entries' data where nearly every entry holds an attempt's number only
    (``{"attempt": n}``): kept as ``numbers``, each mapping made when it is read; the entries
    at the places in ``others`` hold other data, given whole (their place in ``numbers`` holds
    0). A busy run's batches are nearly all tasks' starts and successes, and the SQL
    stores write them from the numbers, with no mapping in between."""

    __slots__ = ("numbers", "others")
    __hash__ = None  # type: ignore[assignment]  # unhashable, like the list it stands for

    def __init__(
        self, numbers: Sequence[Any], others: Mapping[int, Mapping[str, Any]] | None = None
    ) -> None:
        self.numbers = numbers
        self.others: Mapping[int, Mapping[str, Any]] = others or {}

    def __len__(self) -> int:
        return len(self.numbers)

    @overload
    def __getitem__(self, i: int) -> Mapping[str, Any]: ...

    @overload
    def __getitem__(self, i: slice) -> Sequence[Mapping[str, Any]]: ...

    def __getitem__(self, i: int | slice) -> Mapping[str, Any] | Sequence[Mapping[str, Any]]:
        if isinstance(i, slice):
            return [self[j] for j in range(*i.indices(len(self)))]
        if i < 0:
            i += len(self.numbers)
        other = self.others.get(i)
        return {"attempt": self.numbers[i]} if other is None else other

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Sequence):
            return NotImplemented
        return list(self) == list(other)


class EventRecordColumns(Sequence[EventRecord]):
    """Log entries as columns (one list per field), in order; a record is built only when it
    is read. The engine hands its batches of events to the stores this way, so the SQL stores
    turn them into rows with no record in between.

    ``started``, when given, holds for each entry the start of the attempt it ends where that
    start was folded into it (see ``plait._recorder``), else None: a record has it in its data
    (``data["started"]``), the SQL stores in a column of their own, so it is not merged into
    each entry's data only to be taken out again. ``data`` may be :class:`AttemptData`.
    """

    __slots__ = ("_columns", "_started")

    def __init__(
        self,
        *,
        kinds: Sequence[str],
        times: Sequence[float],
        task_ids: Sequence[str | None],
        data: Sequence[Mapping[str, Any]],
        started: Sequence[float | None] | None = None,
    ) -> None:
        self._columns = (kinds, times, task_ids, data)
        self._started = started

    def __len__(self) -> int:
        return len(self._columns[0])

    @classmethod
    def of(cls, records: Sequence[EventRecord]) -> EventRecordColumns:
        """``records`` as columns (the same object if they already are)."""
        if isinstance(records, EventRecordColumns):
            return records
        return cls(
            kinds=[r.kind for r in records],
            times=[r.time for r in records],
            task_ids=[r.task_id for r in records],
            data=[r.data for r in records],
        )

    def columns(self) -> tuple[Sequence[Any], ...]:
        """The four columns, in :class:`EventRecord`'s field order (``data`` without the
        folded starts: see :meth:`started`)."""
        return self._columns

    def started(self) -> Sequence[float | None] | None:
        """The folded start of each entry's attempt (None where there is none); None if no
        entry has one."""
        return self._started

    @overload
    def __getitem__(self, i: int) -> EventRecord: ...

    @overload
    def __getitem__(self, i: slice) -> Sequence[EventRecord]: ...

    def __getitem__(self, i: int | slice) -> EventRecord | Sequence[EventRecord]:
        if isinstance(i, slice):
            return [self[j] for j in range(*i.indices(len(self)))]
        kinds, times, task_ids, data = self._columns
        fields = data[i]
        if self._started is not None and (started := self._started[i]) is not None:
            fields = {**fields, "started": started}
        return EventRecord(kind=kinds[i], time=times[i], task_id=task_ids[i], data=fields)
