"""Sync tasks on the event loop's own thread, one at a time: for debugging, as Dask's ``get_sync``.

``InlineExecutor`` runs each job in a callback of the run's event loop, blocking the loop on
purpose while the task function runs: a breakpoint (``breakpoint()``, ``pdb``) in a task stops
the whole run right there, with nothing else moving underneath, and a traceback has no thread
hand-off in it. One job runs per loop iteration, so async tasks, timers and answers still get
their turn between two inline tasks.

What it cannot do, because the loop is blocked while a task runs:

- a timeout cannot interrupt a running inline task. It is applied when the task returns: the
  attempt is settled only after the timers that fell due meanwhile have fired, so a task that
  ran past its deadline fails with ``TaskTimeoutError`` (and is retried as its policy says),
  whatever it returned;
- a cancellation (Ctrl-C, a critical failure elsewhere) is seen by the task only through
  ``ctx.cancelled`` if something else sets it while it runs -- in practice, at its end; tasks
  still queued when the run stops are never called.

Its capacity is 1: the scheduler hands it one task at a time, the rest wait in plait's ready
queue in critical-path order. An ``InlineExecutor`` serves one run at a time.
"""

from __future__ import annotations

import asyncio
import threading
from collections import deque

from ._base import Executor, Job

__all__ = ["InlineExecutor"]


class InlineExecutor(Executor):
    """Runs sync tasks one at a time on the event loop's thread (see the module docstring)."""

    def __init__(self) -> None:
        self._loop: asyncio.AbstractEventLoop | None = None
        self._queue: deque[Job] = deque()
        self._lock = threading.Lock()
        self._scheduled = False  # a _run_next callback is on the loop

    @property
    def capacity(self) -> int:
        return 1

    def start(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop

    def submit(self, job: Job) -> None:
        loop = self._loop
        if loop is None:
            raise RuntimeError(
                "InlineExecutor.submit() before start(): the engine starts an executor on its "
                "event loop before it submits jobs"
            )
        with self._lock:
            self._queue.append(job)
            if self._scheduled:
                return
            self._scheduled = True
        loop.call_soon_threadsafe(self._run_next)

    def _run_next(self) -> None:
        """Run one job here, on the loop's thread, blocking it; settle it a little later."""
        loop = self._loop
        assert loop is not None
        with self._lock:
            job = self._queue.popleft() if self._queue else None
            if job is None:
                self._scheduled = False
                return
        job.run()
        # Settled by a timer due now: the loop fires the timers that fell due while the job
        # ran first (they are earlier), so a deadline it ran past is seen before its outcome.
        loop.call_at(loop.time(), self._finish, job)

    def _finish(self, job: Job) -> None:
        next_job = job.finish()
        with self._lock:
            if next_job is not None:
                self._queue.appendleft(next_job)
            if not self._queue:
                self._scheduled = False
                return
        assert self._loop is not None
        self._loop.call_soon(self._run_next)

    def shutdown(self, *, wait: bool = True) -> None:
        with self._lock:
            self._queue.clear()

    def __repr__(self) -> str:
        return f"<InlineExecutor {len(self._queue)} queued>"
