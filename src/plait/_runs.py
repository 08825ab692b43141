"""Starting a run: ``plait.run`` and ``plait.arun``, and a run carried out under its store.

Every run lives in a store (see ``plait.stores``): the memory store by default, or the one named
by ``store=`` or the ``PLAIT_STORE`` environment variable. A run is owned by one process at a
time through a lease that its recorder renews while the run is live; another process can resume
it once the lease has expired (or at once with ``force=True``, when the owner is known to be dead).

A run started here or resumed (``plait._resume``) is carried out under its store by
``plait._execution``: its recorder writes it to the store and keeps its lease, requests from
other processes reach it, and its monitors see its events. Reading stored runs is in
``plait._stored_runs``; who owns a run, and claiming it, in ``plait._claims``; answering and
cancelling a run in ``plait._answers`` and ``plait._cancel``.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Coroutine, Mapping, Sequence
from operator import attrgetter
from typing import TYPE_CHECKING, Any

from . import _signals
from ._claims import _owner
from ._config import EngineConfig, _config, _config_document, check_pools
from ._definition import LazyDefinition
from ._engine import _Run
from ._events import Subscriber
from ._exceptions import ConfigError
from ._execution import _execute, _ordered_graph
from ._lease import lease_clock
from ._monitors import _monitors, _tracer
from ._public import publish_exports
from ._results import RunResult
from ._serialization import Serializer
from ._state import RunStatus
from ._stored_runs import _serializer_for
from ._targets import refuse_run_while_importing, target_of
from ._text import check_name
from ._workflow import Workflow
from .executors import Executor
from .executors._named import check_executors
from .stores import (
    RunExistsError,
    RunRecord,
    Store,
    open_store,
)
from .stores._open import opens_store

__all__ = ["arun", "run"]

if TYPE_CHECKING:
    from prometheus_client import CollectorRegistry


_log = logging.getLogger("plait.runs")


def _no_event_loop(name: str) -> None:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return
    raise RuntimeError(
        f"plait.{name}() cannot be called from a running event loop; use "
        f"`await plait.a{name}(...)` instead"
    )


@opens_store
async def arun(
    workflow: Workflow,
    *,
    config: EngineConfig | None = None,
    run_id: str | None = None,
    store: Store | str | None = None,
    serializer: Serializer | None = None,
    subscribers: Sequence[Subscriber] = (),
    wait_for_input: bool = False,
    target: str | None = None,
    metrics: bool = False,
    metrics_registry: CollectorRegistry | None = None,
    metrics_task_labels: bool = False,
    executors: Mapping[str, Executor] | None = None,
    **settings: Any,
) -> RunResult:
    """Run ``workflow`` on the running event loop and return its :class:`RunResult`.

    Args:
        workflow: the workflow to run; it is validated first, and nothing runs if it is invalid.
        config: engine settings; keyword ``settings`` (``max_concurrency=8``, ``pools={...}``,
            any :class:`EngineConfig` field) override it.
        run_id: the run's id, e.g. an idempotency key (default: a new unique one).
        store: where the run is kept: a :class:`~plait.stores.Store`, a URL (``memory://``,
            ``sqlite:///path/plait.db``, ``postgresql://...``), or None for ``$PLAIT_STORE`` or
            the process's memory store. A store opened from a URL is closed when the call
            returns (as in every function here); a store object stays open.
        serializer: how outputs and answers are stored (default: JSON in a durable store).
            :func:`resume` and :func:`get_run` load the run only with the same serializer.
        subscribers: callables that receive every :class:`Event` of the run.
        wait_for_input: when every remaining task waits for an answer, keep the run live
            (answers come through :func:`answer`) instead of ending it ``paused``.
        target: how to import the workflow (``"pkg.flows:wf"``), recorded with the run so that
            ``plait resume RUN`` finds it; default: the module and attribute that hold it,
            when one of its tasks' modules does.
        metrics: record the run in Prometheus metrics (``plait[prometheus]``; see
            ``plait._metrics_series`` for the series), in prometheus_client's default registry or
            ``metrics_registry``; ``metrics_task_labels`` adds ``task_id`` and ``run_id``
            labels to the task series (by default no label grows with the workflow).
        executors: executors by name, for tasks' ``executor=`` and ``default_executor``
            (``{"cluster": plait.executors.DaskExecutor(client)}``); they stay yours to shut
            down. The built-in names ``"thread"``, ``"inline"`` and ``"process"`` need none.

    A failed task does not raise: the result's ``status`` is ``failed`` and its ``error`` says
    why (``result.raise_for_status()`` raises). A run whose remaining tasks wait for people ends
    ``paused``; continue it with :func:`resume`. Cancelling this coroutine cancels the running
    tasks, waits for them (sync ones up to ``cancel_grace``) and re-raises ``CancelledError``.

    Raises:
        WorkflowError: the workflow is invalid, or a task names a pool that has no limit, or
            an executor that is neither built in nor in ``executors``.
        ConfigError: a setting is invalid (``default_executor`` names no executor), or
            ``metrics`` is asked for without prometheus_client installed.
        InvalidOptionError: ``run_id`` holds text no store can keep (NUL, a lone surrogate).
        RunExistsError: the store already has a run with ``run_id``.
        WorkflowFileError: called while ``plait`` imports a target (a run started at import
            time; guard it with ``if __name__ == "__main__":``).
        LeaseLostError: this process lost the run's lease (it was stopped past the lease, or
            another process took the run over); the run stopped, nothing more was recorded.
        StoreUnavailableError: the store stayed unavailable for as long as the lease allows;
            the run stopped (resume it later).
    """
    refuse_run_while_importing()
    workflow.validate()
    engine_config = _config(config, settings)
    graph = workflow.graph()  # its columns: the workflow's TaskSpecs are made when read
    if len(graph.pool_names) > 1:  # some task names a pool: each needs a limit
        check_pools(
            engine_config, zip(graph.ids, map(attrgetter("pool"), graph.options), strict=True)
        )
    run_metrics = _monitors(
        workflow.name,
        metrics=metrics,
        metrics_registry=metrics_registry,
        metrics_task_labels=metrics_task_labels,
    )
    check_executors(
        zip(graph.ids, map(attrgetter("executor"), graph.options), strict=True),
        engine_config.default_executor,
        executors or {},
    )
    if target is not None and not (isinstance(target, str) and target):
        raise ConfigError(f"target must be a non-empty str such as 'pkg.flows:wf', not {target!r}")
    the_store = open_store(store)
    serializer = _serializer_for(the_store, serializer)
    run_id = run_id or uuid.uuid4().hex
    check_name("run id", run_id)
    owner = _owner()
    ordered, estimates = _ordered_graph(the_store, graph, engine_config)
    config_document = _config_document(engine_config, serializer)
    if estimates:  # what the scheduler weighed each task by, for the report
        config_document["estimates"] = estimates
    lease_start = lease_clock()
    now = time.time()
    try:
        the_store.create_run(
            RunRecord(
                run_id=run_id,
                workflow=workflow.name,
                fingerprint=graph.fingerprint(),
                definition=LazyDefinition(graph),
                config=config_document,
                status=RunStatus.RUNNING,
                created_at=now,
                updated_at=now,
                owner=owner,
                lease_expires_at=now + engine_config.lease_seconds,
                # Only another process needs it, and only a durable store reaches one.
                target=target or (target_of(workflow) if the_store.durable else None),
            )
        )
    except RunExistsError:
        raise RunExistsError(
            f"run {run_id!r} already exists in {the_store!r}; continue it with "
            f"plait.resume({run_id!r}, workflow), or start a new run with another run_id"
        ) from None
    tracer = _tracer(engine_config, workflow.name, run_id, the_store)
    run_state = _Run(
        workflow,
        engine_config,
        run_id,
        subscribers,
        wait_for_input=wait_for_input,
        serializer=serializer,
        executors=executors,
        graph=ordered,
    )
    return await _execute(
        the_store, owner, run_state, lease_start, metrics=run_metrics, tracer=tracer
    )


def run(
    workflow: Workflow,
    *,
    config: EngineConfig | None = None,
    run_id: str | None = None,
    store: Store | str | None = None,
    serializer: Serializer | None = None,
    subscribers: Sequence[Subscriber] = (),
    wait_for_input: bool = False,
    target: str | None = None,
    metrics: bool = False,
    metrics_registry: CollectorRegistry | None = None,
    metrics_task_labels: bool = False,
    executors: Mapping[str, Executor] | None = None,
    **settings: Any,
) -> RunResult:
    """Run ``workflow`` to the end (or until it pauses) and return its :class:`RunResult`.

    Takes the same arguments as :func:`arun`, in a new event loop. Called on the main thread,
    it answers SIGINT (Ctrl-C), SIGTERM and SIGHUP for as long as it runs: the run is stopped
    (running tasks cancelled, shell commands' process groups killed) and recorded
    ``cancelled``, then the signal is handed on -- ``KeyboardInterrupt`` for Ctrl-C,
    ``SystemExit(143)`` / ``SystemExit(129)`` for SIGTERM / SIGHUP, or the handler that was
    installed before. A second signal stops at once, without waiting for sync tasks. Signals
    ignored when it starts stay ignored.

    Raises:
        RuntimeError: called from a running event loop; use ``await plait.arun(...)`` there.
        LeaseLostError, StoreUnavailableError: the run stopped unrecorded (see :func:`arun`).
        KeyboardInterrupt, SystemExit: a signal stopped the run (it is recorded cancelled).
    """
    _no_event_loop("run")
    return _blocking(
        arun(
            workflow,
            config=config,
            run_id=run_id,
            store=store,
            serializer=serializer,
            subscribers=subscribers,
            wait_for_input=wait_for_input,
            target=target,
            metrics=metrics,
            metrics_registry=metrics_registry,
            metrics_task_labels=metrics_task_labels,
            executors=executors,
            **settings,
        )
    )


def _blocking(main: Coroutine[Any, Any, RunResult]) -> RunResult:
    """Run ``main`` in a new event loop, answering signals meanwhile (see ``_signals``)."""
    with _signals.Interrupts() as interrupts:
        try:
            return asyncio.run(main)
        finally:
            interrupts.pass_on()


def __getattr__(name: str) -> Any:
    """``answer`` lives in ``plait._answers``; ``from plait._runs import answer``, its old place,
    still finds it (imported on first use, as ``plait`` imports its names)."""
    if name == "answer":
        from ._answers import answer  # noqa: PLC0415 - on first use, not with this module

        return answer
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


publish_exports(globals())  # plait.X, not plait._runs.X: see plait._public
