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

Cost: the history is read as columns (``stores._history``), not a record per task; a run that
finds its own task order in them reads its tasks' seconds by index. When the history cannot
change the order -- it taught no task anything, or every task weighs the same, as every task
did before -- the graph is not ranked again (the order is the same either way).

Determinism: the history read at the start is fixed for the run, the medians are plain
arithmetic on it, and ties fall back to definition order, so for a given history the order in
which tasks start at ``max_concurrency=1`` is always the same.
"""

from __future__ import annotations

import itertools
from collections.abc import Collection, Sequence
from enum import StrEnum
from typing import TYPE_CHECKING, Any, NamedTuple, overload

from ._definition import _function_names
from ._graph import Graph, series_id
from ._graph_ranks import _median
from ._public import publish_exports
from ._state import TaskStatus
from .stores import TaskDuration, TaskHistory
from .stores._history import DurationColumns, HistoryColumns

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
    seconds, letters, samples = _weigh(graph, history)
    return [
        Estimate(task_id, estimate, _SOURCE_OF[letter], count if letter in "lf" else 0)
        for task_id, estimate, letter, count in zip(
            graph.ids, seconds, letters, samples, strict=True
        )
    ]


def _weigh(
    graph: Graph, history: Sequence[TaskHistory]
) -> tuple[list[float | None], str, list[int]]:
    """Each task's estimate (None when unknown), its source's letter (see :func:`_document`),
    and how many durations it is the median of: its own latest, or all its function's.

    The columns are read in a few passes without a record per task: a run that finds its own
    task order in the history (the same workflow run again) reads its seconds by index.
    """
    columns = HistoryColumns.of(history)
    ids = graph.ids
    if columns.task_ids == ids:
        own = columns.seconds
    else:
        by_id = dict(zip(columns.task_ids, columns.seconds, strict=True))
        own = [by_id.get(task_id, ()) for task_id in ids]
    learned = list(map(_median_of, own))
    given = [options.estimate for options in graph.options]
    if given.count(None) == len(given):
        seconds = learned
        letters = ["l" if s else "u" for s in own]
    else:
        seconds = [m if g is None else g for g, m in zip(given, learned, strict=True)]
        letters = [
            "g" if g is not None else "l" if s else "u" for g, s in zip(given, own, strict=True)
        ]
    samples = list(map(len, own))
    if "u" in letters and columns.task_ids:
        _by_function(graph, columns, seconds, letters, samples)
    return seconds, "".join(letters), samples


def _median_of(seconds: tuple[float, ...]) -> float | None:
    """The median of ``seconds`` (None when there are none), whatever their order."""
    n = len(seconds)
    if n == 1:
        return seconds[0]
    if not n:
        return None
    ordered, middle = sorted(seconds), n // 2
    return ordered[middle] if n % 2 else (ordered[middle - 1] + ordered[middle]) / 2


def _by_function(
    graph: Graph,
    columns: HistoryColumns,
    seconds: list[float | None],
    letters: list[str],
    samples: list[int],
) -> None:
    """Give the unknown tasks the median of their function's history, where it has any."""
    by_function: dict[str, list[float]] = {}
    for function, latest in zip(columns.functions, columns.seconds, strict=True):
        if latest:
            by_function.setdefault(function, []).extend(latest)
    functions = _function_names(graph.fns)
    medians: dict[str, float] = {}
    for i, letter in enumerate(letters):
        if letter != "u" or (kept := by_function.get(functions[i])) is None:
            continue
        if functions[i] not in medians:
            medians[functions[i]] = _median(sorted(kept), 0.0)
        seconds[i], letters[i], samples[i] = medians[functions[i]], "f", len(kept)


def learned_graph(store: Store, graph: Graph) -> Graph:
    """``graph`` ordered by the estimates learned from ``store`` (one query); ``graph`` itself
    when the history teaches nothing (no task lacks an estimate, or none has history)."""
    return learn(store, graph)[0]


def learn(store: Store, graph: Graph) -> tuple[Graph, dict[str, Any]]:
    """:func:`learned_graph`, and the estimates it weighs the tasks by, as the run records them
    for its report (see :func:`_document`; empty when no task has one).

    The graph is ranked again only when the history can change its order: not when it teaches
    no task anything, nor when every task weighs the same, as they did before.
    """
    if all(options.estimate is not None for options in graph.options):
        seconds, letters, _ = _weigh(graph, ())
        return graph, _document(seconds, letters)
    history = store.task_history(graph.workflow_name)
    if not history:
        if any(options.estimate is not None for options in graph.options):
            seconds, letters, _ = _weigh(graph, ())
            return graph, _document(seconds, letters)
        return graph, {}
    seconds, letters, _ = _weigh(graph, history)
    if not _can_reorder(graph, seconds, letters):
        return graph, _document(seconds, letters)
    return graph.reranked(seconds), _document(seconds, letters)


