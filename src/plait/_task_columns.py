"""How a workflow keeps its tasks: in columns that the garbage collector does not walk, and the
read-only mapping of :class:`TaskSpec` that :attr:`Workflow.tasks` shows over them.

A workflow of 100,000 tasks kept one TaskSpec per task, each an object the collector tracks (it
holds the function, the params, the rule...): as the build grew, full collections came -- two in
a build of 100,000 tasks, 63 ms each, 1.3 µs per task on top of add_task's 1.3 µs (make bench
Part 5 times add_task). :class:`TaskColumns` keeps instead

- ``dependencies``: id -> the task's dependency ids, in the order the tasks were added (a dict
  of strings and tuples of strings: the collector stops tracking such tuples at once);
- ``functions``: each task's function, by position;
- ``options``: the rest of each task's spec (a :class:`TaskOptions`: its options, params,
  ``is_async``, rule, binding) by position, one that every task added without options shares
  (:data:`DEFAULT_OPTIONS`);

so a task adds no object of its own that the collector walks. :attr:`Workflow.tasks` makes the
TaskSpecs from the columns all at once, at C speed, the first time someone reads them, and
keeps them: a later read makes only those of the tasks added since.

A run does not read them: the compiled graph keeps the same columns by task index (see
``plait._graph``), and the engine reads ``graph.fns[i]`` and ``graph.options[i]``. A TaskSpec
made for each task when a run starts -- 100,000 new objects for the collector -- cost a 100k
layered run two full collections more, more than the build saved. ``graph.specs``
(:class:`IndexedSpecs`) makes a task's TaskSpec when one is asked for by index (an error
message, a pause), or all of them for a pass over the whole workflow, which keeps none.
"""

from __future__ import annotations

from collections.abc import Callable, ItemsView, Iterator, Mapping, Sequence, ValuesView
from itertools import chain, islice, repeat
from operator import add
from typing import Any, NamedTuple, Protocol, overload

from ._binding import _EVERY_DEPENDENCY, _NO_BINDING, Binding
from ._pause import Pause
from ._policies import RetryPolicy
from ._rules import TriggerRule
from ._task_spec import TaskSpec

__all__ = [
    "DEFAULT_OPTIONS",
    "IndexedSpecs",
    "TaskColumns",
    "TaskOptions",
    "TaskView",
    "options_of",
]


class TaskOptions(NamedTuple):
    """A task's spec after ``id``, ``fn`` and ``depends_on``: what tasks added alike can share.

    The fields of :class:`TaskSpec` from ``params`` on, in its order, with its meanings (a test
    pins them to ``TaskSpec._fields[3:]``); made from a TaskSpec (``spec[3:]``), so without
    defaults of its own.
    """

    params: Mapping[str, Any]
    retry: RetryPolicy | None
    timeout: float | None
    critical: bool
    pool: str | None
    priority: int
    estimate: float | None
    pause: Pause | None
    executor: str | None
    is_async: bool
    trigger: TriggerRule
    cleanup: bool
    map_over: str | None
    binding: Binding


#: ``tuple.__new__(TaskSpec, fields)`` makes a TaskSpec from a full tuple of fields: one call
#: less than the named tuple's own ``__new__``.
_tuple_new = tuple.__new__


#: The options of a task added with none -- ``DEFAULT_OPTIONS[is_async][every_dependency]``,
#: where ``every_dependency`` says that its binding passes every dependency's output (else it
#: passes none) -- shared by all such tasks.
def options_of(spec: TaskSpec) -> TaskOptions:
    """The options of ``spec``: its fields after ``depends_on``."""
    return _tuple_new(TaskOptions, spec[3:])


DEFAULT_OPTIONS: tuple[tuple[TaskOptions, TaskOptions], ...] = tuple(
    (
        options_of(TaskSpec("", None, is_async=is_async, binding=_NO_BINDING)),
        options_of(TaskSpec("", None, is_async=is_async, binding=_EVERY_DEPENDENCY)),
    )
    for is_async in (False, True)
)


def make_specs(
    ids: Sequence[str],
    fns: Sequence[Callable[..., Any] | None],
    depends_on: Sequence[tuple[str, ...]],
    options: Sequence[TaskOptions],
) -> Iterator[TaskSpec]:
    """The TaskSpecs of the tasks in these columns (of equal length), made at C speed: a
    tuple ``(id, fn, depends_on)``, that plus the options, and a TaskSpec of those, per task."""
    leading = zip(ids, fns, depends_on, strict=True)
    return map(_tuple_new, repeat(TaskSpec), map(add, leading, options))


