"""Prometheus metrics of runs (``pip install 'plait[prometheus]'``), recorded from the events.

``plait.run(wf, metrics=True)`` gives the run a :class:`RunMetrics`, which hears of its events as
a journal does (their plain fields) and turns them into these series, in prometheus_client's
default registry or ``metrics_registry``:

=============================  =========  ================  ================================
name                           type       labels            what
=============================  =========  ================  ================================
plait_task_duration_seconds    histogram  workflow, result  an attempt's start to its end
plait_task_attempts_total      counter    workflow, result  attempts that ended
plait_tasks_running            gauge      workflow          attempts running now
plait_task_queue_wait_seconds  histogram  workflow          ready (or due again) to started
plait_input_wait_seconds       histogram  workflow          a question asked to answered
plait_runs_active              gauge      workflow          runs under way in this process
plait_runs_total               counter    workflow, status  runs that ended, by status
plait_store_write_seconds      histogram  workflow          one batch written to the store
=============================  =========  ================  ================================

``result`` is how an attempt ended: ``succeeded``, ``retried`` (it failed and another attempt
follows), ``failed`` (no retry left) or ``cancelled``. Base units (seconds), ``_total`` on
counters. No label holds a task id or a run id unless ``metrics_task_labels=True`` adds both
(``task_id``, ``run_id``) to the task series: by default a workflow of 10 tasks and one of
10,000 make the same number of series (Airflow's per-task metric names did not). Even then the
instances of a mapped task (``convert[3]``) are labelled with the mapped task's id: a task
mapped over 100,000 items adds one series, not 100,000.

The collectors are made once per registry (prometheus_client refuses a name twice), so many
runs -- of many workflows -- in one process add to the same series. A registry holds the series
with task labels or without them, not both.

For a server (``plait serve``), :func:`exposition` renders a registry in the text format, with
gauges read from a store when one is given: ``plait_store_runs`` (by ``status``) and
``plait_store_open_questions``; :func:`metrics_route` is that as a Starlette route for
``/metrics``, behind the server's token (``plait serve`` mounts it through ``create_app``'s
``routes``).
"""

from __future__ import annotations

import bisect
import dataclasses
import functools
import threading
import weakref
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
from ._exceptions import ConfigError
from ._graph import series_id
from ._public import publish_exports
from ._state import RunStatus

if TYPE_CHECKING:
    from prometheus_client import CollectorRegistry

    from .stores import Store

__all__ = ["RunMetrics", "exposition", "metrics_route"]

MISSING_EXTRA = "metrics=True needs prometheus_client: pip install 'plait[prometheus]'"

#: Seconds: from a few milliseconds to an hour, for attempts and queue waits.
TASK_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600)
#: Seconds a person takes to answer: a second to a day.
INPUT_BUCKETS = (1, 10, 60, 300, 900, 3600, 4 * 3600, 24 * 3600)
#: Seconds a batch takes to write.
WRITE_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 5)


class _Collectors:
    """The metric families of one registry, and the runs recording into it (see :class:`_Flush`,
    registered first so that a scrape collects it before them)."""

    def __init__(self, registry: CollectorRegistry, task_labels: bool) -> None:
        from prometheus_client import Counter, Gauge, Histogram  # noqa: PLC0415 - optional

        self.task_labels = task_labels
        self.live: weakref.WeakSet[RunMetrics] = weakref.WeakSet()
        registry.register(_Flush(self.live))
        extra = ("task_id", "run_id") if task_labels else ()
        self.duration = Histogram(
            "plait_task_duration_seconds",
            "How long attempts ran, from start to end.",
            ("workflow", "result", *extra),
            buckets=TASK_BUCKETS,
            registry=registry,
        )
        self.attempts = Counter(
            "plait_task_attempts",
            "Attempts that ended, by how they ended.",
            ("workflow", "result", *extra),
            registry=registry,
        )
        self.running = Gauge(
            "plait_tasks_running", "Attempts running now.", ("workflow",), registry=registry
        )
        self.queue_wait = Histogram(
            "plait_task_queue_wait_seconds",
            "How long tasks waited for a slot: from ready (or due for a retry) to started.",
            ("workflow", *extra),
            buckets=TASK_BUCKETS,
            registry=registry,
        )
        self.input_wait = Histogram(
            "plait_input_wait_seconds",
            "How long questions waited for their answers.",
            ("workflow", *extra),
            buckets=INPUT_BUCKETS,
            registry=registry,
        )
        self.runs_active = Gauge(
            "plait_runs_active", "Runs under way in this process.", ("workflow",), registry=registry
        )
        self.runs = Counter(
            "plait_runs", "Runs that ended, by status.", ("workflow", "status"), registry=registry
        )
        self.store_write = Histogram(
            "plait_store_write_seconds",
            "How long one batch of a run's changes took to write to its store.",
            ("workflow",),
            buckets=WRITE_BUCKETS,
            registry=registry,
        )


class _Flush:
    """A collector of no series that, when a scrape collects the registry, first hands the
    registry what its live runs have gathered (:meth:`RunMetrics.flush`): a scrape sees every
    attempt that ended before it."""

    def __init__(self, live: weakref.WeakSet[RunMetrics]) -> None:
        self._live = live

    def describe(self) -> list[Any]:
        return []

    def collect(self) -> list[Any]:
        for run in list(self._live):
            run.flush()
        return []


