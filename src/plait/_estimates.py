"""Learned estimates: how long a task will take, from how long it took before.

A task's ``estimate`` weights the critical path that orders ready tasks (see ``plait._graph``).
Few people write estimates, and those they write go stale; the store knows better. At a run's
start, when ``EngineConfig.learn_estimates`` is on (the default), each task without an explicit
``estimate`` gets one from the store's history of the workflow (:meth:`Store.task_history`,
one query, one row per task), by the first rule that applies:

1. **learned**: the median of the task's own latest 5 succeeded attempts, in earlier runs of a
   workflow of the same name;
2. **function**: else the median of those of every task that calls the same function
   (``module:qualname``, as the run's definition names it) -- a new task of a familiar kind;
3. **unknown**: else none; the graph weighs it as the median of the workflow's known estimates
   (given and learned), or 1 when none is known.

An explicit ``estimate=`` always wins (**given**). Only the order of ready tasks can change,
never what runs or whether it succeeds.

What counts as a duration: an attempt's start to its end, less the time it waited for people's
answers (:class:`~plait.stores.TaskDuration`); retry backoff lies between attempts, so it never
counts. Durable stores record them from the run's events, as each batch is written; the memory
store, written once at the end, keeps the tasks that succeeded at their first attempt and asked
nothing (their record's start and end bound exactly one attempt).

Mapped tasks: a mapped task is learned from its instances' durations, under its own id (never
``convert[3]``'s: instances' ids would make the history grow with every item). A run records the
first :data:`SAMPLES_PER_MAPPED_TASK` instances of each mapped task that succeed, enough for the
median of the latest five, so a mapped task of 100,000 items adds five rows, not 100,000.

Determinism: the history read at the start is fixed for the run, the medians are plain
arithmetic on it, and ties fall back to definition order, so for a given history the order in
which tasks start at ``max_concurrency=1`` is always the same.
"""

from __future__ import annotations

from collections.abc import Container, Sequence
from enum import StrEnum
from typing import TYPE_CHECKING, Any, NamedTuple, overload

from ._graph import Graph, _function_names, _median, series_id
from ._public import publish_exports
from ._state import TaskStatus
from .stores import TaskDuration, TaskHistory

if TYPE_CHECKING:
    from .stores import Store, TaskRecordColumns

__all__ = [
    "SAMPLES_PER_MAPPED_TASK",
    "Estimate",
    "EstimateSource",
    "FirstTryDurations",
    "estimate_tasks",
    "learn",
    "learned_graph",
]


class EstimateSource(StrEnum):
    """Where a task's estimate comes from (see the module docstring)."""

    GIVEN = "given"
    LEARNED = "learned"
    FUNCTION = "function"
    UNKNOWN = "unknown"


class Estimate(NamedTuple):
    """A task's estimate: ``seconds`` (None when unknown), where it comes from, and how many
    recorded attempts it is the median of (0 for a given or unknown one). A named tuple: a
    run's start makes one per task."""

    task_id: str
    seconds: float | None
    source: EstimateSource
    samples: int = 0


def estimate_tasks(graph: Graph, history: Sequence[TaskHistory]) -> list[Estimate]:
    """Each task's estimate (by task index), from its ``estimate`` and ``history``."""
    own: dict[str, list[float]] = {}
    by_function: dict[str, list[float]] = {}
    for task in history:
        if task.seconds:
            own[task.task_id] = list(task.seconds)
            by_function.setdefault(task.function, []).extend(task.seconds)
    estimates = []
    for task_id, spec, function in zip(
        graph.ids, graph.specs, _function_names(graph.specs), strict=True
    ):
        if spec.estimate is not None:
            estimates.append(Estimate(task_id, spec.estimate, _GIVEN))
        elif (seconds := own.get(task_id)) is not None:
            estimates.append(_median_of(task_id, seconds, EstimateSource.LEARNED))
        elif (seconds := by_function.get(function)) is not None:
            estimates.append(_median_of(task_id, seconds, EstimateSource.FUNCTION))
        else:
            estimates.append(Estimate(task_id, None, _UNKNOWN))
    return estimates


_GIVEN, _UNKNOWN = EstimateSource.GIVEN, EstimateSource.UNKNOWN


def _median_of(task_id: str, seconds: list[float], source: EstimateSource) -> Estimate:
    # Sorted first so that the median does not depend on the order the store returned.
    return Estimate(
        task_id=task_id, seconds=_median(sorted(seconds), 0.0), source=source, samples=len(seconds)
    )


def learned_graph(store: Store, graph: Graph) -> Graph:
    """``graph`` ordered by the estimates learned from ``store`` (one query); ``graph`` itself
    when the history teaches nothing (no task lacks an estimate, or none has history)."""
    return learn(store, graph)[0]


