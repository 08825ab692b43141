"""The scheduler's decisions: a finished task counted for its dependents, and the ready queues.

Each edge is looked at once, when its dependency finishes (:meth:`_Decisions._count`): the
dependent's counts change and its trigger rule is asked (:meth:`_Decisions._decide`) whether it
can run, must be skipped, or must wait. A skipped task is counted in turn for its own dependents
(:meth:`_Decisions._cascade`). A task that can run goes into the ready queue of its pool and lane
(:meth:`_Decisions._push`), waits for input, or -- a mapped task -- waits to be expanded
(:meth:`_Decisions._make_ready`); see ``_scheduler``'s docstring for the policy.

A lane's limit may change while the run goes on (:meth:`_Decisions.resize_lane`: an executor
whose capacity adapts, as the Dask executor's window does): its free slots move by the
difference, and go below zero when it shrinks under what runs in it, so that nothing more starts
there until enough has finished.
"""

from __future__ import annotations

from heapq import heappop, heappush
from typing import cast

from ._rules import RUN, decide
from ._scheduler_state import (
    _FAILED,
    _NOT_EXPANDED,
    _SKIPPED,
    _SUCCEEDED,
    _UNLIMITED,
    _UPSTREAM_FAILED,
    RUNNING,
    SKIPPED,
    UPSTREAM_FAILED,
    WAITING,
    _SchedulerState,
)
from ._state import SkipCause, TaskStatus

__all__: list[str] = []


class _Decisions(_SchedulerState):
    """Counting finished tasks, asking rules, queueing ready tasks, freeing slots."""

    __slots__ = ()

    def lane_limit(self, lane: int) -> int:
        """How many tasks of ``lane`` (1, 2, ...: see the ``lanes`` given) may run at once."""
        self._check_lane(lane)
        return self._lane_limit[lane]

    def resize_lane(self, lane: int, limit: int) -> None:
        """Let ``limit`` tasks of ``lane`` run at once from now on. Tasks already running stay
        running when it shrinks below them; the next of the lane starts once fewer run.

        Raises:
            ValueError: ``lane`` is not a lane of this scheduler, or ``limit`` is below 1.
        """
        self._check_lane(lane)
        if limit < 1:
            raise ValueError(f"lane {lane}'s limit must be at least 1, not {limit!r}")
        self._lane_free[lane] += limit - self._lane_limit[lane]
        self._lane_limit[lane] = limit

    def _check_lane(self, lane: int) -> None:
        if not 0 < lane < len(self._lane_limit):
            raise ValueError(
                f"the scheduler has lanes 1..{len(self._lane_limit) - 1}, not {lane!r}"
            )

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
        elif self._ahead:  # perhaps queued behind a running task: not any more
            self._unqueue(i)

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

    def _sort_start_ready(self) -> None:
        """Move the tasks the start made ready from the heaps into the sorted lists beside them:
        a wide graph's thousands of first tasks are then taken in O(1) each, not O(log n)."""
        for queue, heap in enumerate(self._ready):
            if heap:
                self._start_ready[queue] = sorted([*heap, *self._start_ready[queue]], reverse=True)
                heap.clear()

    def _head(self, queue: int) -> int:
        """The smallest key ready in ``queue`` (in its heap or its start list); _UNLIMITED if
        none."""
        heap, start_ready = self._ready[queue], self._start_ready[queue]
        if start_ready and (not heap or start_ready[-1] < heap[0]):
            return start_ready[-1]
        return heap[0] if heap else _UNLIMITED

    def _pop_key(self, queue: int, key: int) -> int:
        """Take ``key``, the head of ``queue`` (see ``_head``), out of it: its task, or a mapped
        task's next ready instance; -1 if the key was stale (its task was cancelled while
        queued, or the mapped task has no ready instance left)."""
        heap, start_ready = self._ready[queue], self._start_ready[queue]
        if start_ready and start_ready[-1] == key:
            start_ready.pop()
        else:
            heappop(heap)
        i = self._graph.task_at_key[key]
        if not self._queued[i]:
            return -1
        if self._maps and self._lined[i] is not None:
            return self._pop_instance(i, heap)
        return i

    def _release(self, i: int) -> None:
        if self._behind and self._hand_over(i):  # the task queued behind it takes its slots
            return
        self._free += 1
        if not self._single_queue:
            self._pool_free[self._graph.pool_of[i]] += 1
            self._lane_free[self._lane_of[i]] += 1