_lock = threading.Lock()
_by_registry: dict[int, tuple[CollectorRegistry, _Collectors]] = {}


def _collectors(registry: CollectorRegistry | None, task_labels: bool) -> _Collectors:
    try:
        import prometheus_client  # noqa: PLC0415 - an optional dependency
    except ImportError:
        raise ConfigError(MISSING_EXTRA) from None
    if registry is None:
        registry = prometheus_client.REGISTRY
    with _lock:
        known = _by_registry.get(id(registry))
        if known is None:
            try:
                collectors = _Collectors(registry, task_labels)
            except ValueError as error:  # a name the registry already has
                raise ConfigError(
                    f"the registry {registry!r} already has plait's metrics, made elsewhere "
                    f"({error}); give plait a registry of its own (metrics_registry=)"
                ) from None
            known = _by_registry[id(registry)] = (registry, collectors)
    collectors = known[1]
    if collectors.task_labels != task_labels:
        raise ConfigError(
            f"metrics_task_labels={task_labels!r}, but the registry's plait series were made "
            f"with metrics_task_labels={collectors.task_labels!r}; use the same setting for "
            "every run that records into one registry, or another metrics_registry"
        )
    return collectors


#: Attempts gathered before they are handed to the registry at once (see RunMetrics).
_FLUSH_EVERY = 1024


class RunMetrics:
    """Records one run into Prometheus metrics (see the module docstring), from its events'
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
        metrics = self._metrics = _collectors(registry, task_labels)
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


def exposition(
    registry: CollectorRegistry | None = None, *, store: Store | None = None
) -> tuple[bytes, str]:
    """The metrics of ``registry`` (default: prometheus_client's) in Prometheus's text format,
    and its content type, for a server's ``/metrics`` route; with ``store``, also gauges read
    from it now: ``plait_store_runs`` by ``status`` and ``plait_store_open_questions``.

    Raises:
        ConfigError: prometheus_client is not installed.
    """
    try:
        from prometheus_client import (  # noqa: PLC0415 - an optional dependency
            CONTENT_TYPE_LATEST,
            REGISTRY,
            generate_latest,
        )
        from prometheus_client.core import (  # noqa: PLC0415 - an optional dependency
            CollectorRegistry,
            GaugeMetricFamily,
        )
    except ImportError:
        raise ConfigError(MISSING_EXTRA) from None
    body = generate_latest(registry or REGISTRY)
    if store is not None:
        runs = GaugeMetricFamily(
            "plait_store_runs", "Runs in the store, by status.", labels=("status",)
        )
        for status in RunStatus:
            runs.add_metric((str(status),), _count_runs(store, status))
        open_questions = len(store.open_questions(limit=1_000_000))
        questions = GaugeMetricFamily(
            "plait_store_open_questions",
            "Questions of paused or running runs that wait for an answer.",
            value=open_questions,
        )

        class _StoreGauges:
            def collect(self) -> list[GaugeMetricFamily]:
                return [runs, questions]

        gauges = CollectorRegistry(auto_describe=False)
        gauges.register(_StoreGauges())
        body += generate_latest(gauges)
    return body, CONTENT_TYPE_LATEST


def _count_runs(store: Store, status: RunStatus) -> int:
    """How many runs ``store`` has with ``status`` (page by page: one query per thousand)."""
    count, cursor = 0, None
    while True:
        page = store.list_runs(status=status, before=cursor, limit=1000)
        count += len(page.runs)
        if page.next_cursor is None:
            return count
        cursor = page.next_cursor


def metrics_route(
    store: Store,
    *,
    is_token: Callable[[str], bool],
    registry: CollectorRegistry | None = None,
    path: str = "/metrics",
) -> Any:
    """A Starlette route serving :func:`exposition` (``registry`` and the gauges of ``store``)
    at ``path`` to a scraper that sends ``Authorization: Bearer TOKEN`` with a token
    ``is_token`` accepts; 401 otherwise (Prometheus's ``authorization`` scrape setting sends
    it). The store is read in a worker thread.

    Raises:
        ConfigError: prometheus_client or Starlette is not installed.
    """
    try:
        from starlette.concurrency import run_in_threadpool  # noqa: PLC0415 - optional
        from starlette.responses import PlainTextResponse, Response  # noqa: PLC0415
        from starlette.routing import Route  # noqa: PLC0415
    except ImportError:
        raise ConfigError("metrics_route needs Starlette: pip install 'plait[ui]'") from None

    async def metrics(request: Any) -> Any:
        scheme, _, credential = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not is_token(credential.strip()):
            return PlainTextResponse(
                "the metrics need the server's token: send Authorization: Bearer TOKEN",
                status_code=401,
                headers={"WWW-Authenticate": "Bearer"},
            )
        body, content_type = await run_in_threadpool(exposition, registry, store=store)
        return Response(body, media_type=content_type)

    return Route(path, metrics)


publish_exports(globals())  # plait.X, not plait._metrics.X: see plait._public
