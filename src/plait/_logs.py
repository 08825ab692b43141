"""Task logs: what each attempt of a task says, kept with its run.

What is kept, per attempt (a task's log is the logs of its attempts, each on its own):

- the records of ``ctx.logger`` and of any :mod:`logging` logger called from within the task, at
  INFO and above -- even when the logger's level, inherited from the root logger (WARNING by
  default), would drop them; a level you set on the logger itself (or a parent other than the
  root) is respected;
- what the task writes to ``sys.stdout`` and ``sys.stderr`` (``print``): it still goes where it
  went before, and is kept line by line as well;
- a shell task's stdout and stderr (:mod:`plait._shell_process` feeds them in as they arrive).

Which attempt a line belongs to, and how prints and :mod:`logging` records reach its log, is
``_log_capture``: by context, not by thread, while at least one run is live in the process.

**Bounds.** An attempt keeps at most ``EngineConfig.max_log_bytes`` bytes of text (UTF-8;
default 1 MiB): the first half as it came, the last half rolling. Lines dropped in between are
replaced by one line of stream ``plait`` that says how many lines and bytes were cut; a single
line longer than half the budget keeps its start. ``max_log_bytes=0`` keeps no logs at all.

**Recording.** An :class:`AttemptLog` tells its owner (the run's recorder) when it changes; the
recorder writes each changed log whole in its next batch, in the same transaction as the task
records, so a log is as durable as the record of the attempt that wrote it. A log that keeps
changing is rewritten at most ten times a second (as the batches go), up to ``max_log_bytes``
each time: give a task that writes a great deal a smaller bound, or write its output to a file.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from ._public import publish_exports

__all__ = [
    "MAX_LOG_BYTES",
    "MIN_LOG_BYTES",
    "AttemptLog",
    "LogLine",
]


#: The default bound of one attempt's log, in bytes of UTF-8 text.
MAX_LOG_BYTES = 1024 * 1024

#: The least non-zero bound: below it, the note that says what was cut would not fit.
MIN_LOG_BYTES = 1024


@dataclass(frozen=True, slots=True)
class LogLine:
    """One line of a task's log.

    Attributes:
        task_id: the task that said it.
        attempt: the attempt (1-based) that said it.
        number: its place in the attempt's log, from 1, counting lines that were cut; the note
            that replaces cut lines has the number of the first of them.
        time: when it was said (Unix seconds).
        stream: ``stdout`` or ``stderr`` (printed, or written by a shell command), ``log`` (a
            :mod:`logging` record, as ``LEVEL logger: message``) or ``plait`` (plait's note of
            what was cut).
        text: the line, without its newline (a record with a traceback spans several lines).
    """

    task_id: str
    attempt: int
    number: int
    time: float
    stream: str
    text: str


def _size(text: str) -> int:
    return len(text.encode("utf-8", "surrogatepass")) + 1  # and its newline


def _clip(text: str, size: int) -> str:
    """The start of ``text`` that fits ``size`` bytes, with a note of what was cut."""
    total = _size(text) - 1
    kept = text.encode("utf-8", "surrogatepass")[: max(0, size - 60)]
    start = kept.decode("utf-8", "ignore")
    return f"{start} [... {total - len(start.encode('utf-8', 'surrogatepass'))} bytes cut]"


class AttemptLog:
    """The log of one attempt, bounded to ``limit`` bytes (see the module docstring).

    Thread-safe: lines may come from the task's thread, the event loop and threads the task
    started. ``changed`` is called (outside the log's lock) each time the log changes after
    :meth:`take` last took it; ``said``, if given, with every line kept, and whether it was also
    written to the process's own stream (``echoed``: a print).
    """

    __slots__ = (
        "_count",
        "_cut_bytes",
        "_cut_from",
        "_cut_lines",
        "_cut_time",
        "_dirty",
        "_full",
        "_half",
        "_head",
        "_head_bytes",
        "_lock",
        "_partial",
        "_tail",
        "_tail_bytes",
        "attempt",
        "changed",
        "said",
        "task_id",
    )

    def __init__(
        self,
        task_id: str,
        attempt: int,
        *,
        limit: int = MAX_LOG_BYTES,
        changed: Callable[[AttemptLog], object] | None = None,
        said: Callable[[LogLine, bool], object] | None = None,
    ) -> None:
        self.task_id = task_id
        self.attempt = attempt
        self.changed = changed
        self.said = said
        self._half = limit // 2
        self._head: list[LogLine] = []
        self._head_bytes = 0
        self._full = False  # the head has its share: new lines go to the tail
        self._tail: deque[tuple[LogLine, int]] = deque()
        self._tail_bytes = 0
        self._count = 0
        self._cut_lines = 0
        self._cut_bytes = 0
        self._cut_from = 0
        self._cut_time = 0.0
        self._partial: dict[str, str] = {}  # stream -> the start of a line without its newline
        self._lock = threading.Lock()
        self._dirty = False

    def write(self, stream: str, text: str, *, echoed: bool = False) -> None:
        """Add ``text`` as written to ``stream``: its complete lines now, a last line without
        its newline once the rest comes (or at :meth:`close`)."""
        if not text:
            return
        at = time.time()
        with self._lock:
            pending = self._partial.pop(stream, "")
            *lines, rest = (pending + text).split("\n")
            if rest:
                self._partial[stream] = rest
            added = [self._add(stream, line.removesuffix("\r"), at) for line in lines]
            tell = self._mark(added)
        self._tell(added, tell, echoed)

    def record(self, text: str, at: float) -> None:
        """Add one logging record (``text`` may span several lines)."""
        with self._lock:
            added = [self._add("log", text, at)]
            tell = self._mark(added)
        self._tell(added, tell, False)

    def extend(self, lines: list[LogLine], *, echoed: bool = False) -> None:
        """Add lines said elsewhere (a shipped attempt's, see ``executors._base.Outcome``),
        keeping their stream and time; numbers are this log's own. ``echoed``: the printed
        ones (streams ``stdout``, ``stderr``) were written to this process's streams already."""
        if not lines:
            return
        with self._lock:
            added = [self._add(line.stream, line.text, line.time) for line in lines]
            tell = self._mark(added)
        if tell and self.changed is not None:
            self.changed(self)
        if self.said is not None:
            for line in added:
                self.said(line, echoed and line.stream in _PRINTED)

    def close(self) -> None:
        """Keep the lines still waiting for their newline (the attempt has ended)."""
        with self._lock:
            partial, self._partial = self._partial, {}
            at = time.time()
            added = [self._add(stream, text, at) for stream, text in partial.items()]
            tell = self._mark(added)
        self._tell(added, tell, True)

    def lines(self) -> list[LogLine]:
        """The lines kept, in order, with a note where lines were cut."""
        with self._lock:
            return self._lines()

    def take(self) -> list[LogLine] | None:
        """The lines kept, if the log changed since it was last taken; else None."""
        with self._lock:
            if not self._dirty:
                return None
            self._dirty = False
            return self._lines()

    def _lines(self) -> list[LogLine]:
        lines = list(self._head)
        if self._cut_lines:
            lines.append(
                LogLine(
                    self.task_id,
                    self.attempt,
                    self._cut_from,
                    self._cut_time,
                    "plait",
                    f"[{self._cut_lines} lines ({self._cut_bytes} bytes) cut here: an attempt "
                    f"keeps the first and last {self._half} bytes of its log (max_log_bytes)]",
                )
            )
        lines.extend(line for line, _ in self._tail)
        return lines

    def _add(self, stream: str, text: str, at: float) -> LogLine:
        """Keep one line, within the bounds. Under the lock."""
        self._count += 1
        size = _size(text)
        if size > self._half:  # longer than a half on its own: keep its start
            text = _clip(text, self._half)
            size = _size(text)
        line = LogLine(self.task_id, self.attempt, self._count, at, stream, text)
        if not self._full:
            if self._head_bytes + size <= self._half:
                self._head.append(line)
                self._head_bytes += size
                return line
            self._full = True
        tail = self._tail
        tail.append((line, size))
        self._tail_bytes += size
        while self._tail_bytes > self._half:
            old, old_size = tail.popleft()
            self._tail_bytes -= old_size
            if not self._cut_lines:
                self._cut_from = old.number
            self._cut_lines += 1
            self._cut_bytes += old_size
            self._cut_time = old.time
        return line

    def _mark(self, added: list[LogLine]) -> bool:
        """Note a change; whether it is the first since the log was last taken. Under the lock."""
        if not added or self._dirty:
            return False
        self._dirty = True
        return True

    def _tell(self, added: list[LogLine], tell: bool, echoed: bool) -> None:
        """Tell the owner of a change, and the listener of each line. Outside the lock."""
        if tell and self.changed is not None:
            self.changed(self)
        if self.said is not None:
            for line in added:
                self.said(line, echoed)

    def __repr__(self) -> str:
        return f"<AttemptLog {self.task_id!r}#{self.attempt}: {self._count} lines>"


_PRINTED = frozenset({"stdout", "stderr"})


publish_exports(globals())  # plait.X, not plait._logs.X: see plait._public
