"""What compiling a workflow refuses, and the order it falls back on: the checks of
:class:`plait._graph.Graph`.

A graph is built in one pass over the tasks in definition order (``Graph.__init__``); what that
pass cannot resolve is explained here, on the slow path, in definition order: a dependency on no
task of the workflow (with a "did you mean"), a task that depends on itself, a dependency listed
twice. When definition order is not a topological order, ``_sort`` finds one (Kahn's algorithm,
ties in definition order); tasks left over lie on a cycle, and ``_find_cycle`` shows one as a
path, in the direction work flows (``a -> b -> a``).

``_GraphChecks`` is a mixin of :class:`Graph`, with no slots of its own: the fields it reads are
Graph's, declared here for type checkers only.
"""

from __future__ import annotations

import difflib
from collections import deque
from collections.abc import Sequence
from typing import TYPE_CHECKING

from ._exceptions import CycleError, InvalidOptionError, UnknownDependencyError

if TYPE_CHECKING:
    pass

__all__ = ["unknown_dependency"]


def unknown_dependency(
    task_id: str, dependency: str, ids: Sequence[str], workflow_name: str
) -> UnknownDependencyError:
    """The error for ``task_id`` depending on ``dependency``, which is none of ``ids``."""
    close = difflib.get_close_matches(dependency, ids, n=1)
    hint = f"; did you mean {close[0]!r}?" if close else "; define it or remove it"
    return UnknownDependencyError(
        f"task {task_id!r} depends on {dependency!r}, which is not a task of "
        f"workflow {workflow_name!r}{hint}"
    )


def _listed_twice(task_id: str, depends_on: tuple[str, ...]) -> InvalidOptionError:
    """The error for a task whose ``depends_on`` names a task twice (found here, in the graph's
    one pass, at the cost of a comparison per edge, rather than by a set per ``add_task``)."""
    return InvalidOptionError(
        f"task {task_id!r} lists a dependency twice: {depends_on!r}; list each one once"
    )


class _GraphChecks:
    """Graph's checks and its fallback topological sort (see the module docstring)."""

    __slots__ = ()

    # Graph's fields that the checks read (see plait._graph).
    workflow_name: str
    ids: list[str]
    depends_on: list[tuple[str, ...]]
    index: dict[str, int]
    dependencies: list[tuple[int, ...]]
    dependents: list[Sequence[int]]

    def _resolve_each(self) -> None:
        """Raise the error of the first task, in definition order, with a dependency on itself
        or on no task of the workflow (the slow path, for the error message)."""
        for task_id, depends_on in zip(self.ids, self.depends_on, strict=False):  # no instances
            for dependency in depends_on:
                if dependency == task_id:
                    raise CycleError(
                        f"task {task_id!r} depends on itself; remove {task_id!r} from its "
                        "depends_on",
                        [task_id, task_id],
                    )
                if dependency not in self.index:
                    raise unknown_dependency(task_id, dependency, self.ids, self.workflow_name)

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
        if len(order) < len(self.ids):
            self._resolve_each()  # a task that depends on itself says so
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
