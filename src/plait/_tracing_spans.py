"""The tracer's thread of a traced run (see ``plait._tracing``): it builds the run's spans from
the events the engine's threads gathered for it, in event order.

Every ``POLL_SECONDS`` (or at once, when the run closes) it takes what has gathered on its
deque -- a journal's plain fields, or an event object from a subscriber -- and makes and ends the
spans they describe: the run's (``RunStarted`` to ``RunFinished``), one per attempt (its start
to its end, with how it ended), one per question's wait. A failure to build a span is logged,
never raised: it must not reach the run.
"""

from __future__ import annotations

import logging
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
from ._graph import series_id
from ._state import RunStatus
from ._tracing_context import ChosenIds, CurrentSpan

if TYPE_CHECKING:
    from opentelemetry.trace import Span

    from .stores import Store

__all__ = ["END", "POLL_SECONDS", "SpanBuilder"]

_log = logging.getLogger("plait.tracing")
END = object()  # the deque's last item
#: How often the tracer's thread takes the events gathered (seconds): spans lag by at most this.
POLL_SECONDS = 0.02


def _ns(seconds: float) -> int:
    return int(seconds * 1e9)


class SpanBuilder(threading.Thread):
    """The thread that builds one run's spans from what is put on :attr:`events` (a journal's
    ``(kind, at, task_id, data)`` -- ``data`` the attempt number for TaskStarted, None for
    TaskSucceeded, the event's other fields for the rest -- or an event object) until
    :data:`END`; :attr:`closing` is set to take the rest at once. ``ids`` (when the tracer is
    the SDK's) builds each span with the id chosen for it: the run span's ``run_span_id``, an
    attempt's in ``chosen`` (shared with the engine's threads, which choose it when it must be
    named before it is built)."""

    def __init__(
        self,
        *,
        tracer: Any,
        workflow: str,
        run_id: str,
        store: Store,
        stored: str | None,
        ids: ChosenIds | None,
        trace_id: int | None,
        run_span_id: int,
        chosen: dict[tuple[str, int], int],
        current_span: CurrentSpan,
        waits: Sequence[tuple[str, float, float]],
    ) -> None:
        super().__init__(name=f"plait-tracer-{run_id}", daemon=True)
        from opentelemetry import trace  # noqa: PLC0415 - an optional dependency
        from opentelemetry.trace import Status, StatusCode  # noqa: PLC0415

        self._trace = trace
        self._tracer = tracer
        self._status, self._error = Status, StatusCode.ERROR
        self._workflow = workflow
        self._run_id = run_id
        self._store = store
        self._stored = stored
        self._ids = ids
        self._trace_id = trace_id
        self._run_span_id = run_span_id
        self._chosen = chosen
        self._current_span = current_span
        #: Every span's attributes start with these.
        self._base = {"plait.run.id": run_id, "plait.workflow": workflow}
        #: Appended to by the engine's threads, taken from by this one: deque's append and
        #: popleft are atomic, and appending wakes nobody (see ``plait._tracing``).
        self.events: deque[Any] = deque()
        self.closing = threading.Event()  # set by the tracer's close(): take the rest now
        self._run_span: Span | None = None
        self._run_context: Any = None  # the context task spans are made in
        self._attempts: dict[str, tuple[float, int]] = {}  # task id -> running attempt
        self._asked: dict[str, float] = {}  # task id -> when its open question was asked
        self._waits = waits  # (task id, asked, answered) before this part of the run

    def run(self) -> None:
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
        events, closing = self.events, self.closing
        while True:
            if not events:
                closing.wait(POLL_SECONDS)
                continue
            item = events.popleft()
            if item is END:
                break
            if isinstance(item, tuple):  # a journal's fields
                kind, at, task_id, data = item
                if kind is TaskStarted:  # the two events of every task: no event object
                    self._attempts[task_id] = (at, data)  # data: the attempt number
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
