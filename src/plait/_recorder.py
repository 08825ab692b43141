"""Recording a run in its store: every change, in order, written in batches by one thread.

The engine tells the :class:`Recorder` what changed while it holds its lock (task records, the
events themselves); that only appends to a pending batch. A writer thread takes whatever is
pending and writes it in one transaction -- group commit: while one write is in flight the next
batch gathers, so batches grow with the load and a quiet run is written at once. Changes reach the
store in the order they happened, and a task's later record replaces its earlier one in the same
batch. The same thread renews the run's lease (every third of its length).

A task recorded ``succeeded`` is never run again; a task that finished just before a crash, whose
record had not been written yet, runs again when the run is resumed (at-least-once).

With a store that is not durable (the memory store) nothing is written while the run goes; the
whole state is written once, when the run ends or pauses.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
from collections.abc import Callable, Mapping
from enum import Enum
from typing import Any

from ._events import Event, InputRequested, TaskEvent
from ._pause import Question
from ._results import TaskError
from ._serialization import Serializer
from .stores import EventRecord, InputRequest, RunUpdate, Store, TaskRecord, WriteBatch

__all__ = ["Recorder"]

_log = logging.getLogger("plait.store")


class Recorder:
    """Writes one run's progress to its store; see the module docstring."""

    def __init__(
        self,
        store: Store,
        run_id: str,
        owner: str,
        *,
        serializer: Serializer,
        lease_seconds: float,
        task_record: Callable[[str], TaskRecord],
        on_failure: Callable[[BaseException], None],
    ) -> None:
        self.store = store
        self.run_id = run_id
        self.owner = owner
        self._serializer = serializer
        self._lease_seconds = lease_seconds
        self._task_record = task_record
        self._on_failure = on_failure
        self._cond = threading.Condition()
        self._tasks: dict[str, TaskRecord] = {}
        self._requests: list[InputRequest] = []
        self._events: list[Event] = []
        self._run_update: RunUpdate | None = None
        self._closing = False
        self._writing = False
        self.failure: BaseException | None = None
        self._thread: threading.Thread | None = None

    # -- called by the engine, under its lock ------------------------------------------------

    def __call__(self, event: Event) -> None:
        """Subscriber: queue the event, and the record of the task it changed."""
        with self._cond:
            self._events.append(event)
            if isinstance(event, TaskEvent):
                self._tasks[event.task_id] = self._task_record(event.task_id)
                if isinstance(event, InputRequested):
                    self._requests.append(_request(event.question))
            self._cond.notify()

    def answered(self, question: Question, value: Any, at: float) -> None:
        """Queue the record of an answer (its value serialized here, so a bad one fails now)."""
        record = dataclasses.replace(
            _request(question), answered=True, value=self._serializer.dumps(value), answered_at=at
        )
        with self._cond:
            self._requests.append(record)
            self._cond.notify()

    def snapshot(self, tasks: list[TaskRecord], questions: list[Question]) -> None:
        """Queue the whole state at once (for a store that is written only at the end)."""
        with self._cond:
            for task in tasks:
                self._tasks[task.task_id] = task
            self._requests[:0] = [_request(question) for question in questions]

    # -- life cycle ---------------------------------------------------------------------------

    def start(self) -> None:
        """Start the writer thread."""
        self._thread = threading.Thread(
            target=self._write_loop, name=f"plait-recorder-{self.run_id}", daemon=True
        )
        self._thread.start()

    def close(self, update: RunUpdate) -> None:
        """Write everything still pending and ``update``, release the lease, stop the thread."""
        with self._cond:
            self._run_update = update
            self._closing = True
            self._cond.notify()
        if self._thread is not None:
            self._thread.join()
        else:  # never started: write in this thread
            self._flush()
        if self.failure is None:
            try:
                self.store.release(self.run_id, self.owner)
            except Exception:  # the run is over; a lease that lapses on its own is harmless
                _log.exception("could not release the lease of run %r", self.run_id)

    def _write_loop(self) -> None:
        renew_every = self._lease_seconds / 3
        while True:
            with self._cond:
                if not self._has_pending() and not self._closing:
                    self._cond.wait(timeout=renew_every)
                closing = self._closing
                pending = self._has_pending()
            if self.failure is None:
                try:
                    if pending or closing:
                        self._flush()
                    else:
                        self.store.renew(self.run_id, self.owner, lease_seconds=self._lease_seconds)
                except BaseException as error:
                    self.failure = error
                    _log.error("run %r can no longer be recorded: %s", self.run_id, error)
                    self._on_failure(error)
            if closing:
                return

    def _has_pending(self) -> bool:
        return bool(self._events or self._tasks or self._requests or self._run_update)

    def _flush(self) -> None:
        with self._cond:
            events, self._events = self._events, []
            tasks, self._tasks = self._tasks, {}
            requests, self._requests = self._requests, []
            update, self._run_update = self._run_update, None
        batch = WriteBatch(
            run=update,
            tasks=list(tasks.values()),
            requests=requests,
            events=[_event_record(event) for event in events],
        )
        if batch:
            self.store.write(self.run_id, self.owner, batch)


def _request(question: Question) -> InputRequest:
    return InputRequest(
        task_id=question.task_id,
        key=question.key,
        prompt=question.prompt,
        schema=question.schema,
        requested_at=question.asked_at,
        deadline=question.deadline,
    )


def _event_record(event: Event) -> EventRecord:
    data = {
        f.name: _jsonable(getattr(event, f.name))
        for f in dataclasses.fields(event)
        if f.name not in ("run_id", "time", "task_id")
    }
    return EventRecord(
        kind=type(event).__name__,
        time=event.time,
        task_id=getattr(event, "task_id", None),
        data=data,
    )


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
