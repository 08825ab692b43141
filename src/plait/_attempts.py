"""Attempts: one attempt of one task -- how it is called, and how it is settled.

The attempt itself, the job an executor receives, is :class:`plait._attempt._Attempt`; its steps
come here. *Calling* (:meth:`_Attempts.call`, in the worker's thread) calls the task function
with its parameters filled; shipped, :meth:`_Attempts.task_call` makes the picklable snapshot of
that call instead.

*Settling* (:meth:`_Attempts._settle`, under the run's lock) records how the attempt ended and
moves its task on: success (outputs, serialized at once for a durable store so that a value the
store cannot keep fails its own task), a question (the task waits, see ``_questions``), a
timeout, a cancellation, or an error -- retried after the retry policy's backoff (a timer on the
loop; the task holds no slot meanwhile), or failed, skipping its dependents and halting the run
when the task is critical. A worker thread settles its own attempt and is handed the next sync
task directly (the fast path: no hand-off between threads).
"""

from __future__ import annotations

import asyncio
import dataclasses
import threading
import time
from typing import TYPE_CHECKING, Any

from ._context import Context
from ._events import TaskCancelled, TaskFailed, TaskReady, TaskRetrying, TaskSucceeded
from ._exceptions import (
    InvalidOptionError,
    OutputNotStorableError,
    TaskCancelledError,
    TaskTimeoutError,
)
from ._pause import InputRequired
from ._results import TaskError, TaskResult
from ._rules import Skip
from ._run_state import _RunState
from ._state import TaskStatus
from ._tagged import NotStorable
from .executors import Executor, Outcome, RemoteError, TaskCall
from .executors._remote import RemoteOutput, local
from .executors._shipping import binding_error

if TYPE_CHECKING:
    from ._attempt import _Attempt

SUCCEEDED = TaskStatus.SUCCEEDED

__all__: list[str] = []

#: How often a worker thread tries the run's lock, giving the GIL away between tries, before it
#: blocks on it; see _take.
_LOCK_TRIES = 20


def _take(lock: threading.Lock) -> None:
    """Take the run's lock from a worker thread.

    With short sync tasks, the workers queue for the lock every few microseconds. A worker that
    blocks on it sleeps in the kernel, must be woken when it is free, and then waits for the GIL
    too: that tripled the cost of a task on a random DAG. A holder needs the lock for a few
    microseconds, so a worker first lets it finish -- ``time.sleep(0)`` gives the GIL away --
    and tries again; only a lock held longer (the recorder reading a big batch) is waited for
    by blocking.
    """
    if lock.acquire(False):  # (positional: a keyword costs a tenth of the call)
        return
    for _ in range(_LOCK_TRIES):
        time.sleep(0)
        if lock.acquire(False):
            return
    lock.acquire()


def _task_error(error: BaseException, formatted: str | None) -> TaskError:
    """``TaskError.from_exception``, for a shipped error too: a :class:`RemoteError` reads as
    the error it stands for, and ``formatted`` (taken where it was raised) is the traceback."""
    if isinstance(error, RemoteError):
        return TaskError(error.type_name, error.message, error.formatted, error)
    task_error = TaskError.from_exception(error)
    if formatted is not None:  # its own traceback did not travel with it
        task_error = dataclasses.replace(task_error, traceback=formatted)
    return task_error


