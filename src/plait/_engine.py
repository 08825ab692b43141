"""The engine: runs a workflow's tasks on an asyncio event loop, as the scheduler directs.

One :class:`_Run` holds a run. The scheduler (pure bookkeeping) decides what starts; the run does
the I/O around it, in parts that each have a module (see ``_run_state``):

- *dispatch* (here): while the scheduler hands out tasks, start each as an attempt -- async
  functions as asyncio tasks on the loop, sync functions on the executor;
- *settle* (``_attempts``): when an attempt ends, record its output or error, then succeed,
  retry (after a backoff timer, holding no slot), fail (skipping dependents) or cancel it, and
  dispatch again. A worker thread settles its own attempt and is handed the next sync task
  directly;
- *deadlines* (``_deadlines``): one timer on the loop watches the earliest deadline of all
  running attempts; the cancel grace period; the gate of a durable run's lease;
- *questions* (``_questions``): ask, expire, receive answers;
- *mapping* (``_mapping``): expand a mapped task into its instances, and finish it;
- *pipelining* (``_pipelining``): attempts an executor queues on a worker behind the running one;
- *restore* (``_restored``): a resumed run starts from the state its store recorded;
- *halt* (``_stopping``): a critical failure, ``fail_fast`` or an interrupt stops new starts,
  cancels async attempts at once, flags sync attempts (``ctx.cancelled``) and waits
  ``cancel_grace`` seconds for them before abandoning them;
- *logs*: while an attempt's function runs, ``_log_capture.running_attempt`` names the attempt
  (in the worker thread of a sync task, in the asyncio task of an async one), so what it logs and
  prints goes into its log; the log is made on first use and written by the recorder. The run's
  ``attempt_scope`` (when traced: ``_tracing.RunTracer``) is entered around the same call, so
  the attempt's span is current there.

Threading: every change of run state happens under ``_Run.lock``, from the loop thread or a worker
thread; loop-only calls (``create_task``, timers) reach the loop with ``call_soon_threadsafe``.
Nothing polls: the run ends when the last settle resolves a future the caller awaits.
"""

from __future__ import annotations

import asyncio
import functools
import math
import threading
import time
from collections.abc import Callable, Coroutine, Mapping, Sequence
from typing import Any

from ._attempt import _Attempt
from ._attempts import _Attempts
from ._config import EngineConfig
from ._deadlines import _Deadlines, _DriverWatch
from ._events import RunFinished, RunStarted, Subscriber, TaskStarted
from ._graph import Graph
from ._lease import lease_clock
from ._log_capture import running_attempt, start_capture, stop_capture
from ._mapping import _Mapping
from ._pipelining import _Pipelining
from ._questions import _UNKNOWN_DEFAULT, _Questions
from ._restored import Restored, _Restoring
from ._results import RunResult
from ._run_results import _Results
from ._serialization import Serializer
from ._stopping import _Stopping
from ._workflow import Workflow
from .executors import Executor

__all__: list[str] = []

#: The gate of a run that has no lease (the memory store's): it never closes.
_OPEN = math.inf

#: An async driver lets the loop run others after this many attempts in a row, or once it has
#: held the loop this long (attempts that never suspend would hold it); see _Run._drive. 64
#: no-op attempts take about half a millisecond.
_KEEP_WITHOUT_YIELDING = 64
_HOLD_LOOP_SECONDS = 0.002


def _task_maker(
    loop: asyncio.AbstractEventLoop,
) -> Callable[[Coroutine[Any, Any, None]], asyncio.Task[None]]:
    """``loop.create_task``; for asyncio's own loops with no task factory, what that calls,
    ``asyncio.Task(coroutine, loop=loop)``, without the Python layer around it (a closed-loop
    check and task naming, neither needed on the running loop): one call less per task."""
    if isinstance(loop, asyncio.BaseEventLoop) and loop.get_task_factory() is None:
        return functools.partial(asyncio.Task, loop=loop)
    return loop.create_task


