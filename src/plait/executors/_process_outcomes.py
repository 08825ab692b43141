"""What a process worker's messages mean to the slot that reads them: a call's outcome, what
the worker wrote, how a worker ended, and the error for a call that cannot travel to it. See
``_process_worker`` for the protocol, ``_process_slot`` for the thread that reads it."""

from __future__ import annotations

import signal
import sys

from .._exceptions import NotPicklableError, WorkerLostError
from ._base import Outcome, TaskCall
from ._pickling import dumps, loads
from ._process_worker import OUTCOME, UNREADABLE

__all__ = ["not_picklable", "outcome_of", "worker_lost", "write_out"]


def outcome_of(call: TaskCall, message: bytes) -> Outcome:
    """The outcome a worker sent for ``call`` (an ``O`` message), or the error of a call it
    could not read (``U``) or whose outcome cannot be read here."""
    body = memoryview(message)[1:]
    if message[:1] == UNREADABLE:
        return Outcome(
            error=NotPicklableError(
                f"task {call.task_id!r}: its call could not be unpickled in the worker "
                f"process ({bytes(body).decode('utf-8', 'replace')}); make its function and "
                "arguments importable there (a module on sys.path), or run the task on the "
                "thread executor"
            )
        )
    assert message[:1] == OUTCOME, message[:1]
    try:
        outcome = loads(body)
    except Exception as error:  # e.g. a class this process cannot import
        return Outcome(
            error=NotPicklableError(
                f"task {call.task_id!r}: its outcome came back from the worker process but "
                f"cannot be unpickled here ({type(error).__name__}: {error}); return plain "
                "data, or run the task on the thread executor"
            )
        )
    assert isinstance(outcome, Outcome)
    outcome.echoed = True  # what it printed was written out as it came (_write_out)
    return outcome


def write_out(message: bytes) -> None:
    """Write what a worker wrote (a ``W`` message) to this process's stdout or stderr: outside
    any task's context, so it is not kept twice (the task's log has it from an ``L`` message or
    the outcome)."""
    stream = sys.stdout if message[1:2] == b"1" else sys.stderr
    if stream is None:
        return
    try:
        stream.write(message[2:].decode("utf-8", "replace"))
        stream.flush()
    except (OSError, ValueError):  # a closed or broken stream: the log keeps the lines
        pass


def worker_lost(call: TaskCall, pid: int, exitcode: int | None) -> WorkerLostError:
    """The error of ``call``'s attempt, whose worker (``pid``) died unasked."""
    return WorkerLostError(
        f"task {call.task_id!r} (attempt {call.attempt}): its worker process (pid "
        f"{pid}) {_how_it_ended(exitcode)} before the attempt ended; another attempt runs in a "
        "fresh worker if the task's retries allow"
    )


def _how_it_ended(exitcode: int | None) -> str:
    if exitcode is None:
        return "stopped answering"
    if exitcode < 0:
        try:
            name = signal.Signals(-exitcode).name
        except ValueError:
            name = f"signal {-exitcode}"
        hint = " (the OOM killer, or a kill -9)" if -exitcode == signal.SIGKILL else ""
        return f"was killed by {name}{hint}"
    return f"exited with status {exitcode}"


def not_picklable(call: TaskCall, error: Exception) -> NotPicklableError:
    """The error for a call that cannot be pickled, naming the part of it at fault."""
    what = "its call"
    value: object = call
    if not _pickles(call.fn):
        what, value = "its function", call.fn
    else:
        for name, argument in call.kwargs.items():
            if not _pickles(argument):
                what, value = f"its argument {name!r}", argument
                break
        else:
            for key, answer in call.answers.items():
                if not _pickles(answer):
                    what, value = f"the answer to its question {key!r}", answer
                    break
    kind = type(value)
    name = (
        kind.__qualname__
        if kind.__module__ == "builtins"
        else f"{kind.__module__}.{kind.__qualname__}"
    )
    return NotPicklableError(
        f"task {call.task_id!r}: {what}, a {name}, cannot be pickled to reach its worker "
        f"process ({type(error).__name__}: {error}); pass plain data (or something that says "
        "where to find the value, such as a path), or run the task on the thread executor"
    )


def _pickles(value: object) -> bool:
    try:
        dumps(value)
    except Exception:  # whatever pickling raises, the value is at fault
        return False
    return True
