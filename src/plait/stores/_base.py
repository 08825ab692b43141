"""The store interface: where durable runs keep their state.

A store holds, per run: the run's record (workflow, definition fingerprint, config, status, the
owner's lease), each task's latest state (status, attempts, serialized output, error, times,
skip cause), the
questions asked of people and their answers, an append-only event log, and the requests sent
to the run's live owner through the store (a cancel; see ``plait._requests``).

Rules every backend keeps (the conformance suite in ``tests/stores`` checks them):

- A write is keyed by ``(run_id, task_id)`` (and ``key`` for input requests), so a replayed write
  replaces rather than duplicates.
- :meth:`Store.write` applies a whole :class:`WriteBatch` in one transaction, and only while the
  writer holds the run's lease (fencing): a process that lost its lease cannot overwrite the
  new owner's progress.
- :meth:`Store.claim` is atomic: when several processes claim one run at once, exactly one wins.
- A batch with a ``key`` is applied once, however often it is written (:class:`WriteBatch`).
- A transient failure (the store busy or out of reach) raises :class:`StoreUnavailableError`,
  which the engine retries; any other :class:`StoreError` is final.
- Leases run on the store's clock where it has one (PostgreSQL's), so hosts whose clocks
  disagree still agree on when a lease expires.
- :meth:`Store.take_requests` is atomic too: a request is taken once, only by the owner it is
  addressed to while that owner holds the lease; its outcome is written with a batch.
- Times are Unix seconds (floats); outputs and answers are bytes made by the run's serializer.
- A task's log is kept per attempt, keyed by ``(run_id, task_id, attempt)``: a write replaces
  the attempt's whole log (as far as it has come), in the same transaction as the task records.
- Reads across runs are one query each, served by an index whatever the number of runs: a page
  of runs (:meth:`Store.list_runs`, keyset-paginated by an opaque cursor) and the inbox of open
  questions (:meth:`Store.open_questions`); see ``_listing.py``. An event's ``seq`` grows along
  its run's log, so :meth:`Store.load_events` with ``after`` tails a live run.
- An answer keeps who gave it and through what (:attr:`InputRequest.answered_by`,
  :attr:`InputRequest.answered_via`), written with it.
- How long succeeded attempts ran (:class:`TaskDuration`) is history kept by workflow name, not
  by run: it is appended with the batches and read back, the latest 5 per task, by
  :meth:`Store.task_history` (learned estimates, see ``plait._estimates``).
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, NamedTuple, Self, overload

from .._exceptions import PlaitError
from .._logs import LogLine
from .._requests import RunRequest
from .._results import TaskError
from .._state import RunStatus, SkipCause, TaskStatus

if TYPE_CHECKING:
    from ._listing import OpenQuestion, RunPage

__all__ = [
    "EventRecord",
    "EventRecordColumns",
    "InputRequest",
    "LeaseHeldError",
    "LeaseLostError",
    "RunExistsError",
    "RunNotFoundError",
    "RunRecord",
    "RunUpdate",
    "Store",
    "StoreError",
    "StoreNotFoundError",
    "StoreUnavailableError",
    "TaskDuration",
    "TaskHistory",
    "TaskLog",
    "TaskRecord",
    "TaskRecordColumns",
    "WriteBatch",
]


class StoreError(PlaitError, RuntimeError):
    """The store refused an operation, or could not be reached."""


class RunExistsError(StoreError):
    """A run with this id is already in the store."""


class RunNotFoundError(StoreError, LookupError):
    """The store has no run with this id."""


class LeaseHeldError(StoreError):
    """Another process owns the run, and its lease has not expired."""

    def __init__(self, message: str, owner: str, until: float) -> None:
        super().__init__(message)
        self.owner = owner
        self.until = until


class LeaseLostError(StoreError):
    """This process no longer owns the run: its lease expired (another process may have taken
    it), so nothing this process does reaches the run's record any more.

    ``run_id`` is the run and ``owner`` its new owner, when they are known.
    """

    def __init__(self, message: str, *, run_id: str | None = None, owner: str | None = None):
        super().__init__(message)
        self.run_id = run_id
        self.owner = owner


class StoreUnavailableError(StoreError):
    """The store could not be reached, or stayed busy: SQLite's file was locked by another
    process, the PostgreSQL connection dropped or did not answer. The same operation may succeed
    later; a write that raised it may be made again safely (see :attr:`WriteBatch.key`).

    A run whose store stays unavailable for as long as its lease allows stops, and
    ``plait.run`` raises this error; ``run_id`` is then the run, and ``__cause__`` the store's
    last error.
    """

    def __init__(self, message: str, *, run_id: str | None = None):
        super().__init__(message)
        self.run_id = run_id


class StoreNotFoundError(StoreError, LookupError):
    """A store opened with ``create=False`` does not exist (no database file, no schema)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class RunRecord:
    """What the store knows about a run as a whole."""

    run_id: str
    workflow: str
    fingerprint: str
    definition: Sequence[Mapping[str, Any]]  # [{"id", "depends_on", "function"}], JSON-able
    config: Mapping[str, Any]  # JSON-able engine settings
    status: RunStatus
    created_at: float
    updated_at: float
    owner: str | None = None
    lease_expires_at: float | None = None
    finished_at: float | None = None
    error: str | None = None
    #: How to import the run's workflow (``pkg.flows:wf``, ``/abs/flow.py:wf``), when known: a
    #: hint for ``plait resume``, never imported without checks (see the CLI).
    target: str | None = None

    @property
    def stale(self) -> bool:
        """Whether the run is recorded ``running`` but no process holds it any more: its
        owner's lease expired (or it has none), so the owner is gone -- killed, or cut off from
        the store -- since :attr:`stale_since`. ``plait resume`` takes such a run over and
        ``plait cancel`` records it cancelled. Judged by this machine's clock when read."""
        return self.status is RunStatus.RUNNING and (
            self.owner is None
            or self.lease_expires_at is None
            or self.lease_expires_at <= time.time()
        )

    @property
    def stale_since(self) -> float | None:
        """For a :attr:`stale` run, when its owner's lease ran out (or when the run was last
        written, if it has no lease); None for any other run."""
        if not self.stale:
            return None
        return self.lease_expires_at if self.lease_expires_at is not None else self.updated_at


