"""The executor interface: where task functions run, and what travels between engine and worker.

The engine decides *what* runs and *when* (the scheduler); an :class:`Executor` decides *where*.
It receives :class:`Job` objects -- one attempt of one task each -- and must bring every job it
accepts to an end in one of two ways:

**In process** (the thread and inline executors): call ``job.run()`` in the thread that should
run the function (it calls the task function and keeps its outcome; it never raises), then
``job.finish()`` (which settles the attempt). ``finish`` may return another job: the engine
hands it to the worker that just became free, so a chain of sync tasks runs with no hand-off
between threads (the fast path); an executor that cannot use it submits it to itself.

**Shipped** (process, Dask, or your own): call ``job.call()`` to get a :class:`TaskCall` -- a
picklable snapshot of everything the attempt needs (function, keyword arguments, run/task ids,
attempt number, idempotency key, the answers given so far) -- send it anywhere, run it there
with :func:`plait.executors.run_call`, and hand the :class:`Outcome` it returns to
``job.complete(outcome)``, from any thread. ``job.call()`` may raise (a parameter that cannot be
bound, a dependency output the executor cannot ship); pass that error back as
``job.complete(Outcome(error=error))``.

**Logs while a shipped attempt runs.** Without more, what a shipped attempt says reaches its log
with its outcome (:attr:`Outcome.logs`). To have it there as it is said -- in the store, in
``plait logs --follow``, the web page and ``TaskLogged`` events, like a thread task's, and kept
when the worker is killed before it can report -- give ``run_call`` a ``send_lines`` callable
that brings each batch of lines back, and hand them to ``job.logged(lines)`` (any thread, any
number of times, before ``complete``). ``run_call`` then leaves out of the outcome the lines it
sent, so each line is kept once. The process executor sends them on its pipe (``L`` messages),
the Dask executor as events of a topic of its own.

**Pipelining** (the process executor, or your own). A worker that takes its calls in order can
be sent its next call while it runs the current one, so it never waits for a round trip through
the engine between two tasks (as ``concurrent.futures.ProcessPoolExecutor`` keeps calls queued
ahead of its workers). Say so with :attr:`Executor.pipelines`; then, once a job runs on a worker,
``job.queue_behind()`` may hand out another job to queue on that worker behind it (or None: no
ready task, or one is queued behind it already -- one at a time). A queued job is not running
yet: it does not count against ``max_concurrency`` or the capacity; when the job ahead of it
ends, it takes over that job's place. Call ``queued.began()`` when it begins on the worker
(after ``complete`` of the job ahead: a worker that reads calls in order begins the next one as
the outcome of the one ahead comes back): ``TaskStarted`` is emitted then, and its timeout starts
counting then, not while it waited. ``began()`` does nothing for a job that was submitted (it began
when submitted), so an executor may call it for every job it starts. A queued job is the best
ready task of its pool when it was queued: one that becomes ready later may run after it.

If the engine cancels a queued job (a halt), it settles it at once, as cancelled; the executor
is told with :meth:`Executor.cancel`, and should see to it that its body never runs (the process
executor's worker skips a call cancelled before it begins). If the job ahead is abandoned, or its
worker dies, the queued job has not begun: run it elsewhere (a fresh worker), and call
``began()`` when it does begin. A job must never be lost: each ends with ``complete`` (or
``finish``), or is cancelled by the engine.

The engine's side of the contract:

- :meth:`Executor.submit` is called with the engine's lock held: it must not block, and must not
  call back into the job (``finish``, ``complete``) before returning.
- :meth:`Executor.cancel` is called once when the engine asks a running (or queued, or queued
  behind a running one) attempt to stop: a timeout, a critical failure elsewhere, Ctrl-C.
  ``job.cancelled`` is true from then on; in-process jobs see it as ``ctx.cancelled``; a shipped
  job's executor should forward it to the ``cancelled`` callable it gave ``run_call``. The
  attempt still ends by ``finish``/``complete``.
- :meth:`Executor.abandon` is called when the engine stops waiting for a running attempt (its
  timeout passed, or the cancel grace period ran out): the attempt is already settled, whatever
  it reports later is ignored, and the executor should free the slot (a thread executor starts
  a replacement thread; a process executor kills the worker).
- :attr:`Executor.capacity` is how many jobs it can run at once (None: no limit of its own). The
  scheduler treats it as an implicit pool, so it never hands an executor more jobs than it has
  slots, and work that waits stays in plait's ready queue (in critical-path order, free to
  cancel) rather than in the executor's. It may change while a run goes on (the Dask
  executor's window adapts): the engine reads it again as each shipped job completes and
  resizes the pool; jobs already submitted stay. A pool exists only for an executor whose
  capacity at the run's start is below ``max_concurrency``.
- :meth:`Executor.start` is called on the loop's thread when a run that uses the executor
  starts (an executor that must hand work back to the loop keeps it).
- :meth:`Executor.shutdown` is called when the run ends for the executors plait made by name
  (``"thread"``, ``"inline"``, ``"process"``); an executor passed in by the caller
  (``plait.run(..., executors=...)``) stays its owner's to shut down, and may serve several
  runs one after another.
"""

