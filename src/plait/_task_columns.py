"""How a workflow keeps its tasks: in columns that the garbage collector does not walk, and the
read-only mapping of :class:`TaskSpec` that :attr:`Workflow.tasks` shows over them.

A workflow of 100,000 tasks kept one TaskSpec per task, each an object the collector tracks (it
holds the function, the params, the rule...): as the build grew, full collections came -- two in
a build of 100,000 tasks, 63 ms each, 1.3 µs per task on top of add_task's 1.3 µs (make bench
Part 5 times add_task). :class:`TaskColumns` keeps instead

- ``dependencies``: id -> the task's dependency ids, in the order the tasks were added (a dict
  of strings and tuples of strings: the collector stops tracking such tuples at once);
- ``functions``: each task's function, by position;
- ``options``: the rest of each task's spec (``TaskSpec._fields[3:]``: its options, params,
  ``is_async``, rule, binding) by position, one tuple that every task added without options
  shares (:data:`DEFAULT_OPTIONS`);

so a task adds no object of its own that the collector walks. The TaskSpecs are made from the
columns all at once, at C speed, the first time someone reads them (a run does, when it
compiles the graph), and kept: a later read makes only those of the tasks added since.
"""

from __future__ import annotations

from collections.abc import Callable, ItemsView, Iterator, Mapping, ValuesView
from itertools import islice, repeat
from operator import add
from typing import Any

from ._binding import _EVERY_DEPENDENCY, _NO_BINDING, Binding
from ._task_spec import TaskSpec

__all__ = ["DEFAULT_OPTIONS", "Options", "TaskColumns", "TaskView"]

#: A task's spec after ``id``, ``fn`` and ``depends_on``: ``TaskSpec._fields[3:]``.
Options = tuple[Any, ...]

#: ``tuple.__new__(TaskSpec, fields)`` makes a TaskSpec from a full tuple of fields: one call
#: less than the named tuple's own ``__new__``.
_tuple_new = tuple.__new__


def _default_options(is_async: bool, binding: Binding) -> Options:
    return TaskSpec("", None, is_async=is_async, binding=binding)[3:]


#: The options of a task added with none -- ``DEFAULT_OPTIONS[is_async][every_dependency]``,
#: where ``every_dependency`` says that its binding passes every dependency's output (else it
#: passes none) -- shared by all such tasks.
DEFAULT_OPTIONS: tuple[tuple[Options, Options], ...] = tuple(
    (_default_options(is_async, _NO_BINDING), _default_options(is_async, _EVERY_DEPENDENCY))
    for is_async in (False, True)
)


class TaskColumns:
    """A workflow's tasks, column by column (see the module docstring).

    ``Workflow.add_task`` appends to the three columns itself, one task at a time; they always
    hold the same number of tasks.
    """

    __slots__ = ("_specs", "dependencies", "functions", "options")

    def __init__(self) -> None:
        self.dependencies: dict[str, tuple[str, ...]] = {}
        self.functions: list[Callable[..., Any] | None] = []
        self.options: list[Options] = []
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
            leading = zip(ids, self.functions[made:], depends_on, strict=True)
            fields = map(add, leading, self.options[made:])  # (id, fn, depends_on) + options
            specs.update(zip(ids, map(_tuple_new, repeat(TaskSpec), fields), strict=True))
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
