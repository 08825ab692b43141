"""The worker's side of the seam: run a :class:`TaskCall` anywhere and report an :class:`Outcome`.

A process worker, a Dask worker or your own executor calls :func:`run_call` with a
:class:`TaskCall` it received and a way to hear of cancellation; it builds the task's
``Context`` from the snapshot (``ctx.cancelled`` reads ``cancelled()``; ``ctx.input`` and
``ctx.request_input`` read the answers the call carries, and a question not answered yet raises
``InputRequired`` as in process, which the engine turns into a pause), captures what the attempt
logs and prints into :attr:`Outcome.logs`, calls the function -- under ``asyncio.run`` when it is
async -- and never raises: whatever the function raises is the outcome's error.

Logs while the attempt runs: give ``send_lines``, a callable that takes a list of
:class:`~plait.LogLine` to the orchestrator, where the executor hands it to ``job.logged``. The
lines then go out in batches as they are said (``_streaming``: at most every 0.1 s, or when a
batch is full), and the outcome's ``logs`` holds only the lines not sent that way: each line
reaches the attempt's log once. Without it, every line comes in the outcome.

Cancellation: ``cancelled`` is any ``Callable[[], bool]``. Give a :class:`CancelFlag` to also
have an async call cancelled (``CancelledError`` at its next ``await``) the moment the flag is
set; sync code sees the flag when it reads ``ctx.cancelled``, and nothing else can interrupt it
short of killing the process.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import traceback
from collections.abc import Callable, Mapping
from typing import Any

from .._context import Context
from .._exceptions import BindingError
from .._log_capture import running_attempt, start_capture, stop_capture
from .._logs import AttemptLog, LogLine
from .._pause import NO_DEFAULT, InputRequired
from ._base import Outcome, TaskCall
from ._streaming import LogStream

__all__ = ["CancelFlag", "binding_error", "call_function", "run_call"]


class CancelFlag:
    """A thread-safe "stop" flag that can also tell listeners the moment it is set.

    Calling it says whether it is set, so it is a ``cancelled`` callable for :func:`run_call`.
    Setting it twice does nothing more.
    """

    __slots__ = ("_callbacks", "_lock", "_set")

    def __init__(self) -> None:
        self._set = False
        self._lock = threading.Lock()
        self._callbacks: list[Callable[[], object]] = []

    def __call__(self) -> bool:
        return self._set

    def is_set(self) -> bool:
        return self._set

    def set(self) -> None:
        """Set the flag; call every listener (in this thread)."""
        with self._lock:
            if self._set:
                return
            self._set = True
            callbacks, self._callbacks = self._callbacks, []
        for callback in callbacks:
            callback()

    def listen(self, callback: Callable[[], object]) -> Callable[[], None]:
        """Call ``callback`` when the flag is set (now, if it is); return a function that stops
        listening."""
        with self._lock:
            if not self._set:
                self._callbacks.append(callback)
                return lambda: self._forget(callback)
        callback()
        return lambda: None

    def _forget(self, callback: Callable[[], object]) -> None:
        with self._lock:
            if callback in self._callbacks:
                self._callbacks.remove(callback)

    def __repr__(self) -> str:
        return f"<CancelFlag {'set' if self._set else 'clear'}>"


def _never() -> bool:
    return False


class _ShippedAttempt:
    """The attempt as a worker knows it: the context's state and the source of its log."""

    __slots__ = ("_answers", "_cancelled", "_log", "_send_lines", "_stream", "_task_call")

    def __init__(
        self,
        task_call: TaskCall,
        cancelled: Callable[[], bool],
        send_lines: Callable[[list[LogLine]], object] | None,
    ) -> None:
        self._task_call = task_call
        self._answers = task_call.answers
        self._cancelled = cancelled
        self._send_lines = send_lines
        self._stream: LogStream | None = None  # made with the log, when lines are sent
        self._log: AttemptLog | None = None

    @property
    def cancelled(self) -> bool:
        return self._cancelled()

    def answer(self, key: str) -> Any:
        return self._answers.get(key, NO_DEFAULT)

    def upstream(self) -> Mapping[str, Any]:
        return self._task_call.upstream

    def task_log(self) -> AttemptLog | None:
        if self._log is None and self._task_call.log_limit:
            task_call = self._task_call
            if self._send_lines is not None:
                self._stream = LogStream(self._send_lines, limit=task_call.log_limit)
            stream = self._stream
            self._log = AttemptLog(
                task_call.task_id,
                task_call.attempt,
                limit=task_call.log_limit,
                said=None if stream is None else stream.add,
            )
        return self._log

    def lines(self) -> list[LogLine]:
        """The lines for the outcome: all of them, or those the stream has not sent."""
        log = self._log
        if log is None:
            return []
        log.close()
        return log.lines() if self._stream is None else self._stream.close()