@dataclass(frozen=True, slots=True, kw_only=True)
class RunUpdate:
    """A change to a run's record, written with a batch.

    ``definition`` and ``fingerprint``, when given, replace the run's (a resume that accepted a
    changed workflow).
    """

    status: RunStatus
    finished_at: float | None = None
    error: str | None = None
    definition: Sequence[Mapping[str, Any]] | None = None
    fingerprint: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class TaskRecord:
    """A task's latest state in a run."""

    task_id: str
    status: TaskStatus
    attempts: int = 0
    output: Any = None  # bytes from the run's serializer (the memory store keeps the object)
    error: TaskError | None = None
    started_at: float | None = None
    finished_at: float | None = None
    skip_cause: SkipCause | None = None  # why a skipped task was skipped


@dataclass(frozen=True, slots=True, kw_only=True)
class InputRequest:
    """A question a task asked of a person, and the answer once it is given.

    ``key`` tells the questions of one task apart: ``""`` for the task's own ``pause``, and the
    key (or the 0-based order, as text) of each ``ctx.request_input`` call.
    """

    task_id: str
    key: str
    prompt: str
    schema: Mapping[str, Any] | None
    requested_at: float
    deadline: float | None = None
    answered: bool = False
    value: Any = None  # bytes from the run's serializer (the memory store keeps the object)
    answered_at: float | None = None
    #: Who answered (a name, as the answerer gave it), and through what: ``"web"``, ``"cli"``
    #: or ``"api"`` (see ``plait.AnswerChannel``); None for answers recorded before plait kept
    #: them, and for a default used when nobody answered in time.
    answered_by: str | None = None
    answered_via: str | None = None
    #: The answer used if nobody answers in time, made by the run's serializer (bytes; the
    #: memory store keeps the object); None when the question has none, or it could not be
    #: stored. Shown to people (the inbox), never needed to run: the workflow has it.
    default: Any = None


@dataclass(frozen=True, slots=True, kw_only=True)
class EventRecord:
    """One entry of a run's event log; ``data`` holds the event's other fields (JSON-able).

    ``seq`` is the entry's position in the store, set when it is loaded (None before it is
    written): it grows along a run's log, so ``load_events(run_id, after=seq)`` returns the
    entries written since. It is the store's, not the event's: two records equal as events
    compare equal whatever their ``seq``.
    """

    kind: str
    time: float
    task_id: str | None = None
    data: Mapping[str, Any] = field(default_factory=dict)
    seq: int | None = field(default=None, compare=False)


