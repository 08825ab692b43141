"""Recording a run in its store: every change, in order, written in batches by one thread.

The engine hands the recorder's :class:`~plait._pending_log.PendingLog` every event while it
holds its lock; that only keeps the event and marks its task as changed (a task's start is
kept aside: see ``_pending_log``). A writer thread takes whatever is pending and writes it
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

Task logs (see ``_logs``) ride in the same batches: an attempt's log tells the recorder when it
changes (:meth:`Recorder.log_changed`, from any thread, with no lock), and each batch takes the
logs that changed -- after it took the task records, so a line said before an attempt ended is
written with the record of that end or before it -- and writes each whole, in the same
transaction as the rest of the batch.

A task recorded ``succeeded`` is never run again; a task that finished just before a crash, whose
record had not been written yet, runs again when the run is resumed (at-least-once).

At the same wake-ups the run's :class:`~plait._requests.Inbox` (if any) looks for requests sent
to the run through the store (a cancel); the outcomes of those it acted on are written with the
next batch, in the same transaction as what they describe.

With a store that is not durable (the memory store) nothing is written while the run goes; the
whole state is written once, when the run ends or pauses.

**The lease, and a failing store.** The same thread renews the run's lease and makes every
store call through its :class:`~plait._lease.Lease`, which keeps the owner's own deadline,
retries a store that is unavailable, and tells the engine when to hold new tasks (see
``_lease.py``). Each batch is written under its own key (``WriteBatch.key``), so a batch whose
commit did land before the connection dropped is not applied twice. A store that says another
process owns the run (:class:`LeaseLostError`), a store unavailable until the lease's deadline,
or any other store error ends the recording (``on_failure``): the engine stops the run. On the
way out the writer tries once more to write what is pending, and releases the lease, so that the
run can be resumed at once; after a :class:`LeaseLostError` it writes nothing.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from ._lease import Lease, lease_clock
from ._logs import AttemptLog
from ._pause import Question
from ._pending_log import PendingLog
from ._requests import Inbox
from ._run_records import event_columns, request_of, taken_logs
from ._serialization import Serializer
from .stores import (
    LeaseLostError,
    RunUpdate,
    Store,
    StoreUnavailableError,
    TaskDuration,
    TaskRecord,
    TaskRecordColumns,
    WriteBatch,
)
from .stores._history import TimedDurations

__all__ = ["WRITE_INTERVAL", "Recorder"]

#: Seconds between two writes of a busy run (see the module docstring).
WRITE_INTERVAL = 0.1

_log = logging.getLogger("plait.store")


class Recorder:
    """Writes one run's progress to its store and keeps its lease; see the module docstring.

    Thread contract: the engine calls :attr:`journal` while it holds its lock
    (``lock``), and :meth:`answered` without it; the writer thread takes the same lock only to
    swap the pending batch out and to read the records of the tasks that changed -- a consistent
    cut of the run. The writer tells the engine about the lease and the store through the
    ``on_*`` callbacks, from its own thread.

    Args:
        lease_start: when (on ``lease_clock``) the run's lease was taken: just before the run
            was created or claimed (default: now).
        on_renewed, on_stall: the :class:`~plait._lease.Lease`'s callbacks to the engine.
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
        inbox: Inbox | None = None,
        functions: Mapping[str, str] | None = None,
        on_write: Callable[[float], object] | None = None,
    ) -> None:
        self.store = store
        self.run_id = run_id
        self.owner = owner
        self._serializer = serializer
        #: The run's lease, and the store calls made under it.
        self.lease = Lease(
            store,
            run_id,
            owner,
            seconds=lease_seconds,
            start=lease_clock() if lease_start is None else lease_start,
            on_renewed=on_renewed,
            on_stall=on_stall,
        )
        self._interval = interval
        self._lock = lock
        self._task_columns = task_columns
        self._on_failure = on_failure
        self._inbox = inbox  # requests to the run, looked for at the writer's wake-ups
        self._wakeup = threading.Event()
        #: What the engine journaled since the last batch (it journals into this directly),
        #: and the durations of succeeded attempts, learned from ``functions``' tasks.
        self.journal = PendingLog(functions, self._wake, serializer)
        self._snapshot: TaskRecordColumns | None = None
        self._logs: deque[AttemptLog] = deque()  # logs changed since the last write
        self._run_update: RunUpdate | None = None
        self._unwritten: list[WriteBatch] = []  # batches the store did not take, in order
        self._batches = 0  # batches made, for their keys
        self._closing = False
        self.failure: BaseException | None = None
        self._thread: threading.Thread | None = None
        self._on_write = on_write  # told how long each batch took to write (metrics)
        #: Given whole, by snapshot(): the memory store's, built only if someone reads them.
        self._durations: Sequence[TaskDuration] = ()

    def _wake(self) -> None:
        """Wake the writer (a change after a quiet spell)."""
        self._wakeup.set()

    def log_changed(self, log: AttemptLog) -> None:
        """An attempt's log changed (any thread, no lock: a deque's append is atomic)."""
        self._logs.append(log)
        journal = self.journal
        if journal.quiet:
            journal.quiet = False
            self._wakeup.set()

    def answered(
        self,
        question: Question,
        value: Any,
        at: float,
        *,
        by: str | None = None,
        via: str | None = None,
    ) -> None:
        """Queue the record of an answer (its value serialized here, so a bad one fails now),
        with who gave it and through what."""
        record = dataclasses.replace(
            request_of(question, self._serializer),
            answered=True,
            value=self._serializer.dumps(value),
            answered_at=at,
            answered_by=by,
            answered_via=via,
        )
        with self._lock:
            self.journal.requests.append(record)
        self._wakeup.set()

    def snapshot(
        self,
        tasks: TaskRecordColumns,
        questions: list[Question],
        durations: Sequence[TaskDuration] = (),
    ) -> None:
        """Queue the whole state at once (for a store that is written only at the end), with
        the ``durations`` of succeeded attempts it can tell."""
        with self._lock:
            self._durations = durations
            self._snapshot = tasks
            self.journal.requests[:0] = [request_of(q, self._serializer) for q in questions]

    # -- life cycle ---------------------------------------------------------------------------

    def start(self) -> None:
        """Start the writer thread (the run was just created: busy for the first interval)."""
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
        lease = self.lease
        with self._lock:
            self._run_update = update
            self._closing = True
            lease.silent = True  # the engine is done: its loop may be gone
        self._wakeup.set()
        thread = self._thread
        if thread is None:  # never started: write in this thread
            if self.failure is None:
                self._flush()
                self.store.release(self.run_id, self.owner)
            return
        patience = min(lease.seconds / 3, 5.0)
        thread.join(timeout=max(lease.deadline - lease_clock(), patience))
        if thread.is_alive():
            lease.abandoned.set()
            if self.failure is None:
                self.failure = lease.unavailable(lease.trouble, lease.calling_since)
            _log.error(
                "run %r: gave up waiting for its store; what was not written is lost",
                self.run_id,
            )

    def _write_loop(self) -> None:
        lease = self.lease
        while True:
            self._wakeup.wait(timeout=self._interval)
            self._wakeup.clear()
            closing = self._closing
            if self.failure is None:
                try:
                    if not self._flush():
                        self.journal.quiet = True  # the next change is written at once
                    if self._inbox is not None and not closing:
                        self._inbox.check(time.monotonic())
                    if lease.due:
                        lease.renew()
                except (LeaseLostError, StoreUnavailableError) as error:
                    self._fail(error)
                except BaseException as error:  # a store error that will not pass, or a bug
                    self._fail(lease.unavailable(error))
            if closing or lease.abandoned.is_set():
                self._finish()
                return

    def _fail(self, error: LeaseLostError | StoreUnavailableError) -> None:
        if isinstance(error, LeaseLostError):
            error = self.lease.lost(error)
        self.failure = error
        _log.error("run %r can no longer be recorded: %s", self.run_id, error)
        if not self.lease.silent:
            self._on_failure(error)

    def _finish(self) -> None:
        """On the way out: after a store failure, try once more to write what is pending (the
        lease may still be ours); release the lease unless it was lost."""
        if isinstance(self.failure, LeaseLostError) or self.lease.abandoned.is_set():
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

    def _flush(self, *, retry: bool = True) -> bool:
        """Write what is pending, in one transaction; False if there was nothing.

        Each batch gets a key (the owner's id and a count), so writing it again is harmless. A
        batch the store did not take stays pending, ahead of newer changes, for a last try on
        the way out."""
        with self._lock:
            taken = self.journal.take()
            snapshot, self._snapshot = self._snapshot, None
            update, self._run_update = self._run_update, None
            durations, self._durations = self._durations, ()
            changed = taken.changed
            tasks: Sequence[TaskRecord] = snapshot or (
                self._task_columns(list(changed)) if changed else []
            )
        timed = taken.timed()
        if timed:  # records made only if a store reads them (the SQL stores take the columns)
            functions = self.journal.functions
            assert functions is not None
            recorded = TimedDurations(timed, functions)
            durations = [*durations, *recorded] if durations else recorded
        batch = WriteBatch(
            run=update,
            tasks=tasks,
            requests=taken.requests,
            events=event_columns(taken.events),
            logs=taken_logs(self._logs),
            requests_done=self._inbox.drain() if self._inbox is not None else [],
            durations=durations,
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
                started = time.perf_counter()
                self.lease.call(
                    functools.partial(self.store.write, self.run_id, self.owner, each),
                    retry=retry,
                )
                if self._on_write is not None:
                    self._on_write(time.perf_counter() - started)
            except BaseException:
                self._unwritten = pending[n:]  # kept, in order, for a last try on the way out
                raise
        return True
