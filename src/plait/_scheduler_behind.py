"""Tasks queued behind running ones: pipelining for an executor whose workers read their calls
in order (the process executor sends a worker its next call while the current one runs, so the
worker never waits for the engine between two tasks).

The executor asks for a task to queue behind a running task on the same worker
(:meth:`_QueuedBehind.take_behind`). A *queued* task is handed out but not running: it stays
``pending``, out of the ready queue (``ready`` does not count it), holds no slot -- of
``max_concurrency``, of its pool or of its lane -- and ``running`` does not count it. When the task
ahead of it stops running, whatever the report (``succeed``, ``fail``, ``retry``, ``suspend``,
``skip``, ``cancel``), the queued task takes over its slots and is ``running``: the running count
never drops and rises in between, so no other task gets the slot meanwhile, and "at most
``max_concurrency`` tasks run at once, across all executors" holds with pipelining too. At most
one task is queued behind each running task.

Which task: the best ready task, in the ready queue's order, of the running task's own queue --
the same pool, so that it can take over the pool's slot, and the same lane, because the lane is
the executor (a task queued behind another runs where that one runs). So a queued task is the
best-ranked ready task of its queue *when it was queued*: a task that becomes ready later, even
a better-ranked one, may run after it (as in Dask's and ``concurrent.futures``' queues); and it
waits for the task ahead of it even if a slot of its lane becomes free meanwhile (one task per
running task waits so: the price of never leaving a worker idle between two short tasks). Tasks in
lane 0 (no executor lane) cannot be queued behind: the engine gives an executor that pipelines a
lane of its own.

A queued task can be cancelled (``cancel``, or a ``halt``, which spares it only if it is a cleanup
task): it is unlinked, and the task ahead frees its slots when it ends, as if nothing had been
queued behind it.
"""

from __future__ import annotations

from ._scheduler_state import _UNLIMITED, RUNNING, _SchedulerState

__all__: list[str] = []


class _QueuedBehind(_SchedulerState):
    """Queueing a ready task behind a running one, and handing the slot over when that ends."""

    __slots__ = ()

    def take_behind(self, i: int) -> int | None:
        """Queue the best ready task of running task ``i``'s queue (its pool and lane) behind
        ``i``, and return it; ``None`` if none is ready. It starts running, in ``i``'s slots,
        when ``i`` stops running.

        Raises:
            ValueError: ``i`` is not a running task, already has a task queued behind it, or
                runs in no lane.
        """
        if not 0 <= i < self._total or self.status[i] is not RUNNING or self._is_mapped(i):
            raise self._misuse(i, "running")
        ids = self._graph.ids
        if i in self._behind:
            raise ValueError(
                f"task {ids[i]!r} already has task {ids[self._behind[i]]!r} queued behind it; "
                "queue another once that one runs"
            )
        if self._lane_of[i] == 0:
            raise ValueError(
                f"task {ids[i]!r} runs in no executor lane: a task can be queued behind it only "
                "in its executor's lane (give the executor a lane)"
            )
        queue = self._queue_of[i]
        while (key := self._head(queue)) != _UNLIMITED:
            j = self._pop_key(queue, key)
            if j >= 0:
                self._queued[j] = False
                self.ready -= 1
                self._behind[i] = j
                self._ahead[j] = i
                return j
        return None

    @property
    def queued_behind(self) -> int:
        """How many tasks are queued behind running ones."""
        return len(self._behind)

    def ahead_of(self, j: int) -> int | None:
        """The running task that task ``j`` is queued behind; ``None`` if it is not queued."""
        return self._ahead.get(j)

    def _hand_over(self, i: int) -> bool:
        """Task ``i`` stops running: the task queued behind it, if any, runs in its slots.
        Whether there was one (if not, the caller frees the slots)."""
        j = self._behind.pop(i, -1)
        if j < 0:
            return False
        del self._ahead[j]
        self.status[j] = RUNNING
        return True

    def _unqueue(self, j: int) -> None:
        """Task ``j``, if queued behind a running task, is not any more (it was cancelled)."""
        i = self._ahead.pop(j, -1)
        if i >= 0:
            del self._behind[i]
