"""Pipelining: attempts an executor queues on a worker behind the one it runs.

An executor whose workers take their calls in order (the process executor: a worker's pipe) may
send a worker its next call while the current one runs, so the worker never idles for a round
trip through the engine between two tasks. It asks with ``job.queue_behind()`` (see
``executors/_base.py``); the scheduler picks the task (``_scheduler_behind``: the best ready task
of the running one's pool and lane, holding no slot until that one ends).

A queued attempt's life:

- *queued*: made (its attempt number counted) and linked from the running attempt ahead of it
  (``ahead.behind``), but not in ``current``: it is not running, no ``TaskStarted``, no deadline;
- *taken over*: when the attempt ahead settles, whatever its end, the queued one becomes current
  (``_Attempts._settle``) as the scheduler hands it the slot;
- *began*: its executor says it began on its worker (``job.began()``): now ``TaskStarted`` is
  emitted and its timeout starts counting, so a queued task's timeout never includes its wait.
  It then settles as any attempt does.

A halt cancels a queued attempt at once (the scheduler cancels it as a task that has not
started): it is settled cancelled without waiting for its worker, flagged and abandoned (what
its executor reports later is ignored), and its executor is told (``Executor.cancel``) so that
its worker skips it. A queued attempt never times out (its deadline has not started), and is not
abandoned when the one ahead is: it takes over the slot, and its executor runs it elsewhere if
its worker is gone.
"""

from __future__ import annotations

import math
import threading
import time

from ._attempt import _Attempt
from ._attempts import _take
from ._events import TaskStarted
from ._lease import lease_clock
from ._run_state import _RunState
from ._state import TaskStatus

__all__: list[str] = []

_CANCELLED = TaskStatus.CANCELLED


class _Pipelining(_RunState):
    """Queueing attempts behind running ones; part of :class:`plait._engine._Run`."""

    def queue_behind(self, ahead: _Attempt) -> _Attempt | None:
        """An attempt to queue on ``ahead``'s worker behind it, or None (any thread)."""
        executor = self.executor_of[ahead.index]
        if executor is None or not executor.pipelines:
            raise RuntimeError(
                f"{executor!r} asked for a job to queue behind task "
                f"{self.graph.ids[ahead.index]!r}, but its pipelines property is False: make "
                "it True so that the engine gives the executor a lane of its own"
            )
        lock = self.lock
        _take(lock)
        try:
            i = ahead.index
            if (
                ahead.behind is not None
                or ahead.cancelled
                or self.current[i] is not ahead
                or not self.scheduler.ready
                or (self.gate < math.inf and lease_clock() >= self.gate)
            ):
                return None
            j = self.scheduler.take_behind(i)
            if j is None:
                return None
            number = self.attempts[j] + 1
            self.attempts[j] = number
            behind = ahead.behind = _Attempt(self, j, number)  # type: ignore[arg-type]
            behind.queued = True
            return behind
        finally:
            lock.release()

    def queued_began(self, attempt: _Attempt) -> None:
        """Queued ``attempt`` began on its worker: it is started now (any thread)."""
        in_loop = threading.get_ident() == self._loop_thread
        lock = self.lock
        _take(lock)
        try:
            if not attempt.queued:
                return
            i = attempt.index
            if self.current[i] is not attempt:
                ahead = self.scheduler.ahead_of(i)
                if ahead is not None and not attempt.abandoned:
                    raise RuntimeError(
                        f"task {self.graph.ids[i]!r} (attempt {attempt.number}) was reported "
                        f"begun while still queued behind task {self.graph.ids[ahead]!r}; call "
                        "job.began() once the job ahead of it has completed"
                    )
                return  # settled already: cancelled while queued
            attempt.queued = False
            if self.started_at[i] is None:
                self.started_at[i] = time.time()
            timeout = self.timeout[i]
            if timeout is not None:
                self._watch_deadline(timeout, attempt, in_loop)
            if self.listening:
                self._emit_attempt(TaskStarted, self.graph.ids[i], attempt.number)
        finally:
            lock.release()

    def _cancel_queued(self) -> None:
        """After a halt: the attempts queued behind running ones whose tasks the scheduler
        cancelled are settled; tell their executors to skip them. Under the lock."""
        status = self.scheduler.status
        executor_of = self.executor_of
        for ahead in self.current:
            behind = None if ahead is None else ahead.behind
            if behind is not None and status[behind.index] is _CANCELLED:
                assert ahead is not None
                ahead.behind = None
                behind.cancelled = behind.abandoned = True
                executor = executor_of[behind.index]
                assert executor is not None  # only an executor's attempts are queued
                executor.cancel(behind)
