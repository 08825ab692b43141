"""The memory store: the Python API's default; state lives as long as the process."""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from dataclasses import replace

from .._requests import RequestState, RunRequest
from .._state import RunStatus
from ._base import (
    HISTORY_KEPT,
    EventRecord,
    InputRequest,
    LeaseHeldError,
    LeaseLostError,
    RunExistsError,
    RunNotFoundError,
    RunRecord,
    Store,
    TaskDuration,
    TaskHistory,
    TaskLog,
    TaskRecord,
    TaskRecordColumns,
    WriteBatch,
)
from ._history import HistoryColumns, history_of, merge_histories
from ._listing import (
    OPEN_RUN_STATUSES,
    OpenQuestion,
    RunPage,
    check_limit,
    decode_cursor,
    inbox_default,
    page_of,
)

__all__ = ["MemoryStore"]

#: How many unread batches of durations the store keeps per workflow (a run's end writes one):
#: those of the latest 5 runs hold each task's latest 5 durations when every run ran every task.
#: (A batch holds its run's task columns until read: more would keep a big workflow's runs in
#: memory.) Batches read are folded into the workflow's history, which keeps every task's.
_HISTORY_BATCHES = HISTORY_KEPT


class _RunState:
    __slots__ = (
        "columns",
        "events",
        "last_batch",
        "logs",
        "record",
        "requests",
        "run_requests",
        "tasks",
        "trace_context",
    )

    def __init__(self, record: RunRecord) -> None:
        self.record = record
        self.columns: TaskRecordColumns | None = None  # a whole run's records, kept as columns
        self.tasks: dict[str, TaskRecord] = {}  # records written one by one (newer)
        self.requests: dict[tuple[str, str], InputRequest] = {}
        self.events: list[EventRecord] = []
        self.logs: dict[tuple[str, int], TaskLog] = {}
        self.last_batch: str | None = None  # the key of the last batch written
        self.run_requests: dict[str, RunRequest] = {}  # in the order they were sent
        self.trace_context: str | None = None