def learn(store: Store, graph: Graph) -> tuple[Graph, dict[str, Any]]:
    """:func:`learned_graph`, and the estimates it weighs the tasks by, as the run records them
    for its report (see :func:`_document`; empty when no task has one)."""
    if all(spec.estimate is not None for spec in graph.specs):
        return graph, _document(estimate_tasks(graph, ()))
    history = store.task_history(graph.workflow_name)
    if not history:
        if any(spec.estimate is not None for spec in graph.specs):
            return graph, _document(estimate_tasks(graph, ()))
        return graph, {}
    estimates = estimate_tasks(graph, history)
    return graph.reranked([e.seconds for e in estimates]), _document(estimates)


def _document(estimates: Sequence[Estimate]) -> dict[str, Any]:
    """The estimates as the run's record keeps them (compact: one JSON list and one string for
    a whole run): ``seconds`` by task, in definition order (None when unknown), and ``from``,
    one letter per task: given, learned, function, unknown."""
    return {
        "seconds": [e.seconds for e in estimates],
        "from": "".join([_LETTER[e.source] for e in estimates]),
    }


_LETTER = {
    EstimateSource.GIVEN: "g",
    EstimateSource.LEARNED: "l",
    EstimateSource.FUNCTION: "f",
    EstimateSource.UNKNOWN: "u",
}
#: What each letter of a recorded ``from`` stands for.
SOURCE_OF_LETTER = {letter: str(source) for source, letter in _LETTER.items()}


#: How many of a mapped task's instances' durations a run records (see the module docstring).
SAMPLES_PER_MAPPED_TASK = 5


class InstanceSamples:
    """Which instances' durations a run records: the first :data:`SAMPLES_PER_MAPPED_TASK` of
    each mapped task, under the mapped task's id."""

    __slots__ = ("_taken",)

    def __init__(self) -> None:
        self._taken: dict[str, int] = {}

    def sample(self, instance_id: str) -> str | None:
        """The id to record ``instance_id``'s duration under; None: record none."""
        task_id = series_id(instance_id)
        if task_id == instance_id:
            return None
        taken = self._taken.get(task_id, 0)
        if taken >= SAMPLES_PER_MAPPED_TASK:
            return None
        self._taken[task_id] = taken + 1
        return task_id


class FirstTryDurations(Sequence[TaskDuration]):
    """The durations a run that was not journaled can teach (the memory store's): its tasks that
    succeeded at their first attempt and asked no question (``asked``: task indexes), whose
    record's start and end bound exactly that attempt.

    Built when first read: a memory store keeps the history of runs that nobody may learn from,
    and a run of 100,000 tasks should not pay for 100,000 records at its end. It keeps the
    columns it needs, not the outputs.
    """

    __slots__ = ("_asked", "_built", "_columns", "_graph")

    def __init__(self, graph: Graph, tasks: TaskRecordColumns, asked: Container[int]) -> None:
        task_ids, status, attempts, _, _, started_at, finished_at, _ = tasks.columns()
        self._graph = graph
        self._columns = (task_ids, status, attempts, started_at, finished_at)
        self._asked = asked
        self._built: list[TaskDuration] | None = None

    def __bool__(self) -> bool:
        return True  # not worth building to find out

    def __len__(self) -> int:
        return len(self._list())

    @overload
    def __getitem__(self, i: int) -> TaskDuration: ...

    @overload
    def __getitem__(self, i: slice) -> Sequence[TaskDuration]: ...

    def __getitem__(self, i: int | slice) -> TaskDuration | Sequence[TaskDuration]:
        return self._list()[i]

    def _list(self) -> list[TaskDuration]:
        if self._built is None:
            self._built = self._build()
        return self._built

    def _build(self) -> list[TaskDuration]:
        graph, asked = self._graph, self._asked
        functions = _function_names(graph.specs)
        index = graph.index
        durations = []
        succeeded = TaskStatus.SUCCEEDED
        sampled = InstanceSamples()
        for task_id, state, tries, start, end in zip(*self._columns, strict=True):
            if state is not succeeded or tries != 1 or start is None or end is None:
                continue
            i = index[task_id]
            if i in asked or graph.specs[i].pause is not None:
                continue
            learned_as = task_id
            if i >= graph.size:  # an instance: learned as its mapped task
                sampled_as = sampled.sample(task_id)
                if sampled_as is None:
                    continue
                learned_as, i = sampled_as, index[sampled_as]
            durations.append(
                TaskDuration(
                    task_id=learned_as, function=functions[i], seconds=end - start, finished_at=end
                )
            )
        return durations


publish_exports(globals())  # plait.X, not plait._estimates.X: see plait._public
