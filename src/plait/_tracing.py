"""OpenTelemetry traces of runs (``pip install 'plait[otel]'``): spans built from the events.

``plait.run(wf, tracing=True)`` (or ``EngineConfig.tracing``, or ``plait run --trace``) adds a
:class:`RunTracer` to the run's subscribers. It emits, through the globally configured tracer
provider (set up by the application, or by the standard ``OTEL_*`` environment variables with
``opentelemetry-instrument``):

- ``plait.run <workflow>``: one span for this process's part of the run, from ``RunStarted`` to
  ``RunFinished``; ERROR when the run failed; attributes ``plait.run.id``, ``plait.workflow``,
  ``plait.run.status``;
- ``plait.task <task_id>``: one child span per attempt, from its start to its end, with
  ``plait.run.id``, ``plait.task.id``, ``plait.task.attempt``, ``plait.workflow``; a failed
  attempt has ERROR status and ``error.type``, and one that is retried says so with a
  ``plait.retry`` event holding the delay (``plait.retry.delay``, seconds);
- ``plait.wait <task_id>``: a child span for the time a question waited for its answer.

**Times come from the events**, so the spans agree with the report and ``RunResult``. **Spans
are built off the engine's thread**: the tracer hears of events as a journal does (their plain
fields, see ``plait._events.Journal``), appends them to a deque -- the engine's whole cost, with
no event object built and no thread woken -- and a thread of its own takes what has gathered
every ``_POLL_SECONDS``, builds the events and makes and ends the spans. (A queue whose reader
waits on it woke that thread for each event: a system call on the engine's thread per event, and
a thread contending for the GIL once per event; bench Part 11 measured that as most of tracing's
cost per sync task.) A task span is ended -- and so exported, by the provider's span processor --
within ``_POLL_SECONDS`` of its attempt's end, under the run span's context: a long run is
visible while it runs, before its own span ends.

**A resumed run continues the trace.** The first process stores the run span's W3C
``traceparent`` with the run (:meth:`Store.set_trace_context`); a process that resumes the run
(after a pause, a failure, or kill -9) makes its own ``plait.run`` span in the same trace, as a
child of the first and linked to it.

**Off by default, and then free**: without ``tracing`` nothing here is imported (nor
OpenTelemetry), and the engine does no tracing work at all.
"""

from __future__ import annotations

import contextvars
import logging
import random
import threading
from collections import deque
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from ._events import (
    Event,
    InputReceived,
    InputRequested,
    RunFinished,
    RunStarted,
    TaskCancelled,
    TaskEvent,
    TaskFailed,
    TaskRetrying,
    TaskStarted,
    TaskSucceeded,
)
from ._exceptions import ConfigError
from ._graph import series_id
from ._log_capture import Handling, running_attempt
from ._public import publish_exports
from ._state import RunStatus

if TYPE_CHECKING:
    from opentelemetry.trace import Span

    from .stores import Store

__all__ = ["RunTracer"]

MISSING_EXTRA = "tracing needs the OpenTelemetry API: pip install 'plait[otel]'"
#: The instrumentation scope plait's spans are made under.
SCOPE = "plait"

_log = logging.getLogger("plait.tracing")
_END = object()  # the deque's last item
#: How often the tracer's thread takes the events gathered (seconds): spans lag by at most this.
_POLL_SECONDS = 0.02


def _ns(seconds: float) -> int:
    return int(seconds * 1e9)


def _ids_of(stored: str | None) -> tuple[int | None, int]:
    """The trace id of a run (the stored one's, or a new one) and its new run span's id."""
    span_id = random.getrandbits(64) or 1
    if stored is None:
        return random.getrandbits(128) or 1, span_id
    parts = stored.split("-")
    try:
        return int(parts[1], 16), span_id
    except (IndexError, ValueError):
        return None, span_id  # not a traceparent: no span is made current


