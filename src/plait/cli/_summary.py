"""Figures about a run and about a graph's shape, for the command line's summaries.

Two pure computations, no I/O:

- :func:`run_figures` -- how a run used its time: the *makespan* (first task start to last task
  end), the *task time* (the sum of every task's duration), the *parallelism* (task time over
  makespan: how many tasks ran at once on average) and the *critical path* by **actual**
  durations (the chain of dependent tasks whose durations add up to the most: no schedule, with
  any number of slots, could have finished sooner than it).
- :func:`graph_shape` -- what ``plait validate`` prints: tasks, edges, depth (the most tasks on
  one chain), width (the largest layer, a layer being the tasks at the same depth) and the
  critical path by *estimate* (the one the scheduler favours before anything has run).

A resumed run's result also holds the tasks that succeeded before the resume; their times
belong to an earlier session, so :func:`run_figures` counts only the tasks that started at or
after the result's ``started_at``. For a stored run (``plait.get_run``) that is the run's
creation, so every task counts.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from .._results import RunResult
from .._workflow import Workflow

__all__ = [
    "GraphShape",
    "RunFigures",
    "dependencies_from_definition",
    "dependencies_of",
    "format_seconds",
    "graph_shape",
    "run_figures",
]

#: Task id -> the ids of the tasks it depends on.
Dependencies = Mapping[str, Sequence[str]]


def format_seconds(seconds: float) -> str:
    """``0.42s``, ``12.30s``, ``2m05s``, ``1h02m``: short, and exact where it matters."""
    if seconds < 60:
        return f"{seconds:.2f}s"
    whole = round(seconds)
    if whole < 3600:
        return f"{whole // 60}m{whole % 60:02d}s"
    return f"{whole // 3600}h{whole % 3600 // 60:02d}m"


@dataclass(frozen=True, slots=True)
class RunFigures:
    """How a run used its time; ``str()`` gives the one line the command line prints.

    Attributes:
        makespan: seconds from the first task's start to the last task's end.
        task_time: the sum of the tasks' durations, in seconds.
        parallelism: ``task_time / makespan`` (0 when nothing ran).
        critical_path: the ids along the longest chain of dependent tasks, by actual durations.
        critical_seconds: the sum of the durations along that chain.
        tasks: how many tasks ran (and count in these figures).
        final_tasks: the tasks no other task depends on: their outputs are the run's results.
    """

    makespan: float
    task_time: float
    parallelism: float
    critical_path: tuple[str, ...]
    critical_seconds: float
    tasks: int
    final_tasks: tuple[str, ...] = ()

    def __str__(self) -> str:
        n = len(self.critical_path)
        return (
            f"makespan {format_seconds(self.makespan)} · task time "
            f"{format_seconds(self.task_time)} · parallelism {self.parallelism:.1f}x · "
            f"critical path {format_seconds(self.critical_seconds)} "
            f"({n} task{'' if n == 1 else 's'})"
        )


def dependencies_of(workflow: Workflow) -> dict[str, tuple[str, ...]]:
    """Task id -> dependency ids, from a workflow."""
    return {task_id: spec.depends_on for task_id, spec in workflow.tasks.items()}


def dependencies_from_definition(
    definition: Sequence[Mapping[str, object]],
) -> dict[str, tuple[str, ...]]:
    """Task id -> dependency ids, from a stored run's definition (``RunRecord.definition``)."""
    result: dict[str, tuple[str, ...]] = {}
    for task in definition:
        depends_on = task.get("depends_on") or ()
        assert isinstance(depends_on, Sequence)
        result[str(task["id"])] = tuple(str(d) for d in depends_on)
    return result


