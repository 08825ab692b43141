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

from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import TYPE_CHECKING, Self

from .._requests import RunRequest
from .._state import RunStatus
from ._columns import EventRecordColumns, TaskRecordColumns
from ._errors import (
    LeaseHeldError,
    LeaseLostError,
    RunExistsError,
    RunNotFoundError,
    StoreError,
    StoreNotFoundError,
    StoreUnavailableError,
)
from ._records import (
    HISTORY_KEPT,
    EventRecord,
    InputRequest,
    RunRecord,
    RunUpdate,
    TaskDuration,
    TaskHistory,
    TaskLog,
    TaskRecord,
    WriteBatch,
)

if TYPE_CHECKING:
    from ._listing import OpenQuestion, RunPage

# The interface, and (re-exported) the records and errors it speaks in.
__all__ = [
    "HISTORY_KEPT",
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
