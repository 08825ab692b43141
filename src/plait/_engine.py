"""The engine: runs a workflow's tasks on an asyncio event loop, as the scheduler directs.

One :class:`_Run` holds a run's state. The scheduler (pure bookkeeping) decides what starts; this
module does the I/O around it:

- *dispatch*: while the scheduler hands out tasks, start each as an :class:`_Attempt` -- async
  functions as asyncio tasks on the loop, sync functions on the thread executor;
- *settle*: when an attempt ends, record its output or error, then succeed, retry (after a
  backoff timer, holding no slot), fail (skipping dependents) or cancel it, and dispatch again.
  A worker thread settles its own attempt and is handed the next sync task directly;
- *timeouts*: one timer on the loop watches the earliest deadline of all running attempts;
- *logs*: while an attempt's function runs, ``_logs.running_attempt`` names the attempt (in the
  worker thread of a sync task, in the asyncio task of an async one), so what it logs and prints
  goes into its log; the log is made on first use and written by the recorder;
- *halt*: a critical failure, ``fail_fast`` or an interrupt stops new starts, cancels async
  attempts at once, flags sync attempts (``ctx.cancelled``) and waits ``cancel_grace`` seconds for
  them before abandoning them;
- *the gate*: a durable run starts a task only before its *gate*, the earlier of the lease's
  deadline and the moment the store stalled (a call failed, or has taken ``STALL_SECONDS``),
  both on ``lease_clock`` (the recorder keeps them up to date). Past the lease's deadline the run
  stops -- a timer on the loop stops it then too, and cancels what runs; past a stall, new
  tasks wait until the store answers. Dispatch compares the clock with the gate every time, so
  even a worker thread that wakes before the loop after a SIGSTOP starts nothing late.

Threading: every change of run state happens under ``_Run.lock``, from the loop thread or a worker
thread; loop-only calls (``create_task``, timers) reach the loop with ``call_soon_threadsafe``.
Nothing polls: the run ends when the last settle resolves a future the caller awaits.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import functools
import math
import threading
import time
from collections import deque
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass
from typing import Any

from ._config import EngineConfig
from ._context import Context
from ._events import (
    Event,
    InputReceived,
    InputRequested,
    Journal,
    RunFinished,
    RunStarted,
    Subscriber,
    TaskCancelled,
    TaskFailed,
    TaskLogged,
    TaskReady,
    TaskRetrying,
    TaskSkipped,
    TaskStarted,
    TaskSucceeded,
    publish,
)
from ._exceptions import (
    BindingError,
    InputTimeoutError,
    NotWaitingError,
    OutputNotStorableError,
    TaskCancelledError,
    TaskTimeoutError,
)
from ._groups import kill_groups
from ._lease import lease_clock
from ._logs import AttemptLog, LogLine, running_attempt, start_capture, stop_capture
from ._pause import (
    NO_DEFAULT,
    InputRequired,
    Question,
    as_schema_value,
    schema_document,
    validate_answer,
)
from ._recorder import Recorder
from ._results import RunResult, TaskError, TaskResults
from ._scheduler import Scheduler
from ._serialization import Serializer
from ._state import RunStatus, TaskStatus
from ._tagged import NotStorable
from ._workflow import Workflow
from .executors import Executor, ThreadExecutor
from .stores import TaskRecordColumns

__all__ = ["Restored"]

#: The gate of a run that has no lease (the memory store's): it never closes.
_OPEN = math.inf

#: How often a worker thread tries the run's lock, giving the GIL away between tries, before it
#: blocks on it; see _take.
_LOCK_TRIES = 20


def _task_maker(
    loop: asyncio.AbstractEventLoop,
) -> Callable[[Coroutine[Any, Any, None]], asyncio.Task[None]]:
    """``loop.create_task``; for asyncio's own loops with no task factory, what that calls,
    ``asyncio.Task(coroutine, loop=loop)``, without the Python layer around it (a closed-loop
    check and task naming, neither needed on the running loop): one call less per task."""
    if isinstance(loop, asyncio.BaseEventLoop) and loop.get_task_factory() is None:
        return functools.partial(asyncio.Task, loop=loop)
    return loop.create_task


#: An async driver lets the loop run others after this many attempts in a row, or once it has
#: held the loop this long (attempts that never suspend would hold it); see _Run._drive. 64
#: no-op attempts take about half a millisecond.
_KEEP_WITHOUT_YIELDING = 64
_HOLD_LOOP_SECONDS = 0.002


def _take(lock: threading.Lock) -> None:
    """Take the run's lock from a worker thread.

    With short sync tasks, the workers queue for the lock every few microseconds. A worker that
    blocks on it sleeps in the kernel, must be woken when it is free, and then waits for the GIL
    too: that tripled the cost of a task on a random DAG. A holder needs the lock for a few
    microseconds, so a worker first lets it finish -- ``time.sleep(0)`` gives the GIL away --
    and tries again; only a lock held longer (the recorder reading a big batch) is waited for
    by blocking.
    """
    if lock.acquire(blocking=False):
        return
    for _ in range(_LOCK_TRIES):
        time.sleep(0)
        if lock.acquire(blocking=False):
            return
    lock.acquire()


@dataclass(slots=True)
class Restored:
    """Where a resumed run starts from, as read from its store (by task index)."""

    outputs: dict[int, Any]  # tasks that succeeded: they do not run again
    payloads: dict[int, bytes]
    attempts: dict[int, int]
    started_at: dict[int, float]
    finished_at: dict[int, float]
    answers: dict[int, dict[str, Any]]
    questions: dict[int, Question]  # questions still open


class _UnknownDefault:
    """The default of a mid-task question asked before a resume: only the task knows it."""


_UNKNOWN_DEFAULT: Any = _UnknownDefault()


class _Attempt:
    """One attempt of one task: a job for the executor, a cancel flag for the task's context,
    and the source of its log (see ``_logs``: the engine sets ``running_attempt`` to it while its
    function runs)."""

    __slots__ = (
        "abandoned",
        "cancelled",
        "error",
        "index",
        "log",
        "number",
        "output",
        "payload",
        "run_state",
        "started",
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
        self.payload: bytes | None = None
        self.error: BaseException | None = None
        self.task: asyncio.Task[Any] | None = None
        self.started = False  # an async attempt's task has taken its first step
        self.log: AttemptLog | None = None  # made when the attempt first says something

    def run(self) -> None:
        if self.cancelled:  # the run stopped before a worker got to it: never call it
            self.error = TaskCancelledError("cancelled before it started")
            return
        token = running_attempt.set(self)
        try:
            self.output = self.run_state.call(self)
        except BaseException as error:  # the task's failure, whatever it is, is its outcome
            self.error = error
        else:
            self.run_state.serialize(self)
        finally:
            running_attempt.reset(token)
            if self.log is not None:
                self.log.close()

    def task_log(self) -> AttemptLog | None:
        log = self.log
        if log is None:
            log = self.run_state.open_log(self)
        return log

    def finish(self) -> _Attempt | None:
        return self.run_state.settle_sync(self)

    def answer(self, key: str) -> Any:
        answers = self.run_state.answers[self.index]
        if answers is None or key not in answers:
            return NO_DEFAULT
        if key == "":  # the task's own pause: give it in the form its schema asks for
            pause = self.run_state.graph.specs[self.index].pause
            return as_schema_value(pause.schema if pause else None, answers[key])
        return answers[key]


class _Run:
    """The state of one run; see the module docstring."""

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
    ) -> None:
        self.graph = graph = workflow.graph()
        self.config = config
        self.run_id = run_id
        self.subscribers = tuple(subscribers)
        self.journal: Journal | None = None  # the store's recorder, see keep_journal()
        self.listening = bool(self.subscribers)  # whether anyone hears of events
        # TaskReady is the most frequent event and the store's recorder does not want it: it is
        # built only when a subscriber given by the caller may.
        self.announce_ready = bool(self.subscribers)
        self.lock = threading.Lock()
        self.scheduler = Scheduler(graph, config.max_concurrency, config.pools)
        n = len(graph)
        self.outputs: list[Any] = [None] * n
        self.errors: list[TaskError | None] = [None] * n
        self.attempts = [0] * n
        # Attempts made before this resume: retry budgets count from here, so a task that used
        # up its retries in an earlier process gets a full budget again.
        self.attempts_before = [0] * n
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
        self.wait_for_input = wait_for_input
        self.answers: list[dict[str, Any] | None] = [None] * n
        self.questions: dict[int, Question] = {}  # open questions; at most one per task
        self._question_schemas: dict[int, Any] = {}  # as given (e.g. a pydantic model)
        self._question_defaults: dict[int, Any] = {}
        self._question_timers: dict[int, asyncio.TimerHandle] = {}
        self._backoffs = 0  # failed attempts waiting out their backoff
        self.serializer = serializer
        # The memory store keeps outputs as they are: nothing to encode.
        self._encodes = serializer is not None and serializer.name != "object"
        self.payloads: list[bytes | None] = [None] * n
        self.recorder: Recorder | None = None
        self.store_failure: BaseException | None = None  # what stopped the run (lease, store)
        # The gate (see the module docstring), on lease_clock; set by the recorder's thread.
        self.lease_deadline = math.inf
        self._stall = math.inf  # when the store call under way, if any, counts as stalled
        self.gate = math.inf
        self._holding = False  # new tasks wait for a stalled store call
        self._closed = False  # the run is over (_close)
        self._lease_timer: asyncio.TimerHandle | None = None
        self._succeeded_before: list[int] = []
        self.halted_by: int | None = None
        self.interrupted = False
        self.stop_reason: str | None = None  # why it was interrupted, for the run's error
        self.run_started_at = 0.0
        # Built on the loop that runs it, so stop() works from any thread from the start.
        self._loop: asyncio.AbstractEventLoop = asyncio.get_running_loop()
        self._new_task: Callable[[Coroutine[Any, Any, None]], asyncio.Task[None]]
        self._loop_thread = 0
        self._done: asyncio.Future[None]
        # Running attempts' deadlines: one queue per timeout length, so each is in deadline
        # order as attempts start (there are few lengths: the engine's and tasks' own).
        self._deadlines: dict[float, deque[tuple[float, _Attempt]]] = {}
        self._deadline_timer: asyncio.TimerHandle | None = None
        self._armed_deadline = math.inf
        self._grace_timer: asyncio.TimerHandle | None = None
        self._async_starts: list[_Attempt] = []
        self._log_lock = threading.Lock()  # makes each attempt's log once
        self.final_result: RunResult | None = None
        self.recorded = threading.Event()  # set once the run's end is in its store
        if restored is not None:
            self._restore(restored)
        for i, spec in enumerate(graph.specs):
            answers = self.answers[i]
            if spec.pause is not None and not (answers and "" in answers):
                self.scheduler.hold(i)
            question = self.questions.get(i)
            if question is not None and question.key != "":
                self.scheduler.hold(i)  # it asked mid-way before the resume: it waits again
                self._question_defaults[i] = _UNKNOWN_DEFAULT

    def _restore(self, restored: Restored) -> None:
        for i, output in restored.outputs.items():
            self.outputs[i] = output
            self.payloads[i] = restored.payloads.get(i)
        self._succeeded_before = sorted(restored.outputs)
        for i, attempts in restored.attempts.items():
            self.attempts[i] = self.attempts_before[i] = attempts
        for i, at in restored.started_at.items():
            self.started_at[i] = at
        for i, at in restored.finished_at.items():
            self.finished_at[i] = at
        for i, answers in restored.answers.items():
            self.answers[i] = dict(answers)
        self.questions.update(restored.questions)

    # -- life cycle ---------------------------------------------------------------------------

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
        if self.lease_deadline < math.inf:
            self._arm_lease_timer()
        try:
            with self.lock:
                self._announce_ready(
                    self.scheduler.start(succeeded=self._succeeded_before), in_loop=True
                )
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

    async def _interrupt(self) -> None:
        """Stop the run after its caller was cancelled (Ctrl-C); wait out the grace period."""
        self._done = self._loop.create_future()
        with self.lock:
            self.interrupted = True
            self._halt(in_loop=True)
            self._resolve_if_finished(in_loop=True)
        await asyncio.shield(self._done)

    def _close(self) -> None:
        self._closed = True  # the lease's timer is not armed again
        timers = (self._deadline_timer, self._grace_timer, self._lease_timer)
        for timer in (*timers, *self._question_timers.values()):
            if timer is not None:
                timer.cancel()
        self._question_timers.clear()
        self._deadlines.clear()
        self.executor.shutdown(wait=True)
        stop_capture()

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
        elif status.count(TaskStatus.SUCCEEDED) == len(status):
            run_status = RunStatus.SUCCEEDED
        elif self.scheduler.finished:
            run_status = RunStatus.FAILED
        elif self._can_only_wait():
            run_status = RunStatus.PAUSED
        else:
            run_status = RunStatus.RUNNING
        return RunResult(
            run_id=self.run_id,
            workflow=graph.workflow_name,
            status=run_status,
            tasks=tasks,
            started_at=self.run_started_at,
            finished_at=time.time(),
            error=self._describe_failure(run_status),
            waiting={graph.ids[i]: question for i, question in self.questions.items()},
        )

    def _describe_failure(self, run_status: RunStatus) -> str | None:
        if run_status in (RunStatus.SUCCEEDED, RunStatus.RUNNING, RunStatus.PAUSED):
            return None
        ids = self.graph.ids
        status = self.scheduler.status
        failed = [i for i, s in enumerate(status) if s is TaskStatus.FAILED]
        skipped = sum(1 for s in status if s is TaskStatus.SKIPPED)
        cancelled = sum(1 for s in status if s is TaskStatus.CANCELLED)
        if self.store_failure is not None:
            head = str(self.store_failure)
        elif self.interrupted:
            head = f"the run was {self.stop_reason or 'interrupted'}"
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
        if fn is None:  # an approval gate: its output is the answer
            return attempt.answer("")
        kwargs: dict[str, Any] | None = None  # None: nothing to pass (the common no-op case)
        if inputs is not None:
            kwargs = dict(spec.binding.params)
            outputs, ids = self.outputs, self.graph.ids
            for d in inputs:
                kwargs[ids[d]] = outputs[d]
            context_parameter = spec.binding.context_parameter
            if context_parameter is not None:
                kwargs[context_parameter] = Context(self.run_id, spec.id, attempt.number, attempt)
        try:
            return fn() if kwargs is None else fn(**kwargs)
        except TypeError as error:
            # Raised by the call itself (no frame of fn's below this one): the arguments do
            # not fit the function as it really is (a decorator that hides its signature, a
            # C function); every retry would fail the same way.
            if error.__traceback__ is None or error.__traceback__.tb_next is not None:
                raise
            raise BindingError(
                f"task {spec.id!r}: calling {getattr(fn, '__qualname__', repr(fn))} with "
                f"parameters {sorted(kwargs or ())!r} failed: {error}; make its signature name the "
                "parameters it takes"
            ) from error

    def serialize(self, attempt: _Attempt) -> None:
        """Turn a durable run's output into bytes now, so a value the store cannot keep fails
        its task at once, naming the task and the type."""
        if not self._encodes:
            return
        assert self.serializer is not None
        try:
            attempt.payload = self.serializer.dumps(attempt.output)
        except NotStorable as error:
            task_id = self.graph.ids[attempt.index]
            attempt.error = OutputNotStorableError(
                f"task {task_id!r} returned a {type(attempt.output).__qualname__}, which the "
                f"{self.serializer.name} serializer cannot store: {error.describe('output')}"
            )
        except (TypeError, ValueError) as error:
            task_id = self.graph.ids[attempt.index]
            attempt.error = OutputNotStorableError(
                f"task {task_id!r} returned a {type(attempt.output).__qualname__}, which the "
                f"{self.serializer.name} serializer cannot store ({error}); return "
                f"{self.serializer.name}-compatible data, or run with another serializer"
            )

    def task_columns(self, task_ids: Sequence[str] | None = None) -> TaskRecordColumns:
        """The records of ``task_ids`` (default: every task) for the store, as columns of
        copies: the run may still change them. Under the lock."""
        outputs = self.payloads if self._encodes else self.outputs
        status = self.scheduler.status
        if task_ids is None:
            return TaskRecordColumns(
                task_ids=self.graph.ids,
                status=list(status),
                attempts=list(self.attempts),
                output=list(outputs),
                error=list(self.errors),
                started_at=list(self.started_at),
                finished_at=list(self.finished_at),
            )
        index = self.graph.index
        rows = [index[task_id] for task_id in task_ids]
        attempts, errors = self.attempts, self.errors
        started_at, finished_at = self.started_at, self.finished_at
        return TaskRecordColumns(
            task_ids=list(task_ids),
            status=[status[i] for i in rows],
            attempts=[attempts[i] for i in rows],
            output=[outputs[i] for i in rows],
            error=[errors[i] for i in rows],
            started_at=[started_at[i] for i in rows],
            finished_at=[finished_at[i] for i in rows],
        )

    def _dispatch(
        self, *, in_loop: bool, for_worker: bool = False, for_driver: bool = False
    ) -> _Attempt | None:
        """Start every task the scheduler allows now. Under the lock.

        Returns a sync attempt for the calling worker to run itself, when ``for_worker``; an
        async one for the calling driver (see ``_drive``), when ``for_driver``.
        """
        gate = self.gate
        if (
            gate < _OPEN
            and self.scheduler.ready
            and lease_clock() >= gate
            and self._gate_closed(in_loop)
        ):
            return None
        take = self.scheduler.take
        specs = self.graph.specs
        keep = None
        while (i := take()) is not None:
            attempt = self._begin(i, in_loop)
            if specs[i].is_async:
                if for_driver and keep is None:
                    keep = attempt
                elif in_loop:
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
        if self.started_at[i] is None:  # its first attempt in this run, or since a resume
            self.started_at[i] = time.time()
        timeout = self.timeout[i]
        if timeout is not None:
            self._watch_deadline(timeout, attempt, in_loop)
        if self.listening:
            self._emit(TaskStarted, task_id=self.graph.ids[i], attempt=number)
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
        one that started it, as a new Task's would be.
        """
        task = attempt.task
        kept, since = 0, time.time()  # attempts run and time since the loop last ran others
        while True:
            attempt.started = True
            if coroutine is None or attempt.cancelled:  # it never gets a first step
                if coroutine is not None:
                    coroutine.close()
                if attempt.error is None:
                    attempt.error = asyncio.CancelledError()
            else:
                token = running_attempt.set(attempt)
                try:
                    attempt.output = await coroutine
                except BaseException as error:  # CancelledError too: it only ends by settling
                    attempt.error = error
                else:
                    if self._encodes:
                        self.serialize(attempt)
                running_attempt.reset(token)
                if attempt.log is not None:
                    attempt.log.close()
            keep_going = attempt.error is None and task is not None and not task.cancelling()
            with self.lock:
                self._settle(attempt, in_loop=True)
                keep = self._dispatch(in_loop=True, for_driver=keep_going)
                self._resolve_if_finished(in_loop=True)
            if keep is None:
                return
            keep.task = task
            kept += 1
            settled_at = self.finished_at[attempt.index]
            assert settled_at is not None  # _settle set it
            if kept == _KEEP_WITHOUT_YIELDING or settled_at - since > _HOLD_LOOP_SECONDS:
                await asyncio.sleep(0)  # never cancelled: keep has not started (_cancel_async)
                kept, since = 0, time.time()
            # No coroutine: calling the function failed (attempt.error), or the run stopped
            # while the loop ran others (attempt.cancelled).
            attempt, coroutine = keep, None
            if not attempt.cancelled:
                try:
                    coroutine = self.call(attempt)
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

    # -- settle -------------------------------------------------------------------------------

    def settle_sync(self, attempt: _Attempt) -> _Attempt | None:
        """Report a sync attempt from its worker thread; return the worker's next attempt."""
        _take(self.lock)
        try:
            if attempt.abandoned:
                return None
            self._settle(attempt, in_loop=False)
            keep = self._dispatch(in_loop=False, for_worker=True)
            self._resolve_if_finished(in_loop=False)
            return keep
        finally:
            self.lock.release()

    def _settle(self, attempt: _Attempt, *, in_loop: bool) -> None:
        """Record how ``attempt`` ended and move its task on. Under the lock."""
        i = attempt.index
        self.current[i] = None
        self.finished_at[i] = time.time()
        error = attempt.error
        scheduler = self.scheduler
        if error is None and not attempt.timed_out:
            self.outputs[i] = attempt.output
            self.payloads[i] = attempt.payload
            self.errors[i] = None
            ready = scheduler.succeed(i)
            if self.listening:
                self._emit(TaskSucceeded, task_id=self.graph.ids[i], attempt=attempt.number)
            if ready:
                self._announce_ready(ready, in_loop=in_loop)
            return
        if isinstance(error, InputRequired):
            if scheduler.halted:  # nobody will answer a run that stopped: the task stops too
                self._cancel(i, attempt.number)
            else:
                scheduler.suspend(i)
                self._ask(i, error, in_loop=in_loop)
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
        tries = attempt.number - self.attempts_before[i]  # this process's attempts
        if not scheduler.halted and policy.should_retry(tries, error):
            scheduler.retry(i)
            self._backoffs += 1
            delay = policy.delay(tries)
            if in_loop:
                self._loop.call_later(delay, self._requeue, i)
            else:
                self._loop.call_soon_threadsafe(self._loop.call_later, delay, self._requeue, i)
            if self.listening:
                self._emit(
                    TaskRetrying,
                    task_id=self.graph.ids[i],
                    attempt=attempt.number,
                    error=task_error,
                    delay=delay,
                )
            return
        skipped = scheduler.fail(i)
        if self.listening:
            self._emit(
                TaskFailed, task_id=self.graph.ids[i], attempt=attempt.number, error=task_error
            )
            self._emit_skipped(i, skipped)
        if self.critical[i] and not scheduler.halted:
            self.halted_by = i
            self._halt(in_loop=in_loop)

    def _cancel(self, i: int, attempt_number: int) -> None:
        skipped = self.scheduler.cancel(i)
        if self.listening:
            self._emit(TaskCancelled, task_id=self.graph.ids[i], attempt=attempt_number)
            self._emit_skipped(i, skipped)

    def _requeue(self, i: int) -> None:
        """A retry's backoff is over (loop thread)."""
        with self.lock:
            self._backoffs -= 1
            if self.scheduler.requeue(i):
                if self.announce_ready:
                    self._emit(TaskReady, task_id=self.graph.ids[i])
                self._dispatch(in_loop=True)
            self._resolve_if_finished(in_loop=True)

    def _can_only_wait(self) -> bool:
        """Whether every unfinished task waits for an answer, or for a task that does."""
        scheduler = self.scheduler
        return bool(scheduler.waiting) and scheduler.idle and not self._backoffs

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

    # -- questions and answers ---------------------------------------------------------------

    def _announce_ready(self, ready: list[int], *, in_loop: bool) -> None:
        """Tell the world about tasks that became ready; ask the questions of those that wait."""
        status = self.scheduler.status
        for i in ready:
            if status[i] is TaskStatus.WAITING_FOR_INPUT:
                pause = self.graph.specs[i].pause
                earlier = self.questions.get(i)
                if earlier is not None and earlier.key != "":  # asked mid-way, before a resume
                    request = InputRequired(
                        earlier.key, earlier.prompt, earlier.schema, None, _UNKNOWN_DEFAULT
                    )
                else:
                    assert pause is not None
                    request = InputRequired(
                        "", pause.prompt, pause.schema, pause.timeout, pause.default
                    )
                self._ask(i, request, in_loop=in_loop)
            elif self.announce_ready:
                self._emit(TaskReady, task_id=self.graph.ids[i])

    def _ask(self, i: int, request: InputRequired, *, in_loop: bool) -> None:
        """Task ``i`` waits for an answer to ``request``. Under the lock."""
        now = time.time()
        earlier = self.questions.get(i)
        if earlier is not None and earlier.key == request.key:  # asked before this resume
            question = earlier
        else:
            question = Question(
                task_id=self.graph.ids[i],
                prompt=request.prompt,
                schema=schema_document(request.schema),
                key=request.key,
                deadline=None if request.timeout is None else now + request.timeout,
                asked_at=now,
            )
        self.questions[i] = question
        self._question_schemas[i] = request.schema
        self._question_defaults[i] = request.default
        if self.listening:
            self._emit(InputRequested, task_id=question.task_id, question=question)
        if question.deadline is not None and question.deadline <= now:
            # Asked before a resume and overdue now: expire it here, not from a timer, so that
            # a resumed run does not pause again before the timer fires.
            self._expire(i, question, in_loop=in_loop)
        elif question.deadline is not None:
            if in_loop:
                self._start_question_timer(i, question)
            else:
                self._loop.call_soon_threadsafe(self._start_question_timer_locked, i, question)

    def _start_question_timer_locked(self, i: int, question: Question) -> None:
        with self.lock:
            if self.questions.get(i) is question:
                self._start_question_timer(i, question)

    def _start_question_timer(self, i: int, question: Question) -> None:
        assert question.deadline is not None
        delay = max(0.0, question.deadline - time.time())
        self._question_timers[i] = self._loop.call_later(delay, self._question_expired, i, question)

    def _question_expired(self, i: int, question: Question) -> None:
        """A question's timer went off (loop thread)."""
        with self.lock:
            if self.questions.get(i) is not question:
                return  # answered meanwhile
            self._question_timers.pop(i, None)
            self._expire(i, question, in_loop=True)
            self._dispatch(in_loop=True)
            self._resolve_if_finished(in_loop=True)

    def _expire(self, i: int, question: Question, *, in_loop: bool) -> None:
        """Nobody answered ``question`` in time: use the default, or fail the task. Under the
        lock; the caller dispatches."""
        default = self._question_defaults.get(i, NO_DEFAULT)
        if default is _UNKNOWN_DEFAULT:
            # Asked before a resume: run the task again; it asks again, with its default,
            # and finds the deadline passed.
            if self.scheduler.answer(i) and self.announce_ready:
                self._emit(TaskReady, task_id=self.graph.ids[i])
        elif default is not NO_DEFAULT:
            self._receive(i, question.key, default)
        else:
            del self.questions[i]
            error = InputTimeoutError(
                f"nobody answered task {question.task_id!r} ({question.prompt!r}) within its "
                f"timeout; answer sooner, raise the timeout, or give the question a default"
            )
            self._fail_waiting(i, error, in_loop=in_loop)

    def _fail_waiting(self, i: int, error: BaseException, *, in_loop: bool) -> None:
        task_error = TaskError.from_exception(error)
        self.errors[i] = task_error
        self.finished_at[i] = time.time()
        skipped = self.scheduler.fail(i)
        if self.listening:
            self._emit(
                TaskFailed, task_id=self.graph.ids[i], attempt=self.attempts[i], error=task_error
            )
            self._emit_skipped(i, skipped)
        if self.critical[i] and not self.scheduler.halted:
            self.halted_by = i
            self._halt(in_loop=in_loop)

    def give_input(self, task_id: str, value: Any, *, key: str | None = None) -> None:
        """Answer task ``task_id``'s question, from any thread; the run goes on with it.

        The answer is checked first; a task that has not asked yet but has a ``pause`` can be
        answered in advance.

        Raises:
            KeyError: no task ``task_id``.
            InputValidationError: the answer does not fit the question's schema.
            PlaitError: the task has no question to answer.
        """
        i = self.graph.index[task_id]
        with self.lock:
            question = self.questions.get(i)
            pause = self.graph.specs[i].pause
            if question is not None and key in (None, question.key):
                key, schema = question.key, self._question_schemas.get(i, question.schema)
            elif (
                pause is not None
                and key in (None, "")
                and self.scheduler.status[i]
                in (
                    TaskStatus.PENDING,
                    TaskStatus.WAITING_FOR_INPUT,
                )
            ):
                key, schema = "", pause.schema
            else:
                raise NotWaitingError(
                    f"task {task_id!r} is not waiting for input"
                    + (f" under key {key!r}" if key else "")
                    + f"; tasks waiting now: {sorted(q.task_id for q in self.questions.values())}"
                )
        validate_answer(task_id, schema, value, key=key)
        if self.recorder is not None:
            asked = question or Question(task_id=task_id, prompt=pause.prompt if pause else "")
            self.recorder.answered(
                dataclasses.replace(asked, key=key, schema=schema_document(schema)),
                value,
                time.time(),
            )
        if threading.get_ident() == self._loop_thread:
            self._receive_locked(i, key, value)
        else:
            self._loop.call_soon_threadsafe(self._receive_locked, i, key, value)

    def _receive_locked(self, i: int, key: str, value: Any) -> None:
        with self.lock:
            self._receive(i, key, value)
            self._dispatch(in_loop=True)
            self._resolve_if_finished(in_loop=True)

    def _receive(self, i: int, key: str, value: Any) -> None:
        """Record an answer (already checked) and let the task go on. Under the lock."""
        answers = self.answers[i]
        if answers is None:
            answers = self.answers[i] = {}
        answers[key] = value
        question = self.questions.get(i)
        if question is not None and question.key == key:
            del self.questions[i]
            timer = self._question_timers.pop(i, None)
            if timer is not None:
                timer.cancel()
        if self.listening:
            self._emit(InputReceived, task_id=self.graph.ids[i], key=key)
        if self.scheduler.answer(i) and self.announce_ready:
            self._emit(TaskReady, task_id=self.graph.ids[i])

    # -- timeouts -----------------------------------------------------------------------------

    def _watch_deadline(self, timeout: float, attempt: _Attempt, in_loop: bool) -> None:
        """Remember when ``attempt`` times out; one loop timer serves the earliest deadline."""
        deadline = time.monotonic() + timeout
        queue = self._deadlines.get(timeout)
        if queue is None:
            queue = self._deadlines[timeout] = deque()
        queue.append((deadline, attempt))
        current = self.current
        while current[queue[0][1].index] is not queue[0][1]:
            queue.popleft()  # that attempt already ended
        if len(queue) > 1024 and len(queue) > 4 * self.scheduler.running:
            # A long attempt at the head keeps ended ones behind it: drop those.
            self._deadlines[timeout] = deque(e for e in queue if current[e[1].index] is e[1])
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
        current = self.current
        earliest = math.inf
        for queue in self._deadlines.values():
            while queue and current[queue[0][1].index] is not queue[0][1]:
                queue.popleft()  # that attempt already ended
            if queue:
                earliest = min(earliest, queue[0][0])
        if self._deadline_timer is not None:
            self._deadline_timer.cancel()
            self._deadline_timer = None
        self._armed_deadline = earliest
        if earliest < math.inf:
            self._deadline_timer = self._loop.call_at(
                self._loop.time() + (earliest - time.monotonic()), self._expire_deadlines
            )

    def _expire_deadlines(self) -> None:
        """The earliest deadline passed: time out every attempt whose deadline has (loop)."""
        with self.lock:
            self._deadline_timer = None
            now = time.monotonic()
            for queue in self._deadlines.values():
                while queue and queue[0][0] <= now:
                    _, attempt = queue.popleft()
                    if self.current[attempt.index] is attempt:
                        self._time_out(attempt)
            self._arm_deadline_timer()
            self._dispatch(in_loop=True)
            self._resolve_if_finished(in_loop=True)

    def _time_out(self, attempt: _Attempt) -> None:
        attempt.timed_out = True
        if self.graph.specs[attempt.index].is_async:
            self._cancel_async(attempt, in_loop=True)  # it settles, as a timeout
        else:
            attempt.cancelled = True
            self._abandon(attempt)

    def _abandon(self, attempt: _Attempt) -> None:
        """Stop waiting for a sync attempt; it keeps its thread until it returns, unheard."""
        attempt.abandoned = True
        self.executor.abandon(attempt)
        if not attempt.timed_out and not isinstance(attempt.error, TaskCancelledError):
            attempt.error = TaskCancelledError(
                f"task {self.graph.ids[attempt.index]!r} did not stop within the cancel grace "
                f"period of {self.config.cancel_grace}s"
            )
        self._settle(attempt, in_loop=True)

    # -- halt ---------------------------------------------------------------------------------

    def _halt(self, *, in_loop: bool) -> None:
        """Stop the run: nothing new starts; running attempts are asked to stop. Under the lock."""
        for i in self.scheduler.halt():
            if self.listening:
                self._emit(TaskCancelled, task_id=self.graph.ids[i], attempt=self.attempts[i])
        running = [a for a in self.current if a is not None]
        waiting_for_threads = False
        for attempt in running:
            if self.graph.specs[attempt.index].is_async:
                self._cancel_async(attempt, in_loop=in_loop)
            else:
                attempt.cancelled = True
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

    # -- the gate: the lease and the store ------------------------------------------------------

    def _gate_closed(self, in_loop: bool) -> bool:
        """The clock passed the gate: stop the run if the lease's deadline passed, else hold new
        tasks until the stalled store call succeeds. Whether nothing may start. Under the lock."""
        if lease_clock() >= self.lease_deadline:
            self._stop_for_lease(in_loop=in_loop)
            return True
        self._holding = True
        # Read the gate again: the recorder moves it, then reads _holding (the other order).
        if lease_clock() < self.gate:
            self._holding = False
            return False
        return True

    def _stop_for_lease(self, *, in_loop: bool) -> None:
        if self.store_failure is None and self.recorder is not None:
            self.store_failure = self.recorder.lease.error()
            self._halt(in_loop=in_loop)

    def lease_renewed(self, deadline: float) -> None:
        """The recorder renewed the lease until ``deadline`` (from its thread)."""
        self.lease_deadline = deadline
        self.gate = min(deadline, self._stall)
        self._loop.call_soon_threadsafe(self._gate_moved)

    def store_stalls(self, at: float | None) -> None:
        """Start nothing from ``at`` on until the store answers; None: it answered (recorder
        thread)."""
        self._stall = stall = math.inf if at is None else at
        self.gate = min(self.lease_deadline, stall)
        if at is None and self._holding:
            self._loop.call_soon_threadsafe(self._gate_moved)

    def _gate_moved(self) -> None:
        """The lease was renewed or the store answered: re-arm the timer, let tasks start."""
        with self.lock:
            if self._closed:
                return
            self._arm_lease_timer()
            if self._holding and lease_clock() < self.gate:
                self._holding = False
                self._dispatch(in_loop=True)
                self._resolve_if_finished(in_loop=True)

    def _arm_lease_timer(self) -> None:
        if self._lease_timer is not None:
            self._lease_timer.cancel()
        delay = max(0.0, self.lease_deadline - lease_clock())
        self._lease_timer = self._loop.call_later(delay, self._lease_expired)

    def _lease_expired(self) -> None:
        """The lease's deadline passed with no renewal: stop the run (loop thread)."""
        with self.lock:
            self._lease_timer = None
            if self._closed:
                return
            if lease_clock() < self.lease_deadline:  # renewed meanwhile
                self._arm_lease_timer()
                return
            self._stop_for_lease(in_loop=True)
            self._resolve_if_finished(in_loop=True)

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
                    if not self.scheduler.halted:
                        self._halt(in_loop=True)
                specs = self.graph.specs
                for attempt in self.current:
                    if attempt is not None and not specs[attempt.index].is_async:
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
            self._resolve_if_finished(in_loop=True)

    # -- logs ---------------------------------------------------------------------------------

    def open_log(self, attempt: _Attempt) -> AttemptLog | None:
        """Make ``attempt``'s log, the first time it says something (any thread); None when
        the run keeps no logs (``max_log_bytes=0``)."""
        limit = self.config.max_log_bytes
        if not limit:
            return None
        with self._log_lock:
            if attempt.log is None:
                recorder = self.recorder
                attempt.log = AttemptLog(
                    self.graph.ids[attempt.index],
                    attempt.number,
                    limit=limit,
                    changed=None if recorder is None else recorder.log_changed,
                    said=self._publish_line if self.subscribers else None,
                )
            return attempt.log

    def _publish_line(self, line: LogLine, echoed: bool) -> None:
        """Tell the subscribers a task said ``line`` (from the thread that said it)."""
        token = running_attempt.set(None)  # what a subscriber prints is not the task's
        try:
            with self.lock:
                publish(
                    self.subscribers,
                    TaskLogged(
                        run_id=self.run_id,
                        time=line.time,
                        task_id=line.task_id,
                        attempt=line.attempt,
                        number=line.number,
                        stream=line.stream,
                        text=line.text,
                        echoed=echoed,
                    ),
                )
        finally:
            running_attempt.reset(token)

    # -- events -------------------------------------------------------------------------------

    def keep_journal(self, journal: Journal) -> None:
        """Send every event to ``journal`` (the store's recorder) too, as plain fields."""
        self.journal = journal
        self.listening = True

    def _emit(self, kind: type[Event], task_id: str | None = None, **data: Any) -> None:
        """Tell the journal and the subscribers that ``kind`` happened (to ``task_id``)."""
        now = time.time()
        if self.journal is not None:
            self.journal(kind, now, task_id, data)
        if self.subscribers:
            if task_id is not None:
                data = {"task_id": task_id, **data}
            event = kind(run_id=self.run_id, time=now, **data)
            publish(self.subscribers, event)

    def _emit_skipped(self, cause: int, skipped: list[int]) -> None:
        ids = self.graph.ids
        for d in skipped:
            self._emit(TaskSkipped, task_id=ids[d], cause=ids[cause])
