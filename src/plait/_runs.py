"""Starting, resuming, answering and inspecting runs: plait's entry points.

Every run lives in a store (see ``plait.stores``): the memory store by default, or the one named
by ``store=`` or the ``PLAIT_STORE`` environment variable. A run is owned by one process at a
time through a lease that its recorder renews while the run is live; another process can resume
it once the lease has expired (or at once with ``force=True``, when the owner is known to be dead).

Guarantees on resume: tasks recorded ``succeeded`` keep their outputs and never run again; tasks
that were running (or had finished but were not recorded yet) when the process died run again as
a new attempt -- at-least-once for work in flight, exactly-once for recorded successes. Failed
tasks run again, with a fresh retry budget; the skips that followed from them are decided again
by the rules, and a task that skipped itself stays skipped if its dependencies ended the same
way (see ``plait._restart.kept_skips``). Give side
effects an idempotency key (``ctx.idempotency_key``) so a repeat can be recognised.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import os
import socket
import time
import uuid
import weakref
from collections.abc import Coroutine, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from . import _signals
from ._config import EngineConfig, check_pools
from ._definition import definition_diff
from ._engine import Restored, _Run
from ._estimates import FirstTryDurations, learn
from ._events import Event, Journal, Subscriber
from ._exceptions import (
    ConfigError,
    DefinitionChangedError,
    NotWaitingError,
    TaskNotFoundError,
)
from ._graph import Graph, LazyDefinition, _function_names, series_id
from ._lease import lease_clock
from ._logs import LogLine
from ._mapping import group_instances, restored_instances
from ._pause import AnswerChannel, Question, answer_provenance, validate_answer
from ._public import publish_exports
from ._recorder import Recorder, question_of, request_of
from ._requests import Inbox, RequestKind, RunRequest
from ._restart import cleared_tasks, kept_skips, restart_batch
from ._results import RunResult, TaskResults
from ._serialization import JSONSerializer, ObjectSerializer, Serializer, check_stored
from ._state import RunStatus, TaskStatus
from ._targets import refuse_run_while_importing, target_of
from ._text import check_name
from ._workflow import Workflow
from .executors import Executor
from .executors._named import check_executors
from .stores import (
    InputRequest,
    LeaseHeldError,
    LeaseLostError,
    RunExistsError,
    RunNotFoundError,
    RunRecord,
    RunUpdate,
    Store,
    StoreError,
    WriteBatch,
    open_store,
)
from .stores._open import opens_store

__all__ = ["aresume", "arun", "get_logs", "get_run", "list_runs", "resume", "run"]

if TYPE_CHECKING:
    from prometheus_client import CollectorRegistry

    from ._metrics import RunMetrics
    from ._tracing import RunTracer

_log = logging.getLogger("plait.runs")

#: Seconds a lease lasts when no run's settings say (``EngineConfig.lease_seconds`` does for
#: runs): what answering a paused run claims it for.
LEASE_SECONDS = 30.0

# Runs live in this process, so that answer() can reach them without the store.
_live_runs: weakref.WeakValueDictionary[str, _Run] = weakref.WeakValueDictionary()


def _owner() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


def cancelled_by(request: RunRequest) -> str:
    """How a run's error names a cancel request: ``cancelled by a request from host:pid``."""
    return f"cancelled by a request from {request.sent_by}"


def _config(config: EngineConfig | None, settings: Mapping[str, Any]) -> EngineConfig:
    if config is None:
        config = EngineConfig()
    if not settings:
        return config
    fields = EngineConfig.__dataclass_fields__
    unknown = sorted(set(settings) - set(fields))
    if unknown:
        raise ConfigError(
            f"unknown engine setting(s) {unknown!r}; the settings are: {', '.join(fields)}"
        )
    values = {name: getattr(config, name) for name in fields}
    values.update(settings)
    return EngineConfig(**values)


def _config_document(config: EngineConfig, serializer: Serializer) -> dict[str, Any]:
    document = {name: getattr(config, name) for name in EngineConfig.__dataclass_fields__}
    document["pools"] = dict(config.pools)
    document["serializer"] = serializer.name
    return document


def _stored_config(document: Mapping[str, Any]) -> EngineConfig:
    fields = EngineConfig.__dataclass_fields__
    return EngineConfig(**{k: v for k, v in document.items() if k in fields})


