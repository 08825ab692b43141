"""The store's records of what a run tells its recorder (``plait._run_records``)."""

from __future__ import annotations

import pytest

from plait import TaskError
from plait._events import RunStarted, TaskFailed, TaskStarted, TaskSucceeded
from plait._run_records import event_columns
from plait.stores import EventRecord
from plait.stores._sql_log_rows import _event_rows


def test_event_columns_give_a_folded_start_to_the_end_and_an_attempt_number_its_data() -> None:
    error = TaskError("ValueError", "bad", "Traceback ...")
    columns = event_columns(
        [
            (RunStarted, 1.0, None, {"workflow": "etl", "tasks": 2}, None),
            (TaskSucceeded, 3.0, "a", 1, 2.0),  # its start folded into it
            (TaskStarted, 4.0, "b", 1, None),
            (TaskFailed, 5.0, "b", {"attempt": 1, "error": error}, None),
        ]
    )
    assert list(columns) == [
        EventRecord(kind="RunStarted", time=1.0, data={"workflow": "etl", "tasks": 2}),
        EventRecord(
            kind="TaskSucceeded", time=3.0, task_id="a", data={"attempt": 1, "started": 2.0}
        ),
        EventRecord(kind="TaskStarted", time=4.0, task_id="b", data={"attempt": 1}),
        EventRecord(
            kind="TaskFailed",
            time=5.0,
            task_id="b",
            data={
                "attempt": 1,
                "error": {"type": "ValueError", "message": "bad", "traceback": "Traceback ..."},
            },
        ),
    ]


def test_a_folded_start_is_a_column_of_the_sql_row_not_part_of_its_json() -> None:
    columns = event_columns(
        [
            (TaskSucceeded, 3.0, "a", 1, 2.0),
            (TaskSucceeded, 4.0, "b", 2, None),
        ]
    )
    assert _event_rows("run-1", columns) == [
        ("run-1", "TaskSucceeded", "a", 3.0, '{"attempt":1}', 2.0),
        ("run-1", "TaskSucceeded", "b", 4.0, '{"attempt":2}', None),
    ]


def test_no_events_make_empty_columns() -> None:
    assert list(event_columns([])) == []


@pytest.mark.parametrize("folded_start", [2.0, float("nan")])
def test_a_batch_of_attempt_numbers_makes_the_rows_its_records_make(folded_start: float) -> None:
    error = TaskError("ValueError", "bad", "Traceback ...")
    columns = event_columns(
        [
            (RunStarted, 1.0, None, {"workflow": "etl", "tasks": 3}, None),
            (TaskSucceeded, 3.0, "a", 1, folded_start),
            (TaskStarted, 4.0, "b", 2, None),
            (TaskFailed, 5.0, "b", {"attempt": 2, "error": error}, 4.0),
            (TaskSucceeded, 6.0, "c", 1, None),
        ]
    )
    records = list(columns)  # the same entries as records: each through the general path
    assert records[1].data["attempt"] == 1 and records[2].data == {"attempt": 2}
    assert _event_rows("run-1", columns) == _event_rows("run-1", records)
    assert _event_rows("run-1", columns)[3][4:] == (
        '{"attempt":2,"error":{"type":"ValueError","message":"bad","traceback":"Traceback ..."},'
        '"started":4.0}',  # only an attempt's number and its start go to columns of their own
        None,
    )
