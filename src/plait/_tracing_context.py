"""Trace context for a traced run (see ``plait._tracing``): the ids of its spans, chosen ahead so
that an attempt's function can run under a span built later, and what is current meanwhile.

A task span is built on the tracer's thread after its attempt ended, but the attempt's function
must run under it (a span it makes, an HTTP client's or a database driver's, nests under it).
So the run's trace id and the ids of the spans that must be named before they are built (the
run's, a shipped attempt's) are chosen here, and the SDK's tracer is made to build the spans
with them (:class:`ChosenIds`); in process, one context stands for the span of whichever of the
run's attempts runs where it is asked (:class:`CurrentSpan`).
"""

from __future__ import annotations

import contextvars
import random
import threading
from collections.abc import Callable
from typing import Any

from ._log_capture import Handling, running_attempt

__all__ = ["ChosenIds", "CurrentSpan", "attach_detach", "chosen_ids", "ids_of"]


def ids_of(stored: str | None) -> tuple[int | None, int]:
    """The trace id of a run (the stored one's, or a new one) and its new run span's id."""
    span_id = random.getrandbits(64) or 1
    if stored is None:
        return random.getrandbits(128) or 1, span_id
    parts = stored.split("-")
    try:
        return int(parts[1], 16), span_id
    except (IndexError, ValueError):
        return None, span_id  # not a traceparent: no span is made current


def attach_detach(context: Any) -> tuple[Callable[[Any], Any], Callable[[Any], None]]:
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
    context, from the attempt the engine names there for its logs
    (``_log_capture.running_attempt``, also while a log record goes to the handlers): that
    attempt, or -- in a run started by one of ``run_id``'s attempts -- the attempt that started
    it."""
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


class CurrentSpan:
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


class ChosenIds:
    """The SDK tracer's id generator, which hands out the ids chosen for the next span first.

    The SDK keeps one tracer per name, so every RunTracer of the process shares plait's: this
    wraps its generator once (:func:`chosen_ids`), and a choice is the choosing thread's own --
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


def chosen_ids(tracer: Any) -> ChosenIds:
    """The SDK ``tracer``'s id generator, wrapped in a :class:`ChosenIds` (once)."""
    with _installing:
        generator = tracer.id_generator
        if not isinstance(generator, ChosenIds):
            generator = tracer.id_generator = ChosenIds(generator)
        return generator
