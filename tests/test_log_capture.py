"""Capturing what a task says (plait._log_capture): prints and logging records reach the log of
the attempt whose context they come from, and still go where they went before."""

from __future__ import annotations

import asyncio
import contextvars
import logging
import sys
import threading

import pytest

import plait
from plait import Context, LogLine, Workflow


def texts(lines: list[LogLine]) -> list[tuple[str, int, str, str]]:
    return [(line.task_id, line.attempt, line.stream, line.text) for line in lines]


def test_printed_output_still_goes_where_it_went(capsys: pytest.CaptureFixture[str]) -> None:
    wf = Workflow("w")

    @wf.task
    def talk() -> None:
        print("hello out")
        print("hello err", file=sys.stderr)

    before = sys.stdout, sys.stderr
    result = plait.run(wf)
    captured = capsys.readouterr()
    assert (captured.out, captured.err) == ("hello out\n", "hello err\n")
    assert (sys.stdout, sys.stderr) == before  # the capture is gone with the run
    assert logging.Logger.isEnabledFor is logging.Logger.__dict__["isEnabledFor"]
    assert [line.text for line in plait.get_logs(result.run_id)] == ["hello out", "hello err"]


def test_lines_are_attributed_by_context_not_by_thread() -> None:
    """Two async tasks interleave on one thread; what they start inherits their context."""
    wf = Workflow("w")
    both_started = asyncio.Event()
    started: list[str] = []

    async def chatter(name: str) -> None:
        started.append(name)
        if len(started) == 2:
            both_started.set()
        await both_started.wait()
        for n in range(3):
            print(f"{name} {n}")
            await asyncio.sleep(0)
        await asyncio.gather(asyncio.sleep(0), _child(name))
        await asyncio.to_thread(logging.getLogger("worker").info, "%s in a thread", name)

    async def _child(name: str) -> None:
        print(f"{name} child")

    @wf.task
    async def left() -> None:
        await chatter("left")

    @wf.task
    async def right() -> None:
        await chatter("right")

    result = plait.run(wf, max_concurrency=2)
    for name in ("left", "right"):
        assert [line.text for line in plait.get_logs(result.run_id, name)] == [
            f"{name} 0",
            f"{name} 1",
            f"{name} 2",
            f"{name} child",
            f"INFO worker: {name} in a thread",
        ]


def test_a_plain_thread_is_not_attributed_unless_it_copies_the_context() -> None:
    wf = Workflow("w")

    @wf.task
    def spawn() -> None:
        plain = threading.Thread(target=print, args=("from a plain thread",))
        plain.start()
        plain.join()
        context = contextvars.copy_context()
        copied = threading.Thread(target=context.run, args=(print, "from a copied context"))
        copied.start()
        copied.join()

    result = plait.run(wf)
    assert [line.text for line in plait.get_logs(result.run_id)] == ["from a copied context"]


def test_the_process_handlers_see_what_they_saw_before(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """INFO records are made in a task's context for its log, but handlers get them only if the
    logger's level lets them through; a level set on a logger keeps its records out of logs."""
    caplog.set_level(logging.WARNING)
    logging.getLogger("quiet").setLevel(logging.ERROR)
    wf = Workflow("w")

    @wf.task
    def talk(ctx: Context) -> None:
        logging.getLogger("app").info("info")
        logging.getLogger("app").warning("warning")
        logging.getLogger("quiet").warning("kept out")
        try:
            raise ValueError("bad")
        except ValueError:
            ctx.logger.exception("failed")

    try:
        result = plait.run(wf)
    finally:
        logging.getLogger("quiet").setLevel(logging.NOTSET)
    assert [r.getMessage() for r in caplog.records] == ["warning", "[talk#1] failed"]
    lines = [line.text for line in plait.get_logs(result.run_id)]
    assert lines[:2] == ["INFO app: info", "WARNING app: warning"]
    assert lines[2].startswith("ERROR plait.task: failed\nTraceback (most recent call last):")
    assert lines[2].endswith("ValueError: bad")
    assert len(lines) == 3


def test_a_subscriber_that_prints_is_not_logged_as_the_task() -> None:
    wf = Workflow("w")

    @wf.task
    def talk() -> None:
        print("from the task")

    result = plait.run(wf, subscribers=[print])
    assert [line.text for line in plait.get_logs(result.run_id)] == ["from the task"]


def test_what_a_handler_writes_is_not_kept_again_as_printed_output() -> None:
    """A handler that writes to sys.stderr (as logging's last resort does) runs in the task's
    context: its line is the record again, not something the task printed."""

    class ToStderr(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            print(self.format(record), file=sys.stderr)

    handler = ToStderr(logging.WARNING)
    logging.getLogger("noisy").addHandler(handler)
    wf = Workflow("w")

    @wf.task
    def talk() -> None:
        logging.getLogger("noisy").warning("careful")

    try:
        result = plait.run(wf)
    finally:
        logging.getLogger("noisy").removeHandler(handler)
    assert texts(plait.get_logs(result.run_id)) == [("talk", 1, "log", "WARNING noisy: careful")]
