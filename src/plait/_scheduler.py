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
  The tasks ready at the start -- in a wide graph, most of it -- wait beside the heap in a
  sorted list instead (``_start_ready``, smallest key last), taken from the end in O(1);
  ``take`` compares the two heads, so the order is the same as one heap's.
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

Pipelining (``_scheduler_behind``): ``take_behind`` queues a ready task behind a running one, for
an executor that sends a worker its next call while the current one runs. The queued task holds
no slot until the one ahead of it stops running; then it takes over that one's slots, so at most
``max_concurrency`` tasks ever run at once.

Mapped tasks (``_scheduler_mapping``): a mapped task whose rule says run becomes ``running``,
holding no slot, for the engine to ``expand`` into its instances, each a task of its own; it
finishes with its last instance.

Misuse is loud, as in graphlib: reporting a task that is not in the state the report needs
(``succeed`` twice, ``retry`` of a task that is not running, an index the graph does not have)
raises ``ValueError`` naming the task and its status -- ``task 'x' was already marked
succeeded`` -- and changes nothing, rather than letting the counters drift (``-2/2 running``).
Such an error is a bug in the engine that drives the scheduler, never a user's mistake.
"""

from __future__ import annotations

from collections.abc import Iterable
from heapq import heappop

from ._rules import RUN, decide
from ._scheduler_behind import _QueuedBehind
from ._scheduler_decisions import _Decisions
from ._scheduler_inspection import PoolStatistics, SchedulerStatistics, _Inspection
from ._scheduler_mapping import _MappedTasks
from ._scheduler_state import (
    _FAILED,
    _NOT_EXPANDED,
    _SKIPPED,
    _SUCCEEDED,
    _UNLIMITED,
    _UPSTREAM_FAILED,
    CANCELLED,
    FAILED,
    PENDING,
    RUNNING,
    SKIPPED,
    SKIPPED_BY_TASK,
    SUCCEEDED,
    WAITING,
)

__all__ = ["PoolStatistics", "Scheduler", "SchedulerStatistics"]


class Scheduler(_MappedTasks, _QueuedBehind, _Decisions, _Inspection):
    """Tracks which tasks are ready and hands them out within the concurrency limits.

    Not thread-safe: the engine calls it under its own lock. ``graph`` is the graph it works
    on: the one given, or for a workflow with mapped tasks a copy of it that grows by their
    instances (:meth:`Graph.for_run`), which the engine reads task ids and specs from.
    """

    __slots__ = ()  # the state's, declared in _scheduler_state

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
        if restored:
            for i in self._graph.topological_order:
                if self._open[i]:
                    self._decide(i, decided, stack)
                    if stack:
                        self._cascade(decided, stack)
        else:
            missing = self._missing
            for i in self._graph.first:
                if missing[i]:  # an "always" task: its rule is asked
                    self._decide(i, decided, stack)
                else:  # no dependencies: it runs, whatever its rule (see decide)
                    self._open[i] = False
                    decided.append(i)
                    self._make_ready(i)
        self._sort_start_ready()
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
        task_at_key = self._graph.task_at_key
        queued = self._queued
        maps = self._maps
        if self._single_queue:
            heap = self._ready[0]
            start_ready = self._start_ready[0]
            while True:
                if start_ready and (not heap or start_ready[-1] < heap[0]):
                    i = task_at_key[start_ready.pop()]
                elif heap:
                    i = task_at_key[heappop(heap)]
                else:
                    return None
                if queued[i]:
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
                for queue in range(len(self._ready)):
                    head = self._head(queue)
                    if (
                        head < best_key
                        and pool_free[queue_pool[queue]] > 0
                        and lane_free[queue_lane[queue]] > 0
                    ):
                        best, best_key = queue, head
                if best < 0:
                    return None
                i = self._pop_key(best, best_key)
                if i >= 0:
                    break
            self._pool_free[self._queue_pool[best]] -= 1
            self._lane_free[self._queue_lane[best]] -= 1
        queued[i] = False
        self.ready -= 1
        self._free -= 1
        self.status[i] = RUNNING
        return i

    def succeed(self, i: int) -> list[int]:
        """Record that running task ``i`` succeeded; return the tasks this decided.

        A returned task is ready (``pending`` in a queue, or ``waiting_for_input`` when it waits
        for an answer) or ``skipped`` (its rule can no longer be met: ``one_failed``...).

        Raises:
            ValueError: ``i`` is not a running task.
        """
        if (
            not 0 <= i < self._total
            or self.status[i] is not RUNNING
            or (self._maps and self._is_mapped(i))  # (a call less per task without mapping)
        ):
            raise self._misuse(i, "running")
        self.status[i] = SUCCEEDED
        # _release, written out: unless a task queued behind it takes them, its slots are free
        if not (self._behind and self._hand_over(i)):
            self._free += 1
            if not self._single_queue:
                self._pool_free[self._graph.pool_of[i]] += 1
                self._lane_free[self._lane_of[i]] += 1
        self.unfinished -= 1
        # _count, written out: this is the loop every edge of a run goes through (bench Part 10)
        # and _decide too, but for a skip.
        decided: list[int] = []
        stack: list[int] = []
        missing = self._missing
        succeeded = self._counts[_SUCCEEDED]
        is_open = self._open
        early = self._decides_on_success
        for d in self._graph.dependents[i]:
            left = missing[d] - 1
            missing[d] = left
            succeeded[d] += 1
            if is_open[d] and (left == 0 or early[d]):
                _, failed, upstream_failed, skipped = self._counts
                outcome = decide(
                    self._rules[d], succeeded[d], failed[d], upstream_failed[d], skipped[d], left
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
        if (
            self.status[i] is not PENDING
            or (self.halted and not self._cleanup[i])
            or i in self._ahead  # queued behind a running task: it is no longer waiting
        ):
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
            elif self._ahead:  # perhaps queued behind a running task: not any more
                self._unqueue(i)
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
