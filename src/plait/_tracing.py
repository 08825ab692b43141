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
every ``POLL_SECONDS``, builds the events and makes and ends the spans. (A queue whose reader
waits on it woke that thread for each event: a system call on the engine's thread per event, and
a thread contending for the GIL once per event; bench Part 11 measured that as most of tracing's
cost per sync task.) A task span is ended -- and so exported, by the provider's span processor --
within ``POLL_SECONDS`` of its attempt's end, under the run span's context: a long run is
visible while it runs, before its own span ends.

**A resumed run continues the trace.** The first process stores the run span's W3C
``traceparent`` with the run (:meth:`Store.set_trace_context`); a process that resumes the run
(after a pause, a failure, or kill -9) makes its own ``plait.run`` span in the same trace, as a
child of the first and linked to it.

The parts: this module is what the engine calls (:class:`RunTracer`); the span builder on
its own thread is ``plait._tracing_spans``; the trace context -- the ids chosen ahead, what is
current while an attempt's function runs, what names an attempt's span in another process --
is ``plait._tracing_context``.

**Off by default, and then free**: without ``tracing`` nothing here is imported (nor
OpenTelemetry), and the engine does no tracing work at all.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from functools import partial
from typing import TYPE_CHECKING, Any

from ._events import AttemptJournal, Event, Journal, TaskStarted, TaskSucceeded
from ._exceptions import ConfigError
from ._public import publish_exports
from ._tracing_context import ChosenIds, CurrentSpan, attach_detach, chosen_ids, ids_of
from ._tracing_spans import END, SpanBuilder

if TYPE_CHECKING:
    from .stores import Store

__all__ = ["RunTracer"]

MISSING_EXTRA = "tracing needs the OpenTelemetry API: pip install 'plait[otel]'"
#: The instrumentation scope plait's spans are made under.
SCOPE = "plait"


class RunTracer:
    """Traces one run (see the module docstring): the run's journal (:attr:`journal`, or a
    subscriber, :meth:`__call__`) and its attempts' scope (:attr:`enter` / :attr:`exit`, see
    ``plait._run_state.AttemptScope``).

    Thread contract: :attr:`journal` runs on whichever thread emits the event, under the
    engine's lock, and only queues it; :attr:`enter` and :attr:`exit` run on the thread that
    calls the task's function; the tracer's own thread (a ``_tracing_spans.SpanBuilder``)
    builds every span, in event order; :meth:`close` (after the run) waits for it.

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
        attach, detach = attach_detach(context)
        tracer = trace.get_tracer(SCOPE)
        # The span ids of the run's span and of each running attempt's are chosen here, so a
        # task's function can run under its span before the tracer's thread builds it (see
        # enter()); this needs the SDK's tracer, whose ids plait can choose (``ChosenIds``).
        ids: ChosenIds | None = None
        self._chosen: dict[tuple[str, int], int] = {}  # (task id, attempt) -> its span id
        if getattr(tracer, "id_generator", None) is not None:
            ids = chosen_ids(tracer)
        stored = store.get_trace_context(run_id)
        self._trace_id, run_span_id = ids_of(stored)
        self.scopes = ids is not None and self._trace_id is not None
        self._current_span = CurrentSpan(trace, context, run_id, self._trace_id or 0, self._chosen)
        # -- the task's thread: its span current while its function runs ----------------------
        #: Make the running attempt's span current (on the calling thread, or the async task's
        #: context): a span the task's function makes (an HTTP client's, a database driver's)
        #: nests under it. The span itself is built later, on the tracer's thread; what is
        #: current meanwhile stands for it (see ``_tracing_context.CurrentSpan``). The set of a
        #: ContextVar with a context made once, called as it is: no Python call of plait's
        #: around it (this runs around every task's function; see ``exit``).
        self.enter: Callable[[], object] = partial(attach, self._current_span.context)
        #: The attempt's function returned: its span is no longer current (``enter``'s token).
        self.exit: Callable[[Any], None] = detach
        self._builder = SpanBuilder(
            tracer=tracer,
            workflow=workflow,
            run_id=run_id,
            store=store,
            stored=stored,
            ids=ids,
            trace_id=self._trace_id,
            run_span_id=run_span_id,
            chosen=self._chosen,
            current_span=self._current_span,
            waits=waits,
        )
        # Appended to here, taken from by the tracer's thread (see the module docstring).
        self._events = events = self._builder.events
        append = events.append

        def journal(
            kind: type[Event], at: float, task_id: str | None, data: dict[str, Any]
        ) -> None:
            """Journal (see ``plait._events.Journal``): queue the event's fields; its object is
            built on the tracer's thread, so the engine builds none for tracing. The two events
            of every task keep no ``data``: TaskStarted its attempt number, TaskSucceeded
            nothing (see ``SpanBuilder``)."""
            if kind is TaskStarted:
                append((kind, at, task_id, data["attempt"]))
            elif kind is TaskSucceeded:
                append((kind, at, task_id, None))
            else:
                append((kind, at, task_id, data))

        def attempt(kind: type[Event], at: float, task_id: str, number: int) -> None:
            """Attempt journal (see ``plait._events.AttemptJournal``): what :func:`journal`
            queues of a task's start or success."""
            append((kind, at, task_id, number if kind is TaskStarted else None))

        # Why no data is queued for a task's two events: the tracer's thread builds spans more
        # slowly than the engine ends no-op tasks, so 15,000-30,000 of a 20,000-task run's
        # events wait on the deque at once; their dicts held megabytes that the engine then
        # allocated afresh, where a dict freed at once is reused (~0.1-0.2 µs per task in a
        # loop of the engine's _emit holding 20,000 tasks' events). A function over the deque
        # rather than a method: 30 ns less per task (best of 40 in that loop).
        self.journal: Journal = journal
        self.attempt_journal: AttemptJournal = attempt
        self._builder.start()

    def __call__(self, event: Event) -> None:
        """Subscriber: queue ``event``."""
        self._events.append(event)

    def traceparent(self, task_id: str, attempt: int) -> str:
        """The W3C ``traceparent`` of the attempt's span, for an attempt shipped to another
        process (``TaskCall.traceparent``): its span id is chosen here, for the tracer to build
        it with."""
        span_id = random.getrandbits(64) or 1
        self._chosen[task_id, attempt] = span_id
        return f"00-{self._trace_id or 0:032x}-{span_id:016x}-{self._current_span.flags:02x}"

    def close(self) -> None:
        """Wait until every span of the run is built and ended."""
        self._events.append(END)
        self._builder.closing.set()
        self._builder.join()


publish_exports(globals())  # plait.X, not plait._tracing.X: see plait._public
