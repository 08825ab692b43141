"""The scheduler: a pure state machine that decides which task runs next.

It does no I/O and knows no clocks or threads: the engine tells it what happened (``succeed``,
``fail``, ``retry``, ``cancel``) and asks it what to start (``take``). Every decision is a function
of this state, so it can be tested step by step.

State, per task (by graph index):

- ``status[i]``: a :class:`TaskStatus`.
- missing dependencies: how many of the task's dependencies have not succeeded yet. When it drops
  to zero the task is *ready*: it goes into the ready queue of its pool. Each edge is looked at once
  when its dependency finishes, so a whole run costs O(tasks + edges): no rescans, no polling.
- ready queues: one binary heap per pool (pool 0 holds the tasks without a pool), keyed by
  ``graph.queue_key`` -- priority first, then the longest estimate-weighted path to the end of the
  graph (highest level first: what keeps the critical path moving shortens the makespan), then
  definition order. ``max_concurrency=1`` therefore runs a deterministic topological order.
- free slots: one global count (``max_concurrency``) and one per pool with a limit.
- executors' capacities (*lanes*): an executor that runs fewer tasks at once than
  ``max_concurrency`` (an inline executor: 1; a process pool of 4) is an implicit pool: each task
  is in one lane (0: no limit of its own) as well as in one pool, and a task starts only when
  both have a free slot. There is then one ready queue per (pool, lane) pair in use. So work
  never queues blindly inside an executor: it waits here, in order, free to cancel.

Policy: ``take`` returns the best ready task among the queues whose pool and lane have a free
slot, while a global slot is free. A task whose pool (or lane) is full never blocks ready tasks of
other queues (no head-of-line blocking), and a free slot is filled as soon as any ready task can
use it (work-conserving).

Waiting for input: a task marked with ``hold`` (it needs a person's answer) goes, when it becomes
ready, to ``waiting_for_input`` instead of the ready queue, holding no slot; a running task that
asks mid-way is ``suspend``-ed there, its slot freed. ``answer`` moves it to the ready queue.

Failure: ``fail`` marks every transitive dependent of the failed task ``skipped`` (they never
run); independent branches go on. ``halt`` stops the run: nothing new starts and every task that
has not started is ``cancelled``; running tasks stay ``running`` until the engine reports them.

Misuse is loud, as in graphlib: reporting a task that is not in the state the report needs
(``succeed`` twice, ``retry`` of a task that is not running, an index the graph does not have)
raises ``ValueError`` naming the task and its status -- ``task 'x' was already marked
succeeded`` -- and changes nothing, rather than letting the counters drift (``-2/2 running``).
Such an error is a bug in the engine that drives the scheduler, never a user's mistake.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from heapq import heappop, heappush

from ._graph import Graph
from ._state import TaskStatus

__all__ = ["PoolStatistics", "Scheduler", "SchedulerStatistics"]

_UNLIMITED = sys.maxsize
PENDING = TaskStatus.PENDING
RUNNING = TaskStatus.RUNNING


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


class Scheduler:
    """Tracks which tasks are ready and hands them out within the concurrency limits.

    Not thread-safe: the engine calls it under its own lock.
    """

    __slots__ = (
        "_free",
        "_graph",
        "_lane_free",
        "_lane_of",
        "_limit",
        "_missing",
        "_needs_input",
        "_pool_free",
        "_pool_limit",
        "_queue_lane",
        "_queue_of",
        "_queue_pool",
        "_queued",
        "_ready",
        "_single_queue",
        "_size",
        "halted",
        "ready",
        "status",
        "unfinished",
        "waiting",
    )

    def __init__(
        self,
        graph: Graph,
        max_concurrency: int,
        pool_limits: Mapping[str, int] | None = None,
        *,
        lanes: Sequence[int] | None = None,
        lane_limits: Sequence[int] = (),
    ) -> None:
        """Every task starts pending.

        Args:
            graph: the compiled graph.
            max_concurrency: the most tasks running at once.
            pool_limits: slots of each named pool.
            lanes: each task's lane (its executor's implicit pool; 0: none), by index.
            lane_limits: the slots of lanes 1, 2, ...

        Raises:
            ValueError: a task's lane has no limit in ``lane_limits``.
        """
        pool_limits = pool_limits or {}
        self._graph = graph
        self._size = len(graph)
        self.status = [PENDING] * len(graph)
        self.unfinished = len(graph)
        self.halted = False
        self._missing = [len(d) for d in graph.dependencies]
        self._needs_input = [False] * len(graph)
        self.waiting = 0
        self._lane_free = [_UNLIMITED, *lane_limits]
        if lanes is None or not any(lanes):
            self._lane_of: Sequence[int] = [0] * len(graph) if lanes is None else lanes
            self._queue_of: Sequence[int] = graph.pool_of
            self._queue_pool = list(range(len(graph.pool_names)))
            self._queue_lane = [0] * len(graph.pool_names)
        else:
            if len(lanes) != len(graph) or not all(
                0 <= lane < len(self._lane_free) for lane in lanes
            ):
                raise ValueError(
                    f"lanes must give each of the {len(graph)} tasks a lane in 0.."
                    f"{len(lane_limits)}, not {list(lanes)!r}"
                )
            queues: dict[tuple[int, int], int] = {(0, 0): 0}
            pool_of = graph.pool_of
            self._lane_of = lanes
            self._queue_of = [
                queues.setdefault((pool_of[i], lanes[i]), len(queues)) for i in range(len(graph))
            ]
            self._queue_pool = [pool for pool, _ in queues]
            self._queue_lane = [lane for _, lane in queues]
        self._ready: list[list[int]] = [[] for _ in self._queue_pool]
        self._queued = [False] * len(graph)  # in a ready queue (and not cancelled there)
        self.ready = 0
        self._pool_limit = [
            _UNLIMITED if name is None else pool_limits.get(name, _UNLIMITED)
            for name in graph.pool_names
        ]
        self._pool_free = list(self._pool_limit)
        self._single_queue = len(self._queue_pool) == 1
        self._limit = max_concurrency
        self._free = max_concurrency

    def start(self, succeeded: Iterable[int] = ()) -> list[int]:
        """Queue the tasks that can run first, and return them.

        Args:
            succeeded: tasks that already succeeded (a resumed run); they are not run again.

        Raises:
            ValueError: a task in ``succeeded`` is not pending (given twice, or not in the graph).
        """
        for i in succeeded:
            if not 0 <= i < self._size or self.status[i] is not PENDING:
                raise self._misuse(i, "pending")
            self.status[i] = TaskStatus.SUCCEEDED
            self.unfinished -= 1
            for d in self._graph.dependents[i]:
                self._missing[d] -= 1
        ready = [
            i
            for i in self._graph.topological_order
            if self._missing[i] == 0 and self.status[i] is PENDING
        ]
        for i in ready:
            self._make_ready(i)
        return ready

    def hold(self, i: int) -> None:
        """Task ``i`` needs an answer before it can run: when ready, it will wait for one.

        Raises:
            ValueError: the graph has no task ``i``.
        """
        if not 0 <= i < self._size:
            raise self._misuse(i, "pending")
        self._needs_input[i] = True

    def take(self) -> int | None:
        """Start the best ready task that a free slot allows; ``None`` if there is none."""
        if self._free == 0 or self.halted:
            return None
        status = self.status
        task_at_key = self._graph.task_at_key
        if self._single_queue:
            heap = self._ready[0]
            while True:
                if not heap:
                    return None
                i = task_at_key[heappop(heap)]
                if self._queued[i]:
                    break  # else it was cancelled while queued: drop it
        else:
            while True:
                best = -1
                best_key = _UNLIMITED
                pool_free, lane_free = self._pool_free, self._lane_free
                queue_pool, queue_lane = self._queue_pool, self._queue_lane
                for queue, heap in enumerate(self._ready):
                    if (
                        heap
                        and heap[0] < best_key
                        and pool_free[queue_pool[queue]] > 0
                        and lane_free[queue_lane[queue]] > 0
                    ):
                        best, best_key = queue, heap[0]
                if best < 0:
                    return None
                heappop(self._ready[best])
                i = task_at_key[best_key]
                if self._queued[i]:
                    break
            self._pool_free[self._queue_pool[best]] -= 1
            self._lane_free[self._queue_lane[best]] -= 1
        self._queued[i] = False
        self.ready -= 1
        self._free -= 1
        status[i] = RUNNING
        return i

    def succeed(self, i: int) -> list[int]:
        """Record that running task ``i`` succeeded; return the tasks that became ready.

        A returned task whose status is ``waiting_for_input`` became ready but waits for an answer.

        Raises:
            ValueError: ``i`` is not a running task.
        """
        if not 0 <= i < self._size or self.status[i] is not RUNNING:
            raise self._misuse(i, "running")
        self.status[i] = TaskStatus.SUCCEEDED
        self._release(i)
        self.unfinished -= 1
        ready = []
        missing = self._missing
        status = self.status
        for d in self._graph.dependents[i]:
            missing[d] -= 1
            if missing[d] == 0 and status[d] is PENDING:
                self._make_ready(d)
                ready.append(d)
        return ready

    def fail(self, i: int) -> list[int]:
        """Record that task ``i`` (running or waiting) failed for good; return the dependents it
        skips.

        Raises:
            ValueError: ``i`` is neither running nor waiting for input.
        """
        if not 0 <= i < self._size or (
            self.status[i] is not RUNNING and self.status[i] is not TaskStatus.WAITING_FOR_INPUT
        ):
            raise self._misuse(i, "running or waiting for input")
        self._leave(i)
        self.status[i] = TaskStatus.FAILED
        self.unfinished -= 1
        return self._skip_dependents(i)

    def retry(self, i: int) -> None:
        """Running task ``i`` failed but will be tried again: free its slot; it waits, pending.

        Raises:
            ValueError: ``i`` is not a running task.
        """
        if not 0 <= i < self._size or self.status[i] is not RUNNING:
            raise self._misuse(i, "running")
        self.status[i] = PENDING
        self._release(i)

    def requeue(self, i: int) -> bool:
        """Put task ``i`` back in the ready queue after its backoff; False if the run halted (or
        the task is no longer pending).

        Raises:
            ValueError: the graph has no task ``i``.
        """
        if not 0 <= i < self._size:
            raise self._misuse(i, "pending")
        if self.halted or self.status[i] is not PENDING:
            return False
        self._push(i)
        return True

    def suspend(self, i: int) -> None:
        """Running task ``i`` asked for input: free its slot; it waits for an answer.

        Raises:
            ValueError: ``i`` is not a running task.
        """
        if not 0 <= i < self._size or self.status[i] is not RUNNING:
            raise self._misuse(i, "running")
        self._release(i)
        self._needs_input[i] = True
        self.status[i] = TaskStatus.WAITING_FOR_INPUT
        self.waiting += 1

    def answer(self, i: int) -> bool:
        """Task ``i`` got its answer: queue it if it was waiting; True if it was.

        An answer may come before the task is ready: it then runs without waiting.

        Raises:
            ValueError: the graph has no task ``i``.
        """
        if not 0 <= i < self._size:
            raise self._misuse(i, "waiting for input")
        self._needs_input[i] = False
        if self.status[i] is not TaskStatus.WAITING_FOR_INPUT or self.halted:
            return False
        self.status[i] = PENDING
        self.waiting -= 1
        self._push(i)
        return True

    def cancel(self, i: int) -> list[int]:
        """Record that task ``i`` was cancelled; return the dependents it skips.

        Raises:
            ValueError: task ``i`` had already finished (or the graph has no task ``i``).
        """
        if not 0 <= i < self._size or self.status[i].is_final:
            raise self._misuse(i, "unfinished")
        self._leave(i)
        self.status[i] = TaskStatus.CANCELLED
        self.unfinished -= 1
        return self._skip_dependents(i)

    def halt(self) -> list[int]:
        """Stop starting tasks; cancel every task that has not started, and return those.

        Running tasks are left to the engine to stop and report. Halting twice does nothing more.
        """
        self.halted = True
        cancelled = [
            i
            for i, status in enumerate(self.status)
            if status is PENDING or status is TaskStatus.WAITING_FOR_INPUT
        ]
        self.waiting = 0
        for i in cancelled:
            self.status[i] = TaskStatus.CANCELLED
        self.unfinished -= len(cancelled)
        for heap in self._ready:
            heap.clear()
        self._queued = [False] * len(self.status)
        self.ready = 0
        return cancelled

    @property
    def finished(self) -> bool:
        """Whether every task has reached a final status."""
        return self.unfinished == 0

    @property
    def idle(self) -> bool:
        """Whether nothing runs and nothing is ready: the run can only wait (or is finished)."""
        return self._free == self._limit and self.ready == 0

    @property
    def running(self) -> int:
        """How many tasks hold a slot."""
        return self._limit - self._free

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
                    if status is RUNNING and self._graph.pool_of[i] == pool
                ),
                limit=None if limit == _UNLIMITED else limit,
                ready=sum(
                    1
                    for queue, heap in enumerate(self._ready)
                    if self._queue_pool[queue] == pool
                    for key in heap
                    if self._queued[task_at_key[key]]
                ),
            )
        return SchedulerStatistics(
            running=self.running,
            max_concurrency=self._limit,
            ready=self.ready,
            waiting=self.waiting,
            unfinished=self.unfinished,
            pools=pools,
        )

    def __repr__(self) -> str:
        return (
            f"<Scheduler {self.running}/{self._limit} running, "
            f"{self.ready} ready, {self.unfinished} unfinished>"
        )

    def _misuse(self, i: int, expected: str) -> ValueError:
        """The error for a report about task ``i``, which is not ``expected``."""
        if not isinstance(i, int) or not 0 <= i < self._size:
            tasks = f"0 to {self._size - 1}" if self._size else "none"
            return ValueError(f"no task has index {i!r}; the graph's tasks are {tasks}")
        task_id = self._graph.ids[i]
        status = self.status[i]
        if status.is_final:
            return ValueError(f"task {task_id!r} was already marked {status}")
        return ValueError(
            f"task {task_id!r} is not {expected} (it is {status.value.replace('_', ' ')})"
        )

    def _make_ready(self, i: int) -> None:
        if self._needs_input[i]:
            self.status[i] = TaskStatus.WAITING_FOR_INPUT
            self.waiting += 1
        else:
            self._push(i)

    def _leave(self, i: int) -> None:
        """Task ``i`` stops running or waiting."""
        status = self.status[i]
        if status is RUNNING:
            self._release(i)
        elif status is TaskStatus.WAITING_FOR_INPUT:
            self.waiting -= 1
        elif self._queued[i]:  # left in its heap; take() drops it
            self._queued[i] = False
            self.ready -= 1

    def _push(self, i: int) -> None:
        heappush(self._ready[self._queue_of[i]], self._graph.queue_key[i])
        self._queued[i] = True
        self.ready += 1

    def _release(self, i: int) -> None:
        self._free += 1
        if not self._single_queue:
            self._pool_free[self._graph.pool_of[i]] += 1
            self._lane_free[self._lane_of[i]] += 1

    def _skip_dependents(self, i: int) -> list[int]:
        skipped = []
        stack = list(self._graph.dependents[i])
        status = self.status
        while stack:
            d = stack.pop()
            if status[d] is PENDING:
                status[d] = TaskStatus.SKIPPED
                skipped.append(d)
                stack.extend(self._graph.dependents[d])
        self.unfinished -= len(skipped)
        return skipped
