"""The compiled graph: a validated workflow as integer-indexed arrays, ready to schedule.

Compiling checks what cannot be checked one task at a time (unknown dependencies, cycles), and
computes, once per workflow, everything the scheduler needs so that a run does no lookups by id:

- ``dependencies[i]`` / ``dependents[i]``: edges by task index;
- ``rank[i]``: the longest path from task ``i`` to the end of the graph, each task weighted by its
  ``estimate`` (one unit when unknown) -- the critical path still ahead of it;
- ``queue_key[i]``: the task's position in ready-queue order -- higher ``priority`` first, then
  higher ``rank``, then definition order; the scheduler's heaps hold these small ints;
- ``pool_of[i]``: the index of the task's pool (0 = no pool);
- ``inputs[i]``: which dependency outputs fill which parameters (``None``: call with none).
"""

from __future__ import annotations

import difflib
import functools
import hashlib
import json
import os
import sys
from collections import deque
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from json.encoder import encode_basestring_ascii
from typing import TYPE_CHECKING, Any, overload

from ._exceptions import CycleError, UnknownDependencyError
from ._tagged import NotStorable
from ._tagged import document as tagged_document

if TYPE_CHECKING:
    from ._workflow import TaskSpec, Workflow

__all__ = [
    "DefinitionDiff",
    "Graph",
    "definition_changes",
    "definition_diff",
    "params_document",
]


def _function_name(fn: Callable[..., Any] | None) -> str:
    """``module:qualname``, or what a callable says of itself in ``plait_name`` (a shell task
    names its command)."""
    if fn is None:
        return "(pause only)"
    own_name = getattr(fn, "plait_name", None)
    if isinstance(own_name, str):
        return own_name
    while isinstance(fn, functools.partial):
        fn = fn.func
    module = getattr(fn, "__module__", None) or "?"
    if module == "__main__":
        module = main_module_name()
    name = getattr(fn, "__qualname__", None) or type(fn).__qualname__
    return f"{module}:{name}"


@functools.cache
def main_module_name() -> str:
    """The name under which the ``__main__`` module would be imported: a function's identity
    must not depend on whether its module ran as a script (``python flow.py``) or was imported
    (``import flow``), or a run started one way could not be resumed the other.

    ``python -m pkg.flow`` says so in ``__spec__``; ``python flow.py`` does not, so the script's
    path is read relative to the import path (``sys.path``): the shortest dotted name wins, as
    the one an ``import`` would use. A script outside the import path, or an interactive
    session, stays ``__main__``.
    """
    main = sys.modules.get("__main__")
    spec = getattr(main, "__spec__", None)
    name = getattr(spec, "name", None)
    if isinstance(name, str) and name and name != "__main__":
        return name.removesuffix(".__main__")
    path = getattr(main, "__file__", None)
    if not isinstance(path, str) or not path.endswith(".py"):
        return "__main__"
    return module_name_of(path) or "__main__"


def module_name_of(path: str) -> str | None:
    """The dotted name that imports the Python file ``path`` from a directory on ``sys.path``
    (the shortest, when several do), or None if none does."""
    file = os.path.realpath(path)
    best: str | None = None
    for entry in sys.path:
        root = os.path.realpath(entry or os.getcwd())
        relative = os.path.relpath(file, root)
        if relative.startswith(os.pardir) or os.path.isabs(relative):
            continue
        parts = relative[: -len(".py")].split(os.sep)
        if parts[-1] == "__init__":
            parts.pop()
        if parts and all(part.isidentifier() for part in parts):
            name = ".".join(parts)
            if best is None or name.count(".") < best.count("."):
                best = name
    return best


def params_document(params: Mapping[str, Any]) -> dict[str, Any]:
    """A task's params as they are kept in a run's definition: tagged JSON (see ``_tagged``),
    so that a changed value is seen on resume. A value tagged JSON cannot hold is kept as
    ``{"$unstorable": type name}``: only a change of its type is seen."""
    document: dict[str, Any] = {}
    for name, value in params.items():
        try:
            document[name] = tagged_document(value)
        except NotStorable:
            document[name] = {"$unstorable": type(value).__qualname__}
    return document


