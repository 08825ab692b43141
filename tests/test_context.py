"""The context a task can ask for: identity, cancellation, idempotency key and logger."""

from __future__ import annotations

import logging
from dataclasses import dataclass

import pytest

import plait
from plait import Context, TaskCancelledError, Workflow


@dataclass
class Flag:
    """Stands in for the engine's attempt record: anything with a ``cancelled`` attribute."""

    cancelled: bool = False


def make_context(
    *, run_id: str = "run-1", task_id: str = "load", attempt: int = 2, cancelled: bool = False
) -> tuple[Context, Flag]:
    flag = Flag(cancelled)
    return Context(run_id, task_id, attempt, flag), flag


def test_the_context_knows_its_run_task_and_attempt() -> None:
    ctx, _ = make_context()
    assert (ctx.run_id, ctx.task_id, ctx.attempt) == ("run-1", "load", 2)


def test_cancelled_follows_the_flag() -> None:
    ctx, flag = make_context()
    assert ctx.cancelled is False
    flag.cancelled = True
    assert ctx.cancelled is True


def test_raise_if_cancelled_does_nothing_while_not_cancelled() -> None:
    ctx, _ = make_context()
    assert ctx.raise_if_cancelled() is None


def test_raise_if_cancelled_raises_naming_task_and_attempt() -> None:
    ctx, flag = make_context()
    flag.cancelled = True
    with pytest.raises(TaskCancelledError, match=r"^task 'load' \(attempt 2\) was cancelled$"):
        ctx.raise_if_cancelled()


def test_the_cancellation_error_is_a_runtime_error() -> None:
    ctx, _ = make_context(cancelled=True)
    with pytest.raises(RuntimeError):
        ctx.raise_if_cancelled()


def test_the_idempotency_key_is_run_and_task() -> None:
    ctx, _ = make_context(run_id="r9", task_id="charge")
    assert ctx.idempotency_key == "r9/charge"


def test_the_idempotency_key_is_the_same_for_every_attempt() -> None:
    first, _ = make_context(attempt=1)
    third, _ = make_context(attempt=3)
    assert first.idempotency_key == third.idempotency_key


def test_the_idempotency_key_differs_between_runs_and_tasks() -> None:
    keys = {
        make_context(run_id="r1", task_id="a")[0].idempotency_key,
        make_context(run_id="r2", task_id="a")[0].idempotency_key,
        make_context(run_id="r1", task_id="b")[0].idempotency_key,
    }
    assert len(keys) == 3


def test_logger_records_carry_run_task_and_attempt(caplog: pytest.LogCaptureFixture) -> None:
    ctx, _ = make_context()
    with caplog.at_level(logging.INFO, logger="plait.task"):
        ctx.logger.info("loaded %d rows", 12)
    [record] = caplog.records
    assert record.name == "plait.task"
    assert record.levelno == logging.INFO
    assert record.getMessage() == "[load#2] loaded 12 rows"
    assert record.run_id == "run-1"  # type: ignore[attr-defined]
    assert record.task_id == "load"  # type: ignore[attr-defined]
    assert record.attempt == 2  # type: ignore[attr-defined]


def test_logger_keeps_extra_fields_given_by_the_task(caplog: pytest.LogCaptureFixture) -> None:
    ctx, _ = make_context()
    with caplog.at_level(logging.INFO, logger="plait.task"):
        ctx.logger.warning("slow", extra={"rows": 3})
    [record] = caplog.records
    assert record.rows == 3  # type: ignore[attr-defined]
    assert record.task_id == "load"  # type: ignore[attr-defined]


def test_logger_is_built_once_per_context() -> None:
    ctx, _ = make_context()
    assert ctx.logger is ctx.logger


def test_each_context_logs_its_own_attempt(caplog: pytest.LogCaptureFixture) -> None:
    first, _ = make_context(attempt=1)
    second, _ = make_context(attempt=2)
    with caplog.at_level(logging.INFO, logger="plait.task"):
        first.logger.info("x")
        second.logger.info("x")
    assert [r.attempt for r in caplog.records] == [1, 2]  # type: ignore[attr-defined]


def test_repr_shows_run_task_and_attempt() -> None:
    ctx, _ = make_context()
    assert repr(ctx) == "<Context run='run-1' task='load' attempt=2>"


def test_repr_shows_a_cancelled_context() -> None:
    ctx, _ = make_context(cancelled=True)
    assert repr(ctx) == "<Context run='run-1' task='load' attempt=2 cancelled>"


def test_a_task_logging_through_its_context_in_a_run(caplog: pytest.LogCaptureFixture) -> None:
    wf = Workflow("w")

    @wf.task
    def extract(ctx: Context) -> str:
        assert ctx.cancelled is False
        ctx.raise_if_cancelled()
        ctx.logger.info("extracting")
        return ctx.idempotency_key

    with caplog.at_level(logging.INFO, logger="plait.task"):
        result = plait.run(wf, run_id="run-42")
    assert result.outputs == {"extract": "run-42/extract"}
    [record] = [r for r in caplog.records if r.name == "plait.task"]
    assert record.getMessage() == "[extract#1] extracting"
    assert (record.run_id, record.task_id, record.attempt) == (  # type: ignore[attr-defined]
        "run-42",
        "extract",
        1,
    )