def call_function(fn: Callable[..., Any], kwargs: Mapping[str, Any] | None, task_id: str) -> Any:
    """``fn(**kwargs)``; a ``TypeError`` raised by the call itself (the arguments do not fit the
    function as it really is: a decorator that hides its signature, a C function) becomes a
    ``BindingError`` naming the task, since every retry would fail the same way."""
    try:
        return fn() if not kwargs else fn(**kwargs)
    except TypeError as error:
        binding = binding_error(error, fn, kwargs, task_id)
        if binding is None:
            raise  # raised inside fn: the task's own failure
        raise binding from error


def binding_error(
    error: TypeError, fn: Callable[..., Any], kwargs: Mapping[str, Any] | None, task_id: str
) -> BindingError | None:
    """The ``BindingError`` that ``error``, caught by the frame that called ``fn``, stands for
    (see :func:`call_function`); None when ``fn`` itself raised it (it is the task's failure)."""
    if error.__traceback__ is None or error.__traceback__.tb_next is not None:
        return None
    return BindingError(
        f"task {task_id!r}: calling {getattr(fn, '__qualname__', repr(fn))} with "
        f"parameters {sorted(kwargs or ())!r} failed: {error}; make its signature name the "
        "parameters it takes"
    )


def run_call(
    task_call: TaskCall,
    *,
    cancelled: Callable[[], bool] = _never,
    send_lines: Callable[[list[LogLine]], object] | None = None,
) -> Outcome:
    """Run one attempt described by ``task_call`` in this thread; return how it ended.

    Never raises (the function's exceptions, ``KeyboardInterrupt`` and ``SystemExit`` included,
    become the outcome's error). See the module docstring for cancellation and logs:
    ``send_lines``, if given, is called (from the thread that said the last line, or a flusher
    thread; one call at a time) with the attempt's lines in batches while it runs.
    """
    attempt = _ShippedAttempt(task_call, cancelled, send_lines)
    start_capture()
    token = running_attempt.set(attempt)
    traced = _enter_trace(task_call.traceparent) if task_call.traceparent else None
    try:
        output = _call(task_call, attempt, cancelled)
    except BaseException as error:  # the task's failure, whatever it is, is its outcome
        formatted = None
        if not isinstance(error, InputRequired):
            formatted = "".join(traceback.format_exception(error))
        outcome = Outcome(error=error, traceback=formatted)
    else:
        outcome = Outcome(output=output)
    finally:
        if traced is not None:
            traced()
        running_attempt.reset(token)
        stop_capture()
    outcome.logs = attempt.lines()
    return outcome


def _enter_trace(traceparent: str) -> Callable[[], None] | None:
    """Make the span ``traceparent`` names current; return what undoes it (None when the
    OpenTelemetry API is not installed where the task runs: then it runs untraced)."""
    try:
        from opentelemetry import context  # noqa: PLC0415 - only for a traced run
        from opentelemetry.trace.propagation.tracecontext import (  # noqa: PLC0415
            TraceContextTextMapPropagator,
        )
    except ImportError:
        return None
    token = context.attach(TraceContextTextMapPropagator().extract({"traceparent": traceparent}))
    return lambda: context.detach(token)


def _call(task_call: TaskCall, attempt: _ShippedAttempt, cancelled: Callable[[], bool]) -> Any:
    fn = task_call.fn
    if fn is None:  # an approval gate: its output is the answer
        answer = attempt.answer("")
        return None if answer is NO_DEFAULT else answer
    kwargs: Mapping[str, Any] = task_call.kwargs
    if task_call.context_parameter is not None:
        context = Context(
            task_call.run_id,
            task_call.task_id,
            task_call.attempt,
            attempt,
            task_call.map_over,
        )
        kwargs = {**kwargs, task_call.context_parameter: context}
    if not task_call.is_async:
        return call_function(fn, kwargs, task_call.task_id)

    async def drive() -> Any:
        coroutine = call_function(fn, kwargs, task_call.task_id)
        task = asyncio.ensure_future(coroutine)
        if not isinstance(cancelled, CancelFlag):
            return await task
        loop = asyncio.get_running_loop()

        def cancel_task() -> None:
            with contextlib.suppress(RuntimeError):  # the loop closed meanwhile: nothing to stop
                loop.call_soon_threadsafe(task.cancel)

        stop_listening = cancelled.listen(cancel_task)
        try:
            return await task
        finally:
            stop_listening()

    return asyncio.run(drive())
