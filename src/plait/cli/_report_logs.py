"""The run page's logs, as data: each task's attempts that said something, and what each said
(its last :data:`LOG_LINES_SHOWN` lines, with a note of how to print the lines left out). No
markup.

One entry per task, in the timeline's order; of a mapped task's instances, only those its
timeline group shows, so a mapped task with many instances costs the page a few hundred logs,
never one per instance.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from .._state import TaskStatus
from ._report_timeline import log_line
from ._timeline import _Run, _Task

__all__ = [
    "LOG_LINES_SHOWN",
    "AttemptLogView",
    "TaskAttemptsView",
    "log_anchor",
    "logs_view",
]

#: The most lines of one attempt's log the page shows (its last ones).
LOG_LINES_SHOWN = 400


@dataclass(frozen=True, slots=True)
class AttemptLogView:
    attempt: int
    anchor: str
    lines: int  # how many lines it said in all
    text: str  # its last LOG_LINES_SHOWN lines, with a note of the lines left out
    open: bool  # the last attempt of a failed task: shown open


@dataclass(frozen=True, slots=True)
class TaskAttemptsView:
    """A task's attempts that said something, oldest first."""

    task_id: str
    look: str
    attempts: Sequence[AttemptLogView]


def log_anchor(task_id: str, attempt: int) -> str:
    """The id of an attempt's log on the page."""
    return f"log-{task_id}-{attempt}"


def logs_view(run: _Run, order: Sequence[_Task], instances: set[str]) -> list[TaskAttemptsView]:
    """One entry per task that said something, in the timeline's order; of a mapped task's
    instances, those the timeline shows (``instances``)."""
    views = []
    for task in _with_instances(order, run, instances):
        attempts = []
        for attempt in range(1, task.attempts + 1):
            lines = run.logs.get((task.id, attempt))
            if not lines:
                continue
            shown = lines[-LOG_LINES_SHOWN:]
            cut = len(lines) - len(shown)
            text = "\n".join(log_line(line, run) for line in shown)
            if cut:
                text = (
                    f"\u2026 {cut} earlier lines: plait logs {run.record.run_id} {task.id} "
                    f"--attempt {attempt} prints them all\n{text}"
                )
            attempts.append(
                AttemptLogView(
                    attempt=attempt,
                    anchor=log_anchor(task.id, attempt),
                    lines=len(lines),
                    text=text,
                    open=task.status is TaskStatus.FAILED and attempt == task.attempts,
                )
            )
        if attempts:
            views.append(TaskAttemptsView(task.id, task.css, attempts))
    return views


def _with_instances(order: Sequence[_Task], run: _Run, shown: set[str]) -> list[_Task]:
    """The tasks in ``order``, each mapped task followed by its instances in ``shown``."""
    tasks = []
    for task in order:
        tasks.append(task)
        tasks.extend(t for t in run.instances.get(task.id, ()) if t.id in shown)
    return tasks