def _serializer_for(store: Store, serializer: Serializer | None) -> Serializer:
    if serializer is not None:
        return serializer
    return JSONSerializer() if store.durable else ObjectSerializer()


def _loads(serializer: Serializer, payload: Any, run_id: str, what: str) -> Any:
    """``payload`` loaded with ``serializer``; a payload it cannot read is a clear StoreError."""
    try:
        return serializer.loads(payload)
    except Exception as error:  # any serializer's own error: the stored bytes are not its own
        raise StoreError(
            f"the stored {what} of run {run_id!r} cannot be read with the {serializer.name} "
            f"serializer ({type(error).__name__}: {error}); the store holds data that plait did "
            "not write with it"
        ) from error


def _serializer_of(store: Store, record: RunRecord, serializer: Serializer | None) -> Serializer:
    """The serializer for a stored run: the caller's (or the default), never one the record
    names, which is only checked against it (see ``plait._serialization``)."""
    chosen = _serializer_for(store, serializer)
    check_stored(record.run_id, record.config.get("serializer", JSONSerializer.name), chosen)
    return chosen


def _no_event_loop(name: str) -> None:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return
    raise RuntimeError(
        f"plait.{name}() cannot be called from a running event loop; use "
        f"`await plait.a{name}(...)` instead"
    )


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


def _all(journals: Sequence[Journal]) -> Journal:
    """A journal that hands each event to each of ``journals``, in order."""
    if len(journals) == 1:
        return journals[0]

    def journal(kind: type[Event], at: float, task_id: str | None, data: dict[str, Any]) -> None:
        for each in journals:
            each(kind, at, task_id, data)

    return journal


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
        functions=dict(zip(graph.ids, _function_names(graph.specs), strict=True))
        if store.durable
        else None,
        on_write=None if metrics is None else metrics.store_wrote,
    )
    run_state.recorder = recorder
    journals: list[Journal] = []
    if store.durable:
        run_state.lease_deadline = run_state.gate = recorder.lease.deadline
        journals.append(recorder)
        recorder.start()
    if tracer is not None:  # plain fields on a queue: no event object built on the engine's side
        journals.append(tracer.journal)
        if tracer.scopes:  # each attempt's span current while its function runs
            run_state.attempt_scope = tracer
    if metrics is not None:  # plain fields too, and TaskReady (queue waits start there)
        metrics.run_id = run_state.run_id
        journals.append(metrics.journal)
        run_state.announce_ready = True
    if journals:
        run_state.keep_journal(_all(journals))
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
            ``plait._metrics`` for the series), in prometheus_client's default registry or
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
    if len(workflow.graph().pool_names) > 1:  # some task names a pool: each needs a limit
        check_pools(engine_config, ((spec.id, spec.pool) for spec in workflow.tasks.values()))
    run_metrics = _monitors(
        workflow.name,
        metrics=metrics,
        metrics_registry=metrics_registry,
        metrics_task_labels=metrics_task_labels,
    )
    check_executors(
        ((spec.id, spec.executor) for spec in workflow.tasks.values()),
        engine_config.default_executor,
        executors or {},
    )
    if target is not None and not (isinstance(target, str) and target):
        raise ConfigError(f"target must be a non-empty str such as 'pkg.flows:wf', not {target!r}")
    the_store = open_store(store)
    serializer = _serializer_for(the_store, serializer)
    graph = workflow.graph()
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


def _record(store: Store, run_id: str) -> RunRecord:
    record = store.get_run(run_id)
    if record is None:
        raise RunNotFoundError(
            f"there is no run {run_id!r} in {store!r}; plait.list_runs(store=...) shows the runs "
            "it has"
        )
    return record