class MemoryStore(Store):
    """Keeps runs in this process's memory: pause and resume work within the process; nothing is
    written anywhere, and nothing survives the process.

    Args:
        max_runs: keep at most this many runs, forgetting the oldest finished ones first (paused
            and running runs are kept); None keeps every run.
        max_tasks: likewise, keep runs of at most this many tasks in all (the newest run is
            kept whatever its size).
    """

    durable = False

    def __init__(self, *, max_runs: int | None = None, max_tasks: int | None = None) -> None:
        self._lock = threading.Lock()
        self._runs: dict[str, _RunState] = {}
        self._max_runs = max_runs
        self._max_tasks = max_tasks
        #: Succeeded attempts' durations by workflow name (kept when runs are forgotten): the
        #: batches not read yet, newest first, as they came (a run's end hands over its task
        #: columns, see plait._estimates); and the history folded from those read.
        self._durations: dict[str, list[Sequence[TaskDuration]]] = {}
        self._history: dict[str, HistoryColumns] = {}

    def __repr__(self) -> str:
        return f"<MemoryStore with {len(self._runs)} runs>"

    def create_run(self, run: RunRecord) -> None:
        with self._lock:
            if run.run_id in self._runs:
                raise RunExistsError(f"run {run.run_id!r} already exists")
            self._runs[run.run_id] = _RunState(run)
            self._forget_finished()

    def get_run(self, run_id: str) -> RunRecord | None:
        with self._lock:
            state = self._runs.get(run_id)
            return None if state is None else state.record

    def list_runs(
        self,
        *,
        status: RunStatus | None = None,
        workflow: str | None = None,
        before: str | None = None,
        limit: int = 50,
    ) -> RunPage:
        check_limit(limit)
        after = None if before is None else decode_cursor(before)
        with self._lock:
            records = [s.record for s in self._runs.values()]
        records = [
            r
            for r in records
            if (status is None or r.status is status)
            and (workflow is None or r.workflow == workflow)
            and (after is None or (r.created_at, r.run_id) < after)
        ]
        records.sort(key=lambda r: (r.created_at, r.run_id), reverse=True)
        return page_of(records[: limit + 1], limit)

    def open_questions(self, *, limit: int = 100) -> list[OpenQuestion]:
        check_limit(limit)
        with self._lock:
            found = [
                OpenQuestion(
                    run_id=state.record.run_id,
                    workflow=state.record.workflow,
                    run_status=state.record.status,
                    task_id=request.task_id,
                    key=request.key,
                    prompt=request.prompt,
                    schema=request.schema,
                    asked_at=request.requested_at,
                    deadline=request.deadline,
                    default=inbox_default(
                        request.schema,
                        request.default,
                        state.record.config.get("serializer", "json"),
                    ),
                )
                for state in self._runs.values()
                if state.record.status in OPEN_RUN_STATUSES
                for request in state.requests.values()
                if not request.answered
            ]
        found.sort(
            key=lambda q: (
                q.deadline is None,
                q.deadline or 0.0,
                q.asked_at,
                q.run_id,
                q.task_id,
                q.key,
            )
        )
        return found[:limit]

    def claim(
        self, run_id: str, owner: str, *, lease_seconds: float, force: bool = False
    ) -> RunRecord:
        now = time.time()
        with self._lock:
            state = self._state(run_id)
            record = state.record
            if (
                not force
                and record.owner not in (None, owner)
                and (record.lease_expires_at or 0) > now
            ):
                raise LeaseHeldError(
                    f"run {run_id!r} is owned by {record.owner}",
                    record.owner or "",
                    record.lease_expires_at or 0,
                )
            state.record = replace(record, owner=owner, lease_expires_at=now + lease_seconds)
            return state.record

    def renew(self, run_id: str, owner: str, *, lease_seconds: float) -> None:
        with self._lock:
            state = self._owned(run_id, owner)
            state.record = replace(state.record, lease_expires_at=time.time() + lease_seconds)

    def release(self, run_id: str, owner: str) -> None:
        with self._lock:
            state = self._runs.get(run_id)
            if state is not None and state.record.owner == owner:
                state.record = replace(state.record, owner=None, lease_expires_at=None)

    def write(self, run_id: str, owner: str, batch: WriteBatch) -> None:
        with self._lock:
            state = self._owned(run_id, owner)
            if batch.key is not None:
                if batch.key == state.last_batch:
                    return  # applied already
                state.last_batch = batch.key
            if batch.dropped:
                if state.columns is not None:  # back to records one by one, to drop some
                    state.tasks = {**{t.task_id: t for t in state.columns}, **state.tasks}
                    state.columns = None
                dropped = set(batch.dropped)
                for task_id in dropped:
                    state.tasks.pop(task_id, None)
                state.requests = {k: r for k, r in state.requests.items() if k[0] not in dropped}
            tasks = batch.tasks
            if isinstance(tasks, TaskRecordColumns) and len(tasks) >= len(state.record.definition):
                state.columns, state.tasks = tasks, {}  # every task: keep the columns as they are
            else:
                for task in batch.tasks:
                    state.tasks[task.task_id] = task
            for request in batch.requests:
                state.requests[request.task_id, request.key] = request
            state.events.extend(batch.events)
            if batch.durations:
                pending = self._durations.setdefault(state.record.workflow, [])
                pending.insert(0, batch.durations)
                del pending[_HISTORY_BATCHES:]  # older ones could not be among the latest
            for log in batch.logs:
                state.logs[log.task_id, log.attempt] = log
            for done in batch.requests_done:
                if done.request_id in state.run_requests:
                    state.run_requests[done.request_id] = done
            record = replace(state.record, updated_at=time.time())
            if batch.run is not None:
                record = replace(
                    record,
                    status=batch.run.status,
                    finished_at=batch.run.finished_at,
                    error=batch.run.error,
                )
                if batch.run.definition is not None:
                    record = replace(
                        record,
                        definition=batch.run.definition,
                        fingerprint=batch.run.fingerprint or record.fingerprint,
                    )
            state.record = record

    def load_tasks(self, run_id: str) -> dict[str, TaskRecord]:
        with self._lock:
            state = self._state(run_id)
            tasks = {} if state.columns is None else {t.task_id: t for t in state.columns}
            tasks.update(state.tasks)
            return tasks

    def load_requests(self, run_id: str) -> list[InputRequest]:
        with self._lock:
            return list(self._state(run_id).requests.values())

    def set_trace_context(self, run_id: str, trace_context: str) -> None:
        with self._lock:
            state = self._state(run_id)
            if state.trace_context is None:
                state.trace_context = trace_context

    def get_trace_context(self, run_id: str) -> str | None:
        with self._lock:
            state = self._runs.get(run_id)
            return None if state is None else state.trace_context

    def task_history(self, workflow: str) -> Sequence[TaskHistory]:
        with self._lock:
            # Each batch is folded in once, as columns: a run's start reads the fold, not a
            # record per task (see stores._history).
            batches = [history_of(batch) for batch in self._durations.pop(workflow, ())]
            if (history := self._history.get(workflow)) is not None:
                batches.append(history)
            if not batches:
                return []
            history = self._history[workflow] = merge_histories(batches)
            return history

    def load_events(self, run_id: str, *, after: int | None = None) -> list[EventRecord]:
        with self._lock:
            events = self._state(run_id).events
            start = 0 if after is None else max(0, after)
            # An entry's seq is its 1-based place in the run's log.
            return [replace(e, seq=seq) for seq, e in enumerate(events[start:], start + 1)]

    def load_logs(
        self, run_id: str, *, task_id: str | None = None, attempt: int | None = None
    ) -> list[TaskLog]:
        with self._lock:
            logs = self._state(run_id).logs
            return [
                logs[key]
                for key in sorted(logs)
                if (task_id is None or key[0] == task_id) and (attempt is None or key[1] == attempt)
            ]

    def send_request(self, run_id: str, request: RunRequest) -> None:
        with self._lock:
            self._state(run_id).run_requests.setdefault(request.request_id, request)

    def take_requests(self, run_id: str, owner: str) -> list[RunRequest]:
        now = time.time()
        with self._lock:
            state = self._owned(run_id, owner)
            taken = []
            for request in state.run_requests.values():
                if request.state is RequestState.PENDING and request.owner == owner:
                    taken.append(replace(request, state=RequestState.TAKEN, taken_at=now))
            for request in taken:
                state.run_requests[request.request_id] = request
            return taken

    def get_request(self, run_id: str, request_id: str) -> RunRequest | None:
        with self._lock:
            return self._state(run_id).run_requests.get(request_id)

    def _forget_finished(self) -> None:
        """Drop the oldest finished runs while the store holds more than its limits allow."""
        max_runs, max_tasks = self._max_runs, self._max_tasks
        if max_runs is None and max_tasks is None:
            return
        tasks = sum(len(state.record.definition) for state in self._runs.values())
        final = (RunStatus.SUCCEEDED, RunStatus.FAILED, RunStatus.CANCELLED)
        for run_id, state in list(self._runs.items())[:-1]:  # the newest run always stays
            too_many_runs = max_runs is not None and len(self._runs) > max_runs
            too_many_tasks = max_tasks is not None and tasks > max_tasks
            if not (too_many_runs or too_many_tasks):
                return
            if state.record.status in final:
                del self._runs[run_id]
                tasks -= len(state.record.definition)

    def _state(self, run_id: str) -> _RunState:
        try:
            return self._runs[run_id]
        except KeyError:
            raise RunNotFoundError(f"there is no run {run_id!r} in this store") from None

    def _owned(self, run_id: str, owner: str) -> _RunState:
        state = self._state(run_id)
        if state.record.owner != owner:
            current = state.record.owner
            raise LeaseLostError(
                f"run {run_id!r} is no longer owned by {owner!r}: "
                + ("it has no owner" if current is None else f"its owner is now {current!r}"),
                run_id=run_id,
                owner=current,
            )
        return state