def _can_reorder(graph: Graph, seconds: Sequence[float | None], letters: str) -> bool:
    """Whether ranking ``graph`` by ``seconds`` may order its tasks otherwise than it does (by
    its given estimates): not when nothing was learned, nor when the tasks weighed alike before
    and still do (an unknown estimate weighs the median of the known: alike too)."""
    if "l" not in letters and "f" not in letters:
        return False
    before = {options.estimate for options in graph.options}
    before.discard(None)
    after = set(seconds)
    after.discard(None)
    return len(before) > 1 or len(after) > 1


def _document(seconds: Sequence[float | None], letters: str) -> dict[str, Any]:
    """The estimates as the run records them (compact: one JSON list and one string for a
    whole run): ``seconds`` by task, in definition order (None when unknown), and ``from``,
    one letter per task: given, learned, function, unknown."""
    return {"seconds": list(seconds), "from": letters}


_LETTER = {
    EstimateSource.GIVEN: "g",
    EstimateSource.LEARNED: "l",
    EstimateSource.FUNCTION: "f",
    EstimateSource.UNKNOWN: "u",
}
#: What each letter of a recorded ``from`` stands for.
SOURCE_OF_LETTER = {letter: str(source) for source, letter in _LETTER.items()}
_SOURCE_OF = {letter: source for source, letter in _LETTER.items()}


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


class FirstTryDurations(DurationColumns):
    """The durations a run that was not journaled can teach (the memory store's): its tasks that
    succeeded at their first attempt and asked no question (``asked``: task indexes), whose
    record's start and end bound exactly that attempt.

    Worked out when first read: a memory store keeps the history of runs that nobody may learn
    from, and a run of 100,000 tasks should not pay for it at its end. It keeps the columns it
    needs, not the outputs, and gives them to the store as columns (:meth:`history`), with no
    record per task.
    """

    __slots__ = ("_asked", "_columns", "_graph", "_history")

    def __init__(self, graph: Graph, tasks: TaskRecordColumns, asked: Collection[int]) -> None:
        task_ids, status, attempts, _, _, started_at, finished_at, _ = tasks.columns()
        self._graph = graph
        self._columns = (task_ids, status, attempts, started_at, finished_at)
        self._asked = asked
        self._history: HistoryColumns | None = None

    def history(self) -> HistoryColumns:
        """Each task's durations (in the run's task order; its workflow's tasks, not the
        instances), ``()`` for one that teaches none; a mapped task's are those of its first
        :data:`SAMPLES_PER_MAPPED_TASK` instances that teach one."""
        if self._history is None:
            task_ids, status, attempts, started_at, finished_at = self._columns
            ok = TaskStatus.SUCCEEDED
            seconds: list[tuple[float, ...]] = [
                (end - start,) if state is ok and tries == 1 and end is not None else ()
                for state, tries, start, end in zip(
                    status, attempts, started_at, finished_at, strict=True
                )
            ]
            graph = self._graph
            fns = graph.fns
            for i in self._asked:
                seconds[i] = ()
            for i in [i for i, options in enumerate(graph.options) if options.pause is not None]:
                seconds[i] = ()
            size = graph.size
            if len(seconds) > size:  # instances teach their mapped task, not themselves
                for p, instances in graph.instances.items():
                    taught = (s[0] for s in (seconds[j] for j in instances) if s)
                    seconds[p] = tuple(itertools.islice(taught, SAMPLES_PER_MAPPED_TASK))
                del seconds[size:]
                task_ids, fns = task_ids[:size], fns[:size]
            self._history = HistoryColumns(task_ids, seconds, _function_names(fns))
        return self._history

    def __bool__(self) -> bool:
        return True  # not worth working out to find out

    def __len__(self) -> int:
        return len(self._list())

    @overload
    def __getitem__(self, i: int) -> TaskDuration: ...

    @overload
    def __getitem__(self, i: slice) -> Sequence[TaskDuration]: ...

    def __getitem__(self, i: int | slice) -> TaskDuration | Sequence[TaskDuration]:
        return self._list()[i]

    def _list(self) -> list[TaskDuration]:
        history = self.history()
        functions, finished_at = history.functions, self._columns[4]
        return [
            TaskDuration(task_id, functions[i], duration, finished_at[i])
            for i, (task_id, seconds) in enumerate(
                zip(history.task_ids, history.seconds, strict=True)
            )
            for duration in seconds
        ]


publish_exports(globals())  # plait.X, not plait._estimates.X: see plait._public