class TaskColumns:
    """A workflow's tasks, column by column (see the module docstring).

    ``Workflow.add_task`` appends to the three columns itself, one task at a time; they always
    hold the same number of tasks.
    """

    __slots__ = ("_specs", "dependencies", "functions", "options")

    def __init__(self) -> None:
        self.dependencies: dict[str, tuple[str, ...]] = {}
        self.functions: list[Callable[..., Any] | None] = []
        self.options: list[TaskOptions] = []
        self._specs: dict[str, TaskSpec] = {}  # made so far: those of the first tasks

    def specs(self) -> dict[str, TaskSpec]:
        """Every task's TaskSpec by id, in the order added (made for the tasks added since the
        last call: three C-level tuple operations per task)."""
        specs, made = self._specs, len(self._specs)
        added = len(self.dependencies) - made
        if added:  # read from the end: a spec read after each add_task costs O(1), not O(n)
            ids = list(islice(reversed(self.dependencies), added))
            depends_on = list(islice(reversed(self.dependencies.values()), added))
            ids.reverse()
            depends_on.reverse()
            made_now = make_specs(ids, self.functions[made:], depends_on, self.options[made:])
            specs.update(zip(ids, made_now, strict=True))
        return specs

    def ids_running(self, fn: Callable[..., Any]) -> list[str]:
        """The ids of the tasks that run ``fn``, in the order added."""
        dependencies, functions = self.dependencies, self.functions
        return [task_id for task_id, f in zip(dependencies, functions, strict=True) if f == fn]


class TaskView(Mapping[str, TaskSpec]):
    """A workflow's tasks by id, in the order they were added: read-only, and live (it shows
    the tasks added after it was taken), as a ``MappingProxyType`` over a dict would be.

    Its views read the specs all at once (:meth:`TaskColumns.specs`), not one lookup per task.
    """

    __slots__ = ("_columns",)

    def __init__(self, columns: TaskColumns) -> None:
        self._columns = columns

    def __getitem__(self, task_id: str) -> TaskSpec:
        if task_id not in self._columns.dependencies:
            raise KeyError(task_id)
        return self._columns.specs()[task_id]

    def __contains__(self, task_id: object) -> bool:
        return task_id in self._columns.dependencies

    def __iter__(self) -> Iterator[str]:
        return iter(self._columns.dependencies)

    def __len__(self) -> int:
        return len(self._columns.dependencies)

    def values(self) -> ValuesView[TaskSpec]:
        return _Values(self)

    def items(self) -> ItemsView[str, TaskSpec]:
        return _Items(self)

    def __reversed__(self) -> Iterator[str]:
        return reversed(self._columns.dependencies)

    # What a ``MappingProxyType`` over a dict offers besides a Mapping's methods (wf.tasks was
    # one): a copy, and ``|``; each gives a dict.
    def copy(self) -> dict[str, TaskSpec]:
        """The tasks as a new dict."""
        return dict(self._columns.specs())

    def __or__(self, other: Mapping[str, TaskSpec]) -> dict[str, TaskSpec]:
        return {**self._columns.specs(), **other}

    def __ror__(self, other: Mapping[str, TaskSpec]) -> dict[str, TaskSpec]:
        return {**other, **self._columns.specs()}

    def __repr__(self) -> str:
        return f"TaskView({self._columns.specs()!r})"


class _Values(ValuesView[TaskSpec]):
    __slots__ = ()
    _mapping: TaskView

    def __iter__(self) -> Iterator[TaskSpec]:
        return iter(self._mapping._columns.specs().values())


class _Items(ItemsView[str, TaskSpec]):
    __slots__ = ()
    _mapping: TaskView

    def __iter__(self) -> Iterator[tuple[str, TaskSpec]]:
        return iter(self._mapping._columns.specs().items())


class _SpecColumns(Protocol):
    """What :class:`IndexedSpecs` reads of a graph (see ``plait._graph``)."""

    ids: list[str]
    fns: list[Callable[..., Any] | None]
    depends_on: list[tuple[str, ...]]
    options: list[TaskOptions]
    size: int
    instance_parent: list[int]


class IndexedSpecs(Sequence[TaskSpec]):
    """A graph's TaskSpecs by task index, made from its columns when read (none is kept).

    An instance of a mapped task (an index past the workflow's tasks) has its mapped task's
    spec, as the instances' outputs and options do.
    """

    __slots__ = ("_graph",)

    def __init__(self, graph: _SpecColumns) -> None:
        self._graph = graph

    def __len__(self) -> int:
        return len(self._graph.ids)

    @overload
    def __getitem__(self, i: int) -> TaskSpec: ...

    @overload
    def __getitem__(self, i: slice) -> list[TaskSpec]: ...

    def __getitem__(self, i: int | slice) -> TaskSpec | list[TaskSpec]:
        if isinstance(i, slice):
            return [self[j] for j in range(len(self))[i]]
        graph = self._graph
        count = len(graph.ids)
        if i < 0:
            i += count
        if not 0 <= i < count:
            raise IndexError(f"task index {i} out of range: the graph has {count} tasks")
        if i >= graph.size:
            i = graph.instance_parent[i - graph.size]
        return _tuple_new(
            TaskSpec, (graph.ids[i], graph.fns[i], graph.depends_on[i], *graph.options[i])
        )

    def __iter__(self) -> Iterator[TaskSpec]:
        graph = self._graph
        size = graph.size
        own = make_specs(graph.ids[:size], graph.fns[:size], graph.depends_on, graph.options[:size])
        if len(graph.ids) == size:
            return own
        return chain(own, map(self.__getitem__, range(size, len(graph.ids))))