class TaskDuration(NamedTuple):
    """How long one succeeded attempt of a task ran: ``seconds`` from its start to its end, less
    the time it waited for people's answers (retry backoff lies between attempts, so it never
    counts). ``function`` names the task's function (``module:qualname``) and ``finished_at``
    orders the history, newest last.

    A named tuple rather than a frozen dataclass: the recorder makes one per succeeded task,
    under the engine's lock, and a named tuple costs a tenth as much to make.
    """

    task_id: str
    function: str
    seconds: float
    finished_at: float


class TaskHistory(NamedTuple):
    """What a store remembers of how long a task of a workflow took: the ``seconds`` of its
    latest succeeded attempts (at most :data:`HISTORY_KEPT`, newest first) and the function
    it called last (``module:qualname``).

    A named tuple rather than a frozen dataclass: a run's start reads one per task.
    """

    task_id: str
    function: str
    seconds: tuple[float, ...]


#: How many durations of each task a store keeps (the latest, by ``finished_at``).
HISTORY_KEPT = 5


@dataclass(frozen=True, slots=True, kw_only=True)
class TaskLog:
    """What one attempt of a task said, as far as it has come: its lines in order, with plait's
    note where lines were cut (see ``plait._logs``)."""

    task_id: str
    attempt: int
    lines: Sequence[LogLine]


_NO_CAUSES: list[SkipCause | None] = [None]


class TaskRecordColumns(Sequence[TaskRecord]):
    """Task records as columns (one list per field); a record is built only when it is read.

    The engine hands its records to the stores this way: the memory store keeps a whole run's
    columns as they are, so recording 100,000 tasks does not build 100,000 records that nobody
    may read, and the SQL stores turn the columns into rows without a record in between.
    ``output`` holds None for every task that did not succeed.
    """

    __slots__ = ("_columns",)

    def __init__(
        self,
        *,
        task_ids: Sequence[str],
        status: Sequence[TaskStatus],
        attempts: Sequence[int],
        output: Sequence[Any],
        error: Sequence[TaskError | None],
        started_at: Sequence[float | None],
        finished_at: Sequence[float | None],
        skip_cause: Sequence[SkipCause | None] | None = None,
    ) -> None:
        if skip_cause is None:
            skip_cause = _NO_CAUSES * len(task_ids)
        self._columns = (
            task_ids,
            status,
            attempts,
            output,
            error,
            started_at,
            finished_at,
            skip_cause,
        )

    def __len__(self) -> int:
        return len(self._columns[0])

    @classmethod
    def of(cls, records: Sequence[TaskRecord]) -> TaskRecordColumns:
        """``records`` as columns (the same object if they already are)."""
        if isinstance(records, TaskRecordColumns):
            return records
        return cls(
            task_ids=[r.task_id for r in records],
            status=[r.status for r in records],
            attempts=[r.attempts for r in records],
            output=[r.output for r in records],
            error=[r.error for r in records],
            started_at=[r.started_at for r in records],
            finished_at=[r.finished_at for r in records],
            skip_cause=[r.skip_cause for r in records],
        )

    def columns(self) -> tuple[Sequence[Any], ...]:
        """The eight columns, in :class:`TaskRecord`'s field order."""
        return self._columns

    @overload
    def __getitem__(self, i: int) -> TaskRecord: ...

    @overload
    def __getitem__(self, i: slice) -> Sequence[TaskRecord]: ...

    def __getitem__(self, i: int | slice) -> TaskRecord | Sequence[TaskRecord]:
        if isinstance(i, slice):
            return [self[j] for j in range(*i.indices(len(self)))]
        task_id, status, attempts, output, error, started_at, finished_at, cause = self._columns
        return TaskRecord(
            task_id=task_id[i],
            status=status[i],
            attempts=attempts[i],
            output=output[i],
            error=error[i],
            started_at=started_at[i],
            finished_at=finished_at[i],
            skip_cause=cause[i],
        )


