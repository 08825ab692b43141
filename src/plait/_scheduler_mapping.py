"""The scheduler's mapped tasks: expanding a mapped task into its instances, and finishing it.

A mapped task whose rule says run does not go to a ready queue: it becomes
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

The engine's side of mapped tasks (reading the items, the instances' outputs) is in
``_mapping``.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from heapq import heappush
from typing import cast

from ._scheduler_state import (
    _FAILED,
    _NOT_EXPANDED,
    _SUCCEEDED,
    _UPSTREAM_FAILED,
    PENDING,
    RUNNING,
    SKIPPED,
    UPSTREAM_FAILED,
    _SchedulerState,
)
from ._state import SkipCause, TaskStatus

__all__: list[str] = []


class _MappedTasks(_SchedulerState):
    """Mapped tasks: their expansion, their instances' line, their end."""

    __slots__ = ()

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
