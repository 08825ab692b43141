"""The scheduler: a pure state machine that decides which task runs next.

It does no I/O and knows no clocks or threads: the engine tells it what happened (``succeed``,
``fail``, ``retry``, ``cancel``) and asks it what to start (``take``). Every decision is a function
of this state, so it can be tested step by step.

State, per task (by graph index):

- ``status[i]``: a :class:`TaskStatus`.
- dependency counts: how many of the task's dependencies have not finished yet, and how many
  finished succeeded, failed, upstream-failed (skipped because something failed, or cancelled) and
  skipped. Each edge is looked at once, when its dependency finishes: the counts change and the
  task's trigger rule is asked (:func:`plait._rules.decide`, one evaluator for every rule) whether
  the task can now run, must be skipped, or must wait. A task that can run is *ready*: it goes
  into the ready queue of its pool. A whole run costs O(tasks + edges): no rescans, no polling.
- ``open[i]``: the rule of task ``i`` is still undecided; a decision is made once.
- ``skip_cause[i]``: why a skipped task was skipped (a :class:`SkipCause`).
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

Failure: ``fail`` counts the failure for each dependent, whose rule decides: under the default
``all_success`` it is skipped (cause ``upstream_failed``), and so on down the graph, each task by
its own rule; independent branches go on. ``skip`` ends a running task ``skipped`` on purpose
(``raise plait.Skip``). Every report returns the tasks it decided: ready ones (``pending`` in a
queue, or ``waiting_for_input``) and skipped ones, in the order decided.

Halting: ``halt`` stops the run: nothing new starts and every task that has not started is
``cancelled``, except *cleanup* tasks (Airflow's teardown): they stay, and run once their
dependencies are done, as their rule says (a cancelled dependency counts as upstream-failed).
``halt(cleanup=False)`` (a second interrupt) cancels them too. Running tasks stay ``running``
until the engine reports them.

Mapped tasks: a mapped task whose rule says run does not go to a ready queue: it becomes
``running`` (holding no slot) and is returned among the decided tasks, for the engine to
``expand`` with its number of items (the length of the list it maps over, which only the engine
sees). ``expand(i, n)`` adds the instances ``i[0]``... ``i[n-1]`` (:meth:`Graph.add_instances`),
each a task of its own with the rank, pool and lane of its mapped task, and returns those it
decided. A task mapped over a mapped task maps instance by instance and *streams*: the edge between
the two counts as succeeded as soon as the first one expands, and instance ``b[k]`` waits for
``a[k]`` alone. Instances of one mapped task wait in one line (a deque, in the order they became
ready) behind their task's key in its pool's heap, so a heap holds each mapped task once, however
many instances are ready. When its last instance finishes the mapped task finishes too, and is
returned among the decided tasks: ``failed`` if an instance failed, else ``cancelled`` if one was
cancelled, else ``skipped`` (cause ``upstream_failed``) if one was skipped because something
failed, else ``succeeded`` (instances that skipped for another reason are left out of its
output). Zero instances: it succeeds at once. Its dependents then follow their rules. The cost of
a mapped task is O(instances + their edges), like as many static tasks.

Misuse is loud, as in graphlib: reporting a task that is not in the state the report needs
(``succeed`` twice, ``retry`` of a task that is not running, an index the graph does not have)
raises ``ValueError`` naming the task and its status -- ``task 'x' was already marked
succeeded`` -- and changes nothing, rather than letting the counters drift (``-2/2 running``).
Such an error is a bug in the engine that drives the scheduler, never a user's mistake.
"""

from __future__ import annotations

import sys
from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from heapq import heappop, heappush
from typing import cast

from ._graph import Graph
from ._rules import RUN, decide
from ._state import SkipCause, TaskStatus

__all__ = ["PoolStatistics", "Scheduler", "SchedulerStatistics"]

_NOT_EXPANDED = -1

