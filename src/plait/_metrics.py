"""Prometheus metrics of runs (``pip install 'plait[prometheus]'``), recorded from the events.

``plait.run(wf, metrics=True)`` gives the run a :class:`RunMetrics`, which hears of its events as
a journal does (their plain fields) and turns them into plait's series -- attempts' durations and
results, attempts running, queue and question waits, runs active and ended -- in
prometheus_client's default registry or ``metrics_registry``.

The series themselves -- their names, labels and buckets, and the rule of one set per
registry -- are in :mod:`plait._metrics_series`; serving them to a scraper (``/metrics``) is
:mod:`plait._metrics_exposition`.
"""

from __future__ import annotations

import bisect
import dataclasses
import functools
import threading
from collections import Counter
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ._events import (
    Event,
    InputReceived,
    InputRequested,
    RunFinished,
    RunStarted,
    TaskCancelled,
    TaskFailed,
    TaskReady,
    TaskRetrying,
    TaskStarted,
    TaskSucceeded,
)
from ._graph import series_id
from ._metrics_series import collectors_of
from ._public import publish_exports
from ._state import RunStatus

if TYPE_CHECKING:
    from prometheus_client import CollectorRegistry

__all__ = ["RunMetrics"]


#: Attempts gathered before they are handed to the registry at once (see RunMetrics).
_FLUSH_EVERY = 1024


