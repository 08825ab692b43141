"""Where each task of a run runs: on the event loop or on an executor, and in which lane.

Worked out once, as a run's state is built (see ``_run_state``), from the graph's options and the
run's executors (``executors._named``). A task that names no executor runs on the loop if it is
an async function, on ``EngineConfig.default_executor`` if not; an async task given the inline
executor runs on the loop too. An executor that runs fewer tasks at once than
``max_concurrency``, or that pipelines, is a lane of the scheduler's, its capacity the lane's
slots (see ``_scheduler``).
"""

from __future__ import annotations

import operator
from collections.abc import Sequence

from ._task_columns import TaskOptions
from .executors import Executor, InlineExecutor
from .executors._named import RunExecutors

__all__: list[str] = []

# What _place reads off every task's options: one pass in C each.
_IS_ASYNC = operator.attrgetter("is_async")
_EXECUTOR = operator.attrgetter("executor")


def _place(
    specs: Sequence[TaskOptions], executors: RunExecutors, default: str
) -> tuple[list[Executor | None], list[bool]]:
    """Where each task runs (None: on the loop), and whether it is an async function that an
    executor calls. Costs one pass in C when no task names an executor (make bench Part 1)."""
    is_async = list(map(_IS_ASYNC, specs))
    if not any(map(_EXECUTOR, specs)):
        executor = None if all(is_async) else executors.get(default)
        return [None if a else executor for a in is_async], [False] * len(specs)
    executor_of: list[Executor | None] = []
    for spec in specs:
        if spec.executor is None and spec.is_async:
            executor_of.append(None)
            continue
        executor = executors.get(spec.executor or default)
        # An async task handed to the inline executor runs on the loop: that is its thread.
        executor_of.append(
            None if spec.is_async and isinstance(executor, InlineExecutor) else executor
        )
    return executor_of, [a and e is not None for a, e in zip(is_async, executor_of, strict=True)]


def _lanes(
    executor_of: Sequence[Executor | None], in_use: Sequence[Executor], max_concurrency: int
) -> tuple[list[int] | None, list[int], dict[int, int]]:
    """Each task's lane -- its executor's implicit pool, when the executor runs fewer tasks at
    once than ``max_concurrency`` or pipelines -- each lane's slots (see ``_scheduler``), and
    the lane of each such executor, by its ``id``."""
    limits: list[int] = []
    lane_of_executor: dict[int, int] = {}
    for executor in in_use:
        capacity = executor.capacity
        if capacity is not None and capacity < max_concurrency:
            limits.append(max(1, capacity))
        elif executor.pipelines:  # it queues jobs behind its own (see _scheduler_behind)
            limits.append(max_concurrency if capacity is None else capacity)
        else:
            continue
        lane_of_executor[id(executor)] = len(limits)
    if not limits:
        return None, limits, lane_of_executor
    lanes = [0 if e is None else lane_of_executor.get(id(e), 0) for e in executor_of]
    return lanes, limits, lane_of_executor
