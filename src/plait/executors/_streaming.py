"""A shipped attempt's log lines on their way to the orchestrator while it runs, in batches.

A worker that runs a :class:`~plait.executors.TaskCall` (``run_call`` with ``send_lines=``)
makes one :class:`LogStream` per attempt: every line the attempt keeps (``AttemptLog``'s
``said``) goes into the stream's batch, and the batch goes out through ``send_lines`` --

- when it holds :data:`BATCH_LINES` lines or :data:`BATCH_BYTES` bytes of text, from the thread
  that said the line that filled it (a burst of 10,000 lines costs ten sends, not 10,000; the
  task's thread waits for the send, so a task that logs faster than the lines travel is slowed
  rather than made to fill memory);
- else :data:`FLUSH_SECONDS` after its first line, from the process's flusher thread (one per
  process, started when a stream first has a line: a worker whose tasks never log has none);
- never for the last lines: :meth:`LogStream.close`, as the attempt ends, waits for a batch on
  its way and returns what is left, which travels in the outcome (``Outcome.logs``). So a task
  that logs a few lines and returns at once costs no send at all, and every line reaches the
  orchestrator exactly once, in order: by ``send_lines`` before the outcome, or in it.

A send that raises (the orchestrator is gone, or the line cannot be encoded) turns streaming off
for the attempt: that batch and the lines after it stay for the outcome (at most the attempt's
``log_limit`` bytes of them; the orchestrator's log cuts to its bound anyway).

What the stream cannot save: the lines of the last :data:`FLUSH_SECONDS` (at most a batch)
before the worker is killed (a timeout's ``SIGKILL``, the OOM killer, ``os._exit``); every
batch sent before is in the attempt's log already.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable

from .._logs import LogLine

__all__ = ["BATCH_BYTES", "BATCH_LINES", "FLUSH_SECONDS", "LogStream"]

#: How long a line waits for others to share its batch, at most (seconds). As often as the
#: run's recorder writes logs to the store, so a line is not held back twice as long.
FLUSH_SECONDS = 0.1

#: A batch that reaches this many lines is sent at once, by the thread that filled it.
BATCH_LINES = 1000

#: ... or this many bytes of text (about: characters, plus a little per line).
BATCH_BYTES = 64 * 1024

_LINE_COST = 32  # bytes a line costs besides its text (time, stream, framing), about


class LogStream:
    """The lines one attempt says, sent in batches while it runs (see the module docstring).

    Thread-safe: lines come from the task's threads, flushes from the flusher thread too.
    ``send`` is called by one thread at a time, in the order the lines were added.
    """

    __slots__ = ("_bytes", "_closed", "_limit", "_lock", "_pending", "_send", "_sending", "sent")

    def __init__(self, send: Callable[[list[LogLine]], object], *, limit: int) -> None:
        self._send = send
        self._limit = limit  # the bytes kept for the outcome once streaming is off
        self._lock = threading.Lock()  # guards the batch
        self._sending = threading.Lock()  # held from taking a batch until it is sent
        self._pending: list[LogLine] = []
        self._bytes = 0
        self._closed = False
        self.sent: int | None = 0  # batches sent; None once a send failed (streaming is off)

    def add(self, line: LogLine, echoed: bool = False) -> None:
        """Put ``line`` in the batch (``AttemptLog``'s ``said``; ``echoed`` is the receiver's
        business: the orchestrator knows whether its worker's prints were shown)."""
        size = len(line.text) + _LINE_COST
        with self._lock:
            if self._closed:
                return  # said after the attempt ended (a thread it left behind): not its log
            if self.sent is None:  # streaming is off: keep what fits, for the outcome
                if self._bytes + size <= self._limit:
                    self._pending.append(line)
                    self._bytes += size
                return
            pending = self._pending
            pending.append(line)
            self._bytes += size
            first = len(pending) == 1
            full = len(pending) >= BATCH_LINES or self._bytes >= BATCH_BYTES
        if full:
            self.flush()
        elif first:
            _flusher.due(self)

    def flush(self) -> None:
        """Send the batch now, if there is one (and streaming is on)."""
        with self._sending:
            with self._lock:
                if not self._pending or self.sent is None:
                    return
                lines, self._pending, self._bytes = self._pending, [], 0
            try:
                self._send(lines)
            except Exception:  # the orchestrator is gone, or a line cannot travel this way
                with self._lock:
                    self.sent = None
                    self._pending[:0] = lines
                    self._bytes += sum(len(line.text) + _LINE_COST for line in lines)
            else:
                self.sent = (self.sent or 0) + 1

    def close(self) -> list[LogLine]:
        """The attempt has ended: wait for a batch on its way; return the lines not sent (for
        the outcome). Lines added after are dropped. Calling it again returns nothing more."""
        with self._sending, self._lock:
            self._closed = True
            lines, self._pending, self._bytes = self._pending, [], 0
        return lines

    def __repr__(self) -> str:
        state = "closed" if self._closed else "off" if self.sent is None else f"{self.sent} sent"
        return f"<LogStream {len(self._pending)} waiting, {state}>"


class _Flusher:
    """The process's flusher thread: sends each stream's batch :data:`FLUSH_SECONDS` after its
    first line. It sleeps on a condition while no stream has lines (it never polls)."""

    def __init__(self) -> None:
        self._condition = threading.Condition(threading.Lock())
        self._due: list[LogStream] = []
        self._thread: threading.Thread | None = None

    def due(self, stream: LogStream) -> None:
        """``stream``'s batch got its first line: send it soon."""
        with self._condition:
            due = self._due
            due.append(stream)
            if len(due) > 1:
                return  # the flusher is awake already, in its batching window
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._serve, name="plait-log-flusher", daemon=True
                )
                self._thread.start()
            self._condition.notify()

    def forget(self) -> None:
        """In a child forked from this process: no flusher there yet, nothing due."""
        self._condition = threading.Condition(threading.Lock())
        self._due = []
        self._thread = None

    def _serve(self) -> None:
        while True:
            with self._condition:
                while not self._due:
                    self._condition.wait()
            time.sleep(FLUSH_SECONDS)  # the batching window: let more lines join the first
            with self._condition:
                due, self._due = self._due, []
            for stream in due:
                stream.flush()


_flusher = _Flusher()
os.register_at_fork(after_in_child=_flusher.forget)
