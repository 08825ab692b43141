"""Attempts that become ready together go to the Dask scheduler as one graph.

``client.submit`` sends one ``update-graph`` message per task, and the scheduler handles each
on its own: it unpickles it, hands it to a thread to materialize, orders it, makes its task
state and transitions it. Submitting a batch as one graph pays that once: measured on the
benchmark's LocalCluster, 400 no-ops cost the scheduler and client about 0.4 ms of CPU per
task less as one graph than as 400 submits (``bench/_dask.py``, Part 8).

The batch is a low-level graph of ``dask._task_spec.Task`` nodes, sent with ``client.get(...,
sync=False)`` (what ``client.submit`` builds, one task at a time). Each attempt keeps its own
priority: Dask applies a callable annotation to each key of the graph, so the priority is
given as the ``get`` of a dict of priorities by key. Where Dask has no ``_task_spec`` (before
2024.12), :func:`batching` is False and the executor submits attempts one by one.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Sequence
from typing import Any

__all__ = ["batching", "send"]


def _task_spec() -> Any:
    try:
        return importlib.import_module("dask._task_spec")
    except ImportError:  # pragma: no cover - a Dask older than the task spec
        return None


_SPEC = _task_spec()


def batching() -> bool:
    """Whether this Dask can take several attempts as one graph (see the module docstring)."""
    return _SPEC is not None


def send(
    client: Any, fn: Callable[..., Any], calls: Sequence[tuple[Any, tuple[Any, ...], int]]
) -> list[Any]:
    """Send ``fn(*args)`` for each ``(key, args, priority)`` of ``calls`` as one graph; return
    their futures, in order. Futures among ``args`` (at any depth a dict, list or tuple
    reaches) become dependencies, as with ``client.submit``.

    Raises:
        Exception: what pickling the graph raised (a value that cannot be sent): nothing was
            sent.
    """
    parse, task = _SPEC.parse_input, _SPEC.Task
    graph = {key: task(key, fn, *(parse(a) for a in args)) for key, args, _ in calls}
    priorities = {key: priority for key, _, priority in calls}
    return list(
        client.get(
            graph,
            [key for key, _, _ in calls],
            sync=False,
            priority=priorities.get,
            fifo_timeout="100 ms",  # client.submit's: the same generation within 100 ms
        )
    )
