"""What a store keeps, record by record: a run, its tasks, their questions, its event log, its
tasks' logs and durations; and the :class:`WriteBatch` that carries changes to one run.

The rules each backend keeps with them are in ``_base.py``; the columnar forms the engine hands
to the stores are in ``_columns.py``.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from .._logs import LogLine
from .._requests import RunRequest
from .._results import TaskError
from .._state import RunStatus, SkipCause, TaskStatus

__all__ = [
    "HISTORY_KEPT",
    "EventRecord",
    "InputRequest",
    "RunRecord",
    "RunUpdate",
    "TaskDuration",
    "TaskHistory",
    "TaskLog",
    "TaskRecord",
    "WriteBatch",
]


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