_UNLIMITED = sys.maxsize
# Statuses as constants: a member read off its enum class costs a tenth of a microsecond, and
# these are read once per task.
PENDING = TaskStatus.PENDING
RUNNING = TaskStatus.RUNNING
SUCCEEDED = TaskStatus.SUCCEEDED
FAILED = TaskStatus.FAILED
SKIPPED = TaskStatus.SKIPPED
CANCELLED = TaskStatus.CANCELLED
WAITING = TaskStatus.WAITING_FOR_INPUT
UPSTREAM_FAILED = SkipCause.UPSTREAM_FAILED
SKIPPED_BY_TASK = SkipCause.SKIPPED_BY_TASK

# Which count a finished dependency adds to (see the module docstring).
_SUCCEEDED, _FAILED, _UPSTREAM_FAILED, _SKIPPED = range(4)


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

    Not thread-safe: the engine calls it under its own lock. ``graph`` is the graph it works
    on: the one given, or for a workflow with mapped tasks a copy of it that grows by their
    instances (:meth:`Graph.for_run`), which the engine reads task ids and specs from.
    """

    __slots__ = (
        "_cleanup",
        "_counts",
        "_decides_on_success",
        "_free",
        "_graph",
        "_held",
        "_lane_free",
        "_lane_of",
        "_left",
        "_limit",
        "_lined",
        "_maps",
        "_missing",
        "_open",
        "_pool_free",
        "_pool_limit",
        "_queue_lane",
        "_queue_of",
        "_queue_pool",
        "_queued",
        "_ready",
        "_rules",
        "_single_queue",
        "_size",
        "_total",
        "cleanup_halted",
        "graph",
        "halted",
        "ready",
        "skip_cause",
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
        # A workflow with mapped tasks grows: the scheduler works on the run's own copy.
        self.graph = self._graph = graph = graph.for_run() if not graph.growable else graph
        self._size = len(graph)  # the workflow's tasks; instances come after them
        self._total = len(graph)  # every task, instances included
        self.status = [PENDING] * len(graph)
        self.unfinished = len(graph)
        self.halted = False
        self.cleanup_halted = False  # a halt cancelled the cleanup tasks too (second interrupt)
        self._missing = [len(d) for d in graph.dependencies]
        # succeeded, failed, upstream-failed, skipped dependencies: one list per kind
        self._counts = ([0] * len(graph), [0] * len(graph), [0] * len(graph), [0] * len(graph))
        # Whether a success may decide the task's rule while other dependencies still run: if
        # not, a success asks the rule only when it was the last dependency to finish.
        self._decides_on_success = graph.decides_on_success
        self._open = [True] * len(graph)
        self._rules = graph.rules
        self._cleanup = graph.cleanup
        self.skip_cause: list[SkipCause | None] = [None] * len(graph)
        # Ready, but not into a ready queue: waiting for input (hold), or a mapped task, to expand.
        self._held = [False] * len(graph)
        self.waiting = 0
        self._maps = graph.mapped
        # By task: how many of a mapped task's instances have not finished (-1: not expanded),
        # and the line of its ready instances (see the module docstring).
        self._left: list[int] = []
        self._lined: list[deque[int] | None] = []
        if graph.mapped:
            self._left = [_NOT_EXPANDED] * len(graph)
            self._lined = [None] * len(graph)
            for i, u in enumerate(graph.map_over):
                if u >= 0:
                    self._held[i] = True
        self._lane_free = [_UNLIMITED, *lane_limits]
        if lanes is None or not any(lanes):
            self._lane_of: Sequence[int] = [0] * len(graph) if lanes is None else list(lanes)
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
            self._lane_of = list(lanes)
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

    def start(self, succeeded: Iterable[int] = (), skipped: Iterable[int] = ()) -> list[int]:
        """Decide the tasks that can be decided before anything runs, and return them: the ready
        ones (queued, or waiting for input) and the skipped ones.

        Args:
            succeeded: tasks that already succeeded (a resumed run); they are not run again.
            skipped: tasks that skipped themselves (``raise plait.Skip``) in an earlier run whose
                dependencies ended the same way this time; they stay skipped. Tasks skipped by a
                rule are not given: their rules decide again, the same way if nothing changed.

        Raises:
            ValueError: a task in ``succeeded`` or ``skipped`` is not pending (given twice, or
                not in the graph).
        """
        restored: list[tuple[int, int]] = []
        for kind, tasks in ((_SUCCEEDED, succeeded), (_SKIPPED, skipped)):
            for i in tasks:
                if not 0 <= i < self._total or self.status[i] is not PENDING:
                    raise self._misuse(i, "pending")
                if kind == _SUCCEEDED:
                    self.status[i] = SUCCEEDED
                else:
                    self.status[i] = SKIPPED
                    self.skip_cause[i] = SKIPPED_BY_TASK
                self._open[i] = False
                self.unfinished -= 1
                restored.append((i, kind))
        for i, kind in restored:
            count = self._counts[kind]
            for d in self._graph.dependents[i]:
                self._missing[d] -= 1
                count[d] += 1
        decided: list[int] = []
        stack: list[int] = []
        # A task decided here is never looked at again (it is no longer open), and a skip is
        # counted for its dependents at once: each edge is still looked at once.
        # A fresh run decides its first tasks only (nothing else can be decided before something
        # finishes); a resumed one asks every task, in topological order.
        candidates = self._graph.topological_order if restored else self._graph.first
        for i in candidates:
            if self._open[i]:
                self._decide(i, decided, stack)
                if stack:
                    self._cascade(decided, stack)
        return decided

    def hold(self, i: int) -> None:
        """Task ``i`` needs an answer before it can run: when ready, it will wait for one.

        Raises:
            ValueError: the graph has no task ``i``.
        """
        if not 0 <= i < self._total:
            raise self._misuse(i, "pending")
        if self._maps and self._graph.map_over[i] >= 0:
            raise ValueError(f"task {self._graph.ids[i]!r} is mapped: it cannot wait for input")
        self._held[i] = True

    def take(self) -> int | None:
        """Start the best ready task that a free slot allows; ``None`` if there is none."""
        if self._free == 0:  # after a halt only cleanup tasks are ever queued
            return None
        status = self.status
        task_at_key = self._graph.task_at_key
        maps = self._maps
        if self._single_queue:
            heap = self._ready[0]
            while True:
                if not heap:
                    return None
                i = task_at_key[heappop(heap)]
                if self._queued[i]:
                    if maps and self._lined[i] is not None:  # a mapped task: its next instance
                        i = self._pop_instance(i, heap)
                        if i < 0:
                            continue
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
                heap = self._ready[best]
                heappop(heap)
                i = task_at_key[best_key]
                if self._queued[i]:
                    if maps and self._lined[i] is not None:
                        i = self._pop_instance(i, heap)
                        if i < 0:
                            continue
                    break
            self._pool_free[self._queue_pool[best]] -= 1
            self._lane_free[self._queue_lane[best]] -= 1
        self._queued[i] = False
        self.ready -= 1
        self._free -= 1
        status[i] = RUNNING
        return i

    def succeed(self, i: int) -> list[int]:
        """Record that running task ``i`` succeeded; return the tasks this decided.

        A returned task is ready (``pending`` in a queue, or ``waiting_for_input`` when it waits
        for an answer) or ``skipped`` (its rule can no longer be met: ``one_failed``...).

        Raises:
            ValueError: ``i`` is not a running task.
        """
        if not 0 <= i < self._total or self.status[i] is not RUNNING or self._is_mapped(i):
            raise self._misuse(i, "running")
        self.status[i] = SUCCEEDED
        self._release(i)
        self.unfinished -= 1
        # _count, written out: this is the loop every edge of a run goes through (bench Part 10)
        # and _decide too, but for a skip.
        decided: list[int] = []
        stack: list[int] = []
        missing = self._missing
        succeeded, failed, upstream_failed, skipped = self._counts
        is_open = self._open
        early = self._decides_on_success
        rules = self._rules
        for d in self._graph.dependents[i]:
            missing[d] -= 1
            succeeded[d] += 1
            if is_open[d] and (missing[d] == 0 or early[d]):
                outcome = decide(
                    rules[d], succeeded[d], failed[d], upstream_failed[d], skipped[d], missing[d]
                )
                if outcome is RUN:
                    is_open[d] = False
                    decided.append(d)
                    self._make_ready(d)
                elif outcome is not None:
                    self._decide(d, decided, stack)
        if i >= self._size:
            self._instance_done(i, decided, stack)
        if stack:
            self._cascade(decided, stack)
        return decided

    def fail(self, i: int) -> list[int]:
        """Record that task ``i`` (running or waiting) failed for good; return the tasks this
        decided (skipped ones, and ready ones whose rule wanted a failure). A mapped task that
        could not expand (its items are not a list...) fails so too.

        Raises:
            ValueError: ``i`` is neither running nor waiting for input.
        """
        if (
            not 0 <= i < self._total
            or (self.status[i] is not RUNNING and self.status[i] is not WAITING)
            or (self._is_mapped(i) and self._left[i] != _NOT_EXPANDED)
        ):
            raise self._misuse(i, "running or waiting for input")
        if self._is_mapped(i):  # it could not expand: it holds no slot
            self._open[i] = False
        else:
            self._leave(i)
        self.status[i] = FAILED
        self.unfinished -= 1
        return self._settle(i, _FAILED)

    def skip(self, i: int) -> list[int]:
        """Record that running task ``i`` skipped itself (``raise plait.Skip``); return the tasks
        this decided.

        Raises:
            ValueError: ``i`` is not a running task.
        """
        if not 0 <= i < self._total or self.status[i] is not RUNNING or self._is_mapped(i):
            raise self._misuse(i, "running")
        self._release(i)
        self.status[i] = SKIPPED
        self.skip_cause[i] = SKIPPED_BY_TASK
        self.unfinished -= 1
        return self._settle(i, _SKIPPED)

    def may_retry(self, i: int) -> bool:
        """Whether task ``i``'s failed attempt may be tried again as far as the run goes: it
        has not halted, or ``i`` is a cleanup task the halt left to run (a cleanup task's retry
        policy holds after a halt, until a second interrupt stops the cleanup tasks too)."""
        return not self.halted or (self._cleanup[i] and not self.cleanup_halted)

    def retry(self, i: int) -> None:
        """Running task ``i`` failed but will be tried again: free its slot; it waits, pending.

        Raises:
            ValueError: ``i`` is not a running task, or the run halted and ``i`` may not be
                tried again (see :meth:`may_retry`).
        """
        if not 0 <= i < self._total or self.status[i] is not RUNNING or self._is_mapped(i):
            raise self._misuse(i, "running")
        if not self.may_retry(i):
            raise ValueError(
                f"task {self._graph.ids[i]!r} cannot be retried: the run halted"
                + (" and its cleanup tasks were stopped" if self._cleanup[i] else "")
            )
        self.status[i] = PENDING
        self._release(i)

    def requeue(self, i: int) -> bool:
        """Put task ``i`` back in the ready queue after its backoff; False if the run halted (or
        the task is no longer pending).

        Raises:
            ValueError: the graph has no task ``i``.
        """
        if not 0 <= i < self._total:
            raise self._misuse(i, "pending")
        if self.status[i] is not PENDING or (self.halted and not self._cleanup[i]):
            return False
        self._push(i)
        return True

    def suspend(self, i: int) -> None:
        """Running task ``i`` asked for input: free its slot; it waits for an answer.

        Raises:
            ValueError: ``i`` is not a running task.
        """
        if not 0 <= i < self._total or self.status[i] is not RUNNING or self._is_mapped(i):
            raise self._misuse(i, "running")
        self._release(i)
        self._held[i] = True
        self.status[i] = WAITING
        self.waiting += 1

    def answer(self, i: int) -> bool:
        """Task ``i`` got its answer: queue it if it was waiting; True if it was.

        An answer may come before the task is ready: it then runs without waiting.

        Raises:
            ValueError: the graph has no task ``i``.
        """
        if not 0 <= i < self._total:
            raise self._misuse(i, "waiting for input")
        self._held[i] = False
        if self.status[i] is not WAITING or (self.halted and not self._cleanup[i]):
            return False
        self.status[i] = PENDING
        self.waiting -= 1
        self._push(i)
        return True

    def cancel(self, i: int) -> list[int]:
        """Record that task ``i`` was cancelled; return the tasks this decided (for the rules of
        its dependents a cancelled task counts as upstream-failed).

        Raises:
            ValueError: task ``i`` had already finished (or the graph has no task ``i``).
        """
        if not 0 <= i < self._total or self.status[i].is_final or self._is_mapped(i):
            raise self._misuse(i, "unfinished")
        self._leave(i)
        self.status[i] = CANCELLED
        self._open[i] = False
        self.unfinished -= 1
        return self._settle(i, _UPSTREAM_FAILED)

    def halt(self, *, cleanup: bool = True) -> list[int]:
        """Stop starting tasks; cancel every task that has not started, and return those,
        followed by the cleanup tasks this decided.

        Cleanup tasks are left to run once their dependencies are done, unless ``cleanup`` is
        false (a second interrupt: cancel them too). Running tasks are left to the engine to
        stop and report. Halting again cancels nothing more, except the cleanup tasks the first
        halt kept if this one gives ``cleanup=False``.
        """
        self.halted = True
        self.cleanup_halted = self.cleanup_halted or not cleanup
        status = self.status
        keep = self._cleanup
        cancelled = [
            i
            for i, s in enumerate(status)
            if (s is PENDING or s is WAITING) and not (cleanup and keep[i] and s is PENDING)
        ]
        for i in cancelled:
            if status[i] is WAITING:
                self.waiting -= 1
            elif self._queued[i]:
                self._queued[i] = False
                self.ready -= 1
            status[i] = CANCELLED
            self._open[i] = False
        self.unfinished -= len(cancelled)
        decided: list[int] = []
        stack: list[int] = []
        for i in cancelled:
            self._count(i, _UPSTREAM_FAILED, decided, stack)
        self._cascade(decided, stack)
        return cancelled + decided

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
                    if status is RUNNING
                    and self._graph.pool_of[i] == pool
                    and not self._is_mapped(i)
                ),
                limit=None if limit == _UNLIMITED else limit,
                ready=sum(
                    1
                    for queue, heap in enumerate(self._ready)
                    if self._queue_pool[queue] == pool
                    for key in heap
                    for i in self._ready_behind(task_at_key[key])
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
        if not isinstance(i, int) or not 0 <= i < self._total:
            tasks = f"0 to {self._total - 1}" if self._total else "none"
            return ValueError(f"no task has index {i!r}; the graph's tasks are {tasks}")
        task_id = self._graph.ids[i]
        status = self.status[i]
        if self._is_mapped(i) and not status.is_final:
            return ValueError(
                f"task {task_id!r} is mapped: its instances run and are reported, not the task"
            )
        if status.is_final:
            return ValueError(f"task {task_id!r} was already marked {status}")
        return ValueError(
            f"task {task_id!r} is not {expected} (it is {status.value.replace('_', ' ')})"
        )

    def _ready_behind(self, i: int) -> Iterable[int]:
        """The ready tasks behind the key of task ``i`` in a heap: itself, or a mapped task's
        ready instances."""
        if not self._queued[i]:
            return ()
        line = self._lined[i] if self._maps else None
        if line is None:
            return (i,)
        return [j for j in line if self._queued[j]]

    def _is_mapped(self, i: int) -> bool:
        return self._maps and i < self._size and self._graph.map_over[i] >= 0

    # -- mapped tasks --------------------------------------------------------------------------

    def expand(
        self, i: int, count: int, succeeded: Iterable[int] = (), skipped: Iterable[int] = ()
    ) -> list[int]:
        """Expand mapped task ``i``, which its rule let run, into ``count`` instances (one per
        item); return the tasks this decided: its ready instances, and, when ``count`` is 0 or
        every instance is already done, the task itself (finished) and what that decided.

        Args:
            i: a mapped task that is ``running`` and not expanded yet (it was returned as
                decided, ``running``, by the report that let it run).
            count: how many items it maps over; for a task mapped over a mapped task, that
                task's number of instances.
            succeeded: the items (0-based) whose instances already succeeded (a resumed run);
                they are not run again.
            skipped: the items whose instances skipped themselves (``raise plait.Skip``) in an
                earlier run; they stay skipped, as :meth:`start`'s ``skipped`` tasks do.

        Raises:
            ValueError: ``i`` is not a mapped task waiting to expand, ``count`` is negative or
                is not its upstream's number of instances, or an item in ``succeeded`` or
                ``skipped`` is out of range or in both.
        """
        if not (isinstance(i, int) and 0 <= i < self._total) or not self._is_mapped(i):
            raise ValueError(f"task {i!r} is not a mapped task: there is nothing to expand")
        graph = self._graph
        if self.status[i] is not RUNNING or self._left[i] != _NOT_EXPANDED:
            raise ValueError(
                f"task {graph.ids[i]!r} is not waiting to expand (it is "
                f"{self.status[i].value.replace('_', ' ')}"
                f"{', already expanded' if self._left[i] != _NOT_EXPANDED else ''})"
            )
        upstream = graph.instances.get(graph.map_over[i])
        if not isinstance(count, int) or count < 0:
            raise ValueError(f"task {graph.ids[i]!r} cannot expand into {count!r} instances")
        if upstream is not None and count != len(upstream):
            raise ValueError(
                f"task {graph.ids[i]!r} maps over {graph.ids[graph.map_over[i]]!r} instance by "
                f"instance: it expands into its {len(upstream)} instances, not {count}"
            )
        done, kept = sorted(set(succeeded)), sorted(set(skipped))
        for items in (done, kept):
            if items and not 0 <= items[0] <= items[-1] < count:
                raise ValueError(
                    f"task {graph.ids[i]!r}: items {items!r} are not all among its {count} items"
                )
        both = set(done).intersection(kept)
        if both:
            raise ValueError(
                f"task {graph.ids[i]!r}: items {sorted(both)!r} cannot have both succeeded and "
                "skipped"
            )
        added = graph.add_instances(i, count)
        self._grow(i, count, 0 if upstream is None else 1)
        self._left[i] = count
        self._lined[i] = deque()
        status = self.status
        for k in done:
            j = added[k]
            status[j] = TaskStatus.SUCCEEDED
            self._open[j] = False
        for k in kept:
            j = added[k]
            status[j] = SKIPPED
            self.skip_cause[j] = SkipCause.SKIPPED_BY_TASK
            self._open[j] = False
        self.unfinished += count - len(done) - len(kept)
        self._left[i] -= len(done) + len(kept)
        decided: list[int] = []
        stack: list[int] = []
        if upstream is None:  # every instance is ready at once
            for j in added:
                if self._open[j]:
                    self._open[j] = False
                    decided.append(j)
                    self._push(j)
        else:  # instance k waits for upstream instance k
            dependents = graph.dependents
            for j, u in zip(added, upstream, strict=True):
                if not self._open[j]:
                    continue
                upstream_status = status[u]
                if upstream_status.is_final:
                    self._missing[j] = 0
                    self._counts[self._kind(u)][j] += 1
                    self._decide(j, decided, stack)
                elif dependents[u]:
                    cast(list[int], dependents[u]).append(j)
                else:
                    dependents[u] = [j]
        # Its streams (tasks mapped over it) count it as succeeded: they may expand now.
        missing, succeeded_count, is_open = self._missing, self._counts[_SUCCEEDED], self._open
        for d in graph.streams[i]:
            missing[d] -= 1
            succeeded_count[d] += 1
            if is_open[d]:
                self._decide(d, decided, stack)
        if self.halted and not self._cleanup[i]:  # only a cleanup task expands after a halt
            for j in added:
                if status[j] is PENDING:
                    self._leave(j)
                    status[j] = TaskStatus.CANCELLED
                    self._open[j] = False
                    self.unfinished -= 1
                    decided.append(j)
                    self._count(j, _UPSTREAM_FAILED, decided, stack)
        if self._left[i] == 0:
            self._finish_mapped(i, decided, stack)
        if stack:
            self._cascade(decided, stack)
        return decided

    def instances(self, i: int) -> range | None:
        """The indexes of mapped task ``i``'s instances; None before it expanded (or if it is
        not mapped)."""
        return self._graph.instances.get(i)

    def _grow(self, i: int, count: int, missing: int) -> None:
        """Make room for ``count`` new instances of mapped task ``i``."""
        self._total += count
        self.status.extend([PENDING] * count)
        self._missing.extend([missing] * count)
        for column in self._counts:
            column.extend([0] * count)
        self._open.extend([True] * count)
        self.skip_cause.extend([None] * count)
        self._held.extend([False] * count)
        self._queued.extend([False] * count)
        self._left.extend([_NOT_EXPANDED] * count)
        self._lined.extend([None] * count)
        cast(list[int], self._lane_of).extend([self._lane_of[i]] * count)
        if self._queue_of is not self._graph.pool_of:
            cast(list[int], self._queue_of).extend([self._queue_of[i]] * count)

    def _kind(self, i: int) -> int:
        """Which count finished task ``i`` adds to, for its dependents' rules."""
        status = self.status[i]
        if status is TaskStatus.SUCCEEDED:
            return _SUCCEEDED
        if status is TaskStatus.FAILED:
            return _FAILED
        if status is SKIPPED and self.skip_cause[i] is not UPSTREAM_FAILED:
            return _SKIPPED
        return _UPSTREAM_FAILED

    def _instance_done(self, j: int, decided: list[int], stack: list[int]) -> None:
        """Instance ``j`` finished: its mapped task finishes with its last instance."""
        p = self._graph.instance_parent[j - self._size]
        self._left[p] -= 1
        if self._left[p] == 0:
            self._finish_mapped(p, decided, stack)

    def _finish_mapped(self, p: int, decided: list[int], stack: list[int]) -> None:
        """Every instance of mapped task ``p`` finished: so does ``p`` (see the module
        docstring for its status), and its dependents follow their rules."""
        statuses = {self.status[j] for j in self._graph.instances[p]}
        causes = self.skip_cause
        if TaskStatus.FAILED in statuses:
            self.status[p], kind = TaskStatus.FAILED, _FAILED
        elif TaskStatus.CANCELLED in statuses:
            self.status[p], kind = TaskStatus.CANCELLED, _UPSTREAM_FAILED
        elif SKIPPED in statuses and any(
            causes[j] is UPSTREAM_FAILED for j in self._graph.instances[p]
        ):
            self.status[p], kind = SKIPPED, _UPSTREAM_FAILED
            causes[p] = UPSTREAM_FAILED
        else:
            self.status[p], kind = TaskStatus.SUCCEEDED, _SUCCEEDED
        self._lined[p] = None
        self._queued[p] = False  # its key, if still in a heap, is dropped when taken
        self.unfinished -= 1
        decided.append(p)
        self._count(p, kind, decided, stack)

    def _settle(self, i: int, kind: int) -> list[int]:
        """Task ``i`` finished as ``kind``: count it for each dependent, and decide what follows."""
        decided: list[int] = []
        stack: list[int] = []
        self._count(i, kind, decided, stack)
        if stack:
            self._cascade(decided, stack)
        return decided

    def _count(self, i: int, kind: int, decided: list[int], stack: list[int]) -> None:
        """Count finished task ``i`` (as ``kind``) for each dependent still undecided, and ask
        each one's rule; tasks skipped as a result go on ``stack``, to be counted in turn."""
        count = self._counts[kind]
        missing = self._missing
        is_open = self._open
        for d in self._graph.dependents[i]:
            missing[d] -= 1
            count[d] += 1
            if is_open[d]:
                self._decide(d, decided, stack)
        if self._maps:
            if i >= self._size:
                self._instance_done(i, decided, stack)
            elif self._left[i] == _NOT_EXPANDED:  # it ends unexpanded: so do its streams' edges
                for d in self._graph.streams[i]:
                    missing[d] -= 1
                    count[d] += 1
                    if is_open[d]:
                        self._decide(d, decided, stack)

    def _cascade(self, decided: list[int], stack: list[int]) -> None:
        """Count the skipped tasks on ``stack`` for their dependents, until nothing more is
        decided. Each task is skipped once, so each edge is still looked at once."""
        while stack:
            i = stack.pop()
            kind = _UPSTREAM_FAILED if self.skip_cause[i] is UPSTREAM_FAILED else _SKIPPED
            self._count(i, kind, decided, stack)

    def _decide(self, i: int, decided: list[int], stack: list[int]) -> None:
        """Ask undecided task ``i``'s rule; make it ready, or skip it (onto ``stack``)."""
        succeeded, failed, upstream_failed, skipped = self._counts
        outcome = decide(
            self._rules[i],
            succeeded[i],
            failed[i],
            upstream_failed[i],
            skipped[i],
            self._missing[i],
        )
        if outcome is None:
            return
        # An open task is pending (a cancelled one is closed), and after a halt only cleanup
        # tasks are still open.
        self._open[i] = False
        decided.append(i)
        if outcome is RUN:
            self._make_ready(i)
        else:
            self.status[i] = SKIPPED
            self.skip_cause[i] = cast(SkipCause, outcome)
            self.unfinished -= 1
            stack.append(i)

    def _make_ready(self, i: int) -> None:
        if self._held[i]:
            if self._maps and self._graph.map_over[i] >= 0:  # the engine expands it
                self.status[i] = RUNNING
            else:
                self.status[i] = WAITING
                self.waiting += 1
        else:
            self._push(i)

    def _leave(self, i: int) -> None:
        """Task ``i`` stops running or waiting."""
        status = self.status[i]
        if status is RUNNING:
            self._release(i)
        elif status is WAITING:
            self.waiting -= 1
        elif self._queued[i]:  # left in its heap; take() drops it
            self._queued[i] = False
            self.ready -= 1

    def _push(self, i: int) -> None:
        self._queued[i] = True
        self.ready += 1
        if i >= self._size:  # an instance: into its task's line
            p = self._graph.instance_parent[i - self._size]
            line = self._lined[p]
            assert line is not None
            line.append(i)
            if self._queued[p]:
                return
            self._queued[p] = True
            i = p
        heappush(self._ready[self._queue_of[i]], self._graph.queue_key[i])

    def _pop_instance(self, p: int, heap: list[int]) -> int:
        """The next ready instance of mapped task ``p``, whose key was just taken from ``heap``
        (its key goes back while instances are left); -1 if none is ready any more."""
        self._queued[p] = False
        line = self._lined[p]
        assert line is not None
        queued = self._queued
        while line:
            j = line.popleft()
            if queued[j]:
                if line:
                    heappush(heap, self._graph.queue_key[p])
                    queued[p] = True
                return j
        return -1

    def _release(self, i: int) -> None:
        self._free += 1
        if not self._single_queue:
            self._pool_free[self._graph.pool_of[i]] += 1
            self._lane_free[self._lane_of[i]] += 1
