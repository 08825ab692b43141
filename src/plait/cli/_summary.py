"""Figures about a run and about a graph's shape, for the command line's summaries.

Two pure computations, no I/O:

- :func:`figures_of` -- how a run used its time, from the spans its attempts ran over: the
  *makespan* (first attempt's start to last attempt's end), the *task time* (the sum of every
  attempt's duration: waiting for an answer and retry backoff are not work), the *parallelism*
  (task time over makespan: how many tasks ran at once on average) and the *critical path* by
  **work** (the chain of dependent tasks whose attempts add up to the most: no schedule, with
  any number of slots, could have finished sooner than it). This is the one place these figures
  are computed: the HTML report and the command line's summaries (through
  ``_timeline.stored_figures``, which replays a stored run's event log into attempts) both call
  it, so they name the same path with the same weights.
- :func:`run_figures` -- the same figures from a :class:`RunResult` alone (one span per task,
  from its first start to its last end), for a run whose store is not at hand.
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
    "figures_of",
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
    missing = dict.fromkeys(among, 0)
    dependents: dict[str, list[str]] = {t: [] for t in among}
    for t in among:
        for d in dependencies.get(t, ()):
            if d in members:
                missing[t] += 1
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


def _critical_path(
    work: Mapping[str, float], dependencies: Dependencies
) -> tuple[list[str], float]:
    """The heaviest chain of dependent tasks by ``work``, and its weight.

    Ties go to the task listed first in ``work`` (the definition's order); the path ends in a
    task that did work, and tasks that did none are not at its start.
    """
    index = {task_id: i for i, task_id in enumerate(work)}
    longest: dict[str, float] = {}
    through: dict[str, str | None] = {}
    for task_id in _topological(dependencies, list(work)):
        best: str | None = None
        for dep in dependencies.get(task_id, ()):
            if dep in longest and (
                best is None
                or longest[dep] > longest[best]
                or (longest[dep] == longest[best] and index[dep] < index[best])
            ):
                best = dep
        longest[task_id] = work[task_id] + (longest[best] if best is not None else 0.0)
        through[task_id] = best
    worked = [task_id for task_id in work if work[task_id] > 0 and task_id in longest]
    if not worked:
        return [], 0.0
    last = max(worked, key=lambda t: (longest[t], -index[t]))
    path: list[str] = []
    step: str | None = last
    while step is not None:
        path.append(step)
        step = through[step]
    path.reverse()
    while path and work[path[0]] == 0:  # leading tasks that did nothing are not on it
        path.pop(0)
    return path, longest[last]


#: Task id -> the (start, end) of each of its attempts.
Spans = Mapping[str, Sequence[tuple[float, float]]]


def figures_of(
    spans: Spans, dependencies: Dependencies, *, weights: Mapping[str, float] | None = None
) -> RunFigures:
    """The figures of a run whose attempts ran over ``spans`` (see the module docstring).

    Args:
        spans: task id -> the (start, end) of each of its attempts, every task of the run in
            the definition's order (a task that never ran has none).
        dependencies: task id -> dependency ids.
        weights: the nodes the critical path is sought among, and what each weighs (by
            default every task of ``spans``, weighing its work): a caller that knows many
            tasks to be interchangeable on any path (a mapped task's instances) offers one node
            for them all.
    """
    work = {
        task_id: sum(max(0.0, end - start) for start, end in spans[task_id]) for task_id in spans
    }
    intervals = [interval for attempts in spans.values() for interval in attempts]
    needed = {dependency for deps in dependencies.values() for dependency in deps}
    final = tuple(task_id for task_id in spans if task_id not in needed)
    if not intervals:
        return RunFigures(0.0, 0.0, 0.0, (), 0.0, 0, final)
    makespan = max(end for _, end in intervals) - min(start for start, _ in intervals)
    task_time = sum(work.values())
    path, seconds = _critical_path(work if weights is None else weights, dependencies)
    return RunFigures(
        makespan=makespan,
        task_time=task_time,
        parallelism=task_time / makespan if makespan > 0 else 0.0,
        critical_path=tuple(path),
        critical_seconds=seconds,
        tasks=sum(1 for attempts in spans.values() if attempts),
        final_tasks=final,
    )


def run_figures(result: RunResult, dependencies: Dependencies) -> RunFigures:
    """The figures of ``result`` alone: one span per task, from its first start to its last end,
    over the tasks that started at or after ``result.started_at`` (see the module docstring).
    With the run's store at hand, ``_timeline.stored_figures`` counts each attempt instead.

    Args:
        result: a finished (or paused) run's result.
        dependencies: task id -> dependency ids (:func:`dependencies_of`, or
            :func:`dependencies_from_definition` for a stored run).
    """
    spans: dict[str, list[tuple[float, float]]] = {}
    for task_id, task in result.tasks.items():
        started, finished = task.started_at, task.finished_at
        ran = started is not None and finished is not None and started >= result.started_at
        spans[task_id] = [(started, finished)] if ran else []  # type: ignore[list-item]
    return figures_of(spans, dependencies)


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
