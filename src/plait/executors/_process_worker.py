"""The worker process of the process executor: runs one shipped call at a time, forever.

The protocol, over one duplex pipe (``multiprocessing.connection``), one message per
``send_bytes``, its first byte saying what it is:

====================  =========================================================================
parent -> worker
``R`` + call          run this pickled :class:`~plait.executors.TaskCall` (the worker is idle)
``C``                 the call running (or the last one sent) is cancelled: set its flag
``P`` + path          set ``sys.path`` to this pickled list before the next call
end of file           the parent is done with this worker, or dead: exit (see below)
worker -> parent
``O`` + outcome       the pickled :class:`~plait.executors.Outcome` of the call
``U`` + text          the call could not be unpickled here; ``text`` says why
====================  =========================================================================

Two threads: the main thread runs calls (``run_call``: a context whose ``cancelled`` reads the
call's flag, captured logs, ``asyncio.run`` for async functions); a reader thread receives
messages, so that a cancel reaches a running call at once. The reader makes each call's flag as
the call arrives, and messages arrive in order, so a ``C`` sets the flag of the call it was sent
for, never the next one's.

The worker leads a process group of its own (made first thing, before any task can start a child
process), so the parent can signal it together with whatever its tasks started. At the end of
file it flushes its output and sends ``SIGKILL`` to its own group: a task's background children
end with it. The parent's death (``kill -9``) closes the pipe too, so a worker never outlives
the run it worked for -- even mid-call.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
from multiprocessing.connection import Connection
from queue import SimpleQueue
from typing import Any

from .._exceptions import NotPicklableError
from ._base import Outcome, RemoteError
from ._pickling import dumps, loads
from ._shipping import CancelFlag, run_call

__all__ = ["CALL", "CANCEL", "OUTCOME", "PATH", "UNREADABLE", "serve"]

CALL = b"R"
CANCEL = b"C"
PATH = b"P"
OUTCOME = b"O"
UNREADABLE = b"U"


def serve(connection: Connection) -> None:
    """The worker's main: serve calls from ``connection`` until it closes; never returns."""
    os.setpgid(0, 0)  # a group of its own: the parent kills the group, grandchildren included
    work: SimpleQueue[tuple[bytes, CancelFlag] | list[str] | None] = SimpleQueue()
    busy = threading.Event()
    reader = threading.Thread(
        target=_read, args=(connection, work, busy), name="plait-worker-reader", daemon=True
    )
    reader.start()
    while (item := work.get()) is not None:
        if isinstance(item, list):
            sys.path[:] = item
            continue
        busy.set()
        try:
            connection.send_bytes(_run(*item))
        except OSError:  # the parent is gone: the reader is ending this process
            break
        finally:
            _flush()
            busy.clear()
    _end_group()


def _read(
    connection: Connection,
    work: SimpleQueue[tuple[bytes, CancelFlag] | list[str] | None],
    busy: threading.Event,
) -> None:
    flag = CancelFlag()
    while True:
        try:
            message = connection.recv_bytes()
        except (EOFError, OSError):
            break
        kind = message[:1]
        if kind == CALL:
            flag = CancelFlag()
            work.put((message, flag))
        elif kind == CANCEL:
            flag.set()
        elif kind == PATH:
            work.put(loads(memoryview(message)[1:]))
    if busy.is_set():  # the parent died mid-call (or gave up on it): stop the call now
        _end_group(flush=False)
    work.put(None)


def _run(message: bytes, flag: CancelFlag) -> bytes:
    """Run the call in ``message``; the message that reports its outcome."""
    try:
        call = loads(memoryview(message)[1:])
    except BaseException as error:  # reported to the parent, which names the task
        return UNREADABLE + f"{type(error).__name__}: {error}".encode("utf-8", "replace")
    outcome = run_call(call, cancelled=flag)
    try:
        return OUTCOME + dumps(outcome)
    except Exception as error:  # some part of the outcome does not pickle
        return OUTCOME + dumps(_portable(outcome, call.task_id, error))


def _portable(outcome: Outcome, task_id: str, error: Exception) -> Outcome:
    """``outcome`` made picklable: an error that does not pickle stands in as a RemoteError;
    an output that does not pickle fails the attempt with an error that says so."""
    if outcome.error is not None:
        return Outcome(
            error=RemoteError.of(outcome.error), traceback=outcome.traceback, logs=outcome.logs
        )
    failure = NotPicklableError(
        f"task {task_id!r}: its output, {_kind(outcome.output)}, cannot be pickled to come back "
        f"from its worker process ({type(error).__name__}: {error}); return plain data (or "
        "save the value and return where it is), or run the task on the thread executor"
    )
    return Outcome(error=failure, logs=outcome.logs)


def _kind(value: Any) -> str:
    kind = type(value)
    name = (
        kind.__qualname__
        if kind.__module__ == "builtins"
        else f"{kind.__module__}.{kind.__qualname__}"
    )
    return f"a {name}"


def _flush() -> None:
    for stream in (sys.stdout, sys.stderr):
        try:
            if stream is not None:
                stream.flush()
        except (OSError, ValueError):  # closed, or a broken pipe: nothing more to say
            pass


def _end_group(*, flush: bool = True) -> None:
    """Kill this worker's whole group, itself included (see the module docstring)."""
    if flush:
        _flush()
    os.killpg(0, signal.SIGKILL)
