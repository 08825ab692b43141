"""The recorder: what a run's batches hold, and how an attempt's start is logged."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest

from plait import RunStatus, TaskStatus
from plait._events import (
    Event,
    InputRequested,
    RunStarted,
    TaskCancelled,
    TaskReady,
    TaskRetrying,
    TaskStarted,
    TaskSucceeded,
)
from plait._lease import lease_clock
from plait._pause import Question
from plait._recorder import Recorder
from plait._results import TaskError
from plait._serialization import JSONSerializer
from plait.stores import (
    EventRecord,
    LeaseLostError,
    RunUpdate,
    StoreUnavailableError,
    TaskDuration,
    TaskRecordColumns,
    WriteBatch,
)


class CapturingStore:
    """Keeps every batch written; enough of a store for the recorder."""

    durable = True

    def __init__(self) -> None:
        self.batches: list[WriteBatch] = []

    def write(self, run_id: str, owner: str, batch: WriteBatch) -> None:
        self.batches.append(batch)

    def renew(self, run_id: str, owner: str, *, lease_seconds: float) -> None:
        pass

    def release(self, run_id: str, owner: str) -> None:
        pass

    @property
    def events(self) -> list[EventRecord]:
        return [event for batch in self.batches for event in batch.events]


def columns(task_ids: list[str]) -> TaskRecordColumns:
    n = len(task_ids)
    return TaskRecordColumns(
        task_ids=task_ids,
        status=[TaskStatus.RUNNING] * n,
        attempts=[1] * n,
        output=[None] * n,
        error=[None] * n,
        started_at=[1.0] * n,
        finished_at=[None] * n,
    )


@pytest.fixture
def store() -> CapturingStore:
    return CapturingStore()


def recording(store: CapturingStore, functions: dict[str, str] | None = None) -> Recorder:
    """A recorder of run-1 into ``store`` (learning durations of ``functions``' tasks)."""
    return Recorder(
        store,  # type: ignore[arg-type]
        "run-1",
        "me",
        serializer=JSONSerializer(),
        lease_seconds=30.0,
        lock=threading.Lock(),
        task_columns=columns,
        on_failure=lambda error: None,
        functions=functions,
    )


@pytest.fixture
def recorder(store: CapturingStore) -> Recorder:
    return recording(store)


def log(recorder: Recorder, kind: type[Event], at: float, task_id: str | None, **data: Any) -> None:
    recorder.journal(kind, at, task_id, data)


def test_an_attempt_that_ends_within_a_batch_is_one_row_holding_its_start(
    recorder: Recorder, store: CapturingStore
) -> None:
    log(recorder, RunStarted, 0.5, None, workflow="wf", tasks=1)
    log(recorder, TaskReady, 0.9, "a")
    log(recorder, TaskStarted, 1.0, "a", attempt=1)
    log(recorder, TaskSucceeded, 2.0, "a", attempt=1)
    recorder._flush()
    assert store.events == [
        EventRecord(kind="RunStarted", time=0.5, data={"workflow": "wf", "tasks": 1}),
        EventRecord(
            kind="TaskSucceeded", time=2.0, task_id="a", data={"attempt": 1, "started": 1.0}
        ),
    ]
    assert list(store.batches[0].tasks) == list(columns(["a"]))


def test_an_attempt_running_when_a_batch_is_written_keeps_its_start_row(
    recorder: Recorder, store: CapturingStore
) -> None:
    log(recorder, TaskStarted, 1.0, "a", attempt=1)
    recorder._flush()  # a crash now leaves a log that shows "a" in flight
    log(recorder, TaskSucceeded, 2.0, "a", attempt=1)
    recorder._flush()
    assert store.events == [
        EventRecord(kind="TaskStarted", time=1.0, task_id="a", data={"attempt": 1}),
        EventRecord(kind="TaskSucceeded", time=2.0, task_id="a", data={"attempt": 1}),
    ]


def test_each_retried_attempt_keeps_its_own_start(
    recorder: Recorder, store: CapturingStore
) -> None:
    error = TaskError("ValueError", "no", "Traceback ...")
    log(recorder, TaskStarted, 1.0, "a", attempt=1)
    log(recorder, TaskRetrying, 2.0, "a", attempt=1, error=error, delay=0.5)
    log(recorder, TaskStarted, 2.5, "a", attempt=2)
    log(recorder, TaskSucceeded, 3.0, "a", attempt=2)
    recorder._flush()
    assert [(e.kind, e.data.get("attempt"), e.data.get("started")) for e in store.events] == [
        ("TaskRetrying", 1, 1.0),
        ("TaskSucceeded", 2, 2.5),
    ]
    assert store.events[0].data["error"] == {
        "type": "ValueError",
        "message": "no",
        "traceback": "Traceback ...",
    }


def test_an_attempt_that_stops_to_ask_keeps_its_start_row(
    recorder: Recorder, store: CapturingStore
) -> None:
    question = Question(task_id="a", prompt="ok?", key="0", asked_at=1.5)
    log(recorder, TaskStarted, 1.0, "a", attempt=1)
    log(recorder, InputRequested, 1.5, "a", question=question)
    log(recorder, TaskCancelled, 2.0, "a", attempt=1)  # cancelled while it waits
    recorder._flush()
    assert [(e.kind, "started" in e.data) for e in store.events] == [
        ("TaskStarted", False),
        ("InputRequested", False),
        ("TaskCancelled", False),
    ]
    assert [(r.task_id, r.key, r.prompt) for r in store.batches[0].requests] == [("a", "0", "ok?")]


def test_interleaved_tasks_fold_each_start_into_its_own_end(
    recorder: Recorder, store: CapturingStore
) -> None:
    log(recorder, TaskStarted, 1.0, "a", attempt=1)
    log(recorder, TaskStarted, 1.1, "b", attempt=1)
    log(recorder, TaskSucceeded, 1.2, "b", attempt=1)
    log(recorder, TaskStarted, 1.3, "c", attempt=1)
    log(recorder, TaskSucceeded, 1.4, "a", attempt=1)
    recorder._flush()
    assert [(e.kind, e.task_id, e.data.get("started")) for e in store.events] == [
        ("TaskSucceeded", "b", 1.1),
        ("TaskStarted", "c", None),  # still running when the batch was taken
        ("TaskSucceeded", "a", 1.0),
    ]
    assert list(store.batches[0].tasks) == list(columns(["a", "b", "c"]))


def test_the_journal_leaves_the_engines_fields_untouched(recorder: Recorder) -> None:
    data = {"attempt": 1}
    recorder.journal(TaskStarted, 1.0, "a", {"attempt": 1})
    recorder.journal(TaskSucceeded, 2.0, "a", data)
    assert data == {"attempt": 1}  # the engine builds the subscribers' event from it


def test_the_attempt_journal_logs_a_start_and_a_success_as_the_journal_does() -> None:
    through_journal, through_attempts = CapturingStore(), CapturingStore()
    functions = {"a": "f", "b": "g"}  # durations learned too
    recorders = [recording(through_journal, functions), recording(through_attempts, functions)]
    journal, attempts = recorders
    for kind, at, task_id, number in [
        (TaskStarted, 1.0, "a", 1),
        (TaskStarted, 1.5, "b", 1),
        (TaskSucceeded, 2.0, "a", 1),
    ]:
        journal.journal(kind, at, task_id, {"attempt": number})
        attempts.journal.attempt(kind, at, task_id, number)
    for recorder in recorders:
        recorder._flush()
    for store in (through_journal, through_attempts):  # a's duration learned
        assert list(store.batches[0].durations) == [TaskDuration("a", "f", 1.0, 2.0)]
    assert through_attempts.events == through_journal.events
    assert [e.kind for e in through_attempts.events] == ["TaskStarted", "TaskSucceeded"]
    assert list(through_attempts.batches[0].tasks) == list(through_journal.batches[0].tasks)


def test_closing_writes_what_is_pending_and_the_run_update(
    recorder: Recorder, store: CapturingStore
) -> None:
    recorder.start()
    log(recorder, TaskStarted, 1.0, "a", attempt=1)
    log(recorder, TaskSucceeded, 2.0, "a", attempt=1)
    recorder.close(RunUpdate(status=RunStatus.SUCCEEDED, finished_at=3.0))
    assert [e.kind for e in store.events] == ["TaskSucceeded"]
    assert store.batches[-1].run == RunUpdate(status=RunStatus.SUCCEEDED, finished_at=3.0)


def started_recorder(store: CapturingStore, *, lease_seconds: float, interval: float) -> Recorder:
    recorder = Recorder(
        store,  # type: ignore[arg-type]
        "run-1",
        "me",
        serializer=JSONSerializer(),
        lease_seconds=lease_seconds,
        interval=interval,
        lock=threading.Lock(),
        task_columns=columns,
        on_failure=lambda error: None,
    )
    recorder.start()
    return recorder


def test_a_busy_run_is_written_at_the_interval_and_keeps_its_lease() -> None:
    store = CapturingStore()
    renewals: list[float] = []
    store.renew = lambda run_id, owner, *, lease_seconds: renewals.append(time.monotonic())  # type: ignore[method-assign]
    recorder = started_recorder(store, lease_seconds=0.3, interval=0.05)
    began = time.monotonic()
    n = 0
    while time.monotonic() - began < 0.6:  # a change every millisecond
        log(recorder, TaskStarted, time.time(), f"t{n}", attempt=1)
        n += 1
        time.sleep(0.001)
    recorder.close(RunUpdate(status=RunStatus.SUCCEEDED, finished_at=time.time()))
    assert 4 <= len(store.batches) <= n // 10  # written as it goes, in batches
    assert len(renewals) >= 2  # every lease / 3, busy or not
    assert [e.task_id for e in store.events] == [f"t{i}" for i in range(n)]


class WatchedWakeup(threading.Event):
    """The recorder's wake-up event, watched: which threads set it, and whether the writer has
    come back to wait after an interval that passed (a quiet one, when nothing was logged)."""

    def __init__(self) -> None:
        super().__init__()
        self.setters: list[str] = []
        self.after_an_interval = threading.Event()
        self._timed_out = False

    def set(self) -> None:
        self.setters.append(threading.current_thread().name)
        super().set()

    def wait(self, timeout: float | None = None) -> bool:
        if self._timed_out:  # the writer looked, found nothing to write, and waits again
            self.after_an_interval.set()
        woken = super().wait(timeout)
        self._timed_out = not woken
        return woken


def test_a_change_after_a_quiet_spell_wakes_the_writer_at_once() -> None:
    store = CapturingStore()
    recorder = Recorder(
        store,  # type: ignore[arg-type]
        "run-1",
        "me",
        serializer=JSONSerializer(),
        lease_seconds=30.0,
        interval=0.05,
        lock=threading.Lock(),
        task_columns=columns,
        on_failure=lambda error: None,
    )
    wakeup = recorder._wakeup = WatchedWakeup()
    recorder.start()
    assert wakeup.after_an_interval.wait(10), "the writer never finished a quiet interval"
    log(recorder, TaskStarted, time.time(), "a", attempt=1)
    # The change itself woke the writer (in this thread), rather than leaving it to the timer.
    assert wakeup.setters == [threading.current_thread().name]
    recorder.close(RunUpdate(status=RunStatus.SUCCEEDED, finished_at=time.time()))
    assert [e.task_id for e in store.events] == ["a"]


def test_while_busy_a_change_waits_for_the_interval() -> None:
    store = CapturingStore()
    recorder = Recorder(
        store,  # type: ignore[arg-type]
        "run-1",
        "me",
        serializer=JSONSerializer(),
        lease_seconds=30.0,
        interval=30.0,
        lock=threading.Lock(),
        task_columns=columns,
        on_failure=lambda error: None,
    )
    wakeup = recorder._wakeup = WatchedWakeup()
    recorder.start()  # the run was just created: busy for one interval
    log(recorder, TaskStarted, time.time(), "a", attempt=1)
    log(recorder, TaskStarted, time.time(), "b", attempt=1)
    assert wakeup.setters == []  # neither change woke the writer: they wait for the interval
    recorder.close(RunUpdate(status=RunStatus.SUCCEEDED, finished_at=time.time()))
    assert [e.task_id for e in store.events] == ["a", "b"]


def test_a_failed_renewal_is_retried_holds_new_tasks_meanwhile_and_moves_the_deadline() -> None:
    store = CapturingStore()
    failures = [StoreUnavailableError("busy (test)")] * 2

    def renew(run_id: str, owner: str, *, lease_seconds: float) -> None:
        if failures:
            raise failures.pop()

    store.renew = renew  # type: ignore[method-assign]
    stalls: list[float | None] = []
    renewed = threading.Event()
    recorder = Recorder(
        store,  # type: ignore[arg-type]
        "run-1",
        "me",
        serializer=JSONSerializer(),
        lease_seconds=3.0,
        lease_start=lease_clock() - 1.0,  # a renewal is due at once
        lock=threading.Lock(),
        task_columns=columns,
        on_failure=lambda error: None,
        on_renewed=lambda deadline: renewed.set(),
        on_stall=stalls.append,
    )
    first_deadline = recorder.lease.deadline
    recorder.start()
    assert renewed.wait(timeout=10)
    recorder.close(RunUpdate(status=RunStatus.SUCCEEDED))
    assert recorder.failure is None and not failures
    # Held from STALL_SECONDS after the call began, then at once when it failed (twice), then
    # free when it succeeded.
    began, *failed, answered = stalls[:4]
    assert began is not None and len(failed) == 2 and answered is None
    assert all(at is not None and at < began for at in failed)
    assert recorder.lease.deadline > first_deadline


def test_why_a_lease_ran_out_is_the_store_when_a_call_failed_or_is_under_way() -> None:
    recorder = Recorder(
        CapturingStore(),  # type: ignore[arg-type]
        "run-1",
        "me",
        serializer=JSONSerializer(),
        lease_seconds=1.0,
        lock=threading.Lock(),
        task_columns=columns,
        on_failure=lambda error: None,
    )
    idle = recorder.lease.error()
    assert isinstance(idle, LeaseLostError)
    assert str(idle).startswith("plait lost run 'run-1': its lease was last renewed ")
    assert (idle.run_id, idle.owner) == ("run-1", None)
    recorder.lease.calling_since = lease_clock() - 2.0  # a store call that has not come back
    hung = recorder.lease.error()
    assert isinstance(hung, StoreUnavailableError)
    assert str(hung).startswith("run 'run-1' stopped: its store could not record it for 2.")
    assert "(it did not answer)" in str(hung)
