"""The worker process of the process executor: runs one shipped call at a time, forever.

The protocol: two pipes (``multiprocessing.connection``), one message per ``send_bytes``, its
first byte saying what it is; ``SEQ`` is the call's number (8 bytes, little-endian), counted by
the parent for this worker. On the calls pipe both ends write a small message in one write
(:func:`send`) and read messages a chunk at a time (:class:`Inbox`), in ``send_bytes``'s
framing: multiprocessing's own methods cost a no-op task's round trip a few microseconds more
on each side, and one more system call (the length, then the body).

=====================  ========================================================================
*calls* pipe, parent -> worker
``R`` SEQ call         run this pickled :class:`~plait.executors.TaskCall` (the worker is idle)
``P`` path             set ``sys.path`` to this pickled list before the next call
end of file            the parent is done with this worker, or dead: exit (see below)
*calls* pipe, worker -> parent
``O`` outcome          the pickled :class:`~plait.executors.Outcome` of the call
``U`` text             the call could not be unpickled here; ``text`` says why
``W`` ``1``/``2`` text  written to the worker's stdout (1) or stderr (2): the parent writes it
                       to its own, as it comes (see below)
``L`` SEQ lines        call SEQ said these pickled :class:`~plait.LogLine`, a batch (see below)
*control* pipe, parent -> worker
``C`` SEQ              call SEQ is cancelled: set its flag (at once if it runs, or when it
                       starts)
=====================  ========================================================================

Two threads: the main thread reads calls and runs them (``run_call``: a context whose
``cancelled`` reads the call's flag, captured logs, ``asyncio.run`` for async functions), with no
hand-off between threads on the way; a listener thread reads the control pipe, so that a cancel
reaches a running call at once. The cancel names its call, so a late one never touches the next
call's flag.

What the worker writes to ``sys.stdout`` and ``sys.stderr`` (a task's ``print``) goes to the
parent as it is written, and the parent writes it to its own ``sys.stdout``/``sys.stderr``: so it
shows where a thread task's output would (above a live view on a terminal, not through it).

What a call logs and prints goes to the parent as it is said too, in ``L`` messages, into the
attempt's log (``job.logged``): batched (``_streaming``: a batch is sent 0.1 s after its first
line, or at once when it holds 1,000 lines or 64 KiB, by the task's thread), so a task that logs
a burst costs a few messages and one that logs nothing costs none. The lines not sent yet when
the call ends travel in its outcome, which follows every ``L`` of its call on the pipe. The parent
drops an ``L`` of a call other than the one it waits for (a late one cannot be: the call's last
batch is sent before its outcome).

The worker leads a process group of its own (made first thing, before any task can start a child
process), so the parent can signal it together with whatever its tasks started. At the end of
file it flushes its output and sends ``SIGKILL`` to its own group: a task's background children
end with it. The parent's death (``kill -9``) closes both pipes, so a worker never outlives the
run it worked for -- even mid-call, when the listener ends the group at once.
"""

from __future__ import annotations

import contextlib
import io
import os
import pickle
import signal
import struct
import sys
import threading
from multiprocessing.connection import Connection
from typing import Any

from .._exceptions import NotPicklableError
from .._log_capture import start_capture
from .._logs import LogLine
from ._base import Outcome, RemoteError
from ._pickling import dumps, loads
from ._shipping import CancelFlag, run_call

__all__ = [
    "CALL",
    "CANCEL",
    "LINES",
    "OUTCOME",
    "PATH",
    "SEQ",
    "UNREADABLE",
    "WRITE",
    "Inbox",
    "send",
    "serve",
]

CALL = b"R"
CANCEL = b"C"
PATH = b"P"
OUTCOME = b"O"
UNREADABLE = b"U"
WRITE = b"W"
LINES = b"L"
SEQ = 8  # bytes of a call's number

#: ``Connection.send_bytes``'s framing: the body's length (-1, then the length in 8 bytes, for
#: 2 GiB and more), then the body.
_LENGTH = struct.Struct("!i")
_LONG_LENGTH = struct.Struct("!Q")
_SMALL = 16384  # bytes up to which send_bytes, too, writes length and body at once
_CHUNK = 65536  # bytes read at a time: a pipe's buffer


def send(connection: Connection, data: bytes) -> None:
    """``connection.send_bytes(data)``, in one write for a small message.

    Raises:
        OSError: the other end is gone.
    """
    if len(data) > _SMALL:
        connection.send_bytes(data)
        return
    frame = memoryview(_LENGTH.pack(len(data)) + data)
    fd = connection.fileno()
    while frame:
        frame = frame[os.write(fd, frame) :]