from __future__ import annotations

import asyncio
import pickle
import traceback
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from .._logs import LogLine

__all__ = ["Executor", "Job", "Outcome", "RemoteError", "TaskCall"]


@dataclass(frozen=True, slots=True)
class TaskCall:
    """What one attempt of one task needs in order to run anywhere: picklable when its function
    and values are.

    Attributes:
        run_id, task_id, attempt: who runs (``attempt`` counts from 1).
        idempotency_key: ``run_id/task_id``, the same for every attempt (``ctx.idempotency_key``).
        fn: the task function; None for an approval gate (its output is the answer).
        kwargs: the keyword arguments: bound parameters and dependency outputs. The context is
            not among them: :func:`run_call` builds it, under ``context_parameter``.
        context_parameter: the name of the parameter that receives the ``Context``, if any.
        answers: the answers to the task's questions so far, by key (``""``: its ``pause``).
        is_async: call ``fn`` and await what it returns (under ``asyncio.run`` away from the loop).
        log_limit: bytes of log to keep (``EngineConfig.max_log_bytes``; 0 keeps none).
        traceparent: when the run is traced, the W3C ``traceparent`` of the attempt's span:
            :func:`run_call` makes it current around the function, so the spans the task makes
            where it runs (a process, a Dask worker) nest under the attempt's (see
            ``plait._tracing``).
        upstream: each direct dependency's ``TaskResult`` when the attempt was made
            (``ctx.upstream``).
        map_over: for an instance of a mapped task, the dependency it maps over, whose
            parameter in ``kwargs`` holds its item (``ctx.map_over``); else None.
    """

    run_id: str
    task_id: str
    attempt: int
    idempotency_key: str
    fn: Callable[..., Any] | None
    kwargs: Mapping[str, Any] = field(default_factory=dict)
    context_parameter: str | None = None
    answers: Mapping[str, Any] = field(default_factory=dict)
    is_async: bool = False
    log_limit: int = 0
    traceparent: str | None = None
    upstream: Mapping[str, Any] = field(default_factory=dict)
    map_over: str | None = None

    def __reduce__(self) -> tuple[Any, tuple[Any, ...]]:
        # Pickled as its fields in order: a dataclass's default pickling (its generated
        # __getstate__ walks ``fields()``) costs a process task's round trip more than the
        # call itself does.
        return TaskCall, (
            self.run_id,
            self.task_id,
            self.attempt,
            self.idempotency_key,
            self.fn,
            self.kwargs,
            self.context_parameter,
            self.answers,
            self.is_async,
            self.log_limit,
            self.traceparent,
            self.upstream,
            self.map_over,
        )

    def __repr__(self) -> str:
        name = getattr(self.fn, "__qualname__", repr(self.fn))
        return f"<TaskCall {self.task_id!r}#{self.attempt} {name}({', '.join(self.kwargs)})>"


class RemoteError(Exception):
    """Stands in for an exception that could not travel back from where it was raised (it, or
    something it holds, cannot be pickled): keeps its type's name, message and traceback, so it
    still becomes a readable ``TaskError``."""

    def __init__(self, type_name: str, message: str, formatted: str) -> None:
        super().__init__(type_name, message, formatted)
        self.type_name = type_name
        self.message = message
        self.formatted = formatted

    @classmethod
    def of(cls, error: BaseException) -> RemoteError:
        kind = type(error)
        name = (
            kind.__qualname__
            if kind.__module__ == "builtins"
            else f"{kind.__module__}.{kind.__qualname__}"
        )
        return cls(name, str(error), "".join(traceback.format_exception(error)))

    def __str__(self) -> str:
        return f"{self.type_name}: {self.message}" if self.message else self.type_name