@opens_store
async def aresume(
    run_id: str,
    workflow: Workflow,
    *,
    inputs: Mapping[str, Any] | None = None,
    store: Store | str | None = None,
    force: bool = False,
    config: EngineConfig | None = None,
    serializer: Serializer | None = None,
    subscribers: Sequence[Subscriber] = (),
    wait_for_input: bool = False,
    accept_changes: bool = False,
    rerun: Sequence[str] = (),
    metrics: bool = False,
    metrics_registry: CollectorRegistry | None = None,
    metrics_task_labels: bool = False,
    executors: Mapping[str, Executor] | None = None,
    answered_by: str | None = None,
    answered_via: AnswerChannel | str = AnswerChannel.API,
    **settings: Any,
) -> RunResult:
    """Continue run ``run_id`` of ``workflow``: after a pause, a failure or a crash.

    Every answer in ``inputs`` is checked first; if one is wrong, nothing in the store changes.
    Then the run continues where it was: tasks recorded ``succeeded`` keep their outputs and do
    not run again; every other task runs (again) as its dependencies allow, a failed one with a
    fresh retry budget (its attempt numbers go on counting). A question whose deadline passed
    while the run was paused takes its default now (or fails its task). The run's stored
    settings apply, overridden by ``config``/``settings``.

    Args:
        run_id: the run to continue.
        workflow: the same workflow (task ids, dependencies, functions and params must match),
            or a changed one with ``accept_changes``.
        inputs: task id -> answer, for tasks waiting for input (or with a ``pause`` still ahead).
        force: take the run over even if another process's lease on it is live -- only when that
            process is known to be dead.
        accept_changes: resume with ``workflow`` even if it differs from the run's definition.
            Tasks whose function identity (``module:qualname`` -- not its body), dependencies
            and params did not change keep their recorded successes; added and changed tasks
            and everything downstream of a changed one run; removed tasks are dropped from the
            run. The differences are logged (a warning of the ``plait.runs`` logger) and
            recorded in the run's event log (``RunResumed``).
        rerun: task ids to run again, with everything downstream of them (their questions are
            asked again), like "clear with downstream"; works on a finished run too, which
            becomes a new attempt of the same run.
        answered_by, answered_via: who gave ``inputs`` (a name, as they would be shown it) and
            through what (``"api"``, ``"cli"`` or ``"web"``), recorded with each answer.
        (the other arguments are those of :func:`arun`)

    Raises:
        RunNotFoundError: the store has no such run.
        DefinitionChangedError: the workflow differs from the run's (and not
            ``accept_changes``); the message lists how.
        InvalidOptionError: ``rerun`` names a task the workflow does not have.
        InputValidationError: an answer does not fit its question's schema.
        NotWaitingError: an answer for a task that asks no question.
        LeaseHeldError: another live process owns the run.
        SerializerMismatchError: the run was stored with another serializer than
            ``serializer`` (a pickled run needs ``serializer=plait.PickleSerializer()``).
        LeaseLostError, StoreUnavailableError: the run stopped, as in :func:`arun`.
    """
    workflow.validate()
    run_metrics = _monitors(
        workflow.name,
        metrics=metrics,
        metrics_registry=metrics_registry,
        metrics_task_labels=metrics_task_labels,
    )
    by, via = answer_provenance(answered_by, answered_via)
    the_store = open_store(store)
    record = _record(the_store, run_id)
    graph = workflow.graph()
    diff = None
    if record.fingerprint != graph.fingerprint():
        diff = definition_diff(record.definition, graph.definition())
        if diff and not accept_changes:
            raise DefinitionChangedError(
                f"run {run_id!r} was made by a different definition of workflow "
                f"{record.workflow!r}: "
                + "; ".join(diff.describe())
                + "; resume it with the workflow as it was, pass accept_changes=True to "
                "resume it with this one, or start a new run"
            )
    cleared = cleared_tasks(graph, diff, rerun, run_id)
    if not force:
        _refuse_if_owned(the_store, record)
    serializer = _serializer_of(the_store, record, serializer)
    if record.status is RunStatus.SUCCEEDED and not cleared and not diff:
        return get_run(run_id, store=the_store, serializer=serializer)
    dropped = {*cleared, *(diff.removed if diff else ())}
    stored_tasks = the_store.load_tasks(run_id)
    # A mapped task cleared or removed goes with its instances: it expands afresh.
    dropped_instances = [t for t in stored_tasks if (s := series_id(t)) != t and s in dropped]
    dropped.update(dropped_instances)
    tasks = {t: task for t, task in stored_tasks.items() if t not in dropped}
    requests = [r for r in the_store.load_requests(run_id) if r.task_id not in dropped]
    answers: dict[int, dict[str, Any]] = {}
    questions: dict[int, Question] = {}
    for request in requests:
        i = graph.index[request.task_id]
        if request.answered:
            answer = _loads(serializer, request.value, run_id, f"answer to {request.task_id!r}")
            answers.setdefault(i, {})[request.key] = answer
        else:
            questions[i] = question_of(request)
    done = TaskStatus.SUCCEEDED  # once: a member read off its enum class costs ~1k instructions
    succeeded = {
        graph.index[task_id]: task
        for task_id, task in tasks.items()
        if task.status is done and task_id in graph.index  # not an instance
    }
    new_answers = []
    for task_id, value in (inputs or {}).items():
        if task_id not in graph.index:
            raise NotWaitingError(f"run {run_id!r} has no task {task_id!r}")
        i = graph.index[task_id]
        pause = graph.specs[i].pause
        question = questions.get(i)
        if question is not None:
            key = question.key
            schema = pause.schema if key == "" and pause else question.schema
        elif pause is not None and "" not in answers.get(i, {}) and i not in succeeded:
            key, schema = "", pause.schema
            question = Question(task_id=task_id, prompt=pause.prompt, key="")
        else:
            if not force:  # another process may have taken the run, and answered, meanwhile
                _refuse_if_owned(the_store, _record(the_store, run_id))
            waiting = sorted(q.task_id for q in questions.values())
            raise NotWaitingError(
                f"task {task_id!r} of run {run_id!r} is not waiting for input; "
                f"tasks waiting: {waiting}"
            )
        validate_answer(task_id, schema, value, key=key)
        new_answers.append((i, question, value, serializer.dumps(value)))
    outputs = {  # read before the run is claimed: a store plait cannot read changes nothing
        i: _loads(serializer, task.output, run_id, f"output of {task.task_id!r}")
        for i, task in succeeded.items()
    }
    engine_config = _config(config or _stored_config(record.config), settings)
    check_executors(
        ((spec.id, spec.executor) for spec in workflow.tasks.values()),
        engine_config.default_executor,
        executors or {},
    )
    lease_start = lease_clock()
    owner = _claim(the_store, run_id, force=force, lease_seconds=engine_config.lease_seconds)
    now = time.time()
    batch = WriteBatch(run=RunUpdate(status=RunStatus.RUNNING))
    if diff or cleared:
        # Cleared tasks start afresh, keeping their count of attempts (the numbers go on).
        attempts = {t: task.attempts for t, task in stored_tasks.items()}
        batch = restart_batch(graph, record, diff=diff, cleared=cleared, attempts=attempts, now=now)
        batch = dataclasses.replace(batch, dropped=[*batch.dropped, *dropped_instances])
        tasks.update({r.task_id: r for r in batch.tasks})
    for i, question, value, payload in new_answers:
        answers.setdefault(i, {})[question.key] = value
        questions.pop(i, None)
        batch.requests.append(_answered(question, payload, now, by=by, via=via))
    the_store.write(run_id, owner, batch)
    if diff:  # shown, as --accept-changes shows it: a changed definition is worth a look
        _log.warning(
            "run %r resumes with a changed definition of workflow %r: %s",
            run_id,
            record.workflow,
            "; ".join(diff.describe()),
        )
    restored = Restored(
        outputs=outputs,
        payloads={i: task.output for i, task in succeeded.items()},
        attempts={graph.index[t]: task.attempts for t, task in tasks.items() if t in graph.index},
        started_at={i: t.started_at for i, t in succeeded.items() if t.started_at is not None},
        finished_at={i: t.finished_at for i, t in succeeded.items() if t.finished_at is not None},
        answers=answers,
        questions=questions,
        skipped=kept_skips(graph, tasks),
        instances=restored_instances(
            tasks,
            (spec.id for spec in graph.specs if spec.map_over is not None),
            graph.index,
            lambda task: _loads(serializer, task.output, run_id, f"output of {task.task_id!r}"),
        ),
    )
    # The questions answered since the last part of the run: their waits, for its trace.
    waits = [
        (r.task_id, r.requested_at, r.answered_at)
        for r in requests
        if r.answered and r.answered_at is not None and graph.index[r.task_id] not in succeeded
    ]
    asked = {(r.task_id, r.key): r.requested_at for r in requests if not r.answered}
    waits += [
        (graph.ids[i], asked[graph.ids[i], question.key], now)
        for i, question, _, _ in new_answers
        if (graph.ids[i], question.key) in asked
    ]
    tracer = _tracer(engine_config, workflow.name, run_id, the_store, waits)
    run_state = _Run(
        workflow,
        engine_config,
        run_id,
        subscribers,
        wait_for_input=wait_for_input,
        serializer=serializer,
        restored=restored,
        executors=executors,
        graph=_ordered_graph(the_store, workflow.graph(), engine_config)[0],
    )
    return await _execute(
        the_store, owner, run_state, lease_start, metrics=run_metrics, tracer=tracer
    )