class _Run(
    _Attempts, _Deadlines, _Questions, _Stopping, _Mapping, _Pipelining, _Restoring, _Results
):
    """One run: its state (``_run_state``) and its parts; see the module docstring."""

    def __init__(
        self,
        workflow: Workflow,
        config: EngineConfig,
        run_id: str,
        subscribers: Sequence[Subscriber],
        *,
        wait_for_input: bool = False,
        serializer: Serializer | None = None,
        restored: Restored | None = None,
        graph: Graph | None = None,
        executors: Mapping[str, Executor] | None = None,
    ) -> None:
        super().__init__(
            workflow,
            config,
            run_id,
            subscribers,
            wait_for_input=wait_for_input,
            serializer=serializer,
            restored=restored,
            graph=graph,
            executors=executors,
        )
        for i in self.graph.pause_tasks:
            answers = self.answers[i]
            if not (answers and "" in answers):
                self.scheduler.hold(i)
                self._plain_ready = False
        for i, question in self.questions.items():
            if question.key != "":
                self.scheduler.hold(i)  # it asked mid-way before the resume: it waits again
                self._plain_ready = False
                self._question_defaults[i] = _UNKNOWN_DEFAULT

    # -- life cycle ----------------------------------------------------------------------------

    async def execute(self) -> RunResult:
        """Run every task; return when all are final. Cancelling this coroutine interrupts."""
        self._loop = asyncio.get_running_loop()
        self._new_task = _task_maker(self._loop)
        self._loop_thread = threading.get_ident()
        self._done = self._loop.create_future()
        self.run_started_at = time.time()
        if self.listening:
            self._emit(RunStarted, workflow=self.graph.workflow_name, tasks=len(self.graph))
        start_capture()
        for executor in self.executors.in_use():
            executor.start(self._loop)
        if self.lease_deadline < math.inf:
            self._arm_lease_timer()
        try:
            with self.lock:
                for executor in self.executors.in_use():  # its start may change its capacity
                    self.follow_capacity(executor)
                decided = self.scheduler.start(
                    succeeded=self._succeeded_before, skipped=self._skipped_before
                )
                self._decided(None, decided, in_loop=True)
                self._dispatch(in_loop=True)
                self._resolve_if_finished(in_loop=True)
            try:
                await self._done
            except asyncio.CancelledError:
                await self._interrupt()
                raise
        finally:
            self._close()
            result = self.final_result = self.result()
            if self.listening:
                self._emit(RunFinished, status=result.status, error=result.error)
        return result

    def _close(self) -> None:
        self._closed = True  # the lease's timer is not armed again
        timers = (self._deadline_timer, self._grace_timer, self._lease_timer)
        for timer in (*timers, *self._question_timers.values()):
            if timer is not None:
                timer.cancel()
        self._question_timers.clear()
        self._deadlines.clear()
        self.executors.shutdown()
        stop_capture()

    # -- dispatch ------------------------------------------------------------------------------

    def _dispatch(
        self,
        *,
        in_loop: bool,
        for_worker: Executor | None = None,
        for_driver: bool = False,
    ) -> _Attempt | None:
        """Start every task the scheduler allows now. Under the lock.

        Returns an attempt for the calling worker to run itself, when ``for_worker`` (the
        worker's executor) is to run one; an async one for the calling driver (see ``_drive``),
        when ``for_driver``.
        """
        gate = self.gate
        if (
            gate < _OPEN
            and self.scheduler.ready
            and lease_clock() >= gate
            and self._gate_closed(in_loop)
        ):
            return None
        scheduler = self.scheduler
        take = scheduler.take
        executor_of = self.executor_of
        keep = None
        while scheduler.ready and (i := take()) is not None:  # (a call less when none is)
            attempt = self._begin(i, in_loop)
            executor = executor_of[i]
            if executor is None:
                if for_driver and keep is None:
                    keep = attempt
                elif in_loop:
                    self._start_async(attempt)
                else:
                    self._async_starts.append(attempt)
                    if len(self._async_starts) == 1:
                        self._loop.call_soon_threadsafe(self._start_async_batch)
            elif executor is for_worker and keep is None:
                keep = attempt
            else:
                executor.submit(attempt)
        return keep

    def _begin(self, i: int, in_loop: bool) -> _Attempt:
        number = self.attempts[i] + 1
        self.attempts[i] = number
        attempt = _Attempt(self, i, number)
        self.current[i] = attempt
        if self.started_at[i] is None:  # its first attempt in this run, or since a resume
            self.started_at[i] = time.time()
        timeout = self.timeout[i]
        if timeout is not None and self.executor_of[i] is not None:  # async: see _drive
            self._watch_deadline(timeout, attempt, in_loop)
        if self.listening:
            self._emit_attempt(TaskStarted, self.graph.ids[i], number)
        return attempt

    def _start_async(self, attempt: _Attempt) -> None:
        try:
            coroutine = self.call(attempt)
        except BaseException as error:  # e.g. a bad argument: the attempt fails at once
            attempt.error = error
            self._settle(attempt, in_loop=True)
            return
        attempt.task = self._new_task(self._drive(attempt, coroutine))

    async def _drive(self, attempt: _Attempt, coroutine: Coroutine[Any, Any, Any] | None) -> None:
        """Await async attempts one after another, each settled in the step it ends in.

        No done callback, so a chain of async tasks costs one event-loop iteration per task.
        And as a worker thread keeps the next sync attempt for itself, a driver whose attempt
        ended well goes on with the next ready async one: no asyncio Task to make and schedule
        per attempt, which made an async no-op cost half as much again as a sync one. It lets
        the loop run others every ``_KEEP_WITHOUT_YIELDING`` attempts or ``_HOLD_LOOP_SECONDS``,
        as attempts that never suspend would hold the loop; after a cancellation or an error it
        stops (its task's cancel count stays raised). A new driver's context is a copy of the
        one that started it, as a new Task's would be. An attempt's deadline is queued only if
        it suspends (see ``_deadlines._DriverWatch``).
        """
        task = attempt.task
        assert task is not None  # set as the driver was made, before its first step
        # Attempts left to run, and until when, before the loop runs others; the clock as last
        # read (as the previous attempt settled): the next attempt's start, for its deadline.
        now = time.time()
        left, until = _KEEP_WITHOUT_YIELDING, now + _HOLD_LOOP_SECONDS
        # Looked up once: this loop runs once per async attempt.
        lock, settle, dispatch, resolve = (
            self.lock,
            self._settle,
            self._dispatch,
            self._resolve_if_finished,
        )
        set_attempt, reset_attempt = running_attempt.set, running_attempt.reset
        watch, call_soon = _DriverWatch(), self._loop.call_soon
        timeouts, watch_deadline = self.timeout, self._watch_deadline
        finished_at, scope, call, encodes = (
            self.finished_at,
            self.attempt_scope,
            self.call,
            self._encodes,
        )
        while True:
            attempt.started = True
            if coroutine is None or attempt.cancelled:  # it never gets a first step
                if coroutine is not None:
                    coroutine.close()
                if attempt.error is None:
                    attempt.error = asyncio.CancelledError()
            else:
                if not watch.eager:  # (eager: its deadline is queued; see below)
                    if not watch.pending:  # the loop ran since the last look: look again
                        watch.pending = True
                        call_soon(self._watch_suspended, watch)
                    watch.attempt, watch.started = attempt, now
                token = set_attempt(attempt)
                if scope is not None:
                    scoped = scope.enter()
                try:
                    # A coroutine that never suspends runs to its end right here, inside this
                    # step of the driver's Task: no Task, no loop iteration of its own.
                    attempt.output = await coroutine
                except BaseException as error:  # CancelledError too: it only ends by settling
                    attempt.error = error
                else:
                    if encodes:
                        self.serialize(attempt)
                if scope is not None:
                    scope.exit(scoped)
                reset_attempt(token)
                if attempt.log is not None:
                    attempt.log.close()
            keep_going = attempt.error is None and not task.cancelling()
            lock.acquire()  # not ``with``: a with statement looks up two methods each time
            try:
                settle(attempt, in_loop=True)
                keep = dispatch(in_loop=True, for_driver=keep_going)
                if keep is None:  # (with one, the run goes on)
                    resolve(in_loop=True)
                elif watch.eager and (timeout := timeouts[keep.index]) is not None:
                    watch_deadline(timeout, keep, True)
            finally:
                lock.release()
            if keep is None:
                return
            keep.task = task
            left -= 1
            settled_at = finished_at[attempt.index]
            assert settled_at is not None  # _settle set it
            now = settled_at
            if not left or now > until:
                await asyncio.sleep(0)  # never cancelled: keep has not started (_cancel_async)
                now = time.time()
                left, until = _KEEP_WITHOUT_YIELDING, now + _HOLD_LOOP_SECONDS
                if watch.eager:  # lazy again; keep's deadline is queued already
                    watch.eager, watch.queued = False, keep
            # No coroutine: calling the function failed (attempt.error), or the run stopped
            # while the loop ran others (attempt.cancelled).
            attempt, coroutine = keep, None
            if not attempt.cancelled:
                try:
                    coroutine = call(attempt)
                except BaseException as error:  # e.g. a bad argument: it fails at once
                    attempt.error = error

    def _cancel_async(self, attempt: _Attempt, *, in_loop: bool) -> None:
        """Ask a running async attempt to stop (it settles as cancelled, or as timed out)."""
        attempt.cancelled = True
        if attempt.task is None or not attempt.started:
            return  # not started: _drive (or _start_async_batch) sees the flag
        if in_loop:
            attempt.task.cancel()
        else:  # by the time the loop gets to it, its driver may run another attempt
            self._loop.call_soon_threadsafe(self._cancel_if_running, attempt)

    def _cancel_if_running(self, attempt: _Attempt) -> None:
        with self.lock:
            if self.current[attempt.index] is attempt and attempt.task is not None:
                attempt.task.cancel()

    def _start_async_batch(self) -> None:
        with self.lock:
            starts, self._async_starts = self._async_starts, []
            for attempt in starts:
                if attempt.cancelled:  # the run halted before the loop got to it
                    attempt.error = asyncio.CancelledError()
                    self._settle(attempt, in_loop=True)
                else:
                    self._start_async(attempt)
            self._dispatch(in_loop=True)
            self._resolve_if_finished(in_loop=True)

    # -- the end -------------------------------------------------------------------------------

    def _resolve_if_finished(self, *, in_loop: bool) -> None:
        """End the run when every task is final, or (unless ``wait_for_input``) when it can only
        wait for answers: then it pauses."""
        scheduler = self.scheduler
        finished = scheduler.finished or (
            scheduler.waiting and not self.wait_for_input and self._can_only_wait()
        )
        if finished and not self._done.done():
            if in_loop:
                self._done.set_result(None)
            else:
                self._loop.call_soon_threadsafe(self._resolve)

    def _resolve(self) -> None:
        if not self._done.done():
            self._done.set_result(None)