class EventRecordColumns(Sequence[EventRecord]):
    """Log entries as columns (one list per field), in order; a record is built only when it
    is read. The engine hands its batches of events to the stores this way, so the SQL stores
    turn them into rows with no record in between."""

    __slots__ = ("_columns",)

    def __init__(
        self,
        *,
        kinds: Sequence[str],
        times: Sequence[float],
        task_ids: Sequence[str | None],
        data: Sequence[Mapping[str, Any]],
    ) -> None:
        self._columns = (kinds, times, task_ids, data)

    def __len__(self) -> int:
        return len(self._columns[0])

    @classmethod
    def of(cls, records: Sequence[EventRecord]) -> EventRecordColumns:
        """``records`` as columns (the same object if they already are)."""
        if isinstance(records, EventRecordColumns):
            return records
        return cls(
            kinds=[r.kind for r in records],
            times=[r.time for r in records],
            task_ids=[r.task_id for r in records],
            data=[r.data for r in records],
        )

    def columns(self) -> tuple[Sequence[Any], ...]:
        """The four columns, in :class:`EventRecord`'s field order."""
        return self._columns

    @overload
    def __getitem__(self, i: int) -> EventRecord: ...

    @overload
    def __getitem__(self, i: slice) -> Sequence[EventRecord]: ...

    def __getitem__(self, i: int | slice) -> EventRecord | Sequence[EventRecord]:
        if isinstance(i, slice):
            return [self[j] for j in range(*i.indices(len(self)))]
        kinds, times, task_ids, data = self._columns
        return EventRecord(kind=kinds[i], time=times[i], task_id=task_ids[i], data=data[i])


@dataclass(slots=True, kw_only=True)
class WriteBatch:
    """Changes to one run, applied together by :meth:`Store.write`.

    ``dropped`` names tasks whose record and input requests are deleted first (a resume that
    clears tasks to run them again, or removes them from the run); the batch's own records are
    written after, so a dropped task can be written afresh in the same batch.

    ``key``, when given, names the batch so that writing it again is harmless: the store keeps
    the key of the last batch it applied to the run, and a batch with that key is not applied a
    second time. A writer whose commit's outcome is unknown (the connection dropped while it
    committed) writes the same batch again, with its key, and no event is logged twice.
    """

    run: RunUpdate | None = None
    tasks: Sequence[TaskRecord] = field(default_factory=list)
    requests: list[InputRequest] = field(default_factory=list)
    events: Sequence[EventRecord] = field(default_factory=list)
    logs: Sequence[TaskLog] = field(default_factory=list)
    dropped: Sequence[str] = ()
    key: str | None = None
    #: Requests to the run (see ``plait._requests``) the owner acted on: their state, ``done_at``
    #: and ``outcome`` are written (keyed by ``request_id``); a request the store lacks is ignored.
    requests_done: list[RunRequest] = field(default_factory=list)
    #: How long attempts that succeeded ran: history of the run's workflow, appended.
    durations: Sequence[TaskDuration] = ()

    def __bool__(self) -> bool:
        return bool(
            self.run
            or self.durations
            or self.tasks
            or self.requests
            or self.events
            or self.logs
            or self.dropped
            or self.requests_done
        )


