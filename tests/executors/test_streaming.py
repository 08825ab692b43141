"""A shipped attempt's log lines sent while it runs: LogStream's batches, and run_call's
``send_lines`` (each line once: sent, or in the outcome)."""

from __future__ import annotations

import threading
from typing import Any

import pytest

from plait import Context, LogLine
from plait.executors import TaskCall, run_call
from plait.executors._streaming import BATCH_BYTES, BATCH_LINES, LogStream

pytestmark = pytest.mark.timeout(30)


def line(number: int, text: str | None = None) -> LogLine:
    return LogLine("t", 1, number, 0.0, "stdout", f"line {number}" if text is None else text)


class Sends:
    """A ``send_lines`` that records each batch and the thread that sent it."""

    def __init__(self) -> None:
        self.batches: list[tuple[threading.Thread, list[LogLine]]] = []
        self.came = threading.Event()

    def __call__(self, lines: list[LogLine]) -> None:
        self.batches.append((threading.current_thread(), lines))
        self.came.set()

    def lines(self) -> list[LogLine]:
        return [one for _, batch in self.batches for one in batch]


def test_a_full_batch_is_sent_at_once_by_the_thread_that_filled_it() -> None:
    sends = Sends()
    stream = LogStream(sends, limit=1 << 20)
    for number in range(2 * BATCH_LINES + 500):
        stream.add(line(number))
    rest = stream.close()
    assert sends.lines() + rest == [line(n) for n in range(2 * BATCH_LINES + 500)]  # in order
    mine = [batch for thread, batch in sends.batches if thread is threading.current_thread()]
    assert mine and all(len(batch) == BATCH_LINES for batch in mine)  # the rest: the flusher's


def test_a_batch_is_full_at_its_bytes_too() -> None:
    sends = Sends()
    stream = LogStream(sends, limit=1 << 20)
    stream.add(line(1, "x" * BATCH_BYTES))
    assert [batch for _, batch in sends.batches] == [[line(1, "x" * BATCH_BYTES)]]
    assert stream.close() == []


def test_a_lone_line_is_sent_by_the_flusher_without_waiting_for_more() -> None:
    sends = Sends()
    stream = LogStream(sends, limit=1 << 20)
    stream.add(line(1))
    assert sends.came.wait(10)
    ((thread, batch),) = sends.batches
    assert thread.name == "plait-log-flusher"
    assert batch == [line(1)]
    assert stream.close() == []


def test_close_waits_for_a_batch_on_its_way_and_drops_later_lines() -> None:
    entered, release = threading.Event(), threading.Event()
    sent: list[list[LogLine]] = []

    def slow(lines: list[LogLine]) -> None:
        entered.set()
        assert release.wait(10)
        sent.append(lines)

    stream = LogStream(slow, limit=1 << 20)
    stream.add(line(1))
    assert entered.wait(10)  # the flusher is sending it
    closed: list[list[LogLine]] = []
    closer = threading.Thread(target=lambda: closed.append(stream.close()))
    closer.start()
    closer.join(0.05)
    assert closer.is_alive()  # the outcome must not overtake the batch
    release.set()
    closer.join(10)
    assert (sent, closed) == ([[line(1)]], [[]])
    stream.add(line(2))
    assert stream.close() == []


def test_a_send_that_fails_turns_streaming_off_and_keeps_the_lines_for_the_outcome() -> None:
    tries: list[int] = []

    def broken(lines: list[LogLine]) -> None:
        tries.append(len(lines))
        raise OSError("the orchestrator is gone")

    stream = LogStream(broken, limit=100 * 40)  # room for about 100 short lines
    for number in range(BATCH_LINES + 10):
        stream.add(line(number))
    assert len(tries) == 1  # (by this thread, or by the flusher if it came first); none after
    assert stream.sent is None
    rest = stream.close()
    assert len(rest) >= tries[0]  # the failed batch kept whole...
    assert rest == [line(n) for n in range(len(rest))]  # ...first, then what the limit allows
    assert len(rest) < BATCH_LINES + 10


def make_call(fn: Any, **fields: Any) -> TaskCall:
    base: dict[str, Any] = {
        "run_id": "r1",
        "task_id": "t",
        "attempt": 1,
        "idempotency_key": "r1/t",
        "fn": fn,
        "log_limit": 1 << 20,
        "context_parameter": "ctx",
    }
    return TaskCall(**{**base, **fields})


def test_run_call_sends_lines_while_the_attempt_runs_and_the_rest_in_the_outcome() -> None:
    sends = Sends()

    def talk(ctx: Context) -> None:
        ctx.logger.info("first")
        assert sends.came.wait(10)  # sent while the task still runs
        print("second")

    outcome = run_call(make_call(talk), send_lines=sends)
    assert outcome.error is None
    assert [one.text for one in sends.lines()] == ["INFO plait.task: first"]
    assert [one.text for one in outcome.logs] == ["second"]  # not the first again


def test_run_call_sends_nothing_for_an_attempt_that_says_nothing() -> None:
    sends = Sends()
    outcome = run_call(make_call(lambda ctx: 1), send_lines=sends)
    assert (outcome.output, outcome.logs, sends.batches) == (1, [], [])


def test_run_call_with_log_limit_0_sends_nothing() -> None:
    sends = Sends()

    def talk(ctx: Context) -> None:
        for number in range(BATCH_LINES + 1):
            print(number)

    outcome = run_call(make_call(talk, log_limit=0), send_lines=sends)
    assert (outcome.logs, sends.batches) == ([], [])
