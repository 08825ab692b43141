"""Stopping a run: a critical failure, ``fail_fast``, an interrupt, a request, a failed store.

*Halt* stops new starts (the scheduler cancels what has not started), cancels async attempts at
once, flags sync attempts (``ctx.cancelled`` and :meth:`~plait.executors.Executor.cancel`) and
waits ``cancel_grace`` seconds for them before abandoning them (see ``_deadlines``). The run then
ends when its last attempt has settled.

Cleanup tasks (``cleanup=True``, Airflow's teardown) are spared by a first halt: those running
go on, those not started run once their dependencies are done, as their rule says. A second
interrupt (:meth:`_Stopping.stop_now`) halts without sparing them.
"""

from __future__ import annotations

import asyncio
import contextlib

from ._exceptions import TaskCancelledError
from ._groups import kill_groups
from ._run_state import _RunState

__all__: list[str] = []


class _Stopping(_RunState):
    """Halting the run; part of :class:`plait._engine._Run`."""

    def _halt(self, *, in_loop: bool, cleanup: bool = True) -> None:
        """Stop the run: nothing new starts but cleanup tasks (unless ``cleanup`` is false);
        running attempts but those of cleanup tasks are asked to stop. Under the lock; the
        caller dispatches (a cleanup task may have become ready)."""
        self._decided(None, self.scheduler.halt(cleanup=cleanup), in_loop=in_loop)
        self._cancel_queued()  # those queued behind running attempts, cancelled just now
        spared = self.graph.cleanup if cleanup else [False] * len(self.graph)
        running = [
            a for a in self.current if a is not None and not a.cancelled and not spared[a.index]
        ]
        waiting_for_threads = False
        for attempt in running:
            executor = self.executor_of[attempt.index]
            if executor is None:
                self._cancel_async(attempt, in_loop=in_loop)
            else:
                attempt.cancelled = True
                executor.cancel(attempt)
                waiting_for_threads = True
        if waiting_for_threads:
            grace = self.config.cancel_grace
            if in_loop:
                self._start_grace_timer(grace)
            else:
                self._loop.call_soon_threadsafe(self._start_grace_timer, grace)

    async def _interrupt(self) -> None:
        """Stop the run after its caller was cancelled (Ctrl-C); wait out the grace period."""
        self._done = self._loop.create_future()
        with self.lock:
            self.interrupted = True
            self._halt(in_loop=True)
            self._dispatch(in_loop=True)
            self._resolve_if_finished(in_loop=True)
        await asyncio.shield(self._done)

    def stop(self, reason: str) -> None:
        """Stop the run as an interrupt does, from any thread: nothing new starts, running
        tasks are cancelled (sync ones get ``cancel_grace``), and the run ends ``cancelled``
        with ``reason`` (e.g. "cancelled by a request from host:4242") in its error. Does
        nothing once the run has ended or halted."""
        with contextlib.suppress(RuntimeError):  # its loop is closed: the run is over
            self._loop.call_soon_threadsafe(self._stop, reason)

    def _stop(self, reason: str) -> None:
        with self.lock:
            if self._done.done() or self.scheduler.halted:
                return
            self.interrupted = True
            self.stop_reason = reason
            self._halt(in_loop=True)
            self._dispatch(in_loop=True)
            self._resolve_if_finished(in_loop=True)

    def stop_now(self, reason: str) -> None:
        """Stop the run without waiting (a second Ctrl-C), on the loop thread: as :meth:`stop`,
        and sync attempts are abandoned at once -- the run no longer waits for their threads
        -- and shell commands' process groups get ``SIGKILL`` now."""
        with self.lock:
            if not self._done.done():
                if not self.interrupted:
                    self.interrupted = True
                    self.stop_reason = reason
                self._halt(in_loop=True, cleanup=False)  # cleanup tasks too, this time
                executor_of = self.executor_of
                for attempt in self.current:
                    if attempt is not None and executor_of[attempt.index] is not None:
                        attempt.error = TaskCancelledError(
                            f"task {self.graph.ids[attempt.index]!r} was abandoned: {reason}"
                        )
                        self._abandon(attempt)
                self._resolve_if_finished(in_loop=True)
        kill_groups(self.run_id)

    def store_failed(self, error: BaseException) -> None:
        """The recorder cannot write any more (from its thread): stop the run."""
        self._loop.call_soon_threadsafe(self._stop_for_store, error)

    def _stop_for_store(self, error: BaseException) -> None:
        with self.lock:
            if self.store_failure is None:
                self.store_failure = error
                self._halt(in_loop=True)
                self._dispatch(in_loop=True)
            self._resolve_if_finished(in_loop=True)
