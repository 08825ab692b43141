"""Reference executors that run the same graphs as plait, as the floor (or rival) to compare with.

- :func:`run_bare_asyncio`: one asyncio Task per node, awaiting its parents' tasks, then the body
  under a semaphore -- the least an asyncio DAG runner can do, so the floor for async tasks.
- :func:`run_graphlib_threads`: ``graphlib.TopologicalSorter`` feeding a ``ThreadPoolExecutor`` --
  the obvious stdlib DAG runner, so the floor for sync tasks.
- :func:`run_dask_threaded`: ``dask.threaded.get`` on the equivalent dask graph -- an established
  engine with the same job (sync functions on a thread pool).

Each takes the graph as a parents list (see ``_graphs``) and returns nothing; timing is the
caller's business. Each runs its own event loop or pool, as ``plait.run`` does.
"""

from __future__ import annotations

import asyncio
import graphlib
from collections import deque
from collections.abc import Awaitable, Callable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from typing import Any

from _graphs import Parents, task_id


def run_bare_asyncio(parents: Parents, fn: Callable[[], Awaitable[None]], limit: int) -> None:
    """Run every node as an asyncio Task that awaits its parents, then ``fn`` under a semaphore."""

    async def node(semaphore: asyncio.Semaphore, deps: list[asyncio.Task[None]]) -> None:
        for dep in deps:
            await dep
        async with semaphore:
            await fn()

    async def main() -> None:
        semaphore = asyncio.Semaphore(limit)
        tasks: list[asyncio.Task[None]] = []
        create = asyncio.get_running_loop().create_task
        for deps in parents:
            tasks.append(create(node(semaphore, [tasks[p] for p in deps])))
        await asyncio.gather(*tasks)

    asyncio.run(main())


def run_graphlib_threads(parents: Parents, fn: Callable[[], None], workers: int) -> None:
    """Drive a ThreadPoolExecutor from a TopologicalSorter: submit ready nodes, wait, ``done()``.

    At most ``2 * workers`` futures are in flight (the rest wait in a local deque): ``wait()``
    scans every future it is given, so handing it all 100,000 ready nodes of a wide graph would
    make the loop quadratic; two per worker keep every worker fed while the driver wakes up.
    """
    sorter: graphlib.TopologicalSorter[int] = graphlib.TopologicalSorter()
    for i, deps in enumerate(parents):
        sorter.add(i, *deps)
    sorter.prepare()
    cap = 2 * workers
    ready: deque[int] = deque()
    in_flight: dict[Future[None], int] = {}
    with ThreadPoolExecutor(workers) as pool:
        while sorter.is_active():
            ready.extend(sorter.get_ready())
            while ready and len(in_flight) < cap:
                in_flight[pool.submit(fn)] = ready.popleft()
            done, _ = wait(in_flight, return_when=FIRST_COMPLETED)
            for future in done:
                future.result()
                sorter.done(in_flight.pop(future))


def noop_with_args(*_parents: Any) -> None:
    """The dask no-op: dask passes the parents' outputs as arguments; ignore them."""


def dask_graph(parents: Parents) -> dict[str, tuple[Any, ...]]:
    """The dask graph of ``parents``: key ``t<i>`` is ``(noop_with_args, *parent keys)``."""
    return {
        task_id(i): (noop_with_args, *(task_id(p) for p in deps)) for i, deps in enumerate(parents)
    }


def run_dask_threaded(dsk: dict[str, tuple[Any, ...]], keys: list[str], workers: int) -> None:
    """Compute every key of ``dsk`` with dask's threaded scheduler and ``workers`` threads."""
    import dask.threaded  # noqa: PLC0415 - imported lazily: the quick path may not need dask

    dask.threaded.get(dsk, keys, num_workers=workers)