@dataclass(slots=True)
class Outcome:
    """How one attempt ended, as a worker reports it.

    Attributes:
        output: what the function returned (when ``error`` is None).
        error: the exception it raised, as raised, or a :class:`RemoteError` in its place when
            it cannot be pickled (see :meth:`portable`).
        traceback: the error's formatted traceback, taken where it was raised (a pickled
            exception loses its own).
        logs: the lines the attempt logged and printed in the worker, to be kept in its log:
            all of them, or those not handed to ``job.logged`` already (see ``run_call``'s
            ``send_lines``).
        echoed: its printed lines (streams ``stdout`` and ``stderr`` of ``logs``) were written
            to this process's own streams already, as they came (the process executor
            forwards a worker's prints live): kept in the log, not shown again.
    """

    output: Any = None
    error: BaseException | None = None
    traceback: str | None = None
    logs: list[LogLine] = field(default_factory=list)
    echoed: bool = False

    def __reduce__(self) -> tuple[Any, tuple[Any, ...]]:
        # As its fields in order, as TaskCall is (see there): cheaper than a dataclass's state.
        return Outcome, (self.output, self.error, self.traceback, self.logs, self.echoed)

    def portable(self) -> Outcome:
        """This outcome, with its error replaced by a :class:`RemoteError` if the error does not
        survive a pickle round trip. Call it in the worker before sending the outcome back."""
        error = self.error
        if error is None:
            return self
        try:
            pickle.loads(pickle.dumps(error))
        except Exception:
            return Outcome(None, RemoteError.of(error), self.traceback, self.logs, self.echoed)
        return self


class Job(Protocol):
    """One attempt of one task, as an executor sees it (see the module docstring)."""

    @property
    def abandoned(self) -> bool:
        """Whether the engine has given up on this job (a timeout or cancellation ran out)."""
        ...

    @property
    def cancelled(self) -> bool:
        """Whether the engine has asked this attempt to stop."""
        ...

    def run(self) -> None:
        """In process: call the task function in this thread and keep its outcome. Never
        raises."""
        ...

    def finish(self) -> Job | None:
        """In process: settle the outcome ``run`` kept; may return the next job for this
        worker."""
        ...

    def call(self) -> TaskCall:
        """Shipped: what to run, as a picklable :class:`TaskCall`.

        Raises:
            Exception: the call cannot be made (e.g. a ``BindingError``); report it with
                ``complete(Outcome(error=...))``.
        """
        ...

    def logged(self, lines: list[LogLine], *, echoed: bool = False) -> None:
        """Shipped: keep ``lines``, said by the running attempt, in its log now (any thread,
        any number of times, before or after ``complete``; in the order they were said).
        ``echoed``: the printed ones (streams ``stdout``, ``stderr``) were written to this
        process's own streams already, as :attr:`Outcome.echoed` says of an outcome's."""
        ...

    def complete(self, outcome: Outcome) -> None:
        """Shipped: settle the attempt with ``outcome``, from any thread. Its output is
        serialized for a durable store as an in-process output is, its logs are kept."""
        ...

    def queue_behind(self) -> Job | None:
        """Pipelining: a job to queue on this running job's worker, behind it; None if there is
        none to queue now (nothing ready, the run is stopping, or one is queued behind this job
        already). Only for an executor whose :attr:`Executor.pipelines` is true; any thread.

        Raises:
            RuntimeError: the executor does not say it pipelines.
        """
        ...

    def began(self) -> None:
        """Pipelining: this job, handed out by :meth:`queue_behind`, began on its worker now:
        its ``TaskStarted`` is emitted and its timeout starts. Call it after the job ahead of
        it completed. Does nothing for a job given to ``submit``, or one the engine cancelled
        while it was queued; any thread.

        Raises:
            RuntimeError: the job ahead of it has not completed yet.
        """
        ...


class Executor(ABC):
    """Runs jobs away from the engine's bookkeeping; see the module docstring for the contract."""

    @property
    def capacity(self) -> int | None:
        """How many jobs this executor runs at once; None when it sets no limit of its own. May
        change between jobs (see the module docstring)."""
        return None

    @property
    def pipelines(self) -> bool:
        """Whether this executor queues jobs on its workers behind running ones
        (``job.queue_behind()``, see the module docstring). False by default."""
        return False

    def start(self, loop: asyncio.AbstractEventLoop) -> None:  # noqa: B027 - optional hook
        """A run that uses this executor starts on ``loop`` (called on the loop's thread,
        before the first ``submit``). The default does nothing."""

    @abstractmethod
    def submit(self, job: Job) -> None:
        """Run ``job`` as soon as a worker is free. Must not block."""

    def cancel(self, job: Job) -> None:  # noqa: B027 - optional hook
        """The engine asked ``job`` to stop (``job.cancelled`` is now true); forward that to
        wherever it runs. The default does nothing: in-process jobs read the flag themselves."""

    def abandon(self, job: Job) -> None:  # noqa: B027 - optional hook
        """The engine stopped waiting for running ``job``; free the capacity it holds.

        Called for an attempt that ran past its timeout or its cancellation grace period. Its
        outcome will be ignored. The default does nothing.
        """

    @abstractmethod
    def shutdown(self, *, wait: bool = True) -> None:
        """Stop the workers once they are idle; with ``wait``, until they have exited."""