@dataclass(frozen=True, slots=True)
class DefinitionDiff:
    """How a workflow's definition differs from the one a run was made with, task by task."""

    added: tuple[str, ...]
    removed: tuple[str, ...]
    changed: Mapping[str, tuple[str, ...]]  # task id -> what changed, in words

    def __bool__(self) -> bool:
        return bool(self.added or self.removed or self.changed)

    def describe(self) -> list[str]:
        """The differences in words, sorted."""
        changes = [f"task {task_id!r} was removed" for task_id in self.removed]
        changes += [f"task {task_id!r} was added" for task_id in self.added]
        changes += [change for task_changes in self.changed.values() for change in task_changes]
        return sorted(changes)


def definition_diff(
    stored: Sequence[Mapping[str, Any]], current: Sequence[Mapping[str, Any]]
) -> DefinitionDiff:
    """How ``current`` differs from ``stored`` (both from :meth:`Graph.definition`).

    A task compares by its function's identity (``module:qualname``, not its body), its
    dependencies and its params; params are compared only when the stored definition has them
    (runs stored before plait kept params have none).
    """
    old = {task["id"]: task for task in stored}
    new = {task["id"]: task for task in current}
    changed: dict[str, tuple[str, ...]] = {}
    for task_id, after in new.items():
        before = old.get(task_id)
        if before is None:
            continue
        changes = []
        if list(before["depends_on"]) != list(after["depends_on"]):
            changes.append(
                f"task {task_id!r} depended on {list(before['depends_on'])}, now on "
                f"{list(after['depends_on'])}"
            )
        if before["function"] != after["function"]:
            changes.append(f"task {task_id!r} ran {before['function']}, now {after['function']}")
        if "params" in before and dict(before["params"]) != dict(after.get("params", {})):
            changes.append(
                f"task {task_id!r} had params {dict(before['params'])}, now "
                f"{dict(after.get('params', {}))}"
            )
        if changes:
            changed[task_id] = tuple(changes)
    return DefinitionDiff(
        added=tuple(task_id for task_id in new if task_id not in old),
        removed=tuple(task_id for task_id in old if task_id not in new),
        changed=changed,
    )


def definition_changes(
    stored: Sequence[Mapping[str, Any]], current: Sequence[Mapping[str, Any]]
) -> list[str]:
    """How ``current`` differs from ``stored`` (both from :meth:`Graph.definition`), in words."""
    return definition_diff(stored, current).describe()