def _lease_held(run_id: str, owner: str, until: float) -> LeaseHeldError:
    return LeaseHeldError(
        f"run {run_id!r} is being run by {owner} (its lease lasts until "
        f"{time.strftime('%Y-%m-%d %H:%M:%S UTC', time.gmtime(until))}); wait for it "
        "to finish or pause, or pass force=True if that process is dead",
        owner,
        until,
    )


def _claim(store: Store, run_id: str, *, force: bool, lease_seconds: float = LEASE_SECONDS) -> str:
    """Make a new owner of this process hold the run's lease; return the owner's id."""
    owner = _owner()
    try:
        store.claim(run_id, owner, lease_seconds=lease_seconds, force=force)
    except LeaseHeldError as error:
        raise _lease_held(run_id, error.owner, error.until) from None
    return owner


def _refuse_if_owned(store: Store, record: RunRecord) -> None:
    """Raise LeaseHeldError if another process's lease on the run is live."""
    until = record.lease_expires_at
    if record.owner is not None and until is not None and until > time.time():
        raise _lease_held(record.run_id, record.owner, until)


def _answered(
    question: Question, payload: Any, at: float, *, by: str | None, via: AnswerChannel
) -> InputRequest:
    return dataclasses.replace(
        request_of(question),
        answered=True,
        value=payload,
        answered_at=at,
        answered_by=by,
        answered_via=via.value,
    )