class Store(ABC):
    """Durable state of runs; one module per backend (memory, SQLite, PostgreSQL).

    Methods are synchronous and thread-safe; the engine calls them from a writer thread.
    """

    #: Whether the state outlives the process (the memory store's does not).
    durable: bool = True

    @abstractmethod
    def create_run(self, run: RunRecord) -> None:
        """Add a new run, owned (leased) as ``run`` says.

        Raises:
            RunExistsError: the store already has a run with this id.
        """

    @abstractmethod
    def get_run(self, run_id: str) -> RunRecord | None:
        """The run's record, or None."""

    @abstractmethod
    def list_runs(
        self,
        *,
        status: RunStatus | None = None,
        workflow: str | None = None,
        before: str | None = None,
        limit: int = 50,
    ) -> RunPage:
        """A page of at most ``limit`` runs, newest first (by ``created_at``, then ``run_id``),
        only those with ``status`` and of ``workflow`` if given; see ``stores/_listing.py``.

        ``before`` is the ``next_cursor`` of the previous page: this page starts after it.

        Raises:
            InvalidCursorError: ``before`` is not a cursor a page handed out.
            ValueError: ``limit`` is not a whole number >= 0.
        """

    @abstractmethod
    def open_questions(self, *, limit: int = 100) -> list[OpenQuestion]:
        """Every question not answered yet, of runs paused or running, across all runs: the
        earliest deadline first, questions with no deadline last, then the oldest first; at
        most ``limit``. One query, whatever the number of runs.

        Raises:
            ValueError: ``limit`` is not a whole number >= 0.
        """

    @abstractmethod
    def claim(
        self, run_id: str, owner: str, *, lease_seconds: float, force: bool = False
    ) -> RunRecord:
        """Make ``owner`` the run's owner until ``now + lease_seconds``; atomic.

        Succeeds when the run has no owner, its lease expired, ``owner`` already holds it, or
        ``force``. Returns the run's record as claimed.

        Raises:
            RunNotFoundError: no such run.
            LeaseHeldError: another owner's lease is live (and not ``force``).
        """

    @abstractmethod
    def renew(self, run_id: str, owner: str, *, lease_seconds: float) -> None:
        """Extend ``owner``'s lease to ``now + lease_seconds``.

        Raises:
            LeaseLostError: ``owner`` no longer holds the run.
        """

    @abstractmethod
    def release(self, run_id: str, owner: str) -> None:
        """Give up ``owner``'s lease, if it still holds it; otherwise do nothing."""

    @abstractmethod
    def write(self, run_id: str, owner: str, batch: WriteBatch) -> None:
        """Apply ``batch`` in one transaction, if ``owner`` holds the run's lease.

        The tasks in ``batch.dropped`` lose their records and input requests first; then task
        records and input requests replace earlier ones with the same key; events are appended
        in order. A batch whose ``key`` is that of the last batch applied to the run is not
        applied again (it was, though its writer could not know).

        Raises:
            LeaseLostError: ``owner`` no longer holds the run; nothing was written.
            StoreUnavailableError: the store could not be reached or stayed busy; nothing was
                written, or the commit's outcome is unknown: write the same batch again.
        """

    @abstractmethod
    def load_tasks(self, run_id: str) -> dict[str, TaskRecord]:
        """Each task's latest record, by task id (tasks never recorded are absent)."""

    @abstractmethod
    def load_requests(self, run_id: str) -> list[InputRequest]:
        """The run's input requests, in the order they were first made."""

    @abstractmethod
    def load_events(self, run_id: str, *, after: int | None = None) -> list[EventRecord]:
        """The run's event log, oldest first, each entry with its ``seq``; only the entries
        after ``after`` (the ``seq`` of the last entry the caller has) when given: tailing a
        live run's log is calling again with the last ``seq`` seen.

        Raises:
            RunNotFoundError: no such run.
        """

    @abstractmethod
    def load_logs(
        self, run_id: str, *, task_id: str | None = None, attempt: int | None = None
    ) -> list[TaskLog]:
        """The run's task logs, one per attempt that said something, by task id then attempt;
        only ``task_id``'s (and only attempt ``attempt``) when given.

        Raises:
            RunNotFoundError: no such run.
        """

    @abstractmethod
    def task_history(self, workflow: str) -> Sequence[TaskHistory]:
        """The history of ``workflow``'s succeeded attempts: for each task id that has one,
        its latest :data:`HISTORY_KEPT` durations, newest first, in any run of a workflow of
        that name (the latest written; within one batch, the latest by ``finished_at``), in no
        particular order. Read in one query (one row per task), to learn estimates at a run's
        start."""

    @abstractmethod
    def set_trace_context(self, run_id: str, trace_context: str) -> None:
        """Record the run's trace context -- the W3C ``traceparent`` of its first ``plait.run``
        span -- unless it has one already: the first process that traced the run names the
        trace, and a resumed run continues it (see ``plait._tracing``). Not fenced: it names the
        run's trace, not its progress.

        Raises:
            RunNotFoundError: no such run.
        """

    @abstractmethod
    def get_trace_context(self, run_id: str) -> str | None:
        """The run's trace context, or None if it was never traced (or there is no such
        run)."""

    # -- requests to a live run (see plait._requests) -----------------------------------------

    @abstractmethod
    def send_request(self, run_id: str, request: RunRequest) -> None:
        """Add ``request`` (pending) for the run's owner. A request whose id the run already has
        is left as it is: sending twice is sending once.

        Raises:
            RunNotFoundError: no such run.
        """

    @abstractmethod
    def take_requests(self, run_id: str, owner: str) -> list[RunRequest]:
        """Mark the pending requests addressed to ``owner`` taken, and return them (taken),
        oldest first; atomic, so each request is taken once.

        Raises:
            LeaseLostError: ``owner`` no longer holds the run; nothing was taken.
            RunNotFoundError: no such run.
        """

    @abstractmethod
    def get_request(self, run_id: str, request_id: str) -> RunRequest | None:
        """The request as it stands (its outcome once done), or None if the run has no such
        request.

        Raises:
            RunNotFoundError: no such run.
        """

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release connections; the store is not used afterwards."""

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
