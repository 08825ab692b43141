"""Reading the scheduler: a snapshot of its queues and limits (:meth:`_Inspection.statistics`),
and the error for a report it refuses (:meth:`_Inspection._misuse`: misuse is loud, see
``_scheduler``'s docstring)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from ._scheduler_state import _UNLIMITED, RUNNING, _SchedulerState

__all__ = ["PoolStatistics", "SchedulerStatistics"]


@dataclass(frozen=True, slots=True)
class PoolStatistics:
    """One pool's use: tasks running in it, its limit (``None``: unlimited) and tasks ready."""

    running: int
    limit: int | None
    ready: int


@dataclass(frozen=True, slots=True)
class SchedulerStatistics:
    """A snapshot of the scheduler: how many tasks are where, and each pool's use."""

    running: int
    max_concurrency: int
    ready: int
    waiting: int
    unfinished: int
    pools: Mapping[str, PoolStatistics]


class _Inspection(_SchedulerState):
    """The scheduler's snapshot and its misuse errors (a mixin of ``Scheduler``)."""

    __slots__ = ()

    def statistics(self) -> SchedulerStatistics:
        """A read-only snapshot of the queues and limits."""
        pools = {}
        task_at_key = self._graph.task_at_key
        for pool, name in enumerate(self._graph.pool_names):
            if name is None:
                continue
            limit = self._pool_limit[pool]
            pools[name] = PoolStatistics(
                running=sum(
                    1
                    for i, status in enumerate(self.status)
                    if status is RUNNING
                    and self._graph.pool_of[i] == pool
                    and not self._is_mapped(i)
                ),
                limit=None if limit == _UNLIMITED else limit,
                ready=sum(
                    1
                    for queue, heap in enumerate(self._ready)
                    if self._queue_pool[queue] == pool
                    for key in (*heap, *self._start_ready[queue])
                    for i in self._ready_behind(task_at_key[key])
                ),
            )
        return SchedulerStatistics(
            running=self._limit - self._free,
            max_concurrency=self._limit,
            ready=self.ready,
            waiting=self.waiting,
            unfinished=self.unfinished,
            pools=pools,
        )

    def __repr__(self) -> str:
        return (
            f"<Scheduler {self._limit - self._free}/{self._limit} running, "
            f"{self.ready} ready, {self.unfinished} unfinished>"
        )

    def _misuse(self, i: int, expected: str) -> ValueError:
        """The error for a report about task ``i``, which is not ``expected``."""
        if not isinstance(i, int) or not 0 <= i < self._total:
            tasks = f"0 to {self._total - 1}" if self._total else "none"
            return ValueError(f"no task has index {i!r}; the graph's tasks are {tasks}")
        task_id = self._graph.ids[i]
        status = self.status[i]
        if i in self._ahead:
            return ValueError(
                f"task {task_id!r} is not {expected} (it is pending, queued behind "
                f"{self._graph.ids[self._ahead[i]]!r})"
            )
        if self._is_mapped(i) and not status.is_final:
            return ValueError(
                f"task {task_id!r} is mapped: its instances run and are reported, not the task"
            )
        if status.is_final:
            return ValueError(f"task {task_id!r} was already marked {status}")
        return ValueError(
            f"task {task_id!r} is not {expected} (it is {status.value.replace('_', ' ')})"
        )
