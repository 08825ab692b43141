"""What runs on a Dask worker for the Dask executor: one attempt, and what it sends back.

Every plait Dask task calls :func:`_run_attempt`: the attempt guard (see
:mod:`plait.executors._dask_guard`), then :func:`~plait.executors.run_call` with the
:class:`~plait.executors.TaskCall` the engine made, ``ctx.cancelled`` reading the attempt's
cancel ``Event`` (:class:`_CancelWatch`). Its result is the output itself, :class:`_Logged`
around it when the attempt logged anything, or :class:`_Failed` around a portable
:class:`~plait.executors.Outcome`: returned, not raised, and told apart by the result's type,
which Dask reports to the client without the data (see ``plait.executors._dask``).

What the attempt logs and prints while it runs goes to the orchestrator as it is said: in
batches (``_streaming``), each an event of the executor's topic (:func:`logs_topic`, sent with
``Worker.log_event``: ``[key, [[time, stream, text], ...]]``), which the executor's client
subscribes to. The lines not sent when the attempt ends travel in its result, as before.
"""

from __future__ import annotations

import dataclasses
import time
import uuid
from collections.abc import Mapping
from typing import Any

from .._exceptions import WorkerLostError
from .._logs import LogLine
from ._base import Outcome, TaskCall
from ._shipping import run_call

__all__ = ["CANCEL_CHECK_SECONDS", "key_of_event", "lines_of_event", "logs_topic"]

#: How often, at most, a task's reads of ``ctx.cancelled`` ask the scheduler (seconds).
CANCEL_CHECK_SECONDS = 0.05


def _cancel_name(key: Any) -> str:
    return f"plait-cancel/{key}"


def logs_topic(session: str) -> str:
    """The Dask event topic that carries the log lines of one executor's attempts (``session``:
    the last part of their keys)."""
    return f"plait-logs/{session}"


class _LineEvents:
    """``send_lines`` on a worker: a batch of an attempt's lines as one event of its executor's
    topic. Raises (and the lines stay for the result) when they cannot be sent that way."""

    __slots__ = ("_key", "_topic", "_worker")

    def __init__(self, worker: Any, key: Any) -> None:
        self._worker = worker
        self._key = list(key)
        self._topic = logs_topic(key[-1])

    def __call__(self, lines: list[LogLine]) -> None:
        batch = [[line.time, line.stream, line.text] for line in lines]
        self._worker.log_event(self._topic, [self._key, batch])


def lines_of_event(event: Any, task_id: str, attempt: int) -> list[LogLine]:
    """The lines of attempt ``attempt`` of ``task_id`` in an event of a :func:`logs_topic` (as
    the client receives it: ``(time, [key, batch])``)."""
    _, (_, batch) = event
    return [LogLine(task_id, attempt, 0, at, stream, text) for at, stream, text in batch]


def key_of_event(event: Any) -> tuple[Any, ...]:
    """The key of the attempt that said the lines of an event of a :func:`logs_topic`."""
    _, (key, _) = event
    return tuple(key)


class _Logged:
    """An output with the log lines its attempt said, as a Dask task's result (a task returns
    one value; the orchestrator fetches ``lines`` alone, and dependents unwrap ``output``)."""

    __slots__ = ("lines", "output")

    def __init__(self, output: Any, lines: list[Any]) -> None:
        self.output = output
        self.lines = lines

    def __reduce__(self) -> tuple[Any, ...]:
        return (_Logged, (self.output, self.lines))


def _unwrap(value: Any) -> Any:
    return value.output if type(value) is _Logged else value


def _lines_of(value: Any) -> list[Any]:
    return value.lines if type(value) is _Logged else []


class _Failed:
    """A failed attempt, as its Dask task's result: the error as :func:`run_call` caught it
    (made portable), its traceback as text and its log lines. Returned rather than raised, so
    Dask logs no "Compute Failed" for what is plait's business (a retry, a pause); the
    orchestrator tells it apart by the result's type, which Dask reports without the data."""

    __slots__ = ("outcome",)

    def __init__(self, outcome: Outcome) -> None:
        self.outcome = outcome

    def __reduce__(self) -> tuple[Any, ...]:
        return (_Failed, (self.outcome,))


class _CancelWatch:
    """``cancelled()`` for :func:`run_call` on a worker: reads the attempt's cancel ``Event``
    from the scheduler, at most every :data:`CANCEL_CHECK_SECONDS`; once set, stays set."""

    __slots__ = ("_checked", "_name", "_set", "_worker")

    def __init__(self, worker: Any, key: str) -> None:
        self._worker = worker
        self._name = _cancel_name(key)
        self._set = False
        self._checked = -CANCEL_CHECK_SECONDS

    def __call__(self) -> bool:
        if self._set:
            return True
        now = time.monotonic()
        if now - self._checked >= CANCEL_CHECK_SECONDS:
            from distributed.utils import sync  # noqa: PLC0415 - runs on a worker

            worker = self._worker
            self._set = bool(sync(worker.loop, worker.scheduler.event_is_set, name=self._name))
            self._checked = time.monotonic()
        return self._set


def _run_attempt(task_call: TaskCall, inputs: Mapping[str, Any], key: Any, locked: bool) -> Any:
    """Run one attempt on a Dask worker (the function every plait Dask task calls).

    ``inputs`` holds the outputs of dependencies that ran on this cluster, passed as futures
    and resolved by Dask into values here (each possibly :class:`_Logged`, or :class:`_Failed`
    when Dask computed it again after its worker was lost, and that execution was refused).
    ``locked``: the attempt guard is a lock (the scheduler has no plugin; see
    :mod:`plait.executors._dask_guard`).
    """
    from distributed import get_worker  # noqa: PLC0415 - runs on a worker

    from . import _dask_guard as guard  # noqa: PLC0415 - imports distributed

    worker = get_worker()
    holder = f"{key}@{uuid.uuid4().hex}" if locked else ""
    again = (not guard.take_lock(worker, key, holder)) if locked else guard.refused(worker, key)
    if again:
        error = WorkerLostError(
            f"task {task_call.task_id!r} (attempt {task_call.attempt}): the Dask worker running "
            f"it was lost, and Dask started it again on {worker.address}; plait runs an attempt "
            "once, so its retry policy decides what happens next"
        )
        return _Failed(Outcome(error=error))
    try:
        if inputs:
            lost = [name for name, value in inputs.items() if type(value) is _Failed]
            if lost:
                error = WorkerLostError(
                    f"task {task_call.task_id!r} (attempt {task_call.attempt}): the output of "
                    f"{lost[0]!r} was lost with the Dask worker that held it"
                )
                return _Failed(Outcome(error=error))
            kwargs = {**task_call.kwargs, **{n: _unwrap(v) for n, v in inputs.items()}}
            task_call = dataclasses.replace(task_call, kwargs=kwargs)
        outcome = run_call(
            task_call, cancelled=_CancelWatch(worker, key), send_lines=_LineEvents(worker, key)
        )
    finally:
        if locked:
            guard.release_lock(worker, holder)
    if outcome.error is not None:
        return _Failed(outcome.portable())
    if outcome.logs:
        return _Logged(outcome.output, outcome.logs)
    return outcome.output
