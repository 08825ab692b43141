"""The engine: runs a workflow's tasks on an asyncio event loop, as the scheduler directs.

One :class:`_Run` holds a run's state. The scheduler (pure bookkeeping) decides what starts; this
module does the I/O around it:

- *dispatch*: while the scheduler hands out tasks, start each as an :class:`_Attempt` -- async
  functions as asyncio tasks on the loop, sync functions on the thread executor;
- *settle*: when an attempt ends, record its output or error, then succeed, retry (after a
  backoff timer, holding no slot), fail (skipping dependents) or cancel it, and dispatch again.
  A worker thread settles its own attempt and is handed the next sync task directly;
- *timeouts*: one timer on the loop watches the earliest deadline of all running attempts;
- *halt*: a critical failure, ``fail_fast`` or an interrupt stops new starts, cancels async
  attempts at once, flags sync attempts (``ctx.cancelled``) and waits ``cancel_grace`` seconds for
  them before abandoning them.

Threading: every change of run state happens under ``_Run.lock``, from the loop thread or a worker
thread; loop-only calls (``create_task``, timers) reach the loop with ``call_soon_threadsafe``.
Nothing polls: the run ends when the last settle resolves a future the caller awaits.
"""

from __future__ import annotations

import asyncio
import functools
import itertools
import math
import threading
import time
import uuid
from collections.abc import Sequence
from heapq import heappop, heappush
from typing import Any

from ._config import EngineConfig
from ._context import Context
from ._events import (
    Event,
    RunFinished,
    RunStarted,
    Subscriber,
    TaskCancelled,
    TaskFailed,
    TaskReady,
    TaskRetrying,
    TaskSkipped,
    TaskStarted,
    TaskSucceeded,
    publish,
)
from ._exceptions import ConfigError, TaskCancelledError, TaskTimeoutError
from ._pause import NO_DEFAULT
from ._results import RunResult, TaskError, TaskResults
from ._scheduler import Scheduler
from ._state import RunStatus, TaskStatus
from ._workflow import Workflow
from .executors import Executor, ThreadExecutor

__all__ = ["arun", "run"]


class _Attempt:
    """One attempt of one task: a job for the executor, a cancel flag for the task's context."""

    __slots__ = (
        "abandoned",
        "cancelled",
        "error",
        "index",
        "number",
        "output",
        "run_state",
        "task",
        "timed_out",
    )

    def __init__(self, run_state: _Run, index: int, number: int) -> None:
        self.run_state = run_state
        self.index = index
        self.number = number
        self.cancelled = False
        self.timed_out = False
        self.abandoned = False
        self.output: Any = None
        self.error: BaseException | None = None
        self.task: asyncio.Task[Any] | None = None

    def run(self) -> None:
        try:
            self.output = self.run_state.call(self)
        except BaseException as error:  # the task's failure, whatever it is, is its outcome
            self.error = error

    def finish(self) -> _Attempt | None:
        return self.run_state.settle_sync(self)

    def answer(self, key: str) -> Any:
        return NO_DEFAULT


