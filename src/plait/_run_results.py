"""Reading a run's state: its result, a task's result, and the columns its store records.

A part of :class:`plait._engine._Run` (see :mod:`plait._run_state`): what turns the run's
columns into what the caller, a task's ``ctx.upstream`` and the store see -- copies, since the
run may still change its state -- and how a run's status and error are told from its tasks'.
"""

from __future__ import annotations

import operator
import time
from collections.abc import Callable, Sequence
from typing import Any

from ._results import RunResult, TaskResult, TaskResults
from ._run_state import _CANCELLED, _SKIPPED, _SUCCEEDED, _RunState
from ._state import RunStatus, SkipCause, TaskStatus
from .executors._remote import FetchingColumn
from .stores import TaskRecordColumns

__all__: list[str] = []


class _Results(_RunState):
    """The run's state as results and store records (see the module docstring)."""

    def result(self) -> RunResult:
        """The run's result as it stands."""
        graph = self.graph
        status = self.scheduler.status
        values = list(self.outputs)
        # Handles on values kept elsewhere (executors._remote) are fetched when read.
        outputs: Sequence[Any] = FetchingColumn(values) if self.remote_outputs else values
        tasks = TaskResults(
            dict(graph.index) if graph.growable else graph.index,
            status=list(status),
            output=outputs,
            error=list(self.errors),
            attempts=list(self.attempts),
            started_at=list(self.started_at),
            finished_at=list(self.finished_at),
            skip_cause=list(self.scheduler.skip_cause),
            instances=dict(graph.instances),
        )
        if self.interrupted:
            run_status = RunStatus.CANCELLED
        elif status.count(TaskStatus.SUCCEEDED) == len(status) or self._only_skipped_else():
            run_status = RunStatus.SUCCEEDED
        elif self.scheduler.finished:
            run_status = RunStatus.FAILED
        elif self._can_only_wait():
            run_status = RunStatus.PAUSED
        else:
            run_status = RunStatus.RUNNING
        return RunResult(
            run_id=self.run_id,
            workflow=graph.workflow_name,
            status=run_status,
            tasks=tasks,
            started_at=self.run_started_at,
            finished_at=time.time(),
            error=self._describe_failure(run_status),
            waiting={graph.ids[i]: question for i, question in self.questions.items()},
        )

    def _describe_failure(self, run_status: RunStatus) -> str | None:
        if run_status in (RunStatus.SUCCEEDED, RunStatus.RUNNING, RunStatus.PAUSED):
            return None
        ids = self.graph.ids
        status = self.scheduler.status
        # A mapped task that expanded fails through its instances: they are named, not it too.
        expanded = self.graph.instances
        failed_status = TaskStatus.FAILED  # once: not once per task
        failed = [i for i, s in enumerate(status) if s is failed_status and i not in expanded]
        skipped = status.count(_SKIPPED)
        cancelled = status.count(_CANCELLED)
        if self.store_failure is not None:
            head = str(self.store_failure)
        elif self.interrupted:
            head = f"the run was {self.stop_reason or 'interrupted'}"
        elif self.halted_by is not None:
            reason = (
                "is critical" if self.graph.specs[self.halted_by].critical else "fail_fast is on"
            )
            head = (
                f"task {ids[self.halted_by]!r} failed and {reason}, so the run was stopped: "
                f"{self.errors[self.halted_by]}"
            )
        else:
            shown = "; ".join(f"{ids[i]!r}: {self.errors[i]}" for i in failed[:5])
            more = f" (and {len(failed) - 5} more)" if len(failed) > 5 else ""
            head = f"{len(failed)} task(s) failed: {shown}{more}"
        tail = [f"{n} {what}" for n, what in ((skipped, "skipped"), (cancelled, "cancelled")) if n]
        return head + (f" ({', '.join(tail)})" if tail else "")

    def _only_skipped_else(self) -> bool:
        """Whether every task that did not succeed was skipped by a rule or by ``plait.Skip``:
        no failure (a skip because something failed comes with that failure or cancellation,
        and fails the run; so does any task left unfinished)."""
        status = self.scheduler.status
        if status.count(TaskStatus.SUCCEEDED) + status.count(TaskStatus.SKIPPED) < len(status):
            return False
        return SkipCause.UPSTREAM_FAILED not in self.scheduler.skip_cause

    def task_result(self, i: int, *, with_instances: bool = True) -> TaskResult:
        """Task ``i``'s result as it stands (for ``ctx.upstream``). Under the lock.

        ``with_instances``: for a mapped task, fill ``instances`` too (O(instances)); an
        instance's ``ctx.upstream`` leaves them out, or 100,000 instances each reading a mapped
        dependency's would cost O(n^2)."""
        status = self.scheduler.status[i]
        instances = self.graph.instances.get(i) if self.graph.mapped else None
        return TaskResult(
            self.graph.ids[i],
            status,
            self.outputs[i] if status is _SUCCEEDED or instances is not None else None,
            self.errors[i],
            self.attempts[i],
            self.started_at[i],
            self.finished_at[i],
            self.scheduler.skip_cause[i],
            None
            if instances is None or not with_instances
            else tuple(map(self.task_result, instances)),
        )

    def _can_only_wait(self) -> bool:
        """Whether every unfinished task waits for an answer, or for a task that does."""
        scheduler = self.scheduler
        return bool(scheduler.waiting) and scheduler.idle and not self._backoffs

    def task_columns(self, task_ids: Sequence[str] | None = None) -> TaskRecordColumns:
        """The records of ``task_ids`` (default: every task) for the store, as columns of
        copies: the run may still change them. Under the lock."""
        outputs = self.payloads if self._encodes else self.outputs
        status = self.scheduler.status
        causes = self.scheduler.skip_cause
        if task_ids is None:
            ids = self.graph.ids
            return TaskRecordColumns(
                task_ids=list(ids) if self.graph.growable else ids,
                status=list(status),
                attempts=list(self.attempts),
                output=list(outputs),
                error=list(self.errors),
                started_at=list(self.started_at),
                finished_at=list(self.finished_at),
                skip_cause=list(causes),
            )
        # A batch's tasks, read under the lock: itemgetter picks them in C, faster than a
        # comprehension per column (0.6 -> 0.4 µs a task, 10,000 of them, best of 40).
        rows = list(map(self.graph.index.__getitem__, task_ids))
        take = operator.itemgetter(*rows) if len(rows) > 1 else _picker(rows)
        return TaskRecordColumns(
            task_ids=list(task_ids),
            status=take(status),
            attempts=take(self.attempts),
            output=take(outputs),
            error=take(self.errors),
            started_at=take(self.started_at),
            finished_at=take(self.finished_at),
            skip_cause=take(causes),
        )


def _picker(rows: list[int]) -> Callable[[Sequence[Any]], list[Any]]:
    """What ``operator.itemgetter(*rows)`` does, for fewer than two rows (where it would give
    the item itself, or fail)."""
    return lambda column: [column[i] for i in rows]
