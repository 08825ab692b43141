"""Resuming a run: ``plait.resume`` and ``plait.aresume``, after a pause, a failure or a crash.

Guarantees on resume: tasks recorded ``succeeded`` keep their outputs and never run again; tasks
that were running (or had finished but were not recorded yet) when the process died run again as
a new attempt -- at-least-once for work in flight, exactly-once for recorded successes. Failed
tasks run again, with a fresh retry budget; the skips that followed from them are decided again
by the rules, and a task that skipped itself stays skipped if its dependencies ended the same
way (see ``plait._restart.kept_skips``). Give side effects an idempotency key
(``ctx.idempotency_key``) so a repeat can be recognised.

A resume claims the run from its owner (see ``plait._claims``) once every answer given with it
(``inputs``) has been checked, records those answers with who gave them, and carries the run
out as ``plait.run`` does (``plait._execution._execute``).
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Mapping, Sequence
from operator import attrgetter
from typing import TYPE_CHECKING, Any

from ._claims import _claim, _refuse_if_owned
from ._config import EngineConfig, _config, _stored_config
from ._definition import definition_diff
from ._engine import _Run
from ._events import Subscriber
from ._exceptions import DefinitionChangedError, NotWaitingError
from ._execution import _execute, _ordered_graph
from ._graph import series_id
from ._lease import lease_clock
from ._mapping import restored_instances
from ._monitors import _monitors, _tracer
from ._pause import AnswerChannel, Question, answer_provenance, validate_answer
from ._public import publish_exports
from ._restart import cleared_tasks, kept_skips, restart_batch
from ._restored import Restored
from ._results import RunResult
from ._run_records import question_of, request_of
from ._runs import _blocking, _log, _no_event_loop
from ._serialization import Serializer
from ._state import RunStatus, TaskStatus
from ._stored_runs import _loads, _record, _serializer_of, get_run
from ._workflow import Workflow
from .executors import Executor
from .executors._named import check_executors
from .stores import InputRequest, RunUpdate, Store, WriteBatch, open_store
from .stores._open import opens_store

__all__ = ["aresume", "resume"]

if TYPE_CHECKING:
    from prometheus_client import CollectorRegistry


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
        pause = graph.options[i].pause
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
        zip(graph.ids, map(attrgetter("executor"), graph.options), strict=True),
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
            (graph.ids[i] for i, options in enumerate(graph.options) if options.map_over),
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


publish_exports(globals())  # plait.X, not plait._resume.X: see plait._public
