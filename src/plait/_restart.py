"""How a resume starts a run over in part: ``rerun`` (clear with downstream), a changed
definition accepted with ``accept_changes``, and which skips a resume keeps (:func:`kept_skips`).

The tasks cleared are the ones named in ``rerun``, the added and changed tasks, and everything
downstream of them; they lose their records and questions (their questions are asked again) but
keep their count of attempts, so attempt numbers go on. Removed tasks are dropped from the run.
One write does it all, and leaves a ``RunResumed`` entry in the run's event log -- what was
cleared, added, changed and removed, and the status the run had -- so a finished run that runs
again is a new attempt of the same run, recorded in its history.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from ._definition import DefinitionDiff
from ._exceptions import InvalidOptionError
from ._graph import Graph
from ._results import TaskError
from ._state import RunStatus, SkipCause, TaskStatus
from .stores import EventRecord, RunRecord, RunUpdate, TaskRecord, WriteBatch

__all__ = ["cleared_tasks", "kept_skips", "restart_batch"]


def kept_skips(graph: Graph, tasks: Mapping[str, TaskRecord]) -> dict[int, TaskError | None]:
    """The tasks that skipped themselves (``raise plait.Skip``) and stay skipped on resume, by
    index, with the reason they gave.

    A resume runs failed (and unfinished) tasks again, so the skips that followed from them are
    decided again by the rules. A task's dependencies end the same way as before when each one
    succeeded (it is not run again), or was skipped while its own dependencies ended the same
    way (a rule decides the same; a task that skipped itself is kept): then a task that skipped
    itself stays skipped, and a task skipped by its rule is skipped again by the same rule.
    """
    unchanged = [False] * len(graph)
    kept: dict[int, TaskError | None] = {}
    ids, dependencies = graph.ids, graph.dependencies
    for i in graph.topological_order:
        record = tasks.get(ids[i])
        if record is None:
            continue
        if record.status is TaskStatus.SUCCEEDED:
            unchanged[i] = True
        elif record.status is TaskStatus.SKIPPED and all(unchanged[d] for d in dependencies[i]):
            unchanged[i] = True
            if record.skip_cause is SkipCause.SKIPPED_BY_TASK:
                kept[i] = record.error
    return kept


def cleared_tasks(
    graph: Graph, diff: DefinitionDiff | None, rerun: Sequence[str], run_id: str
) -> list[str]:
    """The tasks a resume runs afresh: those in ``rerun``, the added and changed ones, and
    everything downstream of them; in definition order.

    Raises:
        InvalidOptionError: ``rerun`` names an unknown task.
    """
    if isinstance(rerun, str):
        rerun = [rerun]
    unknown = [task_id for task_id in rerun if task_id not in graph.index]
    if unknown:
        raise InvalidOptionError(
            f"rerun names {', '.join(map(repr, unknown))}, which workflow "
            f"{graph.workflow_name!r} of run {run_id!r} does not have; its tasks are: "
            f"{', '.join(graph.ids)}"
        )
    roots = [graph.index[t] for t in rerun]
    if diff:
        roots += [graph.index[t] for t in (*diff.added, *diff.changed)]
    seen = set(roots)
    queue = list(roots)
    while queue:
        for d in graph.dependents[queue.pop()]:
            if d not in seen:
                seen.add(d)
                queue.append(d)
    return [graph.ids[i] for i in sorted(seen)]


def restart_batch(
    graph: Graph,
    record: RunRecord,
    *,
    diff: DefinitionDiff | None,
    cleared: Sequence[str],
    attempts: Mapping[str, int],
    now: float,
) -> WriteBatch:
    """The write that makes a run start over from its changed definition and cleared tasks:
    their records and questions go, a cleared task keeps its count of attempts, and the event
    log says what happened."""
    removed = list(diff.removed) if diff else []
    data: dict[str, Any] = {"cleared": list(cleared)}
    if diff:
        data.update(
            accepted_changes=diff.describe(),
            added=list(diff.added),
            changed=list(diff.changed),
            removed=removed,
        )
    return WriteBatch(
        run=RunUpdate(
            status=RunStatus.RUNNING,
            definition=graph.definition() if diff else None,
            fingerprint=graph.fingerprint() if diff else None,
        ),
        dropped=[*cleared, *removed],
        tasks=[
            TaskRecord(task_id=task_id, status=TaskStatus.PENDING, attempts=attempts[task_id])
            for task_id in cleared
            if attempts.get(task_id)
        ],
        events=[
            EventRecord(
                kind="RunResumed",
                time=now,
                data={**data, "previous_status": record.status.value},
            )
        ],
    )