class _Run:
    """The state of one run; see the module docstring."""

    def __init__(
        self,
        workflow: Workflow,
        config: EngineConfig,
        run_id: str,
        subscribers: Sequence[Subscriber],
    ) -> None:
        self.graph = graph = workflow.graph()
        self.config = config
        self.run_id = run_id
        self.subscribers = tuple(subscribers)
        self.lock = threading.Lock()
        self.scheduler = Scheduler(graph, config.max_concurrency, config.pools)
        n = len(graph)
        self.outputs: list[Any] = [None] * n
        self.errors: list[TaskError | None] = [None] * n
        self.attempts = [0] * n
        self.started_at: list[float | None] = [None] * n
        self.finished_at: list[float | None] = [None] * n
        self.current: list[_Attempt | None] = [None] * n
        default_retry = config.default_retry
        self.retry = [spec.retry or default_retry for spec in graph.specs]
        self.timeout = [
            spec.timeout if spec.timeout is not None else config.task_timeout
            for spec in graph.specs
        ]
        self.critical = [spec.critical or config.fail_fast for spec in graph.specs]
        self.executor: Executor = ThreadExecutor(config.max_concurrency)
        self.halted_by: int | None = None
        self.interrupted = False
        self.run_started_at = 0.0
        self._loop: asyncio.AbstractEventLoop
        self._done: asyncio.Future[None]
        self._deadlines: list[tuple[float, int, _Attempt]] = []
        self._deadline_order = itertools.count()
        self._deadline_timer: asyncio.TimerHandle | None = None
        self._armed_deadline = math.inf
        self._grace_timer: asyncio.TimerHandle | None = None
        self._async_starts: list[_Attempt] = []

    # -- life cycle ---------------------------------------------------------------------------

    async def execute(self) -> RunResult:
        """Run every task; return when all are final. Cancelling this coroutine interrupts."""
        self._loop = asyncio.get_running_loop()
        self._done = self._loop.create_future()
        self.run_started_at = time.time()
        if self.subscribers:
            self._emit(RunStarted, workflow=self.graph.workflow_name, tasks=len(self.graph))
        try:
            with self.lock:
                ready = self.scheduler.start()
                if self.subscribers:
                    for i in ready:
                        self._emit(TaskReady, task_id=self.graph.ids[i])
                self._dispatch(in_loop=True)
                self._resolve_if_finished(in_loop=True)
            try:
                await self._done
            except asyncio.CancelledError:
                await self._interrupt()
                raise
        finally:
            self._close()
            result = self.result()
            if self.subscribers:
                self._emit(RunFinished, status=result.status, error=result.error)
        return result

    async def _interrupt(self) -> None:
        """Stop the run after its caller was cancelled (Ctrl-C); wait out the grace period."""
        self._done = self._loop.create_future()
        with self.lock:
            self.interrupted = True
            self._halt(in_loop=True)
            self._resolve_if_finished(in_loop=True)
        await asyncio.shield(self._done)

    def _close(self) -> None:
        for timer in (self._deadline_timer, self._grace_timer):
            if timer is not None:
                timer.cancel()
        self._deadlines.clear()
        self.executor.shutdown(wait=True)

    def result(self) -> RunResult:
        """The run's result as it stands."""
        graph = self.graph
        status = self.scheduler.status
        tasks = TaskResults(
            graph.index,
            status=list(status),
            output=list(self.outputs),
            error=list(self.errors),
            attempts=list(self.attempts),
            started_at=list(self.started_at),
            finished_at=list(self.finished_at),
        )
        if self.interrupted:
            run_status = RunStatus.CANCELLED
        elif all(s is TaskStatus.SUCCEEDED for s in status):
            run_status = RunStatus.SUCCEEDED
        elif not self.scheduler.finished:
            run_status = RunStatus.RUNNING
        else:
            run_status = RunStatus.FAILED
        return RunResult(
            run_id=self.run_id,
            workflow=graph.workflow_name,
            status=run_status,
            tasks=tasks,
            started_at=self.run_started_at,
            finished_at=time.time(),
            error=self._describe_failure(run_status),
        )

    def _describe_failure(self, run_status: RunStatus) -> str | None:
        if run_status is RunStatus.SUCCEEDED or run_status is RunStatus.RUNNING:
            return None
        ids = self.graph.ids
        status = self.scheduler.status
        failed = [i for i, s in enumerate(status) if s is TaskStatus.FAILED]
        skipped = sum(1 for s in status if s is TaskStatus.SKIPPED)
        cancelled = sum(1 for s in status if s is TaskStatus.CANCELLED)
        if self.interrupted:
            head = "the run was interrupted"
        elif self.halted_by is not None:
            reason = (
                "is critical" if self.graph.specs[self.halted_by].critical else "fail_fast is on"
            )
            head = (
                f"task {ids[self.halted_by]!r} failed and {reason}, so the run was stopped: "
                f"{self.errors[self.halted_by]}"
            )
        else:
            shown = "; ".join(f"{ids[i]!r}: {self.errors[i]}" for i in failed[:5])
            more = f" (and {len(failed) - 5} more)" if len(failed) > 5 else ""
            head = f"{len(failed)} task(s) failed: {shown}{more}"
        tail = [f"{n} {what}" for n, what in ((skipped, "skipped"), (cancelled, "cancelled")) if n]
        return head + (f" ({', '.join(tail)})" if tail else "")

    # -- dispatch -----------------------------------------------------------------------------

    def call(self, attempt: _Attempt) -> Any:
        """Call the attempt's task function with its parameters filled (see _workflow)."""
        i = attempt.index
        spec = self.graph.specs[i]
        inputs = self.graph.inputs[i]
        fn = spec.fn
        assert fn is not None
        if inputs is None:
            return fn()
        kwargs = dict(spec.binding.params)
        outputs = self.outputs
        for name, d in inputs:
            kwargs[name] = outputs[d]
        context_parameter = spec.binding.context_parameter
        if context_parameter is not None:
            kwargs[context_parameter] = Context(self.run_id, spec.id, attempt.number, attempt)
        return fn(**kwargs)

    def _dispatch(self, *, in_loop: bool, for_worker: bool = False) -> _Attempt | None:
        """Start every task the scheduler allows now. Under the lock.

        Returns a sync attempt for the calling worker to run itself, when ``for_worker``.
        """
        take = self.scheduler.take
        specs = self.graph.specs
        keep = None
        while (i := take()) is not None:
            attempt = self._begin(i, in_loop)
            if specs[i].is_async:
                if in_loop:
                    self._start_async(attempt)
                else:
                    self._async_starts.append(attempt)
                    if len(self._async_starts) == 1:
                        self._loop.call_soon_threadsafe(self._start_async_batch)
            elif for_worker and keep is None:
                keep = attempt
            else:
                self.executor.submit(attempt)
        return keep

    def _begin(self, i: int, in_loop: bool) -> _Attempt:
        number = self.attempts[i] + 1
        self.attempts[i] = number
        attempt = _Attempt(self, i, number)
        self.current[i] = attempt
        if number == 1:
            self.started_at[i] = time.time()
        timeout = self.timeout[i]
        if timeout is not None:
            self._watch_deadline(time.monotonic() + timeout, attempt, in_loop)
        if self.subscribers:
            self._emit(TaskStarted, task_id=self.graph.ids[i], attempt=number)
        return attempt

    def _start_async(self, attempt: _Attempt) -> None:
        try:
            coroutine = self.call(attempt)
            task = self._loop.create_task(coroutine)
        except BaseException as error:  # e.g. a bad argument: the attempt fails at once
            attempt.error = error
            self._settle(attempt, in_loop=True)
            return
        attempt.task = task
        task.add_done_callback(functools.partial(self._settle_async, attempt))

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

    # -- settle -------------------------------------------------------------------------------

    def _settle_async(self, attempt: _Attempt, task: asyncio.Task[Any]) -> None:
        """Done callback of an async attempt (loop thread)."""
        if task.cancelled():
            attempt.error = asyncio.CancelledError()
        else:
            attempt.error = task.exception()
            if attempt.error is None:
                attempt.output = task.result()
        with self.lock:
            if attempt.abandoned:
                return
            self._settle(attempt, in_loop=True)
            self._dispatch(in_loop=True)
            self._resolve_if_finished(in_loop=True)

    def settle_sync(self, attempt: _Attempt) -> _Attempt | None:
        """Report a sync attempt from its worker thread; return the worker's next attempt."""
        with self.lock:
            if attempt.abandoned:
                return None
            self._settle(attempt, in_loop=False)
            keep = self._dispatch(in_loop=False, for_worker=True)
            self._resolve_if_finished(in_loop=False)
            return keep

    def _settle(self, attempt: _Attempt, *, in_loop: bool) -> None:
        """Record how ``attempt`` ended and move its task on. Under the lock."""
        i = attempt.index
        self.current[i] = None
        self.finished_at[i] = time.time()
        error = attempt.error
        scheduler = self.scheduler
        if error is None and not attempt.timed_out:
            self.outputs[i] = attempt.output
            self.errors[i] = None
            ready = scheduler.succeed(i)
            if self.subscribers:
                task_id = self.graph.ids[i]
                self._emit(TaskSucceeded, task_id=task_id, attempt=attempt.number)
                for d in ready:
                    self._emit(TaskReady, task_id=self.graph.ids[d])
            return
        if attempt.timed_out:
            error = TaskTimeoutError(
                f"task {self.graph.ids[i]!r} (attempt {attempt.number}) ran past its timeout of "
                f"{self.timeout[i]}s; raise the task's timeout or make it faster"
            )
        elif (attempt.cancelled or scheduler.halted) and isinstance(
            error, asyncio.CancelledError | TaskCancelledError
        ):
            self._cancel(i, attempt.number)
            return
        assert error is not None
        task_error = TaskError.from_exception(error)
        self.errors[i] = task_error
        policy = self.retry[i]
        if not scheduler.halted and policy.should_retry(attempt.number, error):
            scheduler.retry(i)
            delay = policy.delay(attempt.number)
            if in_loop:
                self._loop.call_later(delay, self._requeue, i)
            else:
                self._loop.call_soon_threadsafe(self._loop.call_later, delay, self._requeue, i)
            if self.subscribers:
                self._emit(
                    TaskRetrying,
                    task_id=self.graph.ids[i],
                    attempt=attempt.number,
                    error=task_error,
                    delay=delay,
                )
            return
        skipped = scheduler.fail(i)
        if self.subscribers:
            self._emit(
                TaskFailed, task_id=self.graph.ids[i], attempt=attempt.number, error=task_error
            )
            self._emit_skipped(i, skipped)
        if self.critical[i] and not scheduler.halted:
            self.halted_by = i
            self._halt(in_loop=in_loop)

    def _cancel(self, i: int, attempt_number: int) -> None:
        skipped = self.scheduler.cancel(i)
        if self.subscribers:
            self._emit(TaskCancelled, task_id=self.graph.ids[i], attempt=attempt_number)
            self._emit_skipped(i, skipped)

    def _requeue(self, i: int) -> None:
        """A retry's backoff is over (loop thread)."""
        with self.lock:
            if self.scheduler.requeue(i):
                if self.subscribers:
                    self._emit(TaskReady, task_id=self.graph.ids[i])
                self._dispatch(in_loop=True)

    def _resolve_if_finished(self, *, in_loop: bool) -> None:
        if self.scheduler.finished and not self._done.done():
            if in_loop:
                self._done.set_result(None)
            else:
                self._loop.call_soon_threadsafe(self._resolve)

    def _resolve(self) -> None:
        if not self._done.done():
            self._done.set_result(None)

    # -- timeouts -----------------------------------------------------------------------------

    def _watch_deadline(self, deadline: float, attempt: _Attempt, in_loop: bool) -> None:
        """Remember ``attempt``'s deadline; one loop timer serves the earliest of them all."""
        heap = self._deadlines
        heappush(heap, (deadline, next(self._deadline_order), attempt))
        if len(heap) > 1024 and len(heap) > 4 * self.scheduler.running:
            # Drop deadlines of attempts that already ended, so the heap stays small.
            self._deadlines = heap = [e for e in heap if self.current[e[2].index] is e[2]]
            heap.sort()
        if deadline < self._armed_deadline:
            self._armed_deadline = deadline
            if in_loop:
                self._arm_deadline_timer()
            else:
                self._loop.call_soon_threadsafe(self._arm_deadline_timer_locked)

    def _arm_deadline_timer_locked(self) -> None:
        with self.lock:
            self._arm_deadline_timer()

    def _arm_deadline_timer(self) -> None:
        heap = self._deadlines
        current = self.current
        while heap and current[heap[0][2].index] is not heap[0][2]:
            heappop(heap)  # that attempt already ended
        if self._deadline_timer is not None:
            self._deadline_timer.cancel()
            self._deadline_timer = None
        if heap:
            self._armed_deadline = heap[0][0]
            self._deadline_timer = self._loop.call_at(
                self._loop.time() + (heap[0][0] - time.monotonic()), self._expire_deadlines
            )
        else:
            self._armed_deadline = math.inf

    def _expire_deadlines(self) -> None:
        """The earliest deadline passed: time out every attempt whose deadline has (loop)."""
        with self.lock:
            self._deadline_timer = None
            now = time.monotonic()
            heap = self._deadlines
            while heap and heap[0][0] <= now:
                _, _, attempt = heappop(heap)
                if self.current[attempt.index] is attempt:
                    self._time_out(attempt)
            self._arm_deadline_timer()
            self._dispatch(in_loop=True)
            self._resolve_if_finished(in_loop=True)

    def _time_out(self, attempt: _Attempt) -> None:
        attempt.timed_out = attempt.cancelled = True
        if not self.graph.specs[attempt.index].is_async:
            self._abandon(attempt)
        elif attempt.task is not None:
            attempt.task.cancel()  # its done callback settles it, as a timeout
        # else: not started yet; _start_async_batch settles it, as a timeout

    def _abandon(self, attempt: _Attempt) -> None:
        """Stop waiting for a sync attempt; it keeps its thread until it returns, unheard."""
        attempt.abandoned = True
        self.executor.abandon(attempt)
        if not attempt.timed_out:
            attempt.error = TaskCancelledError(
                f"task {self.graph.ids[attempt.index]!r} did not stop within the cancel grace "
                f"period of {self.config.cancel_grace}s"
            )
        self._settle(attempt, in_loop=True)

    # -- halt ---------------------------------------------------------------------------------

    def _halt(self, *, in_loop: bool) -> None:
        """Stop the run: nothing new starts; running attempts are asked to stop. Under the lock."""
        for i in self.scheduler.halt():
            if self.subscribers:
                self._emit(TaskCancelled, task_id=self.graph.ids[i], attempt=0)
        running = [a for a in self.current if a is not None]
        waiting_for_threads = False
        for attempt in running:
            attempt.cancelled = True
            if self.graph.specs[attempt.index].is_async:
                if attempt.task is not None:
                    if in_loop:
                        attempt.task.cancel()
                    else:
                        self._loop.call_soon_threadsafe(attempt.task.cancel)
            else:
                waiting_for_threads = True
        if waiting_for_threads:
            grace = self.config.cancel_grace
            if in_loop:
                self._start_grace_timer(grace)
            else:
                self._loop.call_soon_threadsafe(self._start_grace_timer, grace)

    def _start_grace_timer(self, grace: float) -> None:
        if self._grace_timer is None:
            self._grace_timer = self._loop.call_later(grace, self._grace_over)

    def _grace_over(self) -> None:
        with self.lock:
            specs = self.graph.specs
            for attempt in self.current:
                if attempt is not None and not specs[attempt.index].is_async:
                    self._abandon(attempt)
            self._resolve_if_finished(in_loop=True)

    # -- events -------------------------------------------------------------------------------

    def _emit(self, kind: type[Event], **fields: Any) -> None:
        publish(self.subscribers, kind(run_id=self.run_id, time=time.time(), **fields))

    def _emit_skipped(self, cause: int, skipped: list[int]) -> None:
        ids = self.graph.ids
        for d in skipped:
            self._emit(TaskSkipped, task_id=ids[d], cause=ids[cause])