class Graph:
    """A workflow, validated and compiled for scheduling; immutable once built."""

    __slots__ = (
        "_definition",
        "_fingerprint",
        "dependencies",
        "dependents",
        "ids",
        "index",
        "inputs",
        "pool_names",
        "pool_of",
        "queue_key",
        "rank",
        "specs",
        "task_at_key",
        "topological_order",
        "workflow_name",
    )

    def __init__(self, workflow: Workflow) -> None:
        self.workflow_name = workflow.name
        self._definition: list[dict[str, Any]] | None = None
        self._fingerprint: str | None = None
        self.specs: list[TaskSpec] = list(workflow.tasks.values())
        self.ids = [spec.id for spec in self.specs]
        self.index = {task_id: i for i, task_id in enumerate(self.ids)}
        self.dependencies = [self._resolve(spec) for spec in self.specs]
        self.dependents: list[list[int]] = [[] for _ in self.specs]
        for i, dependencies in enumerate(self.dependencies):
            for d in dependencies:
                self.dependents[d].append(i)
        self.inputs = [self._inputs(spec) for spec in self.specs]
        self.topological_order = self._sort()
        self.rank = rank = self._ranks()
        # Python's sort is stable: equal keys keep definition order, the last tie-break.
        if any(spec.priority for spec in self.specs):
            priority = [spec.priority for spec in self.specs]
            by_queue_order = sorted(range(len(self.specs)), key=lambda i: (-priority[i], -rank[i]))
        else:
            negated = [-r for r in self.rank]
            by_queue_order = sorted(range(len(self.specs)), key=negated.__getitem__)
        self.task_at_key = by_queue_order
        self.queue_key = [0] * len(self.specs)
        for key, i in enumerate(by_queue_order):
            self.queue_key[i] = key
        self.pool_names: list[str | None] = [None]
        pools: dict[str | None, int] = {None: 0}
        self.pool_of = [pools.setdefault(spec.pool, len(pools)) for spec in self.specs]
        self.pool_names = list(pools)

    def __len__(self) -> int:
        return len(self.specs)

    def _resolve(self, spec: TaskSpec) -> tuple[int, ...]:
        resolved = []
        for dependency in spec.depends_on:
            if dependency == spec.id:
                raise CycleError(
                    f"task {spec.id!r} depends on itself; remove {spec.id!r} from its depends_on",
                    [spec.id, spec.id],
                )
            try:
                resolved.append(self.index[dependency])
            except KeyError:
                close = difflib.get_close_matches(dependency, self.ids, n=1)
                hint = f"; did you mean {close[0]!r}?" if close else "; define it or remove it"
                raise UnknownDependencyError(
                    f"task {spec.id!r} depends on {dependency!r}, which is not a task of "
                    f"workflow {self.workflow_name!r}{hint}"
                ) from None
        return tuple(resolved)

    def _inputs(self, spec: TaskSpec) -> tuple[tuple[str, int], ...] | None:
        """(parameter, dependency index) pairs; None when the function takes no arguments."""
        binding = spec.binding
        if not binding.from_dependencies and not binding.params and not binding.context_parameter:
            return None
        return tuple((name, self.index[dep]) for name, dep in binding.from_dependencies)

    def _sort(self) -> list[int]:
        """Kahn's algorithm in definition order; a leftover task means there is a cycle."""
        missing = [len(d) for d in self.dependencies]
        queue = deque(i for i, m in enumerate(missing) if m == 0)
        order = []
        while queue:
            i = queue.popleft()
            order.append(i)
            for d in self.dependents[i]:
                missing[d] -= 1
                if missing[d] == 0:
                    queue.append(d)
        if len(order) < len(self.specs):
            cycle = self._find_cycle([i for i, m in enumerate(missing) if m > 0])
            path = " -> ".join(self.ids[i] for i in cycle)
            raise CycleError(
                f"the dependencies of workflow {self.workflow_name!r} form a cycle: {path}; "
                "remove one of these dependencies",
                [self.ids[i] for i in cycle],
            )
        return order

    def _find_cycle(self, blocked: list[int]) -> list[int]:
        """Walk back through blocked dependencies until a task repeats: that loop is a cycle.

        Every blocked task has a blocked dependency, so the walk cannot end elsewhere.
        """
        in_blocked = set(blocked)
        seen: dict[int, int] = {}
        walk: list[int] = []
        i = blocked[0]
        while i not in seen:
            seen[i] = len(walk)
            walk.append(i)
            i = next(d for d in self.dependencies[i] if d in in_blocked)
        loop = walk[seen[i] :]
        loop.reverse()  # show it in the direction work flows: dependency -> dependent
        return [*loop, loop[0]]

    def _ranks(self) -> list[float]:
        rank = [0.0] * len(self.specs)
        specs, dependents = self.specs, self.dependents
        for i in reversed(self.topological_order):
            estimate = specs[i].estimate
            after = dependents[i]
            rest = max([rank[d] for d in after]) if after else 0.0
            rank[i] = (1.0 if estimate is None else estimate) + rest
        return rank

    def definition(self) -> list[dict[str, Any]]:
        """What a resumed run must agree on: each task's id, dependencies, function and
        params."""
        if self._definition is None:
            self._definition = _definition(self.ids, self.specs)
        return self._definition

    def fingerprint(self) -> str:
        """A short hash of :meth:`definition` (computed without building it)."""
        if self._fingerprint is None:
            # Control characters that ids and function names do not contain in practice: \x1f
            # between a task's fields, \x1e between its dependencies, a newline between tasks.
            # A task's params are appended only when it has some, so that the fingerprints of
            # runs stored before params were kept stay the same.
            text = "\n".join(
                "\x1f".join((task_id, "\x1e".join(spec.depends_on), function))
                + (f"\x1f{_params_json(spec.params)}" if spec.params else "")
                for task_id, spec, function in zip(
                    self.ids, self.specs, _function_names(self.specs), strict=True
                )
            )
            self._fingerprint = hashlib.sha256(text.encode()).hexdigest()[:16]
        return self._fingerprint

    def critical_path(self) -> list[str]:
        """The ids along the longest (estimate-weighted) path through the graph."""
        if not self.specs:
            return []
        i = max(
            (i for i, deps in enumerate(self.dependencies) if not deps),
            key=lambda i: (self.rank[i], -i),
        )
        path = [i]
        while self.dependents[i]:
            i = max(self.dependents[i], key=lambda d: (self.rank[d], -d))
            path.append(i)
        return [self.ids[i] for i in path]


