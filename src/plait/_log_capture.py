"""Capturing what a task says: which attempt a line belongs to, and the hooks on ``sys.stdout``,
``sys.stderr`` and :mod:`logging` that put the line into that attempt's log (``_logs``).

**Attribution is by context, not by thread.** :data:`running_attempt`, a
:class:`~contextvars.ContextVar`, holds the running attempt while its function runs: the engine
sets it in the worker thread of a sync task and in the asyncio task of an async one. asyncio
tasks copy the context they are made in, so what an async task starts (``gather``,
``create_task``, ``asyncio.to_thread``) is attributed to it; a thread started with
``threading.Thread`` starts with an empty context (run its target with
``contextvars.copy_context().run`` to have it attributed).

**The capture** is installed while at least one run is live in the process, and removed after
the last one ends (:func:`start_capture` / :func:`stop_capture`): ``sys.stdout`` and
``sys.stderr`` become :class:`_TaskStream` proxies that write through to the stream they
replaced, and :class:`logging.Logger`'s ``isEnabledFor`` and ``handle`` are wrapped so that, in a
task's context only, an INFO record is made, kept, and then handled only if the logger's own
rules would have let it through: what the process's handlers print does not change. Outside a
task's context both cost one context-variable lookup.
"""

from __future__ import annotations

import logging
import sys
import threading
from contextvars import ContextVar
from typing import Any, Protocol, TextIO

from ._logs import AttemptLog

__all__ = [
    "Handling",
    "LogSource",
    "current_log",
    "running_attempt",
    "start_capture",
    "stop_capture",
]


class LogSource(Protocol):
    """What :data:`running_attempt` holds: the attempt whose log a line belongs to."""

    def task_log(self) -> AttemptLog | None:
        """The attempt's log (made on first use), or None when logs are not kept."""
        ...


#: The attempt whose function runs in this context (see the module docstring).
running_attempt: ContextVar[LogSource | None] = ContextVar("plait_running_attempt", default=None)


class Handling:
    """What :data:`running_attempt` holds while a task's log record goes to the logging handlers:
    what they write is not the task's (no log), but the attempt still runs there (``source``:
    a trace's current span stays the attempt's, see ``plait._tracing``)."""

    __slots__ = ("source",)

    def __init__(self, source: LogSource) -> None:
        self.source = source

    def task_log(self) -> AttemptLog | None:
        return None


def current_log() -> AttemptLog | None:
    """The log of the attempt running in this context, if any."""
    source = running_attempt.get()
    return None if source is None else source.task_log()


# -- stdout and stderr ---------------------------------------------------------------------------


class _TaskStream:
    """``sys.stdout`` (or ``sys.stderr``) while runs are live: writes go to the stream it
    replaced, and, from a task's context, into the attempt's log too."""

    def __init__(self, target: TextIO, stream: str) -> None:
        self._target = target
        self._stream = stream
        self._active = True  # cleared when the capture stops but the proxy could not be removed

    def write(self, text: str) -> int:
        written = self._target.write(text)
        if self._active and (source := running_attempt.get()) is not None:
            log = source.task_log()
            if log is not None:
                log.write(self._stream, text, echoed=True)
        return written

    def writelines(self, lines: Any) -> None:
        for line in lines:
            self.write(line)

    def __getattr__(self, name: str) -> Any:  # flush, fileno, isatty, encoding, buffer...
        return getattr(self._target, name)


# -- logging -------------------------------------------------------------------------------------

_is_enabled_for = logging.Logger.isEnabledFor
_handle = logging.Logger.handle
_formatter = logging.Formatter()


def _kept_level(logger: logging.Logger, level: int) -> bool:
    """Whether a record at ``level`` belongs in a task's log: INFO and above, unless a level set
    on the logger (or a parent other than the root) is higher."""
    if level < logging.INFO:
        return False
    node: logging.Logger | None = logger
    while node is not None and node is not logging.root:
        if node.level:
            return level >= node.level
        node = node.parent
    return True


def _enabled_in_tasks(self: logging.Logger, level: int) -> bool:
    """``Logger.isEnabledFor``, also true in a task's context for the levels it keeps."""
    if (
        level >= logging.INFO
        and (source := running_attempt.get()) is not None
        and not isinstance(source, Handling)
        and not self.disabled
        and self.manager.disable < level
        and _kept_level(self, level)
    ):
        return True
    return _is_enabled_for(self, level)


def _handle_in_tasks(self: logging.Logger, record: logging.LogRecord) -> None:
    """``Logger.handle``; in a task's context, keep the record in the attempt's log, then hand it
    on only if the logger would have made it (so handlers see what they saw before)."""
    source = running_attempt.get()
    if source is None:
        _handle(self, record)
        return
    if _kept_level(self, record.levelno) and (log := source.task_log()) is not None:
        log.record(_record_text(record), record.created)
    if _is_enabled_for(self, record.levelno):
        # What a handler writes to stderr is the record again, not something the task printed.
        token = running_attempt.set(Handling(source))
        try:
            _handle(self, record)
        finally:
            running_attempt.reset(token)


def _record_text(record: logging.LogRecord) -> str:
    try:
        message = record.getMessage()
    except Exception:  # a bad format string: the handlers will say so; keep what there is
        message = str(record.msg)
    task_id = getattr(record, "task_id", None)
    if task_id is not None:  # ctx.logger's prefix: the log is the attempt's already
        message = message.removeprefix(f"[{task_id}#{getattr(record, 'attempt', '')}] ")
    text = f"{record.levelname} {record.name}: {message}"
    if record.exc_info:
        text += "\n" + _formatter.formatException(record.exc_info)
    if record.stack_info:
        text += "\n" + record.stack_info
    return text


# -- installing and removing the capture --------------------------------------------------------

_install_lock = threading.Lock()
_live_runs = 0
_proxies: list[tuple[str, _TaskStream]] = []


def start_capture() -> None:
    """A run starts: install the capture if it is the only live run (see the module docstring)."""
    global _live_runs
    with _install_lock:
        _live_runs += 1
        if _live_runs > 1:
            return
        for name in ("stdout", "stderr"):
            target = getattr(sys, name)
            if target is not None:
                proxy = _TaskStream(target, name)
                setattr(sys, name, proxy)
                _proxies.append((name, proxy))
        logging.Logger.isEnabledFor = _enabled_in_tasks  # type: ignore[method-assign]
        logging.Logger.handle = _handle_in_tasks  # type: ignore[method-assign]


def stop_capture() -> None:
    """A run ended: remove the capture if no other run is live."""
    global _live_runs
    with _install_lock:
        _live_runs -= 1
        if _live_runs > 0:
            return
        for name, proxy in _proxies:
            if getattr(sys, name) is proxy:
                setattr(sys, name, proxy._target)
            else:  # replaced meanwhile (e.g. wrapped by a terminal UI): let it write through
                proxy._active = False
        _proxies.clear()
        if logging.Logger.isEnabledFor is _enabled_in_tasks:
            logging.Logger.isEnabledFor = _is_enabled_for  # type: ignore[method-assign]
        if logging.Logger.handle is _handle_in_tasks:
            logging.Logger.handle = _handle  # type: ignore[method-assign]