def resume(
    run_id: str,
    workflow: Workflow,
    *,
    inputs: Mapping[str, Any] | None = None,
    store: Store | str | None = None,
    force: bool = False,
    config: EngineConfig | None = None,
    serializer: Serializer | None = None,
    subscribers: Sequence[Subscriber] = (),
    wait_for_input: bool = False,
    accept_changes: bool = False,
    rerun: Sequence[str] = (),
    metrics: bool = False,
    metrics_registry: CollectorRegistry | None = None,
    metrics_task_labels: bool = False,
    executors: Mapping[str, Executor] | None = None,
    answered_by: str | None = None,
    answered_via: AnswerChannel | str = AnswerChannel.API,
    **settings: Any,
) -> RunResult:
    """Blocking form of :func:`aresume`; same arguments. Answers signals as :func:`run` does."""
    _no_event_loop("resume")
    return _blocking(
        aresume(
            run_id,
            workflow,
            inputs=inputs,
            store=store,
            force=force,
            config=config,
            serializer=serializer,
            subscribers=subscribers,
            wait_for_input=wait_for_input,
            accept_changes=accept_changes,
            rerun=rerun,
            metrics=metrics,
            metrics_registry=metrics_registry,
            metrics_task_labels=metrics_task_labels,
            executors=executors,
            answered_by=answered_by,
            answered_via=answered_via,
            **settings,
        )
    )