def _topological(dependencies: Dependencies, among: Sequence[str]) -> list[str]:
    """``among`` in an order where each task follows its dependencies (within ``among``)."""
    members = set(among)
    missing = {t: sum(1 for d in dependencies.get(t, ()) if d in members) for t in among}
    dependents: dict[str, list[str]] = {t: [] for t in among}
    for t in among:
        for d in dependencies.get(t, ()):
            if d in members:
                dependents[d].append(t)
    queue = deque(t for t in among if missing[t] == 0)
    order: list[str] = []
    while queue:
        t = queue.popleft()
        order.append(t)
        for after in dependents[t]:
            missing[after] -= 1
            if missing[after] == 0:
                queue.append(after)
    return order


def _longest_path(
    dependencies: Dependencies, among: Sequence[str], weight: Mapping[str, float]
) -> tuple[list[str], float]:
    """The heaviest chain of dependent tasks within ``among``, and its weight."""
    best: dict[str, float] = {}
    previous: dict[str, str | None] = {}
    for t in _topological(dependencies, among):
        before = [d for d in dependencies.get(t, ()) if d in best]
        # ties go to the dependency listed first, so the answer does not depend on set order
        chosen = max(before, key=lambda d: best[d], default=None)
        best[t] = weight[t] + (best[chosen] if chosen is not None else 0.0)
        previous[t] = chosen
    if not best:
        return [], 0.0
    end = max(best, key=lambda t: best[t])
    path: list[str] = []
    at: str | None = end
    while at is not None:
        path.append(at)
        at = previous[at]
    path.reverse()
    return path, best[end]


def run_figures(result: RunResult, dependencies: Dependencies) -> RunFigures:
    """The figures of ``result``, over the tasks that ran in it (see the module docstring).

    Args:
        result: a finished (or paused) run's result.
        dependencies: task id -> dependency ids (:func:`dependencies_of`, or
            :func:`dependencies_from_definition` for a stored run).
    """
    durations: dict[str, float] = {}
    starts: list[float] = []
    ends: list[float] = []
    for task_id, task in result.tasks.items():
        started, finished = task.started_at, task.finished_at
        if started is None or finished is None or started < result.started_at:
            continue
        durations[task_id] = max(0.0, finished - started)
        starts.append(started)
        ends.append(finished)
    needed = {dependency for deps in dependencies.values() for dependency in deps}
    final = tuple(task_id for task_id in result.tasks if task_id not in needed)
    if not durations:
        return RunFigures(0.0, 0.0, 0.0, (), 0.0, 0, final)
    makespan = max(ends) - min(starts)
    task_time = sum(durations.values())
    path, seconds = _longest_path(dependencies, list(durations), durations)
    return RunFigures(
        makespan=makespan,
        task_time=task_time,
        parallelism=task_time / makespan if makespan > 0 else 0.0,
        critical_path=tuple(path),
        critical_seconds=seconds,
        tasks=len(durations),
        final_tasks=final,
    )


@dataclass(frozen=True, slots=True)
class GraphShape:
    """The shape of a workflow's graph, as ``plait validate`` reports it.

    Attributes:
        tasks, edges: how many tasks and dependencies.
        depth: the most tasks on one chain of dependencies.
        width: the most tasks in one layer (tasks whose longest chain of dependencies is equally
            long), i.e. how many could run at once if every task took as long.
        critical_path: the ids along the longest path by ``estimate`` (an unset one
            counts as the median of the known ones, as for the scheduler).
    """

    tasks: int
    edges: int
    depth: int
    width: int
    critical_path: tuple[str, ...]


def graph_shape(workflow: Workflow) -> GraphShape:
    """The shape of ``workflow``'s graph.

    Raises:
        WorkflowError: the workflow is invalid (unknown dependency, cycle).
    """
    graph = workflow.graph()
    layer = [0] * len(graph)
    for i in graph.topological_order:
        layer[i] = 1 + max((layer[d] for d in graph.dependencies[i]), default=0)
    sizes: dict[int, int] = {}
    for n in layer:
        sizes[n] = sizes.get(n, 0) + 1
    return GraphShape(
        tasks=len(graph),
        edges=sum(len(d) for d in graph.dependencies),
        depth=max(layer, default=0),
        width=max(sizes.values(), default=0),
        critical_path=tuple(graph.critical_path()),
    )
