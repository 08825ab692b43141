"""A run's monitors, set up as it starts or resumes: its metrics, its tracer, and one journal
that feeds every watcher of its events.

Both monitors are off by default, and then nothing of theirs is imported: metrics need
prometheus_client (``plait[prometheus]``, see ``plait._metrics``), tracing OpenTelemetry (see
``plait._tracing``). A run's recorder, tracer and metrics each take its events as a journal --
plain fields, no event object built -- and ``_all`` hands each event to each of them.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from ._config import EngineConfig
from ._events import AttemptJournal, Event, Journal
from ._exceptions import ConfigError
from .stores import Store

__all__: list[str] = []

if TYPE_CHECKING:
    from ._metrics import RunMetrics
    from ._tracing import RunTracer


def _monitors(
    workflow: str,
    *,
    metrics: bool,
    metrics_registry: Any,
    metrics_task_labels: bool,
) -> RunMetrics | None:
    """What records the run into metrics, when ``metrics`` (see ``plait._metrics``)."""
    if not metrics:
        if metrics_registry is not None or metrics_task_labels:
            raise ConfigError(
                "metrics_registry and metrics_task_labels apply only with metrics=True; add it"
            )
        return None
    from ._metrics import RunMetrics  # noqa: PLC0415 - imports prometheus_client

    return RunMetrics(workflow, registry=metrics_registry, task_labels=metrics_task_labels)


def _all(
    journals: Sequence[tuple[Journal, AttemptJournal]],
) -> tuple[Journal, AttemptJournal]:
    """A journal, and an attempt journal, that hand each event to each of ``journals`` (pairs of
    a journal and its attempt journal), in order."""
    if len(journals) == 1:
        return journals[0]
    each_journal = tuple(journal for journal, _ in journals)

    def journal(kind: type[Event], at: float, task_id: str | None, data: dict[str, Any]) -> None:
        for each in each_journal:
            each(kind, at, task_id, data)

    return journal, _all_attempts([attempt for _, attempt in journals])


def _all_attempts(attempts: list[AttemptJournal]) -> AttemptJournal:
    """An attempt journal that calls each of ``attempts`` (two or three: the recorder, the
    tracer, the metrics), in order. Unrolled, not a loop: it runs twice per task, and a loop
    over a tuple of three no-op journals took 196 ns a call, unrolled 158 (best of 40)."""
    if len(attempts) == 2:
        first, second = attempts

        def both(kind: type[Event], at: float, task_id: str, number: int) -> None:
            first(kind, at, task_id, number)
            second(kind, at, task_id, number)

        return both
    first, second, third = attempts

    def all_three(kind: type[Event], at: float, task_id: str, number: int) -> None:
        first(kind, at, task_id, number)
        second(kind, at, task_id, number)
        third(kind, at, task_id, number)

    return all_three


def _tracer(
    config: EngineConfig,
    workflow: str,
    run_id: str,
    store: Store,
    waits: Sequence[tuple[str, float, float]] = (),
) -> RunTracer | None:
    """The run's tracer when ``config.tracing`` (see ``plait._tracing``); None, and nothing
    imported, otherwise. ``waits``: questions answered before this part of the run."""
    if not config.tracing:
        return None
    from ._tracing import RunTracer  # noqa: PLC0415 - imports OpenTelemetry

    return RunTracer(workflow, run_id, store, waits=waits)
