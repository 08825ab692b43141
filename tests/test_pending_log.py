"""The pending log: what a run's batches hold, in order, and the durations each batch teaches."""

from __future__ import annotations

from typing import Any

import pytest

from plait._events import (
    Event,
    InputReceived,
    InputRequested,
    TaskFailed,
    TaskRetrying,
    TaskStarted,
    TaskSucceeded,
)
from plait._pause import Question
from plait._pending_log import PendingLog
from plait._results import TaskError


def pending(functions: dict[str, str] | None = None) -> PendingLog:
    return PendingLog(functions, wake=lambda: None)


def rows(log: PendingLog) -> list[tuple[str, str | None, float | None]]:
    """(kind, task id, folded start) of each row of the batch taken now."""
    return [(kind.__name__, task_id, started) for kind, _, task_id, _, started in log.take().events]


def ask(log: PendingLog, task_id: str, at: float) -> None:
    question = Question(task_id=task_id, prompt="ok?", key="0", asked_at=at)
    log(InputRequested, at, task_id, {"question": question})


def test_starts_still_running_or_that_asked_keep_their_rows_in_the_order_they_happened() -> None:
    log = pending()
    log.attempt(TaskStarted, 1.0, "a", 1)
    log.attempt(TaskStarted, 1.1, "b", 1)
    ask(log, "a", 1.2)  # a's start must come before its question
    log.attempt(TaskStarted, 1.3, "c", 1)
    log.attempt(TaskSucceeded, 1.4, "c", 1)
    log.attempt(TaskStarted, 1.5, "d", 1)
    assert rows(log) == [
        ("TaskStarted", "a", None),
        ("TaskStarted", "b", None),  # still running
        ("InputRequested", "a", None),
        ("TaskSucceeded", "c", 1.3),
        ("TaskStarted", "d", None),
    ]
    log.attempt(TaskSucceeded, 2.0, "b", 1)  # its start was written in the batch before
    assert rows(log) == [("TaskSucceeded", "b", None)]


def test_a_batch_marks_every_task_it_changed() -> None:
    log = pending()
    log.attempt(TaskStarted, 1.0, "a", 1)
    log.attempt(TaskSucceeded, 1.1, "a", 1)
    log.attempt(TaskStarted, 1.2, "b", 1)
    log(TaskFailed, 1.3, "c", {"attempt": 1, "error": TaskError("E", "m", "")})
    assert list(log.take().changed) == ["a", "b", "c"]
    log.attempt(TaskSucceeded, 2.0, "b", 1)
    assert list(log.take().changed) == ["b"]


def durations(log: PendingLog) -> list[tuple[str, float, float]]:
    return [(task_id, round(seconds, 6), at) for task_id, seconds, at in log.take().timed()]


def test_a_success_teaches_its_attempts_duration_wherever_its_start_was_written() -> None:
    log = pending({"a": "m:f", "b": "m:f"})
    log.attempt(TaskStarted, 1.0, "a", 1)
    log.attempt(TaskStarted, 1.5, "b", 1)
    log.attempt(TaskSucceeded, 3.0, "a", 1)
    assert durations(log) == [("a", 2.0, 3.0)]
    log.attempt(TaskSucceeded, 4.0, "b", 1)  # started in the batch before
    assert durations(log) == [("b", 2.5, 4.0)]


def test_a_retried_task_teaches_the_attempt_that_succeeded() -> None:
    log = pending({"a": "m:f"})
    log.attempt(TaskStarted, 1.0, "a", 1)
    error = TaskError("E", "m", "")
    log(TaskRetrying, 2.0, "a", {"attempt": 1, "error": error, "delay": 5.0})
    log.attempt(TaskStarted, 7.0, "a", 2)
    assert durations(log) == []
    log.attempt(TaskSucceeded, 7.5, "a", 2)
    assert durations(log) == [("a", 0.5, 7.5)]


@pytest.mark.parametrize("batch_between", [False, True])
def test_the_time_an_attempt_waited_for_an_answer_is_not_its_duration(
    batch_between: bool,
) -> None:
    log = pending({"a": "m:f"})
    log.attempt(TaskStarted, 1.0, "a", 1)
    ask(log, "a", 2.0)
    if batch_between:
        log.take()
    log(InputReceived, 12.0, "a", {"key": "0"})
    log.attempt(TaskSucceeded, 13.0, "a", 1)
    assert durations(log) == [("a", 2.0, 13.0)]  # 12 s of the attempt, less 10 s waiting


def test_instances_of_a_mapped_task_teach_it_and_unknown_tasks_teach_nothing() -> None:
    log = pending({"m": "m:f"})
    for i in range(2):
        log.attempt(TaskStarted, 1.0, f"m[{i}]", 1)
        log.attempt(TaskSucceeded, 2.0 + i, f"m[{i}]", 1)
    assert durations(log) == [("m", 1.0, 2.0), ("m", 2.0, 3.0)]
    log_none = pending(None)
    log_none.attempt(TaskStarted, 1.0, "a", 1)
    log_none.attempt(TaskSucceeded, 2.0, "a", 1)
    assert durations(log_none) == []


def test_the_first_change_after_a_quiet_spell_wakes_the_writer_once() -> None:
    woken: list[Any] = []
    log = PendingLog(None, wake=lambda: woken.append(1))
    log.attempt(TaskStarted, 1.0, "a", 1)
    assert woken == []  # busy: the writer comes at its interval
    log.quiet = True
    event: type[Event]
    for event in (TaskSucceeded, TaskStarted):
        log.attempt(event, 2.0, "a", 1)
    assert woken == [1] and not log.quiet


def test_starts_with_no_event_between_them_keep_the_order_they_happened_in() -> None:
    log = pending()
    log.attempt(TaskStarted, 1.0, "b", 1)
    log.attempt(TaskStarted, 1.1, "a", 1)
    ask(log, "a", 1.2)  # a's start is kept aside first, b's is still running
    assert rows(log) == [
        ("TaskStarted", "b", None),
        ("TaskStarted", "a", None),
        ("InputRequested", "a", None),
    ]
