"""What a run leaves behind: each task's result, and the run's."""

from __future__ import annotations

import traceback
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from ._exceptions import RunFailedError
from ._pause import Question
from ._public import publish_exports
from ._state import RunStatus, SkipCause, TaskStatus

__all__ = ["RunResult", "TaskError", "TaskResult", "TaskResults"]


@dataclass(frozen=True, slots=True)
class TaskError:
    """Why a task failed: the exception's type, message and traceback, as text.

    ``exception`` holds the exception object itself while the run's process lives; it is not part
    of comparisons and is not stored.
    """

    type: str
    message: str
    traceback: str = ""
    exception: BaseException | None = field(default=None, compare=False, repr=False)

    @classmethod
    def from_exception(cls, error: BaseException) -> TaskError:
        """Capture ``error``, with its traceback."""
        kind = type(error)
        name = (
            kind.__qualname__
            if kind.__module__ == "builtins"
            else (f"{kind.__module__}.{kind.__qualname__}")
        )
        return cls(
            type=name,
            message=str(error),
            traceback="".join(traceback.format_exception(error)),
            exception=error,
        )

    def __str__(self) -> str:
        return f"{self.type}: {self.message}" if self.message else self.type


class TaskResult(NamedTuple):
    """One task's outcome in a run (immutable).

    A named tuple rather than a frozen dataclass: a run hands these out one per task read, and a
    frozen dataclass costs three times as much to make (its ``__init__`` goes through
    ``object.__setattr__`` field by field), which ``make bench`` Part 5 shows as the cost of
    reading ``result.tasks[id].output`` for every task.

    Attributes:
        task_id: the task's id.
        status: its final (or, for a snapshot, current) status.
        output: what its function returned, if it succeeded.
        error: why its last attempt failed, if it did.
        attempts: how many attempts started (0 for a task that never ran).
        started_at, finished_at: Unix times of the first attempt's start and the last's end.
        skip_cause: for a skipped task, why (a :class:`SkipCause`: ``"upstream_failed"``,
            ``"upstream_skipped"``, ``"trigger_rule"`` or ``"skipped_by_task"``); else None.
        instances: for a mapped task that expanded, the result of each of its instances, in
            item order (``instances[3]`` is ``convert[3]``'s); None for any other task. The
            output of a mapped task that finished is the list of its succeeded instances'
            outputs, in item order, whatever its status: a dependent that runs although some
            instances failed (``trigger="all_done"``) gets those, and reads ``instances`` to
            see which failed.
    """

    task_id: str
    status: TaskStatus
    output: Any = None
    error: TaskError | None = None
    attempts: int = 0
    started_at: float | None = None
    finished_at: float | None = None
    skip_cause: SkipCause | None = None
    instances: tuple[TaskResult, ...] | None = None

    @property
    def duration(self) -> float | None:
        """Seconds from the first attempt's start to the last attempt's end."""
        if self.started_at is None or self.finished_at is None:
            return None
        return self.finished_at - self.started_at


#: ``tuple.__new__(TaskResult, fields)`` makes a TaskResult from a full tuple of fields: it skips
#: the keyword handling of the constructor and the length check of ``TaskResult._make``.
_tuple_new = tuple.__new__