class _Attempts(_RunState):
    """Calling and settling attempts; part of :class:`plait._engine._Run`."""

    # -- calling -------------------------------------------------------------------------------

    def call(self, attempt: _Attempt) -> Any:
        """Call the attempt's task function with its parameters filled (see _binding)."""
        i = attempt.index
        spec = self.graph.options[i]
        inputs = self.graph.inputs[i]
        fn = self.graph.fns[i]
        if fn is None:  # an approval gate: its output is the answer
            return attempt.answer("")
        kwargs: dict[str, Any] | None = None  # None: nothing to pass (the common no-op case)
        task_id = self.graph.ids[i]
        map_over = None
        if inputs is not None:
            params = spec.binding.params
            kwargs = dict(params) if params else {}  # dict() of an empty proxy costs 10 {}
            outputs, ids, status = self.outputs, self.graph.ids, self.scheduler.status
            for d in inputs:  # each fills the parameter named like the dependency
                if status[d] is SUCCEEDED:  # else the parameter keeps its default...
                    kwargs[ids[d]] = outputs[d]
                elif d in self.graph.instances and status[d].is_final:
                    kwargs[ids[d]] = outputs[d]  # ...but a mapped task's: its succeeded outputs
            if i >= self.graph.size:  # an instance of a mapped task: its item
                task_id = self.graph.ids[i]
                map_over, item = self._item(i)
                kwargs[map_over] = item
            if self.remote_outputs:  # fetched here, in the worker thread that needs them
                kwargs = {name: local(value) for name, value in kwargs.items()}
            context_parameter = spec.binding.context_parameter
            if context_parameter is not None:
                kwargs[context_parameter] = Context(
                    self.run_id, task_id, attempt.number, attempt, map_over
                )
        # call_function(fn, kwargs, task_id), written out: a call less per attempt
        try:
            return fn(**kwargs) if kwargs else fn()
        except TypeError as error:
            binding = binding_error(error, fn, kwargs, task_id)
            if binding is None:
                raise  # raised inside fn: the task's own failure
            raise binding from error

    def _inputs(self, inputs: tuple[int, ...], spec: Any) -> dict[str, Any]:
        """The parameters filled by dependencies' outputs, and ``params``."""
        params = spec.binding.params
        kwargs = dict(params) if params else {}
        outputs, ids, status = self.outputs, self.graph.ids, self.scheduler.status
        for d in inputs:  # each fills the parameter named like the dependency
            if status[d] is SUCCEEDED:  # else the parameter keeps its default...
                kwargs[ids[d]] = outputs[d]
            elif d in self.graph.instances and status[d].is_final:
                kwargs[ids[d]] = outputs[d]  # ...but for a mapped task: its succeeded outputs
        return kwargs

    def task_call(self, attempt: _Attempt) -> TaskCall:
        """What ``attempt`` calls, as a picklable snapshot for an executor to ship."""
        i = attempt.index
        spec = self.graph.options[i]
        inputs = self.graph.inputs[i]
        kwargs: dict[str, Any] = {}
        context_parameter = None
        graph = self.graph
        task_id = graph.ids[i]
        map_over = None
        if inputs is not None:
            kwargs = self._inputs(inputs, spec)
            if i >= graph.size:  # an instance of a mapped task: its item
                map_over, item = self._item(i)
                kwargs[map_over] = item
            if self.remote_outputs:  # a handle goes as it is only where it is kept
                executor = self.executor_of[i]
                for name, value in kwargs.items():
                    if isinstance(value, RemoteOutput) and not (
                        executor is not None and value.kept_by(executor)
                    ):
                        kwargs[name] = value.fetch()
            context_parameter = spec.binding.context_parameter
        answers = self.answers[i]
        ids = graph.ids
        static = i if i < graph.size else graph.instance_parent[i - graph.size]
        return TaskCall(
            run_id=self.run_id,
            task_id=task_id,
            attempt=attempt.number,
            idempotency_key=f"{self.run_id}/{task_id}",
            fn=graph.fns[i],
            kwargs=kwargs,
            context_parameter=context_parameter,
            answers={} if not answers else {key: attempt.answer(key) for key in answers},
            is_async=spec.is_async,
            log_limit=self.config.max_log_bytes,
            traceparent=None
            if self.attempt_scope is None
            else self.attempt_scope.traceparent(task_id, attempt.number),
            upstream={
                ids[d]: _shippable(self.task_result(d, with_instances=static == i))
                for d in graph.dependencies[static]
            },
            map_over=map_over,
        )

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

    # -- settling ------------------------------------------------------------------------------

    def complete(self, attempt: _Attempt, outcome: Outcome) -> None:
        """Settle a shipped attempt with the outcome its executor reports (any thread)."""
        if outcome.logs:
            log = attempt.task_log()
            if log is not None:
                log.extend(outcome.logs, echoed=outcome.echoed)
        if attempt.log is not None:
            attempt.log.close()
        if outcome.error is None:
            attempt.output = outcome.output
            if isinstance(outcome.output, RemoteOutput):
                self.remote_outputs = True  # before its dependents start: under the lock below
            self.serialize(attempt)
        else:
            attempt.error = outcome.error
            attempt.traceback = outcome.traceback
        in_loop = threading.get_ident() == self._loop_thread
        _take(self.lock)
        try:
            if attempt.abandoned:
                return
            self._settle(attempt, in_loop=in_loop)
            if self.lane_of_executor:
                self.follow_capacity(self.executor_of[attempt.index])
            self._dispatch(in_loop=in_loop)
            self._resolve_if_finished(in_loop=in_loop)
        finally:
            self.lock.release()

    def follow_capacity(self, executor: Executor | None) -> None:
        """Resize ``executor``'s implicit pool to its capacity now, if it changed: a shipping
        executor may adapt how many attempts it takes at once (the Dask executor's window;
        see ``Executor.capacity``). Under the lock."""
        lane = self.lane_of_executor.get(id(executor))
        if lane is not None and executor is not None:
            capacity = executor.capacity
            if capacity is not None and capacity != self.scheduler.lane_limit(lane):
                self.scheduler.resize_lane(lane, max(1, capacity))

    def settle_sync(self, attempt: _Attempt) -> _Attempt | None:
        """Report a sync attempt from its worker thread; return the worker's next attempt."""
        lock = self.lock
        if not lock.acquire(False):  # (free most of the time: no call to _take then)
            _take(lock)
        try:
            if attempt.abandoned:
                return None
            self._settle(attempt, in_loop=False)
            keep = self._dispatch(in_loop=False, for_worker=self.executor_of[attempt.index])
            if keep is None:  # (with one, the run goes on: a call less per task)
                self._resolve_if_finished(in_loop=False)
            return keep
        finally:
            lock.release()

    def _settle(self, attempt: _Attempt, *, in_loop: bool) -> None:
        """Record how ``attempt`` ended and move its task on. Under the lock."""
        i = attempt.index
        self.current[i] = None
        behind = attempt.behind
        if behind is not None:  # the attempt queued behind it takes over its slot (scheduler)
            attempt.behind = None
            if not behind.abandoned:
                self.current[behind.index] = behind
        self.finished_at[i] = time.time()
        error = attempt.error
        scheduler = self.scheduler
        if error is None and not attempt.timed_out:
            self.outputs[i] = attempt.output
            self.payloads[i] = attempt.payload
            self.errors[i] = None
            decided = scheduler.succeed(i)
            if self.listening:
                self._emit_attempt(TaskSucceeded, self.graph.ids[i], attempt.number)
            if decided and (self.listening or not self._plain_ready):
                self._decided(i, decided, in_loop=in_loop)
            return
        if isinstance(error, Skip) and not attempt.timed_out:
            # Skipping on purpose: never retried, no failure. The reason is kept for the report.
            self.errors[i] = TaskError("plait.Skip", error.reason)
            decided = scheduler.skip(i)
            self._decided(i, [i, *decided], in_loop=in_loop)
            return
        if isinstance(error, InputRequired) and i >= self.graph.size:
            error = InvalidOptionError(
                f"task {self.graph.ids[i]!r} is an instance of a mapped task, which cannot ask "
                "for input (ctx.request_input); ask in a task it depends on"
            )
        if isinstance(error, InputRequired):
            if scheduler.halted:  # nobody will answer a run that stopped: the task stops too
                self._cancel(i, attempt.number, in_loop=in_loop)
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
            self._cancel(i, attempt.number, in_loop=in_loop)
            return
        assert error is not None
        task_error = _task_error(error, attempt.traceback)
        self.errors[i] = task_error
        policy = self.retry[i]
        tries = attempt.number - self.attempts_before[i]  # this process's attempts
        if scheduler.may_retry(i) and policy.should_retry(tries, error):
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
        decided = scheduler.fail(i)
        if self.listening:
            self._emit(
                TaskFailed, task_id=self.graph.ids[i], attempt=attempt.number, error=task_error
            )
        self._decided(i, decided, in_loop=in_loop)
        if self.critical[i] and not scheduler.halted:
            self.halted_by = i
            self._halt(in_loop=in_loop)

    def _cancel(self, i: int, attempt_number: int, *, in_loop: bool) -> None:
        decided = self.scheduler.cancel(i)
        if self.listening:
            self._emit(TaskCancelled, task_id=self.graph.ids[i], attempt=attempt_number)
        self._decided(i, decided, in_loop=in_loop)

    def _requeue(self, i: int) -> None:
        """A retry's backoff is over (loop thread)."""
        with self.lock:
            self._backoffs -= 1
            if self.scheduler.requeue(i):
                if self.announce_ready:
                    self._emit(TaskReady, task_id=self.graph.ids[i])
                self._dispatch(in_loop=True)
            self._resolve_if_finished(in_loop=True)


def _shippable(result: TaskResult) -> TaskResult:
    """A dependency's result for ``ctx.upstream`` away from this process: without the live
    exception object (it may not pickle), and without an output kept on a cluster (a handle
    does not travel; the parameters carry the outputs)."""
    error = result.error
    if error is not None and error.exception is not None:
        result = result._replace(error=dataclasses.replace(error, exception=None))
    if isinstance(result.output, RemoteOutput):
        result = result._replace(output=None)
    return result
