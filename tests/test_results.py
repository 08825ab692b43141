"""What a run leaves behind: task errors, task results, run results."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

import pytest

import plait
from plait import (
    RunFailedError,
    RunResult,
    RunStatus,
    TaskError,
    TaskResult,
    TaskStatus,
    Workflow,
)
from plait._results import TaskResults


class PipelineError(Exception):
    class Nested(Exception):
        pass


def raise_value_error() -> None:
    raise ValueError("bad value 42")  # the line the traceback must show


def caught(fn: Any) -> BaseException:
    try:
        fn()
    except BaseException as error:
        return error
    raise AssertionError(f"{fn} did not raise")


def run_result(
    tasks: Mapping[str, TaskResult],
    *,
    status: RunStatus = RunStatus.SUCCEEDED,
    error: str | None = None,
    started_at: float = 100.0,
    finished_at: float = 101.5,
) -> RunResult:
    return RunResult(
        run_id="r1",
        workflow="etl",
        status=status,
        tasks=MappingProxyType(dict(tasks)),
        started_at=started_at,
        finished_at=finished_at,
        error=error,
    )


def task(task_id: str, status: TaskStatus, output: Any = None) -> TaskResult:
    return TaskResult(task_id=task_id, status=status, output=output)


# -- TaskError ----------------------------------------------------------------------------------


def test_task_error_captures_a_builtin_exception_by_its_plain_name() -> None:
    error = caught(raise_value_error)
    captured = TaskError.from_exception(error)
    assert captured.type == "ValueError"
    assert captured.message == "bad value 42"
    assert captured.exception is error


def test_task_error_traceback_shows_the_raising_line() -> None:
    captured = TaskError.from_exception(caught(raise_value_error))
    assert captured.traceback.startswith("Traceback (most recent call last):\n")
    assert 'raise ValueError("bad value 42")  # the line the traceback must show' in (
        captured.traceback
    )
    assert "in raise_value_error" in captured.traceback
    assert captured.traceback.endswith("ValueError: bad value 42\n")


def test_task_error_names_other_exceptions_by_module_and_qualname() -> None:
    def fail() -> None:
        raise PipelineError.Nested("inner")

    captured = TaskError.from_exception(caught(fail))
    assert captured.type == f"{__name__}.PipelineError.Nested"
    assert str(captured) == f"{__name__}.PipelineError.Nested: inner"


def test_task_error_names_plait_errors_by_their_module() -> None:
    captured = TaskError.from_exception(plait.TaskTimeoutError("too slow"))
    assert captured.type == "plait.TaskTimeoutError"


def test_task_error_of_an_exception_never_raised_has_a_short_traceback() -> None:
    captured = TaskError.from_exception(KeyError("k"))
    assert captured.traceback == "KeyError: 'k'\n"
    assert captured.message == "'k'"


def test_task_error_traceback_includes_the_cause() -> None:
    def fail() -> None:
        try:
            raise_value_error()
        except ValueError as error:
            raise RuntimeError("wrapped") from error

    traceback = TaskError.from_exception(caught(fail)).traceback
    assert "ValueError: bad value 42" in traceback
    assert "The above exception was the direct cause" in traceback
    assert traceback.endswith("RuntimeError: wrapped\n")


def test_task_error_str_is_type_and_message() -> None:
    assert str(TaskError(type="ValueError", message="nope")) == "ValueError: nope"


def test_task_error_str_without_a_message_is_the_type() -> None:
    assert str(TaskError.from_exception(TimeoutError())) == "TimeoutError"
    assert str(TaskError(type="TimeoutError", message="")) == "TimeoutError"


def test_task_error_comparison_and_repr_ignore_the_exception_object() -> None:
    first = TaskError.from_exception(ValueError("x"))
    second = TaskError(type="ValueError", message="x", traceback="ValueError: x\n")
    assert first == second
    assert "exception" not in repr(first)


# -- TaskResult ---------------------------------------------------------------------------------


def test_task_result_duration_is_first_start_to_last_finish() -> None:
    result = TaskResult("a", TaskStatus.SUCCEEDED, started_at=10.25, finished_at=13.75)
    assert result.duration == 3.5


@pytest.mark.parametrize(("started_at", "finished_at"), [(None, None), (1.0, None), (None, 2.0)])
def test_task_result_duration_is_none_until_both_times_are_known(
    started_at: float | None, finished_at: float | None
) -> None:
    result = TaskResult("a", TaskStatus.PENDING, started_at=started_at, finished_at=finished_at)
    assert result.duration is None


def test_task_result_defaults_describe_a_task_that_never_ran() -> None:
    result = TaskResult("a", TaskStatus.SKIPPED)
    assert (result.output, result.error, result.attempts) == (None, None, 0)


def test_task_result_is_frozen() -> None:
    with pytest.raises(AttributeError):
        TaskResult("a", TaskStatus.SKIPPED).attempts = 1  # type: ignore[misc]


# -- TaskResults (the lazy mapping a run returns) -----------------------------------------------


def make_task_results() -> TaskResults:
    return TaskResults(
        {"b": 0, "a": 1},
        status=[TaskStatus.SUCCEEDED, TaskStatus.FAILED],
        output=[5, None],
        error=[None, TaskError("ValueError", "x")],
        attempts=[1, 2],
        started_at=[1.0, 2.0],
        finished_at=[1.5, 4.0],
    )


def test_task_results_build_task_results_from_columns() -> None:
    results = make_task_results()
    assert results["a"] == TaskResult(
        "a", TaskStatus.FAILED, None, TaskError("ValueError", "x"), 2, 2.0, 4.0
    )
    assert results["b"].output == 5


def test_task_results_keep_order_length_and_membership() -> None:
    results = make_task_results()
    assert list(results) == ["b", "a"]
    assert len(results) == 2
    assert "a" in results
    assert "c" not in results
    assert repr(results) == "<TaskResults of 2 tasks>"


def test_task_results_keep_nothing_per_task_read() -> None:
    results = make_task_results()
    assert results["a"] == results["a"]
    assert not hasattr(results, "__dict__")  # nothing kept per task read: only the columns


def test_outputs_read_from_columns_equal_outputs_read_task_by_task() -> None:
    columns = TaskResults(
        {"a": 0, "none": 1, "f": 2, "b": 3},
        status=[
            TaskStatus.SUCCEEDED,
            TaskStatus.SUCCEEDED,
            TaskStatus.FAILED,
            TaskStatus.SUCCEEDED,
        ],
        output=[1, None, None, 2],
        error=[None, None, TaskError("ValueError", "x"), None],
        attempts=[1, 1, 1, 1],
        started_at=[1.0] * 4,
        finished_at=[2.0] * 4,
    )
    from_columns = RunResult("r1", "etl", RunStatus.FAILED, columns, 100.0, 101.5).outputs
    by_task = run_result({task_id: columns[task_id] for task_id in columns}).outputs
    assert from_columns == by_task == {"a": 1, "none": None, "b": 2}
    assert list(from_columns) == ["a", "none", "b"]


def test_outputs_of_a_run_where_every_task_succeeded_keep_every_task_in_order() -> None:
    # Every task succeeded: the dict is built in one C call (zip), not filtered task by task.
    columns = TaskResults(
        {"b": 0, "a": 1, "none": 2},
        status=[TaskStatus.SUCCEEDED] * 3,
        output=[2, 1, None],
        error=[None] * 3,
        attempts=[1] * 3,
        started_at=[1.0] * 3,
        finished_at=[2.0] * 3,
    )
    from_columns = RunResult("r1", "etl", RunStatus.SUCCEEDED, columns, 100.0, 101.5).outputs
    by_task = run_result({task_id: columns[task_id] for task_id in columns}).outputs
    assert from_columns == by_task == {"b": 2, "a": 1, "none": None}
    assert list(from_columns) == ["b", "a", "none"]


def test_task_results_raise_key_error_for_an_unknown_task() -> None:
    with pytest.raises(KeyError):
        make_task_results()["zzz"]


# -- RunResult ----------------------------------------------------------------------------------


def test_run_result_duration() -> None:
    assert run_result({}).duration == 1.5


def test_outputs_hold_only_the_tasks_that_succeeded() -> None:
    result = run_result(
        {
            "a": task("a", TaskStatus.SUCCEEDED, output=1),
            "none": task("none", TaskStatus.SUCCEEDED, output=None),
            "f": task("f", TaskStatus.FAILED),
            "s": task("s", TaskStatus.SKIPPED),
            "c": task("c", TaskStatus.CANCELLED),
        },
        status=RunStatus.FAILED,
        error="1 task(s) failed",
    )
    assert result.outputs == {"a": 1, "none": None}
    assert list(result.outputs) == ["a", "none"]


def test_raise_for_status_returns_the_result_on_success() -> None:
    result = run_result({"a": task("a", TaskStatus.SUCCEEDED, output=1)})
    assert result.raise_for_status() is result


@pytest.mark.parametrize("status", [RunStatus.FAILED, RunStatus.CANCELLED, RunStatus.PAUSED])
def test_raise_for_status_raises_with_the_result_otherwise(status: RunStatus) -> None:
    result = run_result({"a": task("a", TaskStatus.FAILED)}, status=status, error="it broke")
    with pytest.raises(
        RunFailedError, match=rf"^run 'r1' of workflow 'etl' ended {status.value}: it broke$"
    ) as info:
        result.raise_for_status()
    assert info.value.result is result


def test_repr_counts_task_statuses_in_order_of_first_appearance() -> None:
    result = run_result(
        {
            "a": task("a", TaskStatus.SUCCEEDED),
            "b": task("b", TaskStatus.FAILED),
            "c": task("c", TaskStatus.SUCCEEDED),
            "d": task("d", TaskStatus.SKIPPED),
        },
        status=RunStatus.FAILED,
    )
    assert repr(result) == "<RunResult 'r1' failed in 1.500s: 2 succeeded, 1 failed, 1 skipped>"


def test_repr_of_a_run_without_tasks() -> None:
    assert repr(run_result({})) == "<RunResult 'r1' succeeded in 1.500s: ->"


def test_run_result_is_frozen() -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        run_result({}).status = RunStatus.FAILED  # type: ignore[misc]


# -- results of a real run ----------------------------------------------------------------------


def test_a_failed_run_reports_the_failure_and_raises_for_status() -> None:
    wf = Workflow("etl")

    @wf.task
    def a() -> int:
        return 1

    @wf.task(depends_on=[a])
    def b(a: int) -> int:
        raise ValueError(f"nope {a}")

    @wf.task(depends_on=[b])
    def c(b: int) -> int:
        return b

    result = plait.run(wf, run_id="r1", retry_failed_tasks=False, store="memory://")
    assert result.status is RunStatus.FAILED
    assert result.outputs == {"a": 1}
    assert result.error == "1 task(s) failed: 'b': ValueError: nope 1 (1 skipped)"
    failed = result.tasks["b"]
    assert failed.status is TaskStatus.FAILED
    assert failed.attempts == 1
    assert failed.error is not None
    assert failed.error.type == "ValueError"
    assert 'raise ValueError(f"nope {a}")' in failed.error.traceback
    assert isinstance(failed.error.exception, ValueError)
    assert result.tasks["c"].attempts == 0
    assert result.tasks["c"].duration is None
    with pytest.raises(
        RunFailedError,
        match=r"^run 'r1' of workflow 'etl' ended failed: 1 task\(s\) failed: "
        r"'b': ValueError: nope 1 \(1 skipped\)$",
    ) as info:
        result.raise_for_status()
    assert info.value.result is result


def test_a_succeeded_run_has_timings_and_every_output() -> None:
    wf = Workflow("etl")
    wf.add_task("a", lambda: 1)
    wf.add_task("b", lambda: 2)
    result = plait.run(wf)
    assert result.raise_for_status() is result
    assert result.error is None
    assert result.outputs == {"a": 1, "b": 2}
    assert list(result.tasks) == ["a", "b"]
    assert result.duration >= 0
    for task_result in result.tasks.values():
        assert task_result.duration is not None
        assert task_result.duration >= 0
        assert task_result.started_at is not None
        assert result.started_at <= task_result.started_at <= result.finished_at
