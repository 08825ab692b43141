"""A run's definition: what a resume must agree on, how it is built from a graph, and how two
definitions differ.

A definition lists each task's id, dependencies, function identity (``module:qualname``, or the
``plait_name`` a callable gives itself), params and, for a mapped task, ``map_over``; a run's
record keeps the one it was made with (a :class:`LazyDefinition`, built when first read).
:meth:`Graph.definition` builds it and :meth:`Graph.fingerprint` hashes the same fields (see
``plait._graph``). A function's body is not part of it: a task whose code changed but whose name
did not resumes with the new code.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from json.encoder import encode_basestring_ascii
from typing import TYPE_CHECKING, Any, overload

from ._tagged import NotStorable
from ._tagged import document as tagged_document
from ._targets import main_module_name

if TYPE_CHECKING:
    from ._graph import Graph
    from ._task_columns import TaskOptions

__all__ = [
    "DefinitionDiff",
    "LazyDefinition",
    "definition_changes",
    "definition_diff",
    "params_document",
]


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


def _definition(
    ids: Sequence[str],
    depends_on: Sequence[tuple[str, ...]],
    fns: Sequence[Callable[..., Any] | None],
    options: Sequence[TaskOptions],
) -> list[dict[str, Any]]:
    """The definition of the tasks in these columns (a graph's, by task index)."""
    return [
        {
            "id": task_id,
            "depends_on": list(dependencies),
            "function": function,
            "params": params_document(task.params) if task.params else {},
            **({} if task.map_over is None else {"map_over": task.map_over}),
        }
        for task_id, dependencies, task, function in zip(
            ids, depends_on, options, _function_names(fns), strict=True
        )
    ]


def _params_json(params: Mapping[str, Any]) -> str:
    return json.dumps(params_document(params), sort_keys=True, separators=(",", ":"))


def _params_suffix(params: Mapping[str, Any]) -> str:
    """A task's params as the fingerprint's text has them: after a \x1f."""
    return "\x1f" + _params_json(params)


def _map_suffix(map_over: str | None) -> str:
    """A mapped task's ``map_over`` as the fingerprint's text has it: after a \x1d (nothing
    for other tasks, so fingerprints made before mapping existed stay the same)."""
    return "" if map_over is None else "\x1d" + map_over


def _map_json(map_over: str | None) -> str:
    """A mapped task's ``map_over`` as a field of its definition's JSON (nothing for others)."""
    if map_over is None:
        return ""
    return ',"map_over":' + encode_basestring_ascii(map_over)


def _function_names(functions: Sequence[Callable[..., Any] | None]) -> list[str]:
    """Each function's name (see ``_function_name``), in order."""
    # Named once per function (many tasks often share one), looked up by id at C speed.
    by_id = dict(zip(map(id, functions), functions, strict=True))
    names = {key: _function_name(fn) for key, fn in by_id.items()}
    return list(map(names.__getitem__, map(id, functions)))


class LazyDefinition(Sequence[Mapping[str, Any]]):
    """A graph's :meth:`Graph.definition`, built when it is first read.

    A run's record holds its definition; the memory store keeps the record as it is, so a run
    that nobody resumes or inspects never builds one dict per task (a microsecond each). It
    keeps the graph's columns of ids, dependencies, functions and options, not the compiled
    graph.
    """

    __slots__ = ("_built", "_depends_on", "_fns", "_ids", "_options")
    __hash__ = None  # type: ignore[assignment]  # unhashable, like the list it stands for

    def __init__(self, graph: Graph) -> None:
        self._ids, self._fns, self._options = graph.ids, graph.fns, graph.options
        self._depends_on = graph.depends_on  # the workflow's tasks only
        if graph.growable:  # a run's copy: its instances are not part of the definition
            size = graph.size
            self._ids, self._fns, self._options = (
                graph.ids[:size],
                graph.fns[:size],
                graph.options[:size],
            )
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
                f'{{"id":{quote(task_id)},"depends_on":[{",".join(map(quote, depends_on))}],'
                f'"function":{quote(function)},'
                f'"params":{_params_json(task.params) if task.params else "{}"}'
                f"{_map_json(task.map_over)}}}"
                for task_id, depends_on, task, function in zip(
                    self._ids,
                    self._depends_on,
                    self._options,
                    _function_names(self._fns),
                    strict=True,
                )
            )
            + "]"
        )

    def _list(self) -> list[dict[str, Any]]:
        if self._built is None:
            self._built = _definition(self._ids, self._depends_on, self._fns, self._options)
        return self._built

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Sequence):
            return NotImplemented
        return list(self) == list(other)

    def __repr__(self) -> str:
        return repr(self._list())


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
