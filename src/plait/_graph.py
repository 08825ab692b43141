"""The compiled graph: a validated workflow as integer-indexed arrays, ready to schedule.

Compiling checks what cannot be checked one task at a time (unknown dependencies, cycles) and
what one pass checks for less than a check per ``add_task`` (a dependency listed twice) -- the
errors, and the topological sort when definition order is not one, are in
``plait._graph_checks`` -- and computes, once per workflow, everything the scheduler needs so
that a run does no lookups by id:

- ``dependencies[i]`` / ``dependents[i]``: edges by task index;
- ``rank[i]``: the longest path from task ``i`` to the end of the graph, each task weighted by its
  ``estimate`` (or, in a run's :meth:`Graph.reranked` copy, the estimate learned from the store's
  history, see ``plait._estimates``) -- the critical path still ahead of it. A task without an
  estimate weighs the median of the workflow's known estimates (1 when none is known): a typical
  task, so a graph where some tasks say ``estimate=0.01`` is not ordered as if the others took
  100 times longer. Ranks and the critical path are worked out in ``plait._graph_ranks``;
- ``queue_key[i]``: the task's position in ready-queue order -- higher ``priority`` first, then
  higher ``rank``, then definition order; the scheduler's heaps hold these small ints;
- ``pool_of[i]``: the index of the task's pool (0 = no pool); ``pause_tasks``: the tasks with a
  ``pause``;
- ``rules[i]`` / ``cleanup[i]``: the task's trigger rule, and whether it runs even after a halt;
  ``decides_on_success[i]``: whether a success may decide the rule before the other dependencies
  finish; ``first``: the tasks a fresh run decides before anything finished (no dependencies, or
  the rule ``always``);
- ``inputs[i]``: the dependencies whose outputs fill parameters, each the parameter named
  ``ids[d]`` (``None``: call with none); ``dependencies[i]`` itself when all of them do;
- ``map_over[i]``: for a mapped task, the index of the dependency it maps over (else -1);
  ``streams[i]``: the mapped tasks that map over mapped task ``i`` (instance by instance).

Mapped tasks: a run's scheduler works on its own copy of the graph (:meth:`Graph.for_run`), which
grows as mapped tasks expand: :meth:`Graph.add_instances` appends the instances ``id[0]``...
``id[n-1]`` of a mapped task as tasks of their own, each with the task's spec, pool, rank and
queue key. Every other graph is immutable once built. In a run's copy the edge from a mapped task
to a task that maps over it instance by instance is not in ``dependents`` (it is ``streams``):
that dependent expands when the task expands, and its instance ``k`` depends on instance ``k``.

Each task's spec is kept as the workflow keeps it, in columns (see ``plait._task_columns``):
``fns[i]`` its function, ``options[i]`` the rest of its options (shared by tasks added alike),
``depends_on[i]`` its dependency ids; instances have their mapped task's function and options.
``specs`` makes TaskSpecs from these when read.

What a run records of its graph -- its definition, and the fields its fingerprint hashes -- is
built in ``plait._definition``.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Sequence
from operator import attrgetter
from typing import TYPE_CHECKING, Any

from ._definition import _definition, _function_names, _map_suffix, _params_suffix
from ._graph_checks import _GraphChecks, _listed_twice
from ._graph_ranks import _GraphRanks
from ._rules import TriggerRule
from ._task_columns import IndexedSpecs, TaskOptions

if TYPE_CHECKING:
    from ._task_spec import TaskSpec
    from ._workflow import Workflow

__all__ = ["INSTANCE_ID", "Graph", "instance_id", "series_id"]


_DECIDES_ON_SUCCESS = frozenset(rule for rule in TriggerRule if rule.decides_on_success)
_NO_EDGES: tuple[int, ...] = ()


def instance_id(task_id: str, index: int) -> str:
    """The id of instance ``index`` of mapped task ``task_id``: ``convert[3]``.

    Task ids may not hold brackets, so an id matching :data:`INSTANCE_ID` is always an instance
    of the mapped task in group 1.
    """
    return f"{task_id}[{index}]"


#: What an instance's id looks like: the mapped task's id, then the item's index in brackets.
INSTANCE_ID = re.compile(r"^(.+)\[(\d+)\]$", re.DOTALL)


def series_id(task_id: str) -> str:
    """The id that stands for ``task_id`` where one id per task of the workflow is wanted (span
    names, metric labels, learned estimates): an instance's mapped task, else the task itself."""
    match = INSTANCE_ID.match(task_id) if task_id.endswith("]") else None
    return task_id if match is None else match[1]


