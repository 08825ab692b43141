"""The life cycle of tasks and runs.

A task starts ``pending``. Once its dependencies have succeeded it is *ready* (still ``pending``,
now in the scheduler's ready queue); it becomes ``running`` when it gets a concurrency slot, and
ends in one of the final states:

- ``succeeded``: an attempt returned; its output feeds the dependents.
- ``failed``: the last allowed attempt raised (or timed out).
- ``skipped``: the task's trigger rule could no longer be met (by default: a dependency failed or
  was skipped), or the task raised :class:`plait.Skip`; its :class:`SkipCause` says which.
- ``cancelled``: the run was stopped (a critical failure, fail-fast, or an interrupt) before the
  task finished.

A failed attempt that will be retried takes a running task back to ``pending`` for its backoff,
holding no slot. ``waiting_for_input`` belongs to pausing for a person's answer.

A run is ``running`` until every task is final; it then ends ``succeeded`` when every task
succeeded or was skipped without a failure (by a rule or by ``Skip``), ``failed`` when any task
failed, was skipped because something failed, or was cancelled by a failure, and
``cancelled`` when it was interrupted. ``paused`` belongs to pausing for input.
"""

from __future__ import annotations

from enum import StrEnum

from ._public import publish_exports

__all__ = ["FINAL_TASK_STATUSES", "TASK_TRANSITIONS", "RunStatus", "SkipCause", "TaskStatus"]


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


class SkipCause(StrEnum):
    """Why a task was skipped.

    For the trigger rules of its dependents, a task skipped with ``UPSTREAM_FAILED`` counts as
    upstream-failed, any other skip as skipped (as Airflow's ``upstream_failed`` and ``skipped``
    states).
    """

    UPSTREAM_FAILED = "upstream_failed"
    """Something upstream failed (or was cancelled), so the rule cannot be met."""
    UPSTREAM_SKIPPED = "upstream_skipped"
    """Dependencies were skipped, so the rule cannot be met."""
    TRIGGER_RULE = "trigger_rule"
    """The rule cannot be met for another reason (``one_failed`` when nothing failed...)."""
    SKIPPED_BY_TASK = "skipped_by_task"
    """The task raised :class:`plait.Skip`."""


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
            TaskStatus.SKIPPED,  # the task raised plait.Skip
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
