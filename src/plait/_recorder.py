"""Recording a run in its store: every change, in order, written in batches by one thread.

The engine hands the :class:`Recorder` every event while it holds its lock; that only appends
the event and marks its task as changed. A writer thread takes whatever is pending and writes it
in one transaction. Each batch holds the events in the order they happened and one record per
changed task, read when the batch is taken (under the engine's lock, so the records are a
consistent cut of the run). The same thread renews the run's lease, every third of its length.
``TaskReady`` events are not logged: a task is ready when its last dependency succeeded, which
the log already says.

When to write: a change that follows a quiet spell is written at once; while the run is busy,
what gathered is written every ``interval`` (:data:`WRITE_INTERVAL`, 0.1 s), and what is
pending when the run ends or pauses is written then. Writing more often would cost a busy run
dearly, because of how CPython shares its GIL (bpo-7946): a thread that blocks -- here in
SQLite or on the network -- and wants the GIL back while the event loop keeps running waits
until it wins a race for it, and each failed try wakes it for nothing; those wake-ups slowed the
run they record by 30-40 %. At most ten writes a second keep that cost small, and a crash loses
at most the last interval's progress (its tasks run again on resume).

An attempt that starts and ends within one batch -- most of them, in a busy run -- is logged as
one row, the event that ended it, whose data holds ``started`` (the attempt's start time); its
``TaskStarted`` row is left out. An attempt still running when a batch is written keeps its own
``TaskStarted`` row, so the log of a run that crashed shows what was in flight. (Temporal's
history does the same with activity starts.) This halves the rows a run writes.

A task recorded ``succeeded`` is never run again; a task that finished just before a crash, whose
record had not been written yet, runs again when the run is resumed (at-least-once).

With a store that is not durable (the memory store) nothing is written while the run goes; the
whole state is written once, when the run ends or pauses.

**The lease.** The writer renews the run's lease every third of ``lease_seconds``. The owner
keeps its own deadline on :func:`lease_clock` -- a monotonic clock that keeps counting while the
process is stopped or the machine sleeps: the start of its last successful renewal plus 90 % of
the lease (:data:`LEASE_MARGIN`: the store stamped the expiry later than that start, and the rest
is time to cancel what runs). The engine starts no task past that deadline, and a timer stops
the run when it passes (:meth:`Recorder.lease_error` says why). A store that says another
process owns the run (:class:`LeaseLostError`) stops it too. The store's fencing is the second
line: a write by an owner that lost the run is refused, so nothing it does later is recorded.

**When the store fails.** A call that fails with :class:`StoreUnavailableError` (SQLite
locked, a PostgreSQL connection dropped) is retried with backoff (:data:`RETRY_DELAYS`) for as
long as the lease holds, each batch under its own key (``WriteBatch.key``), so a batch whose
commit did land is not applied twice. The engine holds back new tasks from the moment a store
call fails, or has been under way for :data:`STALL_SECONDS` (the *gate*, see
:meth:`_Run.store_stalls <plait._engine._Run.store_stalls>`), until a call succeeds: while
nothing can be recorded nothing new starts, so a crash then repeats no more finished work than
the tasks that were running. If the lease's deadline passes first, the run stops with
:class:`StoreUnavailableError`; any other store error stops it at once. On the way out the
writer tries once more to write what is pending and to release the lease, so that the run can be
resumed at once; after a :class:`LeaseLostError` it writes nothing.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from enum import Enum
from typing import Any

from ._events import (
    Event,
    InputRequested,
    TaskCancelled,
    TaskFailed,
    TaskReady,
    TaskRetrying,
    TaskStarted,
    TaskSucceeded,
)
from ._pause import Question
from ._results import TaskError
from ._serialization import Serializer
from .stores import (
    EventRecordColumns,
    InputRequest,
    LeaseLostError,
    RunUpdate,
    Store,
    StoreError,
    StoreUnavailableError,
    TaskRecord,
    TaskRecordColumns,
    WriteBatch,
)

__all__ = [
    "LEASE_MARGIN",
    "RETRY_DELAYS",
    "STALL_SECONDS",
    "WRITE_INTERVAL",
    "Recorder",
    "lease_clock",
    "question_of",
    "request_of",
]

#: Seconds between two writes of a busy run (see the module docstring).
WRITE_INTERVAL = 0.1

#: The share of its lease that an owner does not use: it starts nothing once 90 % of the lease
#: has passed since the start of its last renewal.
LEASE_MARGIN = 0.1

#: Seconds a store call may take before the engine stops starting tasks until it succeeds (a
#: write normally takes milliseconds; a big one, a tenth of a second).
STALL_SECONDS = 0.5

#: Seconds between tries of a store call that failed with StoreUnavailableError; the last
#: delay repeats until the lease's deadline.
RETRY_DELAYS = (0.05, 0.1, 0.2, 0.5, 1.0)

#: Seconds on a clock that never jumps and keeps counting while the process is stopped or the
#: machine is suspended (CLOCK_BOOTTIME; ``time.monotonic`` where there is none): a lease
#: deadline on a clock that paused during a suspend would let an owner start tasks after its
#: lease expired in the store.
lease_clock: Callable[[], float] = (
    functools.partial(time.clock_gettime, time.CLOCK_BOOTTIME)
    if hasattr(time, "CLOCK_BOOTTIME")
    else time.monotonic
)

_log = logging.getLogger("plait.store")


class Recorder:
    """Writes one run's progress to its store and keeps its lease; see the module docstring.

    Thread contract: the engine calls the journal (this object) while it holds its lock
    (``lock``), and :meth:`answered` without it; the writer thread takes the same lock only to
    swap the pending batch out and to read the records of the tasks that changed -- a consistent
    cut of the run. The writer tells the engine about the lease and the store through the
    ``on_*`` callbacks, from its own thread.

    Args:
        lease_start: when (on :func:`lease_clock`) the run's lease was taken: just before the
            run was created or claimed.
        on_renewed: called with the new deadline of the lease after each renewal.
        on_stall: called with the time from which the engine must start no task until the
            store answers (a call began: that time plus :data:`STALL_SECONDS`; a call failed:
            now), and with None once a call succeeded.
        on_failure: called once, with the :class:`LeaseLostError` or
            :class:`StoreUnavailableError` that ends the recording.
    """

    def __init__(
        self,
        store: Store,
        run_id: str,
        owner: str,
        *,
        serializer: Serializer,
        lease_seconds: float,
        lease_start: float | None = None,
        interval: float = WRITE_INTERVAL,
        lock: threading.Lock,
        task_columns: Callable[[list[str]], TaskRecordColumns],
        on_failure: Callable[[BaseException], None],
        on_renewed: Callable[[float], None] = lambda deadline: None,
        on_stall: Callable[[float | None], None] = lambda at: None,
    ) -> None:
        self.store = store
        self.run_id = run_id
        self.owner = owner
        self._serializer = serializer
        self._lease_seconds = lease_seconds
        if lease_start is None:
            lease_start = lease_clock()
        self._renewed_at = lease_start
        #: The owner's own deadline for its lease, on lease_clock (see the module docstring).
        self.deadline = lease_start + lease_seconds * (1 - LEASE_MARGIN)
        self._interval = interval
        self._next_write = 0.0  # monotonic time before which a change does not wake the writer
        self._lock = lock
        self._task_columns = task_columns
        self._on_failure = on_failure
        self._on_renewed = on_renewed
        self._on_stall = on_stall
        self._wakeup = threading.Event()
        self._abandoned = threading.Event()  # close() stopped waiting for the writer
        self._events: list[_Logged | None] = []  # None: a start folded into its attempt's end
        self._starts: dict[str, int] = {}  # task id -> the place of its running attempt's start
        self._changed: dict[str, None] = {}  # task ids whose record must be written, in order
        self._snapshot: TaskRecordColumns | None = None
        self._requests: list[InputRequest] = []
        self._run_update: RunUpdate | None = None
        self._unwritten: list[WriteBatch] = []  # batches the store did not take, in order
        self._batches = 0  # batches made, for their keys
        self._closing = False
        self._calling_since: float | None = None  # lease_clock time the current call began
        self._trouble: StoreUnavailableError | None = None  # the last failure being retried
        self.failure: BaseException | None = None
        self._thread: threading.Thread | None = None

    # -- called by the engine, under its lock ------------------------------------------------

    def __call__(
        self, kind: type[Event], at: float, task_id: str | None, data: dict[str, Any]
    ) -> None:
        """Journal: queue the event, and mark the task it changed."""
        if kind is TaskReady:  # derivable (a task is ready when its last dependency succeeds)
            return
        events = self._events
        started = None
        if task_id is not None:
            self._changed[task_id] = None
            starts = self._starts
            if kind is TaskStarted:
                starts[task_id] = len(events)
            elif (place := starts.pop(task_id, None)) is not None and kind in _ATTEMPT_ENDS:
                start = events[place]  # fold it into this row
                assert start is not None
                events[place] = None
                started = start[1]
            if kind is InputRequested:
                self._requests.append(request_of(data["question"]))
        events.append((kind, at, task_id, data, started))
        if time.monotonic() >= self._next_write and not self._wakeup.is_set():
            self._wakeup.set()  # after a quiet spell: write now (while busy: at the interval)

    def answered(self, question: Question, value: Any, at: float) -> None:
        """Queue the record of an answer (its value serialized here, so a bad one fails now)."""
        record = dataclasses.replace(
            request_of(question), answered=True, value=self._serializer.dumps(value), answered_at=at
        )
        with self._lock:
            self._requests.append(record)
        self._wakeup.set()

    def snapshot(self, tasks: TaskRecordColumns, questions: list[Question]) -> None:
        """Queue the whole state at once (for a store that is written only at the end)."""
        with self._lock:
            self._snapshot = tasks
            self._requests[:0] = [request_of(question) for question in questions]

    def lease_error(self) -> LeaseLostError | StoreUnavailableError:
        """Why the lease's deadline passed without a renewal: the store failed, or did not
        answer, or (the store being fine) this process did not run in time -- it was stopped
        (SIGSTOP), suspended, or starved."""
        now = lease_clock()
        since = self._calling_since
        trouble = self._trouble
        if trouble is not None or since is not None:  # a store call failed, or is not over
            return self._unavailable(trouble, since)
        return LeaseLostError(
            f"plait lost run {self.run_id!r}: its lease was last renewed "
            f"{now - self._renewed_at:.1f}s ago and lasts {self._lease_seconds:g}s, so another "
            "process may have taken the run over; this process started nothing more and "
            "cancelled its running tasks",
            run_id=self.run_id,
        )

    # -- life cycle ---------------------------------------------------------------------------

    def start(self) -> None:
        """Start the writer thread."""
        self._next_write = time.monotonic() + self._interval  # the run was just created
        self._thread = threading.Thread(
            target=self._write_loop, name=f"plait-recorder-{self.run_id}", daemon=True
        )
        self._thread.start()

    def close(self, update: RunUpdate) -> None:
        """Write everything still pending and ``update``, release the lease, stop the thread.

        Waits for the writer until the lease's deadline, and at least a third of the lease (5 s
        at most) -- long enough for a store that answers, not forever for one that hangs: a
        writer still waiting for its store then is abandoned (it writes nothing more once its
        call returns), and :attr:`failure` says the store did not answer.
        """
        with self._lock:
            self._run_update = update
            self._closing = True
        self._wakeup.set()
        thread = self._thread
        if thread is None:  # never started: write in this thread
            if self.failure is None:
                self._flush()
                self.store.release(self.run_id, self.owner)
            return
        patience = min(self._lease_seconds / 3, 5.0)
        thread.join(timeout=max(self.deadline - lease_clock(), patience))
        if thread.is_alive():
            self._abandoned.set()
            if self.failure is None:
                self.failure = self._unavailable(self._trouble, self._calling_since)
            _log.error(
                "run %r: gave up waiting for its store; what was not written is lost",
                self.run_id,
            )

    def _write_loop(self) -> None:
        renew_every = self._lease_seconds / 3
        while True:
            self._wakeup.wait(timeout=self._interval)
            self._wakeup.clear()
            closing = self._closing
            now = time.monotonic()
            self._next_write = now + self._interval  # changes from now on wait for the interval
            if self.failure is None:
                try:
                    if not self._flush():
                        self._next_write = now  # quiet: the next change is written at once
                    if lease_clock() >= self._renewed_at + renew_every:
                        self._renew()
                except (LeaseLostError, StoreUnavailableError) as error:
                    self._fail(error)
                except BaseException as error:  # a store error that will not pass, or a bug
                    self._fail(self._unavailable(error, None))
            if closing or self._abandoned.is_set():
                self._finish()
                return

    def _fail(self, error: LeaseLostError | StoreUnavailableError) -> None:
        if isinstance(error, LeaseLostError):
            error = self._lost(error)
        self.failure = error
        _log.error("run %r can no longer be recorded: %s", self.run_id, error)
        self._tell(self._on_failure, error)

    def _finish(self) -> None:
        """On the way out: after a store failure, try once more to write what is pending (the
        lease may still be ours); release the lease unless it was lost."""
        if isinstance(self.failure, LeaseLostError) or self._abandoned.is_set():
            return
        if self.failure is not None:
            try:
                self._flush(retry=False)
            except Exception as error:  # it stays unrecorded: the resume runs it again
                _log.warning("run %r: its last changes were not recorded: %s", self.run_id, error)
        try:
            self.store.release(self.run_id, self.owner)
        except Exception as error:  # the run is over; a lease that lapses on its own is harmless
            _log.warning("run %r: could not release its lease: %s", self.run_id, error)

    def _tell(self, callback: Callable[[Any], None], value: Any) -> None:
        """Tell the engine, unless the run is over (``close`` was called): its loop may be gone."""
        if not self._closing:
            callback(value)

    def _renew(self) -> None:
        started = self._call(
            lambda: self.store.renew(self.run_id, self.owner, lease_seconds=self._lease_seconds)
        )
        self._renewed_at = started
        self.deadline = started + self._lease_seconds * (1 - LEASE_MARGIN)
        self._tell(self._on_renewed, self.deadline)

    def _call(self, call: Callable[[], None], *, retry: bool = True) -> float:
        """Make a store call; retry it with backoff while it fails with StoreUnavailableError
        and the lease holds. Returns when (on lease_clock) the try that succeeded began."""
        delays = iter(RETRY_DELAYS)
        delay = 0.0
        self._calling_since = first = lease_clock()
        self._tell(self._on_stall, first + STALL_SECONDS)
        while True:
            began = lease_clock()
            try:
                call()
            except StoreUnavailableError as error:
                self._trouble = error
                self._tell(self._on_stall, lease_clock())  # nothing can be recorded: start nothing
                delay = next(delays, delay)
                if not retry or lease_clock() + delay >= self.deadline:
                    raise self._unavailable(error, first) from error
                _log.warning(
                    "run %r: store unavailable, retrying in %gs: %s", self.run_id, delay, error
                )
                if self._abandoned.wait(delay):
                    raise self._unavailable(error, first) from error
                continue
            self._trouble = None
            self._calling_since = None
            self._tell(self._on_stall, None)
            return began

    def _unavailable(
        self, error: BaseException | None, since: float | None
    ) -> StoreUnavailableError:
        """The error a run stops with when its store cannot record it."""
        if isinstance(error, StoreUnavailableError) and error.run_id == self.run_id:
            return error  # made here already
        if error is not None and not isinstance(error, StoreError):
            what = f"{type(error).__name__}: {error}"
        else:
            what = str(error) if error is not None else "it did not answer"
        waited = "" if since is None else f" for {lease_clock() - since:.1f}s"
        unavailable = StoreUnavailableError(
            f"run {self.run_id!r} stopped: its store could not record it{waited} ({what}); "
            "nothing more was started, and the running tasks were cancelled",
            run_id=self.run_id,
        )
        unavailable.__cause__ = error
        return unavailable

    def _lost(self, error: LeaseLostError) -> LeaseLostError:
        """The error a run stops with when the store says another process owns it."""
        owner = error.owner
        by = f": its owner is now {owner!r}" if owner else ": it has no owner now"
        lost = LeaseLostError(
            f"plait lost run {self.run_id!r}{by}; this process started nothing more, cancelled "
            "its running tasks, and recorded nothing after that",
            run_id=self.run_id,
            owner=owner,
        )
        lost.__cause__ = error
        return lost

    def _flush(self, *, retry: bool = True) -> bool:
        """Write what is pending, in one transaction; False if there was nothing.

        Each batch gets a key (the owner's id and a count), so writing it again is harmless. A
        batch the store did not take stays pending, ahead of newer changes, for a last try on
        the way out."""
        with self._lock:
            events, self._events = self._events, []
            self._starts = {}
            changed, self._changed = self._changed, {}
            snapshot, self._snapshot = self._snapshot, None
            requests, self._requests = self._requests, []
            update, self._run_update = self._run_update, None
            tasks: Sequence[TaskRecord] = snapshot or (
                self._task_columns(list(changed)) if changed else []
            )
        batch = WriteBatch(
            run=update,
            tasks=tasks,
            requests=requests,
            events=_event_columns(events),
        )
        pending = [*self._unwritten, batch] if batch else self._unwritten
        self._unwritten = []
        if not pending:
            return False
        for n, each in enumerate(pending):
            if each.key is None:
                self._batches += 1
                each.key = f"{self.owner}#{self._batches}"
            try:
                self._call(
                    functools.partial(self.store.write, self.run_id, self.owner, each),
                    retry=retry,
                )
            except BaseException:
                self._unwritten = pending[n:]  # kept, in order, for a last try on the way out
                raise
        return True


#: An event as the journal gives it (its class, time, task id and other fields), and the start
#: time of the attempt it ends, if that start was folded into it.
_Logged = tuple[type[Event], float, str | None, dict[str, Any], float | None]

#: The events that end an attempt, into which its start is folded.
_ATTEMPT_ENDS = frozenset({TaskSucceeded, TaskRetrying, TaskFailed, TaskCancelled})


def question_of(request: InputRequest) -> Question:
    """The question a stored request asks (its answer, if any, aside)."""
    return Question(
        task_id=request.task_id,
        prompt=request.prompt,
        schema=request.schema,
        key=request.key,
        deadline=request.deadline,
        asked_at=request.requested_at,
    )


def request_of(question: Question) -> InputRequest:
    """The store's record of ``question``, not answered yet."""
    return InputRequest(
        task_id=question.task_id,
        key=question.key,
        prompt=question.prompt,
        schema=question.schema,
        requested_at=question.asked_at,
        deadline=question.deadline,
    )


def _event_columns(events: list[_Logged | None]) -> EventRecordColumns:
    """The log entries of ``events`` (folded starts left out), their data made JSON-able."""
    kinds: list[str] = []
    times: list[float] = []
    task_ids: list[str | None] = []
    data: list[Mapping[str, Any]] = []
    for event in events:
        if event is None:
            continue
        kind, at, task_id, fields, started = event
        if kind is not TaskStarted and kind is not TaskSucceeded:  # those two hold numbers only
            fields = {
                name: value if type(value) in _PLAIN else _jsonable(value)
                for name, value in fields.items()
            }
        if started is not None:
            fields = {**fields, "started": started}
        kinds.append(kind.__name__)
        times.append(at)
        task_ids.append(task_id)
        data.append(fields)
    return EventRecordColumns(kinds=kinds, times=times, task_ids=task_ids, data=data)


_PLAIN = frozenset({int, float, str, bool, type(None)})


def _jsonable(value: Any) -> Any:
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, TaskError):
        return {"type": value.type, "message": value.message, "traceback": value.traceback}
    if isinstance(value, Question):
        return {
            "prompt": value.prompt,
            "key": value.key,
            "schema": value.schema,
            "deadline": value.deadline,
        }
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if value is None or isinstance(value, str | int | float | bool):
        return value
    return repr(value)