class Graph(_GraphRanks, _GraphChecks):
    """A workflow, validated and compiled for scheduling; immutable once built."""

    __slots__ = (
        "_definition",
        "_fingerprint",
        "cleanup",
        "decides_on_success",
        "dependencies",
        "dependents",
        "depends_on",
        "first",
        "fns",
        "growable",
        "ids",
        "index",
        "inputs",
        "instance_parent",
        "instances",
        "map_over",
        "mapped",
        "options",
        "pause_tasks",
        "pool_names",
        "pool_of",
        "queue_key",
        "rank",
        "rules",
        "size",
        "streams",
        "task_at_key",
        "topological_order",
        "workflow_name",
    )

    def __init__(self, workflow: Workflow) -> None:
        # One pass over the tasks in definition order resolves the edges and notes what the
        # later passes need; make bench Part 5 times it (plait.run compiles the workflow).
        self.workflow_name = workflow.name
        self._definition: list[dict[str, Any]] | None = None
        self._fingerprint: str | None = None
        columns = workflow._tasks  # copied: the workflow may grow, this graph may not
        self.ids = ids = list(columns.dependencies)
        self.depends_on = list(columns.dependencies.values())
        self.fns: list[Callable[..., Any] | None] = list(columns.functions)
        self.options: list[TaskOptions] = list(columns.options)
        options = self.options
        n = len(ids)
        self.index = index = dict(zip(ids, range(n), strict=True))
        position = index.__getitem__
        self.dependencies: list[tuple[int, ...]] = [_NO_EDGES] * n
        dependencies = self.dependencies
        self.inputs: list[tuple[int, ...] | None] = [None] * n
        dependents: list[list[int] | None] = [None] * n
        in_order = True  # every dependency defined before its dependents
        self.pause_tasks: list[int] = []
        self.size = n  # the workflow's tasks; a run's copy holds instances after them
        self.instance_parent: list[int] = []  # by index - size: the mapped task of an instance
        pooled = False
        for i, (depends_on, task_options) in enumerate(zip(self.depends_on, options, strict=True)):
            if depends_on:
                try:
                    resolved = dependencies[i] = tuple(map(position, depends_on))
                except KeyError:
                    self._resolve_each()  # raises the first error in definition order
                    raise
                for d in resolved:
                    after = dependents[d]
                    if after is None:
                        dependents[d] = [i]
                    elif after[-1] == i:  # i's dependencies name d twice
                        raise _listed_twice(ids[i], depends_on)
                    else:
                        after.append(i)
                    if d >= i:
                        in_order = False
            binding = task_options.binding
            if binding.passed is not None or binding.params or binding.context_parameter:
                self.inputs[i] = self._inputs(task_options, dependencies[i])
            elif depends_on:
                self.inputs[i] = dependencies[i]  # the same indexes: share the tuple
            if task_options.pool is not None:
                pooled = True
            if task_options.pause is not None:
                self.pause_tasks.append(i)
        self.instances: dict[int, range] = {}  # a run's copy: each expanded task's instances
        self.growable = False
        self.mapped = any(map(attrgetter("map_over"), options))  # an id: never empty
        self.map_over = [-1] * n
        self.streams: list[tuple[int, ...]] = [_NO_EDGES] * n
        if self.mapped:
            self._link_mapped()
        self.rules = list(map(attrgetter("trigger"), options))
        self.cleanup = list(map(attrgetter("cleanup"), options))
        early = _DECIDES_ON_SUCCESS
        self.decides_on_success = [rule in early for rule in self.rules]
        # Tuples, not lists: smaller, and the garbage collector stops walking them.
        self.dependents: list[Sequence[int]] = [
            _NO_EDGES if after is None else tuple(after) for after in dependents
        ]
        if in_order:  # the common case: definition order is a topological order already
            self.topological_order: Sequence[int] = range(n)
        else:
            self.topological_order = self._sort()
        always = TriggerRule.ALWAYS
        #: What a run decides first: the tasks without dependencies and the "always" tasks.
        self.first = [
            i for i in self.topological_order if not dependencies[i] or self.rules[i] is always
        ]
        self._order(list(map(attrgetter("estimate"), options)))
        if pooled:
            pools: dict[str | None, int] = {None: 0}
            self.pool_of = [pools.setdefault(o.pool, len(pools)) for o in options]
            self.pool_names: list[str | None] = list(pools)
        else:
            self.pool_of = [0] * n
            self.pool_names = [None]

    def __len__(self) -> int:
        return len(self.ids)

    @property
    def specs(self) -> Sequence[TaskSpec]:
        """Each task's TaskSpec by index (made when read: see ``plait._task_columns``)."""
        return IndexedSpecs(self)

    def _link_mapped(self) -> None:
        """Set ``map_over`` and ``streams`` (the graph has mapped tasks)."""
        streams: dict[int, list[int]] = {}
        for i, task_options in enumerate(self.options):
            if task_options.map_over is not None:
                u = self.map_over[i] = self.index[task_options.map_over]
                if self.options[u].map_over is not None:
                    streams.setdefault(u, []).append(i)
        for u, after in streams.items():
            self.streams[u] = tuple(after)

    def for_run(self) -> Graph:
        """A copy for one run, which :meth:`add_instances` can grow (see the module
        docstring); this graph itself when it has no mapped task (nothing will grow)."""
        if not self.mapped:
            return self
        other = object.__new__(Graph)
        for name in Graph.__slots__:
            value = getattr(self, name)
            if isinstance(value, list):
                value = list(value)
            setattr(other, name, value)
        other.index = dict(self.index)
        other.instances = {}
        other.growable = True
        other.dependents = [
            tuple(d for d in after if d not in streams) if (streams := self.streams[i]) else after
            for i, after in enumerate(self.dependents)
        ]
        return other

    def add_instances(self, i: int, count: int) -> range:
        """Append ``count`` instances of mapped task ``i``; return their indexes.

        Each instance is a task with ``i``'s function, options, pool, rule, rank and queue key,
        and no dependencies, except that an instance of a task mapped over a mapped task depends
        on the instance of the same item (``b[k]`` on ``a[k]``).

        Raises:
            ValueError: this graph is not a run's copy, or task ``i`` is not mapped.
        """
        if not self.growable:
            raise ValueError("add_instances() grows a run's copy of a graph only (for_run())")
        if not 0 <= i < self.size or self.map_over[i] < 0:
            raise ValueError(f"task {i!r} of workflow {self.workflow_name!r} is not mapped")
        if i in self.instances:
            raise ValueError(f"task {self.ids[i]!r} was already expanded")
        first = len(self.ids)
        added = self.instances[i] = range(first, first + count)
        task_id = self.ids[i]
        ids = [instance_id(task_id, k) for k in range(count)]
        self.ids.extend(ids)
        self.index.update(zip(ids, added, strict=True))
        self.fns.extend([self.fns[i]] * count)
        self.options.extend([self.options[i]] * count)
        self.instance_parent.extend([i] * count)
        upstream = self.instances.get(self.map_over[i])
        if upstream is not None:  # b[k] depends on a[k]
            self.dependencies.extend((j,) for j in upstream)
        else:
            self.dependencies.extend([_NO_EDGES] * count)
        inputs = self.inputs[i]
        self.inputs.extend([inputs] * count)
        self.dependents.extend([_NO_EDGES] * count)  # a list once a stream's instance joins
        self.map_over.extend([-1] * count)
        self.streams.extend([_NO_EDGES] * count)
        self.rules.extend([self.rules[i]] * count)
        self.cleanup.extend([self.cleanup[i]] * count)
        self.decides_on_success.extend([False] * count)
        self.pool_of.extend([self.pool_of[i]] * count)
        self.rank.extend([self.rank[i]] * count)
        self.queue_key.extend([self.queue_key[i]] * count)
        return added

    def _inputs(
        self, options: TaskOptions, dependencies: tuple[int, ...]
    ) -> tuple[int, ...] | None:
        """The dependencies whose outputs fill parameters; None when the function takes no
        arguments. A parameter is named like its dependency: ``ids[d]``."""
        binding = options.binding
        if binding.passed is None:
            return dependencies
        if not binding.passed and not binding.params and not binding.context_parameter:
            return None
        return tuple(map(self.index.__getitem__, binding.passed))

    def _order(self, estimates: Sequence[float | None]) -> None:
        """Set ``rank``, ``queue_key`` and ``task_at_key`` from ``estimates`` (by task index)."""
        self.rank = rank = self._ranks(estimates)
        # Python's sort is stable: equal keys keep definition order, the last tie-break.
        priority = list(map(attrgetter("priority"), self.options))
        if any(priority):
            by_queue_order = sorted(range(len(self.ids)), key=lambda i: (-priority[i], -rank[i]))
        else:
            negated = [-r for r in rank]
            by_queue_order = sorted(range(len(self.ids)), key=negated.__getitem__)
        self.task_at_key = by_queue_order
        self.queue_key = [0] * len(self.ids)
        for key, i in enumerate(by_queue_order):
            self.queue_key[i] = key

    def definition(self) -> list[dict[str, Any]]:
        """What a resumed run must agree on: each task's id, dependencies, function and
        params."""
        if self._definition is None:
            size = self.size
            self._definition = _definition(
                self.ids[:size], self.depends_on, self.fns[:size], self.options[:size]
            )
        return self._definition

    def fingerprint(self) -> str:
        """A short hash of :meth:`definition` (computed without building it)."""
        if self._fingerprint is None:
            # Control characters that ids and function names do not contain in practice: \x1f
            # between a task's fields, \x1e between its dependencies, a newline between tasks.
            # A task's params are appended only when it has some, so that the fingerprints of
            # runs stored before params were kept stay the same.
            join = "\x1e".join
            size = self.size
            text = "\n".join(
                [
                    f"{task_id}\x1f{join(depends_on)}\x1f{function}"
                    f"{_params_suffix(options.params) if options.params else ''}"
                    f"{_map_suffix(options.map_over)}"
                    for task_id, depends_on, options, function in zip(
                        self.ids[:size],
                        self.depends_on,
                        self.options[:size],
                        _function_names(self.fns[:size]),
                        strict=True,
                    )
                ]
            )
            self._fingerprint = hashlib.sha256(text.encode()).hexdigest()[:16]
        return self._fingerprint
