"""A workflow's history of durations as columns: what learned estimates read at a run's start.

A store answers :meth:`Store.task_history` with one :class:`~plait.stores.TaskHistory` per task;
a run of 10,000 tasks that learns from the run before it would make (and its start would take
apart) 10,000 records, and the memory store would make as many again to fold each run into
its history -- about as much as running 10,000 no-op tasks. :class:`HistoryColumns` holds the
same facts as three columns (task ids, each task's seconds, their functions), so the common
case costs a few passes at C speed:

- a run's end hands the memory store its durations as a :class:`DurationColumns` (one entry
  per task of the run, in the run's task order), which becomes columns without a record;
- a new batch that names the same tasks in the same order as the history (the same workflow
  run again) is folded into it by concatenating each task's seconds, column by column;
- the run that learns finds its own task order in the history's ``task_ids`` and reads the
  seconds by index, with no lookup by id (see ``plait._estimates``).

Anything else (batches of records, tasks in another order) takes the general path, by task id.
Which durations count as a task's latest is the same in every store: those written last, and
within one batch those that finished last.
"""

from __future__ import annotations

import operator
from abc import abstractmethod
from collections.abc import Iterator, Mapping, Sequence
from typing import overload

from ._base import HISTORY_KEPT, TaskDuration, TaskHistory

__all__ = ["DurationColumns", "HistoryColumns", "TimedDurations", "history_of", "merge_histories"]


class HistoryColumns(Sequence[TaskHistory]):
    """Task histories as columns: ``task_ids``; ``seconds``, each task's latest durations (at
    most :data:`HISTORY_KEPT`, newest first; ``()`` for a task with none, which is then no
    record); and ``functions``, the function each task called last (``module:qualname``).

    A sequence of the tasks' :class:`TaskHistory` records (built when first read, those with
    seconds only), equal to any sequence of the same records in the same order.
    """

    __slots__ = ("_records", "functions", "seconds", "task_ids")
    __hash__ = None  # type: ignore[assignment]  # unhashable, like the list it stands for

    def __init__(
        self,
        task_ids: Sequence[str],
        seconds: Sequence[tuple[float, ...]],
        functions: Sequence[str],
    ) -> None:
        self.task_ids = task_ids
        self.seconds = seconds
        self.functions = functions
        self._records: list[TaskHistory] | None = None

    @classmethod
    def of(cls, history: Sequence[TaskHistory]) -> HistoryColumns:
        """``history`` as columns (itself when it is already)."""
        if isinstance(history, HistoryColumns):
            return history
        return cls(
            [task.task_id for task in history],
            [task.seconds for task in history],
            [task.function for task in history],
        )

    def _list(self) -> list[TaskHistory]:
        if self._records is None:
            self._records = [
                TaskHistory(task_id, function, seconds)
                for task_id, function, seconds in zip(
                    self.task_ids, self.functions, self.seconds, strict=True
                )
                if seconds
            ]
        return self._records

    def __bool__(self) -> bool:
        return any(self.seconds)  # without a record made

    def __len__(self) -> int:
        return len(self._list())

    def __iter__(self) -> Iterator[TaskHistory]:
        return iter(self._list())

    @overload
    def __getitem__(self, i: int) -> TaskHistory: ...

    @overload
    def __getitem__(self, i: slice) -> Sequence[TaskHistory]: ...

    def __getitem__(self, i: int | slice) -> TaskHistory | Sequence[TaskHistory]:
        return self._list()[i]

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Sequence):
            return NotImplemented
        return self._list() == list(other)

    def __repr__(self) -> str:
        return repr(self._list())


class DurationColumns(Sequence[TaskDuration]):
    """Durations that can give their :class:`HistoryColumns` without a record per task (a
    run's end hands the memory store one, see ``plait._estimates.FirstTryDurations``)."""

    __slots__ = ()

    @abstractmethod
    def history(self) -> HistoryColumns:
        """These durations by task, one entry per task (``()`` for one with none)."""