class Inbox:
    """The messages coming in on one end of a pipe, read a chunk at a time: a small message
    costs one read, where ``recv_bytes`` makes two. Every read of that pipe must go through it
    (it keeps what it read past the message it returned)."""

    __slots__ = ("_buffer", "_fd")

    def __init__(self, connection: Connection) -> None:
        self._fd = connection.fileno()
        self._buffer = bytearray()

    def next(self) -> bytes | None:
        """The next whole message read already, or None if there is none yet."""
        buffer = self._buffer
        if len(buffer) < 4:
            return None
        (size,) = _LENGTH.unpack_from(buffer)
        start = 4
        if size == -1:
            if len(buffer) < 12:
                return None
            (size,) = _LONG_LENGTH.unpack_from(buffer, 4)
            start = 12
        end = start + size
        if len(buffer) < end:
            return None
        with memoryview(buffer) as view:
            message = bytes(view[start:end])
        del buffer[:end]
        return message

    def read(self) -> None:
        """Read what the pipe holds, waiting for something if it is empty.

        Raises:
            EOFError: the other end closed it.
            OSError: reading failed.
        """
        data = os.read(self._fd, _CHUNK)
        if not data:
            raise EOFError
        self._buffer += data

    def recv(self) -> bytes:
        """The next message, waiting for it (``recv_bytes``).

        Raises:
            EOFError: the other end closed the pipe.
            OSError: reading failed.
        """
        while (message := self.next()) is None:
            self.read()
        return message


class _Current:
    """The call the main thread runs, as the listener sees it."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.seq = -1
        self.flag = CancelFlag()
        self.busy = False
        self.cancelled = -1  # the number of the last call cancelled

    def begin(self, seq: int) -> CancelFlag:
        with self.lock:
            self.seq, self.flag, self.busy = seq, CancelFlag(), True
            if self.cancelled == seq:  # the cancel overtook the call
                self.flag.set()
            return self.flag

    def end(self) -> None:
        with self.lock:
            self.busy = False

    def cancel(self, seq: int) -> None:
        with self.lock:
            self.cancelled = seq
            flag = self.flag if self.seq == seq else None
        if flag is not None:
            flag.set()  # outside the lock: it may cancel an async call's task


class _Forward(io.TextIOBase):
    """The worker's stdout or stderr: what is written goes to the parent (``W`` messages)."""

    def __init__(self, calls: Connection, lock: threading.Lock, tag: bytes) -> None:
        self._calls = calls
        self._lock = lock
        self._head = WRITE + tag

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        if text:
            data = self._head + text.encode("utf-8", "replace")
            with self._lock, contextlib.suppress(OSError):  # the parent is gone: say nothing
                send(self._calls, data)
        return len(text)


def serve(calls: Connection, control: Connection) -> None:
    """The worker's main: serve calls until the parent closes the pipes; never returns."""
    os.setpgid(0, 0)  # a group of its own: the parent kills the group, grandchildren included
    sending = threading.Lock()  # one message at a time on the calls pipe
    sys.stdout = _Forward(calls, sending, b"1")
    sys.stderr = _Forward(calls, sending, b"2")
    start_capture()  # for the worker's whole life: each call's capture then costs nothing more
    current = _Current()
    send_lines = _LineSender(calls, sending)
    listener = threading.Thread(
        target=_listen, args=(control, current), name="plait-worker-listener", daemon=True
    )
    listener.start()
    inbox = Inbox(calls)
    while True:
        try:
            message = inbox.recv()
        except (EOFError, OSError):
            break
        if message[:1] == PATH:
            sys.path[:] = loads(memoryview(message)[1:])
            continue
        flag = current.begin(int.from_bytes(message[1 : 1 + SEQ], "little"))
        send_lines.seq = message[1 : 1 + SEQ]  # the last call's lines were sent or returned
        try:
            reply = _run(message, flag, send_lines)
        finally:
            current.end()
        try:
            with sending:
                send(calls, reply)
        except OSError:  # the parent is gone
            break
    _end_group()


def _listen(control: Connection, current: _Current) -> None:
    while True:
        try:
            message = control.recv_bytes()
        except (EOFError, OSError):
            break
        current.cancel(int.from_bytes(message[1 : 1 + SEQ], "little"))
    with current.lock:
        busy = current.busy
    if busy:  # the parent died mid-call, or gave up on it: stop the call now
        _end_group(flush=False)


class _LineSender:
    """``send_lines`` for the running call (``seq``, as bytes): a batch of its log lines as one
    ``L`` message."""

    __slots__ = ("_calls", "_sending", "seq")

    def __init__(self, calls: Connection, sending: threading.Lock) -> None:
        self._calls = calls
        self._sending = sending
        self.seq = bytes(SEQ)

    def __call__(self, lines: list[LogLine]) -> None:
        data = LINES + self.seq + pickle.dumps(lines, pickle.HIGHEST_PROTOCOL)
        with self._sending:  # OSError: the parent is gone; the stream keeps the lines
            send(self._calls, data)


def _run(message: bytes, flag: CancelFlag, send_lines: _LineSender) -> bytes:
    """Run the call in ``message``; the message that reports its outcome."""
    try:
        call = loads(memoryview(message)[1 + SEQ :])
    except BaseException as error:  # reported to the parent, which names the task
        return UNREADABLE + f"{type(error).__name__}: {error}".encode("utf-8", "replace")
    outcome = run_call(call, cancelled=flag, send_lines=send_lines)
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
    for stream in (sys.__stdout__, sys.__stderr__):
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
