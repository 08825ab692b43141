"""A compiled graph's ranks: the critical path still ahead of each task, which orders ready
tasks (``Graph._order``: higher ``priority`` first, then higher ``rank``, then definition order);
a copy ranked by other estimates (:meth:`_GraphRanks.reranked`, those learned from history); and
the critical path itself -- one source of truth for both.

``rank[i]`` is the longest path from task ``i`` to the end of the graph, each task weighted by
its estimate; a task without one weighs the median of the known estimates (1 when none is
known). See ``plait._graph`` for the rest of the compiled graph.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Self

__all__: list[str] = []


class _GraphRanks:
    """Graph's ranks, queue order and critical path (see the module docstring)."""

    __slots__ = ()

    # Graph's fields that the ranks read (see plait._graph).
    workflow_name: str
    ids: list[str]
    dependencies: list[tuple[int, ...]]
    dependents: list[Sequence[int]]
    topological_order: Sequence[int]
    rank: list[float]

    if TYPE_CHECKING:

        def _order(self, estimates: Sequence[float | None]) -> None: ...  # Graph

    def _ranks(self, estimates: Sequence[float | None]) -> list[float]:
        rank = [0.0] * len(self.ids)
        dependents = self.dependents
        unknown = _median([e for e in estimates if e is not None], 1.0)
        at = rank.__getitem__
        for i in reversed(self.topological_order):
            estimate = estimates[i]
            after = dependents[i]
            rest = max(map(at, after)) if after else 0.0
            rank[i] = (unknown if estimate is None else estimate) + rest
        return rank

    def reranked(self, estimates: Sequence[float | None]) -> Self:
        """This graph with the ready-queue order ``estimates`` (by task index) give, e.g. those
        learned from history (see ``plait._estimates``); None weighs the median of the others.

        Everything else -- ids, edges, inputs, the fingerprint -- is shared with this graph: only
        the order of ready tasks can change, never what runs.

        Raises:
            ValueError: ``estimates`` does not hold one entry per task.
        """
        if len(estimates) != len(self.ids):
            raise ValueError(
                f"reranked() needs one estimate per task of workflow {self.workflow_name!r} "
                f"({len(self.ids)}), not {len(estimates)}"
            )
        cls = type(self)
        other = object.__new__(cls)
        name: str
        for name in cls.__slots__:
            setattr(other, name, getattr(self, name))
        other._order(estimates)
        return other

    def critical_path(self) -> list[str]:
        """The ids along the longest (estimate-weighted) path through the graph."""
        if not self.ids:
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


def _median(values: list[float], empty: float) -> float:
    """The median of ``values`` (sorted in place), or ``empty`` when there are none.

    Written out rather than taken from ``statistics``, whose import (fractions, decimal) would
    cost ``import plait`` ten milliseconds.
    """
    if not values:
        return empty
    values.sort()
    middle = len(values) // 2
    if len(values) % 2:
        return values[middle]
    return (values[middle - 1] + values[middle]) / 2
