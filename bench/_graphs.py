"""Synthetic graph shapes for the overhead benchmark, and their translation into a plait Workflow.

A graph is a plain ``list[tuple[int, ...]]``: entry ``i`` holds the parents of node ``i``, and
parents always have smaller indices. Every contender (plait and the baselines) is built from the
same list, so they all run the identical graph.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from typing import Any

import plait

Parents = list[tuple[int, ...]]

LAYER_WIDTH = 100
SEED = 20240607


def noop() -> None:
    """The sync no-op task body: no parameters, so plait binds nothing and passes nothing."""


async def anoop() -> None:
    """The async no-op task body; it never suspends, like ``noop`` it measures pure overhead."""


def independent(n: int) -> Parents:
    """``n`` nodes without edges: measures dispatch alone."""
    return [()] * n


def chain(n: int) -> Parents:
    """Node ``i`` depends on node ``i - 1``: no parallelism, every hand-off is on the path."""
    return [()] + [(i - 1,) for i in range(1, n)]


def layered(n: int, width: int = LAYER_WIDTH, seed: int = SEED) -> Parents:
    """Layers of ``width`` nodes, each depending on 1-3 random nodes of the previous layer.

    Fixed seed, so every run and every contender sees the same edges.
    """
    rng = random.Random(seed)
    parents: Parents = []
    for i in range(n):
        layer_start = (i // width) * width
        if layer_start == 0:
            parents.append(())
            continue
        previous = range(layer_start - width, layer_start)
        parents.append(tuple(sorted(rng.sample(previous, rng.randint(1, 3)))))
    return parents


SHAPES: dict[str, Callable[[int], Parents]] = {
    "independent": independent,
    "chain": chain,
    "layered": layered,
}


def isolated_run_kwargs() -> dict[str, Any]:
    """``store=MemoryStore()``: a store of its own per run.

    By default plait records runs in a process-wide memory store (the last 100 runs, 200,000
    tasks in all), so in a benchmark that runs big workflows again and again, each run would
    start in a heap that still holds earlier ones. A fresh store does the same recording work
    and is dropped with the result.
    """
    return {"store": plait.stores.MemoryStore()}


def run_plait(workflow: plait.Workflow, max_concurrency: int) -> plait.RunResult:
    """``plait.run`` with ``max_concurrency`` and a store of its own (see above)."""
    return plait.run(workflow, max_concurrency=max_concurrency, **isolated_run_kwargs())


def task_id(i: int) -> str:
    """The id of node ``i`` in every contender (plait task id, dask key)."""
    return f"t{i}"


def to_workflow(
    parents: Parents,
    fn: Callable[..., Any],
    *,
    name: str = "bench",
    ids: Sequence[str] | None = None,
    estimates: Sequence[float | None] | None = None,
    params: Sequence[dict[str, Any]] | None = None,
) -> plait.Workflow:
    """Build a plait Workflow of ``parents`` where every task runs ``fn``.

    ``ids``, ``estimates`` and ``params`` are optional per-node values (default: ``t<i>``, none,
    none). Building happens outside every timed region.
    """
    names = list(ids) if ids is not None else [task_id(i) for i in range(len(parents))]
    wf = plait.Workflow(name)
    for i, deps in enumerate(parents):
        wf.add_task(
            names[i],
            fn,
            depends_on=[names[p] for p in deps],
            estimate=None if estimates is None else estimates[i],
            params=None if params is None else params[i],
        )
    return wf
