"""An attempt: one attempt of one task, as the job an executor receives.

An :class:`_Attempt` is what an executor receives as a job (see ``executors/_base.py``): in
process it is ``run`` (the function is called in the worker's thread, with ``running_attempt``
naming it so that what it logs goes into its log) then ``finish``; shipped, it is ``call`` (a
picklable :class:`~plait.executors.TaskCall`) then ``complete`` with the worker's outcome. Each
step hands over to the run: how the attempt is called and settled is ``_attempts``.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from ._exceptions import TaskCancelledError
from ._log_capture import running_attempt
from ._logs import AttemptLog, LogLine
from ._pause import NO_DEFAULT, as_schema_value
from ._results import TaskResult
from .executors import Outcome, TaskCall

if TYPE_CHECKING:
    from ._attempts import _Attempts

__all__: list[str] = []


class _Attempt:
    """One attempt of one task: a job for the executor, a cancel flag for the task's context,
    and the source of its log (see ``_log_capture``: the engine sets ``running_attempt`` to it
    while its function runs)."""

    __slots__ = (
        "abandoned",
        "behind",
        "cancelled",
        "error",
        "index",
        "log",
        "number",
        "output",
        "payload",
        "queued",
        "run_state",
        "started",
        "task",
        "timed_out",
        "traceback",
    )

    def __init__(self, run_state: _Attempts, index: int, number: int) -> None:
        self.run_state = run_state
        self.index = index
        self.number = number
        self.cancelled = False
        self.timed_out = False
        self.abandoned = False
        self.output: Any = None
        self.payload: bytes | None = None
        self.error: BaseException | None = None
        self.traceback: str | None = None  # a shipped error's, formatted where it was raised
        self.task: asyncio.Task[Any] | None = None
        self.started = False  # an async attempt's task has taken its first step
        self.log: AttemptLog | None = None  # made when the attempt first says something
        # Pipelining (see Job.queue_behind): the attempt its executor queued behind this one,
        # and whether this one was handed out queued and has not begun yet.
        self.behind: _Attempt | None = None
        self.queued = False

    def run(self) -> None:
        if self.cancelled:  # the run stopped before a worker got to it: never call it
            self.error = TaskCancelledError("cancelled before it started")
            return
        run_state = self.run_state
        token = running_attempt.set(self)
        scope = run_state.attempt_scope
        scoped = None if scope is None else scope.enter()
        try:
            output = run_state.call(self)
            if run_state.async_off_loop[self.index]:  # an async function on a thread
                output = asyncio.run(output)
            self.output = output
        except BaseException as error:  # the task's failure, whatever it is, is its outcome
            self.error = error
        else:
            if run_state._encodes:
                run_state.serialize(self)
        finally:
            if scope is not None:
                scope.exit(scoped)
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

    def call(self) -> TaskCall:
        return self.run_state.task_call(self)

    @property
    def keeps_remote_output(self) -> bool:
        """Whether the executor may report a :class:`~plait.executors.RemoteOutput` (a handle
        on an output kept where it was made): not when the run's store serializes outputs."""
        return not self.run_state._encodes

    @property
    def priority(self) -> int:
        """Plait's ready-queue order (``priority``, critical-path rank, definition order) as
        one number, higher first: for executors that keep a queue of their own (Dask)."""
        graph = self.run_state.graph
        return len(graph) - graph.queue_key[self.index]

    def logged(self, lines: list[LogLine], *, echoed: bool = False) -> None:
        if lines and (log := self.task_log()) is not None:
            log.extend(lines, echoed=echoed)

    def complete(self, outcome: Outcome) -> None:
        self.run_state.complete(self, outcome)

    def queue_behind(self) -> _Attempt | None:
        return self.run_state.queue_behind(self)

    def began(self) -> None:
        if self.queued:  # (a job that was submitted began when it was: nothing to do)
            self.run_state.queued_began(self)

    def upstream(self) -> dict[str, TaskResult]:
        run_state = self.run_state
        graph = run_state.graph
        i = self.index
        whole = i < graph.size
        if not whole:  # an instance: its mapped task's dependencies (see task_result)
            i = graph.instance_parent[i - graph.size]
        with run_state.lock:
            return {
                graph.ids[d]: run_state.task_result(d, with_instances=whole)
                for d in graph.dependencies[i]
            }

    def answer(self, key: str) -> Any:
        answers = self.run_state.answers[self.index]
        if answers is None or key not in answers:
            return NO_DEFAULT
        if key == "":  # the task's own pause: give it in the form its schema asks for
            pause = self.run_state.graph.options[self.index].pause
            return as_schema_value(pause.schema if pause else None, answers[key])
        return answers[key]