def _attach_detach(context: Any) -> tuple[Callable[[Any], Any], Callable[[Any], None]]:
    """How to make a context current and undo it: the ContextVar that opentelemetry-api keeps
    it in, set and reset directly when it is there (a third of the cost of ``attach`` and
    ``detach``, which wrap it -- this runs around every task's function); else those."""
    runtime = getattr(context, "_RUNTIME_CONTEXT", None)
    var = getattr(runtime, "_current_context", None)
    if isinstance(var, contextvars.ContextVar):
        return var.set, var.reset
    return context.attach, context.detach


def _attempt_of(run_id: str) -> tuple[str, int] | None:
    """The (task id, attempt number) of run ``run_id``'s attempt whose function runs in this
    context, from the attempt the engine names there for its logs (``_log_capture.running_attempt``,
    also while a log record goes to the handlers): that attempt, or -- in a run started by one
    of ``run_id``'s attempts -- the attempt that started it."""
    attempt: Any = running_attempt.get()
    while attempt is not None:
        while isinstance(attempt, Handling):
            attempt = attempt.source
        run = getattr(attempt, "run_state", None)
        if run is None:
            return None
        if run.run_id == run_id:
            return run.graph.ids[attempt.index], attempt.number
        attempt = run.started_in
    return None


class _CurrentSpan:
    """The one context a run's attempts run in: its current span stands for whichever of the
    run's attempts runs in the context that asks (:func:`_attempt_of`).

    Making an attempt's span current then costs one ContextVar set -- no span, span context
    or OpenTelemetry context made per attempt (bench Part 11: making them cost ~1-2 µs per
    attempt on the task's thread), and no variable of its own for the attempt (the engine
    names it for its logs already). The span's ``SpanContext`` is made only when asked for (when
    the task's function makes a span of its own), with the span id the attempt's span will be
    built with: chosen then (``chosen``, shared with the tracer's thread), else by the SDK when
    the tracer builds the span.
    """

    __slots__ = ("context", "flags")

    def __init__(
        self, trace: Any, context: Any, run_id: str, trace_id: int, chosen: dict[Any, int]
    ) -> None:
        #: Sampled or not, as the run's span is (sampled until it is known).
        self.flags = int(trace.TraceFlags.SAMPLED)
        span_context, trace_flags, invalid = (
            trace.SpanContext,
            trace.TraceFlags,
            trace.INVALID_SPAN_CONTEXT,
        )
        current = self

        class _AttemptSpan(trace.NonRecordingSpan):  # type: ignore[misc] # optional dependency
            """The span of the attempt running in the asking context (built later)."""

            def __init__(self) -> None:  # NonRecordingSpan's _context is made when asked for
                pass

            @property
            def _context(self) -> Any:
                return self.get_span_context()

            def get_span_context(self) -> Any:
                key = _attempt_of(run_id)
                if key is None:  # not in one of the run's attempts (a thread it left behind)
                    return invalid
                span_id = chosen.get(key)
                if span_id is None:
                    span_id = chosen.setdefault(key, random.getrandbits(64) or 1)
                return span_context(trace_id, span_id, False, trace_flags(current.flags))

        #: The context each attempt's function runs in: its current span is an _AttemptSpan.
        self.context = trace.set_span_in_context(_AttemptSpan(), context.Context())


class _ChosenIds:
    """The SDK tracer's id generator, which hands out the ids chosen for the next span first.

    The SDK keeps one tracer per name, so every RunTracer of the process shares plait's: this
    wraps its generator once (:func:`_chosen_ids`), and a choice is the choosing thread's own --
    each run's tracer thread chooses, then makes the span, with no other run in between.
    """

    def __init__(self, base: Any) -> None:
        self._base = base
        self._choice = threading.local()

    def choose(self, trace_id: int | None, span_id: int | None) -> None:
        self._choice.ids = (trace_id, span_id)

    def generate_trace_id(self) -> int:
        trace_id, span_id = getattr(self._choice, "ids", (None, None))
        self._choice.ids = (None, span_id)
        return trace_id if trace_id is not None else int(self._base.generate_trace_id())

    def generate_span_id(self) -> int:
        trace_id, span_id = getattr(self._choice, "ids", (None, None))
        self._choice.ids = (trace_id, None)
        return span_id if span_id is not None else int(self._base.generate_span_id())

    def __getattr__(self, name: str) -> Any:  # is_trace_id_random, and what newer SDKs ask
        return getattr(self._base, name)


