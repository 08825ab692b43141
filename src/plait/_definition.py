"""A run's definition: what a resume must agree on, and how two definitions differ.

A definition lists each task's id, dependencies, function identity (``module:qualname``, see
``_graph``) and params; a run's record keeps the one it was made with. A function's body is not
part of it: a task whose code changed but whose name did not resumes with the new code.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ._tagged import NotStorable
from ._tagged import document as tagged_document

__all__ = ["DefinitionDiff", "definition_changes", "definition_diff", "params_document"]


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
