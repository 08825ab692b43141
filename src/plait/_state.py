"""The life cycle of tasks and runs.

A task starts ``pending``. Once its dependencies have succeeded it is *ready* (still ``pending``,
now in the scheduler's ready queue); it becomes ``running`` when it gets a concurrency slot, and
ends in one of the final states:

- ``succeeded``: an attempt returned; its output feeds the dependents.
- ``failed``: the last allowed attempt raised (or timed out).
- ``skipped``: a dependency failed or was skipped, so the task could never run.
- ``cancelled``: the run was stopped (a critical failure, fail-fast, or an interrupt) before the
  task finished.

A failed attempt that will be retried takes a running task back to ``pending`` for its backoff,
holding no slot. ``waiting_for_input`` belongs to pausing for a person's answer.

A run is ``running`` until every task is final; it then ends ``succeeded`` when every task
succeeded, ``failed`` when any task failed, was skipped or was cancelled by a failure, and
``cancelled`` when it was interrupted. ``paused`` belongs to pausing for input.
"""

from __future__ import annotations

from enum import StrEnum

from ._public import publish_exports

__all__ = ["FINAL_TASK_STATUSES", "TASK_TRANSITIONS", "RunStatus", "TaskStatus"]


class TaskStatus(StrEnum):
    """Where a task is in its life cycle."""

    PENDING = "pending"
    RUNNING = "running"
    WAITING_FOR_INPUT = "waiting_for_input"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    SKIPPED = "skipped"
    CANCELLED = "cancelled"

    @property
    def is_final(self) -> bool:
        """Whether the task will not change any more in this run."""
        return self in FINAL_TASK_STATUSES


class RunStatus(StrEnum):
    """Where a run is in its life cycle."""

    RUNNING = "running"
    PAUSED = "paused"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"


FINAL_TASK_STATUSES = frozenset(
    {TaskStatus.SUCCEEDED, TaskStatus.FAILED, TaskStatus.SKIPPED, TaskStatus.CANCELLED}
)

#: Every change of status a task may make; anything else is a bug in the engine.
TASK_TRANSITIONS: dict[TaskStatus, frozenset[TaskStatus]] = {
    TaskStatus.PENDING: frozenset(
        {
            TaskStatus.SUCCEEDED,  # a resumed run restores the tasks that succeeded before
            TaskStatus.RUNNING,
            TaskStatus.WAITING_FOR_INPUT,
            TaskStatus.SKIPPED,
            TaskStatus.CANCELLED,
        }
    ),
    TaskStatus.RUNNING: frozenset(
        {
            TaskStatus.PENDING,  # a failed attempt waits out its backoff before the retry
            TaskStatus.WAITING_FOR_INPUT,
            TaskStatus.SUCCEEDED,
            TaskStatus.FAILED,
            TaskStatus.CANCELLED,
        }
    ),
    TaskStatus.WAITING_FOR_INPUT: frozenset(
        {TaskStatus.PENDING, TaskStatus.RUNNING, TaskStatus.FAILED, TaskStatus.CANCELLED}
    ),
    TaskStatus.SUCCEEDED: frozenset(),
    TaskStatus.FAILED: frozenset(),
    TaskStatus.SKIPPED: frozenset(),
    TaskStatus.CANCELLED: frozenset(),
}


publish_exports(globals())  # plait.X, not plait._state.X: see plait._public