class RunMetrics:
    """Records one run into Prometheus metrics (see ``_metrics_series``), from its events'
    plain fields: the run's journal (:meth:`journal`; :meth:`__call__` takes an event object).

    The journal runs on the engine's threads, under its lock, so it only notes what happened:
    a task's ready and start times, and each ended attempt's result and seconds. What it noted
    is handed to prometheus_client in one go (:meth:`flush`: a counter incremented once, a
    histogram's buckets counted at once) every ``_FLUSH_EVERY`` attempts, when a scrape
    collects the registry, and when the run ends -- prometheus_client takes a lock and walks
    the buckets for each update, which cost the engine ~15 µs per task when made one by one.

    Raises:
        ConfigError: prometheus_client is not installed, or ``task_labels`` differs from the
            registry's series.
    """

    def __init__(
        self,
        workflow: str,
        *,
        registry: CollectorRegistry | None = None,
        task_labels: bool = False,
    ) -> None:
        metrics = self._metrics = collectors_of(registry, task_labels)
        self._workflow = workflow
        self._task_labels = task_labels
        self._running = metrics.running.labels(workflow)
        self._ready: dict[str, float] = {}  # task id -> since when it waits for a slot
        self._started: dict[str, float] = {}  # task id -> when its running attempt started
        self._asked: dict[str, float] = {}  # task id -> when its open question was asked
        self._store_write = metrics.store_write.labels(workflow)
        # Gathered, not yet in the registry (taken by flush(), under _lock): queue waits as
        # (seconds, task id, run id); attempts that ended as (result, seconds, task id, run id).
        self._lock = threading.Lock()
        self._waits: list[tuple[float, str, str]] = []
        self._outcomes: list[tuple[str, float, str, str]] = []
        self._running_change = 0
        self._handlers: dict[type[Event], Callable[[float, str, dict[str, Any]], None]] = {
            TaskReady: self._task_ready,
            TaskStarted: self._task_started,
            TaskSucceeded: self._task_succeeded,
            TaskRetrying: self._task_retrying,
            TaskFailed: self._task_failed,
            TaskCancelled: self._task_cancelled,
            InputRequested: self._input_requested,
            InputReceived: self._input_received,
        }
        #: The run's id, for the series of ``task_labels`` (set when the run starts).
        self.run_id = ""
        metrics.live.add(self)

    def journal(
        self, kind: type[Event], at: float, task_id: str | None, data: dict[str, Any]
    ) -> None:
        """Journal (see ``plait._events.Journal``): note the event's fields."""
        handler = self._handlers.get(kind)
        if handler is not None:
            assert task_id is not None  # every handled kind is a task's event
            with self._lock:
                handler(at, task_id, data)
                if len(self._outcomes) >= _FLUSH_EVERY:
                    self._flush()
        elif kind is RunStarted:
            self._metrics.runs_active.labels(self._workflow).inc()
        elif kind is RunFinished:
            self._run_finished(data["status"])

    def attempt(self, kind: type[Event], at: float, task_id: str, number: int) -> None:
        """Attempt journal (see ``plait._events.AttemptJournal``): note a task's start or its
        success (``kind``), as :meth:`journal` does."""
        with self._lock:
            if kind is TaskStarted:
                self._started_at(at, task_id)
            else:  # TaskSucceeded
                self._ended(at, task_id, "succeeded")
                if len(self._outcomes) >= _FLUSH_EVERY:
                    self._flush()

    def __call__(self, event: Event) -> None:
        """Subscriber: :meth:`journal` the event's fields."""
        fields = {f.name: getattr(event, f.name) for f in dataclasses.fields(event)}
        self.run_id = fields.pop("run_id")
        self.journal(type(event), fields.pop("time"), fields.pop("task_id", None), fields)

    def store_wrote(self, seconds: float) -> None:
        """A batch of the run took ``seconds`` to write (the recorder says so)."""
        self._store_write.observe(seconds)

    def flush(self) -> None:
        """Hand what the run gathered to the registry."""
        with self._lock:
            self._flush()

    # -- events (under _lock) ------------------------------------------------------------------

    def _task_ready(self, at: float, task_id: str, data: dict[str, Any]) -> None:
        self._ready[task_id] = at

    def _task_started(self, at: float, task_id: str, data: dict[str, Any]) -> None:
        self._started_at(at, task_id)

    def _started_at(self, at: float, task_id: str) -> None:
        ready = self._ready.pop(task_id, None)
        if ready is not None:
            self._waits.append((at - ready, task_id, self.run_id))
        self._started[task_id] = at
        self._running_change += 1

    def _ended(self, at: float, task_id: str, result: str) -> None:
        started = self._started.pop(task_id, None)
        if started is not None:
            self._running_change -= 1
            self._outcomes.append((result, at - started, task_id, self.run_id))

    def _task_succeeded(self, at: float, task_id: str, data: dict[str, Any]) -> None:
        self._ended(at, task_id, "succeeded")

    def _task_retrying(self, at: float, task_id: str, data: dict[str, Any]) -> None:
        self._ended(at, task_id, "retried")
        self._ready[task_id] = at + data["delay"]  # due again after the backoff

    def _task_failed(self, at: float, task_id: str, data: dict[str, Any]) -> None:
        self._ended(at, task_id, "failed")

    def _task_cancelled(self, at: float, task_id: str, data: dict[str, Any]) -> None:
        self._ready.pop(task_id, None)
        self._ended(at, task_id, "cancelled")

    def _input_requested(self, at: float, task_id: str, data: dict[str, Any]) -> None:
        self._asked[task_id] = at

    def _input_received(self, at: float, task_id: str, data: dict[str, Any]) -> None:
        asked = self._asked.pop(task_id, None)
        if asked is not None:
            self._series(self._metrics.input_wait, (), task_id, self.run_id).observe(
                max(0.0, at - asked)
            )

    def _run_finished(self, status: RunStatus) -> None:
        with self._lock:
            # attempts the run's end left without an event of their own
            self._running_change -= len(self._started)
            self._started.clear()
            self._flush()
        self._metrics.runs_active.labels(self._workflow).dec()
        self._metrics.runs.labels(self._workflow, str(status)).inc()
        self._metrics.live.discard(self)

    # -- into the registry -----------------------------------------------------------------------

    def _flush(self) -> None:
        waits, self._waits = self._waits, []
        ended, self._outcomes = self._outcomes, []
        change, self._running_change = self._running_change, 0
        if change:
            self._running.inc(change)
        metrics = self._metrics
        if self._task_labels:
            for seconds, task_id, run_id in waits:
                self._series(metrics.queue_wait, (), task_id, run_id).observe(max(0.0, seconds))
            for result, seconds, task_id, run_id in ended:
                self._series(metrics.duration, (result,), task_id, run_id).observe(
                    max(0.0, seconds)
                )
                self._series(metrics.attempts, (result,), task_id, run_id).inc()
            return
        if waits:
            _observe(metrics.queue_wait.labels(self._workflow), [w[0] for w in waits])
        by_result: dict[str, list[float]] = {}
        for result, seconds, _, _ in ended:
            by_result.setdefault(result, []).append(seconds)
        for result, durations in by_result.items():
            _observe(metrics.duration.labels(self._workflow, result), durations)
            metrics.attempts.labels(self._workflow, result).inc(len(durations))

    def _series(self, family: Any, labels: tuple[str, ...], task_id: str, run_id: str) -> Any:
        if self._task_labels:
            return family.labels(self._workflow, *labels, series_id(task_id), run_id)
        return family.labels(self._workflow, *labels)


def _observe(histogram: Any, values: list[float]) -> None:
    """``histogram.observe`` each of ``values`` (negative ones as 0), the buckets counted at
    once: prometheus_client keeps a histogram as a sum and one count per bucket (the first
    whose upper bound is at least the value), each behind a lock. A histogram not kept so is
    told of each value in turn."""
    values = [max(0.0, v) for v in values]
    bounds = getattr(histogram, "_upper_bounds", None)
    buckets = getattr(histogram, "_buckets", None)
    total = getattr(histogram, "_sum", None)
    if bounds is None or buckets is None or total is None or len(bounds) != len(buckets):
        for value in values:
            histogram.observe(value)
        return
    total.inc(sum(values))
    for i, count in Counter(map(functools.partial(bisect.bisect_left, bounds), values)).items():
        buckets[i].inc(count)


publish_exports(globals())  # plait.X, not plait._metrics.X: see plait._public
