"""Reading stored runs: ``plait.get_run``, ``plait.list_runs`` and ``plait.get_logs``.

They only read: nothing runs and no run is claimed. What resuming and answering a run share with
them is here too: a run's record (``_record``, a clear error when there is none) and the
serializer that reads its outputs and answers -- the caller's, or the default (JSON in a durable
store), never one the store names, which is only checked against it (see
``plait._serialization``).
"""

from __future__ import annotations

from typing import Any

from ._exceptions import TaskNotFoundError
from ._graph import series_id
from ._logs import LogLine
from ._mapping import group_instances
from ._public import publish_exports
from ._results import RunResult, TaskResults
from ._run_records import question_of
from ._serialization import JSONSerializer, ObjectSerializer, Serializer, check_stored
from ._state import RunStatus, TaskStatus
from .stores import RunNotFoundError, RunRecord, Store, StoreError, open_store
from .stores._open import opens_store

__all__ = ["get_logs", "get_run", "list_runs"]


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


def _record(store: Store, run_id: str) -> RunRecord:
    record = store.get_run(run_id)
    if record is None:
        raise RunNotFoundError(
            f"there is no run {run_id!r} in {store!r}; plait.list_runs(store=...) shows the runs "
            "it has"
        )
    return record


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


publish_exports(globals())  # plait.X, not plait._stored_runs.X: see plait._public
