"""A run carried out under its store: the part of ``plait.run`` that ``plait.resume`` shares.

:func:`_execute` runs a run (started in ``plait._runs``, or resumed in ``plait._resume``) while
its recorder (``plait._recorder``) writes it to the store and keeps its lease, requests from
other processes (a cancel, an answer: ``plait._requests``) reach it, and its monitors
(``plait._monitors``: metrics, traces) see its events. A run whose store is not durable (the
memory store) is written once, when it ends or pauses. :func:`_ordered_graph` orders a run's
graph by the estimates learned from its store's history first (``plait._estimates``).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from . import _signals
from ._claims import _live_runs
from ._config import EngineConfig
from ._definition import _function_names
from ._engine import _Run
from ._estimates import FirstTryDurations, learn
from ._events import AttemptJournal, Journal
from ._graph import Graph
from ._monitors import _all
from ._recorder import Recorder
from ._requests import Inbox, RequestKind, RunRequest
from ._results import RunResult
from ._state import RunStatus
from .stores import LeaseLostError, RunUpdate, Store, StoreError

if TYPE_CHECKING:
    from ._metrics import RunMetrics
    from ._tracing import RunTracer

__all__: list[str] = []

_log = logging.getLogger("plait.runs")


def cancelled_by(request: RunRequest) -> str:
    """How a run's error names a cancel request: ``cancelled by a request from host:pid``."""
    return f"cancelled by a request from {request.sent_by}"


def _ordered_graph(
    store: Store, graph: Graph, config: EngineConfig
) -> tuple[Graph, dict[str, Any]]:
    """``graph``, reordered by the estimates learned from ``store`` when ``config`` says so,
    and the estimates the run weighs its tasks by (for its report). A store that cannot tell
    leaves the order as given: it only ever changes the order."""
    if not config.learn_estimates:
        return graph, {}
    try:
        return learn(store, graph)
    except StoreError as error:
        _log.warning(
            "workflow %r: no estimates learned, the store's history could not be read: %s",
            graph.workflow_name,
            error,
        )
        return graph, {}


async def _execute(
    store: Store,
    owner: str,
    run_state: _Run,
    lease_start: float,
    *,
    metrics: RunMetrics | None = None,
    tracer: RunTracer | None = None,
) -> RunResult:
    """Run ``run_state`` while its recorder writes it to ``store`` and keeps its lease (taken
    at ``lease_start``, on ``lease_clock``).

    Raises:
        LeaseLostError: the run stopped because this process lost its lease.
        StoreUnavailableError: the run stopped because its store could not record it.
    """
    assert run_state.serializer is not None
    graph = run_state.graph
    inbox = None
    if store.durable:  # a memory store's run is reached in this process (see _cancel)
        inbox = Inbox(
            store,
            run_state.run_id,
            owner,
            {
                RequestKind.CANCEL: lambda request: run_state.stop(cancelled_by(request)),
                RequestKind.ANSWER: run_state.take_answer,
            },
        )
    recorder = Recorder(
        store,
        run_state.run_id,
        owner,
        serializer=run_state.serializer,
        lease_seconds=run_state.config.lease_seconds,
        lease_start=lease_start,
        lock=run_state.lock,
        task_columns=run_state.task_columns,
        on_failure=run_state.store_failed,
        on_renewed=run_state.lease_renewed,
        on_stall=run_state.store_stalls,
        inbox=inbox,
        functions=dict(zip(graph.ids, _function_names(graph.fns), strict=True))
        if store.durable
        else None,
        on_write=None if metrics is None else metrics.store_wrote,
    )
    run_state.recorder = recorder
    journals: list[tuple[Journal, AttemptJournal]] = []
    if store.durable:
        run_state.lease_deadline = run_state.gate = recorder.lease.deadline
        journals.append((recorder.journal, recorder.journal.attempt))
        recorder.start()
    if tracer is not None:  # plain fields on a queue: no event object built on the engine's side
        journals.append((tracer.journal, tracer.attempt_journal))
        if tracer.scopes:  # each attempt's span current while its function runs
            run_state.attempt_scope = tracer
    if metrics is not None:  # plain fields too, and TaskReady (queue waits start there)
        metrics.run_id = run_state.run_id
        journals.append((metrics.journal, metrics.attempt))
        run_state.announce_ready = True
    if journals:
        run_state.keep_journal(*_all(journals))
    _live_runs[run_state.run_id] = run_state
    interrupts = _signals.current.get()
    if interrupts is not None:  # a blocking run: signals stop it (see _signals)
        interrupts.attach(run_state)
    try:
        result = await run_state.execute()
    finally:
        if tracer is not None:  # every span ended (and handed to the exporters) before return
            tracer.close()
        _live_runs.pop(run_state.run_id, None)
        ended = run_state.final_result or run_state.result()
        if not store.durable:  # nothing was written while it ran: write it all now
            columns = run_state.task_columns()
            asked = {i for i, answers in enumerate(run_state.answers) if answers is not None}
            asked.update(run_state.questions)
            recorder.snapshot(
                columns,
                list(run_state.questions.values()),
                FirstTryDurations(graph, columns, asked),
            )
        final = ended.status not in (RunStatus.PAUSED, RunStatus.RUNNING)
        if inbox is not None:  # what became of the requests it took: how the run ended
            inbox.finish(str(ended.status))
        try:
            recorder.close(
                RunUpdate(
                    status=ended.status,
                    finished_at=ended.finished_at if final else None,
                    error=ended.error,
                )
            )
        finally:
            run_state.recorded.set()
    # What the store said last wins when it names the new owner; a run that was not recorded
    # to its end never returns a result.
    stopped = recorder.failure
    if not isinstance(stopped, LeaseLostError) and run_state.store_failure is not None:
        stopped = run_state.store_failure
    if stopped is not None:
        raise stopped
    return result