class TimedDurations(DurationColumns):
    """Durations as a run's recorder keeps them: ``timed`` holds (task id, seconds, finished
    at) in the order the attempts finished, and ``functions`` each task's function by its id.
    A :class:`TaskDuration` is made only when one is read: the SQL stores take their rows from
    the columns (``_sql_rows._history_rows``), with no record per task in between."""

    __slots__ = ("functions", "timed")

    def __init__(
        self, timed: Sequence[tuple[str, float, float]], functions: Mapping[str, str]
    ) -> None:
        self.timed = timed
        self.functions = functions

    def __len__(self) -> int:
        return len(self.timed)

    @overload
    def __getitem__(self, i: int) -> TaskDuration: ...

    @overload
    def __getitem__(self, i: slice) -> Sequence[TaskDuration]: ...

    def __getitem__(self, i: int | slice) -> TaskDuration | Sequence[TaskDuration]:
        if isinstance(i, slice):
            return [self[j] for j in range(*i.indices(len(self)))]
        task_id, seconds, finished_at = self.timed[i]
        return TaskDuration(task_id, self.functions[task_id], seconds, finished_at)

    def history(self) -> HistoryColumns:
        return history_of(list(self))


def history_of(durations: Sequence[TaskDuration]) -> HistoryColumns:
    """One batch of ``durations`` by task: each task's latest :data:`HISTORY_KEPT` (by
    ``finished_at``, newest first) and the function of its latest."""
    if isinstance(durations, DurationColumns):
        return durations.history()
    by_task: dict[str, list[TaskDuration]] = {}
    for duration in sorted(durations, key=operator.itemgetter(3), reverse=True):
        by_task.setdefault(duration.task_id, []).append(duration)
    return HistoryColumns(
        list(by_task),
        [tuple([d.seconds for d in kept[:HISTORY_KEPT]]) for kept in by_task.values()],
        [kept[0].function for kept in by_task.values()],
    )


def merge_histories(batches: Sequence[HistoryColumns]) -> HistoryColumns:
    """The history of ``batches`` (newest first): each task's latest :data:`HISTORY_KEPT`
    durations across them, and the function of the newest batch that has any of its.

    Batches of the same tasks in the same order (runs of one workflow) are folded column by
    column; others by task id.
    """
    if not batches:
        return HistoryColumns([], [], [])
    newest = batches[0]
    if len(batches) == 1:
        return newest
    if all(batch.task_ids == newest.task_ids for batch in batches[1:]):
        folded = batches[-1].seconds
        for batch in reversed(batches[:-1]):  # oldest first: a newer batch's seconds go in front
            folded = [
                (newer + older)[:HISTORY_KEPT]
                for newer, older in zip(batch.seconds, folded, strict=True)
            ]
        return HistoryColumns(newest.task_ids, folded, _aligned_functions(batches))
    latest: dict[str, tuple[str, tuple[float, ...]]] = {}
    for batch in reversed(batches):  # oldest first: a newer batch's seconds go in front
        for task_id, function, newer in zip(
            batch.task_ids, batch.functions, batch.seconds, strict=True
        ):
            if newer:
                kept = latest.get(task_id)
                latest[task_id] = (function, newer if kept is None else newer + kept[1])
    return HistoryColumns(
        list(latest),
        [seconds[:HISTORY_KEPT] for _, seconds in latest.values()],
        [function for function, _ in latest.values()],
    )


def _aligned_functions(batches: Sequence[HistoryColumns]) -> Sequence[str]:
    """Each task's function in the newest of ``batches`` (all of the same tasks) that has a
    duration of it."""
    newest = batches[0].functions
    if all(batch.functions == newest for batch in batches[1:]):
        return newest
    functions = list(batches[-1].functions)
    for batch in reversed(batches):
        for i, (function, seconds) in enumerate(zip(batch.functions, batch.seconds, strict=True)):
            if seconds:
                functions[i] = function
    return functions