def _definition(ids: Sequence[str], specs: Sequence[TaskSpec]) -> list[dict[str, Any]]:
    return [
        {
            "id": task_id,
            "depends_on": list(spec.depends_on),
            "function": function,
            "params": params_document(spec.params) if spec.params else {},
        }
        for task_id, spec, function in zip(ids, specs, _function_names(specs), strict=True)
    ]


def _params_json(params: Mapping[str, Any]) -> str:
    return json.dumps(params_document(params), sort_keys=True, separators=(",", ":"))


def _function_names(specs: Sequence[TaskSpec]) -> list[str]:
    names: dict[int, str] = {}  # by function: many tasks often share one
    result = []
    for spec in specs:
        name = names.get(id(spec.fn))
        if name is None:
            name = names[id(spec.fn)] = _function_name(spec.fn)
        result.append(name)
    return result


class LazyDefinition(Sequence[Mapping[str, Any]]):
    """A graph's :meth:`Graph.definition`, built when it is first read.

    A run's record holds its definition; the memory store keeps the record as it is, so a run
    that nobody resumes or inspects never builds one dict per task (a microsecond each). It
    keeps the graph's ids and task specs, not the compiled graph.
    """

    __slots__ = ("_built", "_ids", "_specs")
    __hash__ = None  # type: ignore[assignment]  # unhashable, like the list it stands for

    def __init__(self, graph: Graph) -> None:
        self._ids, self._specs = graph.ids, graph.specs
        self._built: list[dict[str, Any]] | None = None

    def __len__(self) -> int:
        return len(self._ids)

    @overload
    def __getitem__(self, i: int) -> Mapping[str, Any]: ...

    @overload
    def __getitem__(self, i: slice) -> Sequence[Mapping[str, Any]]: ...

    def __getitem__(self, i: int | slice) -> Mapping[str, Any] | Sequence[Mapping[str, Any]]:
        return self._list()[i]

    def __iter__(self) -> Iterator[Mapping[str, Any]]:
        return iter(self._list())

    def json(self) -> str:
        """The definition as compact, ASCII-only JSON, written directly: a third of the time
        ``json`` takes over the dicts, which need not be built at all."""
        quote = encode_basestring_ascii
        return (
            "["
            + ",".join(
                f'{{"id":{quote(task_id)},"depends_on":[{",".join(map(quote, spec.depends_on))}],'
                f'"function":{quote(function)},'
                f'"params":{_params_json(spec.params) if spec.params else "{}"}}}'
                for task_id, spec, function in zip(
                    self._ids, self._specs, _function_names(self._specs), strict=True
                )
            )
            + "]"
        )

    def _list(self) -> list[dict[str, Any]]:
        if self._built is None:
            self._built = _definition(self._ids, self._specs)
        return self._built

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Sequence):
            return NotImplemented
        return list(self) == list(other)

    def __repr__(self) -> str:
        return repr(self._list())