def _config(config: EngineConfig | None, settings: dict[str, Any]) -> EngineConfig:
    if config is None:
        config = EngineConfig()
    if not settings:
        return config
    fields = EngineConfig.__dataclass_fields__
    unknown = sorted(set(settings) - set(fields))
    if unknown:
        raise ConfigError(
            f"unknown engine setting(s) {unknown!r}; the settings are: {', '.join(fields)}"
        )
    values = {name: getattr(config, name) for name in fields}
    values.update(settings)
    return EngineConfig(**values)


async def arun(
    workflow: Workflow,
    *,
    config: EngineConfig | None = None,
    run_id: str | None = None,
    subscribers: Sequence[Subscriber] = (),
    **settings: Any,
) -> RunResult:
    """Run ``workflow`` on the running event loop and return its :class:`RunResult`.

    Args:
        workflow: the workflow to run; it is validated first, and nothing runs if it is invalid.
        config: engine settings; keyword ``settings`` (``max_concurrency=8``, ``pools={...}``,
            any :class:`EngineConfig` field) override it.
        run_id: the run's id (default: a new unique one).
        subscribers: callables that receive every :class:`Event` of the run.

    A failed task does not raise: the result's ``status`` is ``failed`` and its ``error`` says
    why (``result.raise_for_status()`` raises). Cancelling this coroutine cancels the running
    tasks, waits for them (sync ones up to ``cancel_grace``) and re-raises ``CancelledError``.

    Raises:
        WorkflowError: the workflow is invalid.
        ConfigError: a setting is invalid.
    """
    workflow.validate()
    run_state = _Run(workflow, _config(config, settings), run_id or uuid.uuid4().hex, subscribers)
    return await run_state.execute()


def run(
    workflow: Workflow,
    *,
    config: EngineConfig | None = None,
    run_id: str | None = None,
    subscribers: Sequence[Subscriber] = (),
    **settings: Any,
) -> RunResult:
    """Run ``workflow`` to the end and return its :class:`RunResult` (blocking).

    Takes the same arguments as :func:`arun`, in a new event loop. Ctrl-C cancels the running
    tasks, waits for them as :func:`arun` does, then raises ``KeyboardInterrupt``.

    Raises:
        RuntimeError: called from a running event loop; use ``await plait.arun(...)`` there.
    """
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        pass
    else:
        raise RuntimeError(
            "plait.run() cannot be called from a running event loop; use "
            "`await plait.arun(...)` instead"
        )
    return asyncio.run(
        arun(workflow, config=config, run_id=run_id, subscribers=subscribers, **settings)
    )
