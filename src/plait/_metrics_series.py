"""The Prometheus series of plait's runs (``pip install 'plait[prometheus]'``): their names,
labels and buckets, made once per registry.

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

What records into them is :class:`plait._metrics.RunMetrics`.
"""

from __future__ import annotations

import threading
import weakref
from typing import TYPE_CHECKING, Any

from ._exceptions import ConfigError

if TYPE_CHECKING:
    from prometheus_client import CollectorRegistry

    from ._metrics import RunMetrics

__all__ = [
    "INPUT_BUCKETS",
    "MISSING_EXTRA",
    "TASK_BUCKETS",
    "WRITE_BUCKETS",
    "collectors_of",
]

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


def collectors_of(registry: CollectorRegistry | None, task_labels: bool) -> _Collectors:
    """The series of ``registry`` (default: prometheus_client's), made on first use, with
    task labels or without them (``task_labels``).

    Raises:
        ConfigError: prometheus_client is not installed; the registry has series of these
            names made elsewhere, or made with the other ``task_labels``.
    """
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
