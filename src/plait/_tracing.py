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
fields, see ``plait._events.Journal``), puts them on a queue -- the engine's whole cost, with no
event object built -- and a thread of its own builds the events and makes and ends the spans. A
task span is ended -- and so exported, by the provider's span processor -- as soon as its
attempt ends, under the run span's context: a long run is visible while it runs, before its own
span ends.

**A resumed run continues the trace.** The first process stores the run span's W3C
``traceparent`` with the run (:meth:`Store.set_trace_context`); a process that resumes the run
(after a pause, a failure, or kill -9) makes its own ``plait.run`` span in the same trace, as a
child of the first and linked to it.

**Off by default, and then free**: without ``tracing`` nothing here is imported (nor
OpenTelemetry), and the engine does no tracing work at all.
"""

from __future__ import annotations

import logging
import queue
import threading
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
_END = object()  # the queue's last item


def _ns(seconds: float) -> int:
    return int(seconds * 1e9)


class RunTracer:
    """An event subscriber that traces one run (see the module docstring).

    Thread contract: :meth:`__call__` runs on whichever thread emits the event, under the
    engine's lock, and only queues it; the tracer's own thread builds every span, in event
    order; :meth:`close` (after the run) waits for it to finish.

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
            from opentelemetry import trace  # noqa: PLC0415 - an optional dependency
        except ImportError:
            raise ConfigError(MISSING_EXTRA) from None
        self._trace = trace
        self._tracer = trace.get_tracer(SCOPE)
        self._workflow = workflow
        self._run_id = run_id
        self._store = store
        self._events: queue.SimpleQueue[Any] = queue.SimpleQueue()
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
        self._events.put(event)

    def journal(
        self, kind: type[Event], at: float, task_id: str | None, data: dict[str, Any]
    ) -> None:
        """Journal (see ``plait._events.Journal``): queue the event's fields; its object is
        built on the tracer's thread, so the engine builds none for tracing."""
        self._events.put((kind, at, task_id, data))

    def close(self) -> None:
        """Wait until every span of the run is built and ended."""
        self._events.put(_END)
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
        while (item := self._events.get()) is not _END:
            if isinstance(item, tuple):  # a journal's fields
                kind, at, task_id, data = item
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

    def _attributes(self) -> dict[str, Any]:
        return {"plait.run.id": self._run_id, "plait.workflow": self._workflow}

    def _run_started(self, event: RunStarted) -> None:
        from opentelemetry.trace import Link  # noqa: PLC0415 - an optional dependency
        from opentelemetry.trace.propagation.tracecontext import (  # noqa: PLC0415
            TraceContextTextMapPropagator,
        )

        propagator = TraceContextTextMapPropagator()
        stored = self._store.get_trace_context(self._run_id)
        parent = None
        links = []
        if stored is not None:  # a resumed run: its part of the trace, under the first
            parent = propagator.extract({"traceparent": stored})
            first = self._trace.get_current_span(parent).get_span_context()
            if first.is_valid:
                links.append(Link(first, {"plait.link": "first part of the run"}))
        span = self._tracer.start_span(
            f"plait.run {self._workflow}",
            context=parent,
            links=links,
            start_time=_ns(event.time),
            attributes={**self._attributes(), "plait.run.tasks": event.tasks},
        )
        self._run_span = span
        self._run_context = self._trace.set_span_in_context(span)
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
        from opentelemetry.trace import Status, StatusCode  # noqa: PLC0415

        started = self._attempts.pop(event.task_id, None)
        if started is None:  # cancelled before it started: no attempt to show
            return
        start, attempt = started
        span = self._tracer.start_span(
            f"plait.task {event.task_id}",
            context=self._run_context,
            start_time=_ns(start),
            attributes={
                **self._attributes(),
                "plait.task.id": event.task_id,
                "plait.task.attempt": attempt,
            },
        )
        if isinstance(event, TaskRetrying | TaskFailed):
            span.set_attribute("error.type", event.error.type)
            span.set_status(Status(StatusCode.ERROR, event.error.message))
            if isinstance(event, TaskRetrying):
                span.add_event(
                    "plait.retry", {"plait.retry.delay": event.delay}, timestamp=_ns(event.time)
                )
        elif isinstance(event, TaskCancelled):
            span.set_attribute("error.type", "plait.TaskCancelledError")
            span.set_status(Status(StatusCode.ERROR, "cancelled"))
        span.end(end_time=_ns(event.time))

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
            attributes={**self._attributes(), "plait.task.id": task_id},
        )
        span.end(end_time=_ns(answered))

    def _run_finished(self, event: RunFinished) -> None:
        from opentelemetry.trace import Status, StatusCode  # noqa: PLC0415

        span = self._run_span
        if span is None:
            return
        span.set_attribute("plait.run.status", str(event.status))
        if event.status is RunStatus.FAILED:
            span.set_status(Status(StatusCode.ERROR, event.error or "failed"))
        span.end(end_time=_ns(event.time))
        self._run_span = None


publish_exports(globals())  # plait.X, not plait._tracing.X: see plait._public