_installing = threading.Lock()


def _chosen_ids(tracer: Any) -> _ChosenIds:
    """The SDK ``tracer``'s id generator, wrapped in a :class:`_ChosenIds` (once)."""
    with _installing:
        generator = tracer.id_generator
        if not isinstance(generator, _ChosenIds):
            generator = tracer.id_generator = _ChosenIds(generator)
        return generator


class RunTracer:
    """Traces one run (see the module docstring): the run's journal (:meth:`journal`, or a
    subscriber, :meth:`__call__`) and its attempts' scope (:meth:`enter` / :meth:`exit`, see
    ``plait._run_state.AttemptScope``).

    Thread contract: :meth:`journal` runs on whichever thread emits the event, under the
    engine's lock, and only queues it; :meth:`enter` and :meth:`exit` run on the thread that
    calls the task's function; the tracer's own thread builds every span, in event order;
    :meth:`close` (after the run) waits for it.

    Raises:
        ConfigError: the OpenTelemetry API is not installed.
    """

    def __init__(
        self,
        workflow: str,
        run_id: str,
        store: Store,
        *,
        waits: Sequence[tuple[str, float, float]] = (),
    ) -> None:
        try:
            from opentelemetry import context, trace  # noqa: PLC0415 - an optional dependency
        except ImportError:
            raise ConfigError(MISSING_EXTRA) from None
        self._trace = trace
        self._attach, self._detach = _attach_detach(context)
        self._tracer = trace.get_tracer(SCOPE)
        self._workflow = workflow
        self._run_id = run_id
        self._store = store
        # The span ids of the run's span and of each running attempt's are chosen here, so a
        # task's function can run under its span before the tracer's thread builds it (see
        # enter()); this needs the SDK's tracer, whose ids plait can choose (``_ChosenIds``).
        self._ids: _ChosenIds | None = None
        self._chosen: dict[tuple[str, int], int] = {}  # (task id, attempt) -> its span id
        if getattr(self._tracer, "id_generator", None) is not None:
            self._ids = _chosen_ids(self._tracer)
        self._stored = store.get_trace_context(run_id)
        self._trace_id, self._run_span_id = _ids_of(self._stored)
        self.scopes = self._ids is not None and self._trace_id is not None
        self._current_span = _CurrentSpan(trace, context, run_id, self._trace_id or 0, self._chosen)
        self._context = self._current_span.context  # what enter() makes current
        from opentelemetry.trace import Status, StatusCode  # noqa: PLC0415 - optional

        self._status, self._error = Status, StatusCode.ERROR
        #: Every span's attributes start with these.
        self._base = {"plait.run.id": run_id, "plait.workflow": workflow}
        # Appended to by the engine's threads, taken from by the tracer's: deque's append and
        # popleft are atomic, and appending wakes nobody (see the module docstring).
        self._events: deque[Any] = deque()
        self._closing = threading.Event()  # set by close(): take the rest now
        self._run_span: Span | None = None
        self._run_context: Any = None  # the context task spans are made in
        self._attempts: dict[str, tuple[float, int]] = {}  # task id -> running attempt
        self._asked: dict[str, float] = {}  # task id -> when its open question was asked
        self._waits = waits  # (task id, asked, answered) before this part of the run
        self._thread = threading.Thread(target=self._build, name=f"plait-tracer-{run_id}")
        self._thread.daemon = True
        self._thread.start()

    def __call__(self, event: Event) -> None:
        """Subscriber: queue ``event``."""
        self._events.append(event)

    def journal(
        self, kind: type[Event], at: float, task_id: str | None, data: dict[str, Any]
    ) -> None:
        """Journal (see ``plait._events.Journal``): queue the event's fields; its object is
        built on the tracer's thread, so the engine builds none for tracing."""
        self._events.append((kind, at, task_id, data))

    # -- the task's thread: its span current while its function runs --------------------------

    def enter(self, task_id: str, attempt: int) -> object:
        """Make the attempt's span current (on the calling thread, or the async task's context):
        a span the task's function makes (an HTTP client's, a database driver's) nests under it.
        The span itself is built later, on the tracer's thread; what is current meanwhile
        stands for it (see :class:`_CurrentSpan`)."""
        return self._attach(self._context)

    def traceparent(self, task_id: str, attempt: int) -> str:
        """The W3C ``traceparent`` of the attempt's span, for an attempt shipped to another
        process (``TaskCall.traceparent``): its span id is chosen here, for the tracer to build
        it with."""
        span_id = random.getrandbits(64) or 1
        self._chosen[task_id, attempt] = span_id
        return f"00-{self._trace_id or 0:032x}-{span_id:016x}-{self._current_span.flags:02x}"

    def exit(self, token: Any) -> None:
        """The attempt's function returned: its span is no longer current."""
        self._detach(token)

    def close(self) -> None:
        """Wait until every span of the run is built and ended."""
        self._events.append(_END)
        self._closing.set()
        self._thread.join()

    # -- the tracer's thread ---------------------------------------------------------------------

    def _build(self) -> None:
        handlers: dict[type[Event], Callable[[Any], None]] = {
            RunStarted: self._run_started,
            TaskStarted: self._task_started,
            TaskSucceeded: self._task_ended,
            TaskRetrying: self._task_ended,
            TaskFailed: self._task_ended,
            TaskCancelled: self._task_ended,
            InputRequested: self._input_requested,
            InputReceived: self._input_received,
            RunFinished: self._run_finished,
        }
        events, closing = self._events, self._closing
        while True:
            if not events:
                closing.wait(_POLL_SECONDS)
                continue
            item = events.popleft()
            if item is _END:
                break
            if isinstance(item, tuple):  # a journal's fields
                kind, at, task_id, data = item
                if kind is TaskStarted:  # the two events of every task: no event object
                    self._attempts[task_id] = (at, data["attempt"])
                    continue
                if kind is TaskSucceeded:
                    try:
                        self._end_attempt(task_id, at, None)
                    except Exception:  # a tracing failure must not reach the run
                        _log.exception("run %r: could not trace %r", self._run_id, item)
                    continue
                handler = handlers.get(kind)
                if handler is None:
                    continue
                fields = data if task_id is None else {"task_id": task_id, **data}
                event = kind(run_id=self._run_id, time=at, **fields)
            else:
                event = item
                handler = handlers.get(type(event))
                if handler is None:
                    continue
            try:
                handler(event)
            except Exception:  # a tracing failure must not reach the run
                _log.exception("run %r: could not trace %r", self._run_id, event)
        if self._run_span is not None:  # the run ended without RunFinished (it was stopped)
            self._run_span.end()
            self._run_span = None

    def _run_started(self, event: RunStarted) -> None:
        from opentelemetry.trace import Link  # noqa: PLC0415 - an optional dependency
        from opentelemetry.trace.propagation.tracecontext import (  # noqa: PLC0415
            TraceContextTextMapPropagator,
        )

        propagator = TraceContextTextMapPropagator()
        stored = self._stored
        parent = None
        links = []
        if stored is not None:  # a resumed run: its part of the trace, under the first
            parent = propagator.extract({"traceparent": stored})
            first = self._trace.get_current_span(parent).get_span_context()
            if first.is_valid:
                links.append(Link(first, {"plait.link": "first part of the run"}))
        if self._ids is not None:
            self._ids.choose(None if stored is not None else self._trace_id, self._run_span_id)
        span = self._tracer.start_span(
            f"plait.run {self._workflow}",
            context=parent,
            links=links,
            start_time=_ns(event.time),
            attributes={**self._base, "plait.run.tasks": event.tasks},
        )
        self._run_span = span
        self._run_context = self._trace.set_span_in_context(span)
        # When the sampler dropped the run, its tasks' spans are dropped too, and theirs.
        self._current_span.flags = int(span.get_span_context().trace_flags)
        for task_id, asked, answered in self._waits:
            self._wait_span(task_id, asked, answered)
        if stored is None:
            carrier: dict[str, str] = {}
            propagator.inject(carrier, context=self._run_context)
            if "traceparent" in carrier:
                self._store.set_trace_context(self._run_id, carrier["traceparent"])

    def _task_started(self, event: TaskStarted) -> None:
        self._attempts[event.task_id] = (event.time, event.attempt)

    def _task_ended(self, event: TaskEvent) -> None:
        self._end_attempt(event.task_id, event.time, event)

    def _end_attempt(self, task_id: str, at: float, event: TaskEvent | None) -> None:
        """The span of ``task_id``'s running attempt, which ended at ``at`` (``event`` says how,
        unless it succeeded)."""
        started = self._attempts.pop(task_id, None)
        if started is None:  # cancelled before it started: no attempt to show
            return
        start, attempt = started
        span_id = self._chosen.pop((task_id, attempt), None)
        if self._ids is not None and span_id is not None:
            self._ids.choose(None, span_id)
        span = self._tracer.start_span(
            f"plait.task {series_id(task_id)}",  # an instance's: its mapped task's
            context=self._run_context,
            start_time=_ns(start),
            attributes={**self._base, "plait.task.id": task_id, "plait.task.attempt": attempt},
        )
        if isinstance(event, TaskRetrying | TaskFailed):
            span.set_attribute("error.type", event.error.type)
            span.set_status(self._status(self._error, event.error.message))
            if isinstance(event, TaskRetrying):
                span.add_event(
                    "plait.retry", {"plait.retry.delay": event.delay}, timestamp=_ns(event.time)
                )
        elif isinstance(event, TaskCancelled):
            span.set_attribute("error.type", "plait.TaskCancelledError")
            span.set_status(self._status(self._error, "cancelled"))
        span.end(end_time=_ns(at))

    def _input_requested(self, event: InputRequested) -> None:
        self._asked[event.task_id] = event.question.asked_at

    def _input_received(self, event: InputReceived) -> None:
        asked = self._asked.pop(event.task_id, None)
        if asked is None:  # asked in an earlier part of the run: the store knows when
            asked = next(
                (
                    request.requested_at
                    for request in self._store.load_requests(self._run_id)
                    if request.task_id == event.task_id and request.key == event.key
                ),
                None,
            )
        if asked is not None:
            self._wait_span(event.task_id, asked, event.time)

    def _wait_span(self, task_id: str, asked: float, answered: float) -> None:
        span = self._tracer.start_span(
            f"plait.wait {task_id}",
            context=self._run_context,
            start_time=_ns(asked),
            attributes={**self._base, "plait.task.id": task_id},
        )
        span.end(end_time=_ns(answered))

    def _run_finished(self, event: RunFinished) -> None:
        span = self._run_span
        if span is None:
            return
        span.set_attribute("plait.run.status", str(event.status))
        if event.status is RunStatus.FAILED:
            span.set_status(self._status(self._error, event.error or "failed"))
        span.end(end_time=_ns(event.time))
        self._run_span = None


publish_exports(globals())  # plait.X, not plait._tracing.X: see plait._public