@opens_store
def get_run(
    run_id: str, *, store: Store | str | None = None, serializer: Serializer | None = None
) -> RunResult:
    """A read-only snapshot of run ``run_id`` as its store holds it; runs nothing.

    Outputs are loaded with ``serializer``: the default (JSON in a durable store) or the one the
    run was made with -- never one the store names, since a store is data, not code.

    Raises:
        RunNotFoundError: no such run.
        SerializerMismatchError: the run was stored with another serializer than
            ``serializer`` (a pickled run needs ``serializer=plait.PickleSerializer()``).
        StoreError: a stored output cannot be read with ``serializer`` (not plait's data).
    """
    the_store = open_store(store)
    record = _record(the_store, run_id)
    serializer = _serializer_of(the_store, record, serializer)
    stored = the_store.load_tasks(run_id)
    ids = [task["id"] for task in record.definition]
    index = {task_id: i for i, task_id in enumerate(ids)}
    mapped = [task["id"] for task in record.definition if task.get("map_over")]
    instances: dict[int, list[int]] = {}
    for task_id, group in group_instances(stored, mapped).items():
        instances[index[task_id]] = list(range(len(ids), len(ids) + len(group)))
        for _, instance_id in group:
            index[instance_id] = len(ids)
            ids.append(instance_id)
    records = [stored.get(task_id) for task_id in ids]
    waiting = {r.task_id: question_of(r) for r in the_store.load_requests(run_id) if not r.answered}
    pending, succeeded = TaskStatus.PENDING, TaskStatus.SUCCEEDED  # once, not once per task
    tasks = TaskResults(
        index,
        status=[r.status if r else pending for r in records],
        output=[
            _loads(serializer, r.output, run_id, f"output of {r.task_id!r}")
            if r and r.output is not None and (r.status is succeeded or i in instances)
            else None
            for i, r in enumerate(records)
        ],
        error=[r.error if r else None for r in records],
        attempts=[r.attempts if r else 0 for r in records],
        started_at=[r.started_at if r else None for r in records],
        finished_at=[r.finished_at if r else None for r in records],
        skip_cause=[r.skip_cause if r else None for r in records],
        instances=instances,
    )
    return RunResult(
        run_id=run_id,
        workflow=record.workflow,
        status=record.status,
        tasks=tasks,
        started_at=record.created_at,
        finished_at=record.finished_at or record.updated_at,
        error=record.error,
        waiting=waiting,
        stale_since=record.stale_since,
    )


@opens_store
def list_runs(
    *,
    store: Store | str | None = None,
    status: RunStatus | str | None = None,
    workflow: str | None = None,
    limit: int = 50,
) -> list[RunRecord]:
    """The runs in the store, newest first; only those with ``status`` and of ``workflow`` if
    given. (Page through many with ``Store.list_runs``, which returns a cursor.)"""
    wanted = None if status is None else RunStatus(status)
    return open_store(store).list_runs(status=wanted, workflow=workflow, limit=limit).runs


@opens_store
def get_logs(
    run_id: str,
    task_id: str | None = None,
    *,
    attempt: int | None = None,
    store: Store | str | None = None,
) -> list[LogLine]:
    """What the tasks of run ``run_id`` said, as its store holds it: the lines of every attempt
    (or of ``task_id``'s, or of attempt ``attempt`` only), oldest first.

    A line is a :class:`LogLine`: a ``logging`` record (INFO and above), a printed line, or a
    line a shell command wrote; each attempt keeps at most ``max_log_bytes`` (its first and last
    halves, with a ``plait`` line that says what was cut). A live run's logs are written with its
    progress (at most 0.1 s behind), except in the memory store, which has them when the run
    ends or pauses.

    Raises:
        RunNotFoundError: no such run.
        TaskNotFoundError: the run has no task ``task_id``.
    """
    the_store = open_store(store)
    record = _record(the_store, run_id)
    # an instance (convert[3]) is a task of the run if its mapped task is
    known = task_id if task_id is None else series_id(task_id)
    if known is not None and all(task["id"] != known for task in record.definition):
        ids = [str(task["id"]) for task in record.definition]
        raise TaskNotFoundError(
            f"run {run_id!r} has no task {task_id!r}; its tasks are: "
            + ", ".join(map(repr, ids[:20]))
            + (f" (and {len(ids) - 20} more)" if len(ids) > 20 else "")
        )
    logs = the_store.load_logs(run_id, task_id=task_id, attempt=attempt)
    lines = [line for log in logs for line in log.lines]
    lines.sort(key=lambda line: line.time)  # stable: an attempt's own lines keep their order
    return lines


def __getattr__(name: str) -> Any:
    """``answer`` lives in ``plait._answers`` (it needs this module); ``from plait._runs import
    answer``, its old place, still finds it."""
    if name == "answer":
        from ._answers import answer  # noqa: PLC0415 - _answers imports this module

        return answer
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


publish_exports(globals())  # plait.X, not plait._runs.X: see plait._public