class TaskResults(Mapping[str, TaskResult]):
    """Task id -> :class:`TaskResult`, made on each access from a finished run's columns.

    A run of 100,000 tasks should not pay for 100,000 result objects nobody reads, nor keep
    those it made: a result is a small tuple, cheaper to make again than to keep (keeping
    them made reading every task of a 100,000-task run twice as slow, the collector walking
    them again and again; ``make bench`` Part 5). Results compare equal, not identical.
    """

    __slots__ = ("_columns", "_ids", "_index", "_instances")

    def __init__(
        self,
        index: Mapping[str, int],
        *,
        status: Sequence[TaskStatus],
        output: Sequence[Any],
        error: Sequence[TaskError | None],
        attempts: Sequence[int],
        started_at: Sequence[float | None],
        finished_at: Sequence[float | None],
        skip_cause: Sequence[SkipCause | None] | None = None,
        instances: Mapping[int, Sequence[int]] | None = None,
    ) -> None:
        """``instances``: each expanded mapped task's instances, by index."""
        self._index = index
        if skip_cause is None:
            skip_cause = [None] * len(status)
        self._columns = (status, output, error, attempts, started_at, finished_at, skip_cause)
        self._instances = instances or None
        self._ids: list[str] | None = None

    def __getitem__(self, task_id: str) -> TaskResult:
        i = self._index[task_id]
        status, output, error, attempts, started_at, finished_at, cause = self._columns
        return _tuple_new(
            TaskResult,
            (
                task_id,
                status[i],
                output[i],
                error[i],
                attempts[i],
                started_at[i],
                finished_at[i],
                cause[i],
                None if self._instances is None else self._instances_of(i),
            ),
        )

    def _instances_of(self, i: int) -> tuple[TaskResult, ...] | None:
        assert self._instances is not None
        instances = self._instances.get(i)
        if instances is None:
            return None
        if self._ids is None:
            self._ids = list(self._index)
        ids = self._ids
        return tuple(self[ids[j]] for j in instances)

    def __iter__(self) -> Iterator[str]:
        return iter(self._index)

    def __len__(self) -> int:
        return len(self._index)

    def __contains__(self, task_id: object) -> bool:
        return task_id in self._index

    def succeeded_outputs(self) -> dict[str, Any]:
        """The outputs of the tasks that succeeded, by task id, read from the columns (without
        building the results)."""
        succeeded = TaskStatus.SUCCEEDED
        status, output = self._columns[0], self._columns[1]
        if status.count(succeeded) == len(status):  # the common case, in C: a fifth of the cost
            return dict(zip(self._index, output, strict=True))
        return {
            task_id: value
            for task_id, state, value in zip(self._index, status, output, strict=True)
            if state is succeeded
        }

    def status_counts(self) -> Counter[TaskStatus]:
        """How many tasks have each status (without building the results)."""
        return Counter(self._columns[0])

    def __repr__(self) -> str:
        return f"<TaskResults of {len(self)} tasks>"


@dataclass(frozen=True, slots=True)
class RunResult:
    """The outcome of a run: its status and every task's :class:`TaskResult`.

    Attributes:
        run_id: the run's unique id.
        workflow: the workflow's name.
        status: ``succeeded``, ``failed`` or ``cancelled`` (``paused`` when waiting for input).
        tasks: task id -> :class:`TaskResult`, in the workflow's order.
        started_at, finished_at: Unix times.
        error: for a run that did not succeed, what went wrong, naming the tasks.
        waiting: for a paused run, task id -> the :class:`Question` it waits on.
        stale_since: for a snapshot (:func:`plait.get_run`) of a run recorded ``running``
            whose owner is gone (its lease ran out), when the lease ran out; else None. See
            :attr:`stale`.
    """

    run_id: str
    workflow: str
    status: RunStatus
    tasks: Mapping[str, TaskResult]
    started_at: float
    finished_at: float
    error: str | None = None
    waiting: Mapping[str, Question] = field(default_factory=dict)
    stale_since: float | None = None

    @property
    def stale(self) -> bool:
        """Whether the run was stale when read: recorded ``running``, but no process holds it
        any more (``plait.resume`` takes it over, ``plait.cancel`` records it cancelled)."""
        return self.stale_since is not None

    @property
    def duration(self) -> float:
        """Wall-clock seconds the run took."""
        return self.finished_at - self.started_at

    @property
    def outputs(self) -> dict[str, Any]:
        """The outputs of the tasks that succeeded, by task id."""
        if isinstance(self.tasks, TaskResults):
            return self.tasks.succeeded_outputs()
        return {
            task_id: task.output
            for task_id, task in self.tasks.items()
            if task.status is TaskStatus.SUCCEEDED
        }

    def raise_for_status(self) -> RunResult:
        """Return this result if the run succeeded; raise :class:`RunFailedError` otherwise."""
        if self.status is not RunStatus.SUCCEEDED:
            if self.error:
                reason = self.error
            elif self.waiting:
                reason = f"waiting for input on {', '.join(map(repr, self.waiting))}"
            else:
                reason = "no reason was recorded"
            raise RunFailedError(
                f"run {self.run_id!r} of workflow {self.workflow!r} ended {self.status}: {reason}",
                self,
            )
        return self

    def __repr__(self) -> str:
        # Cheap even for 100,000 tasks: asyncio may repr a finished run's result on its way out.
        if isinstance(self.tasks, TaskResults):
            counts = self.tasks.status_counts()
        else:
            counts = Counter(task.status for task in self.tasks.values())
        summary = ", ".join(f"{n} {status}" for status, n in counts.items())
        return (
            f"<RunResult {self.run_id!r} {self.status} in {self.duration:.3f}s: {summary or '-'}>"
        )


publish_exports(globals())  # plait.X, not plait._results.X: see plait._public
