"""The plain watchers: a line per event, for a log (``LogLines``) or a program (``JsonLines``).

:class:`LogLines` (not on a terminal, or ``--quiet``) writes one plain line per task start,
success, failure, retry, skip, cancellation or question, and when a mapped task expands (a
mapped task as a whole made no attempt, so its end names none) -- with ``quiet``, only the failures;
with ``verbose``, what the tasks say too. Each line starts with the seconds since the run
started. :class:`JsonLines` (``--json``) writes one JSON object per line per event
(:func:`event_record`), in the schema below. Both queue their lines under the engine's lock and
write them, in order, on a thread of their own (see :mod:`plait.cli._watcher`).

**The JSON lines schema** (stable; new fields may be added, none removed or renamed). Every line
is an object with ``event`` (snake_case name), ``run_id`` and ``time`` (Unix seconds); task
events add ``task_id``; errors are ``{"type": ..., "message": ...}``::

    run_started      workflow, tasks (int)
    task_ready       -
    task_mapped      count: a mapped task expanded into ``count`` instances, ``task_id[0]``...
                     (each then has the events of any task, the whole ends with the last)
    task_started     attempt (1-based)
    task_succeeded   attempt
    task_retrying    attempt, error, delay (seconds before the next attempt)
    task_failed      attempt, error
    task_skipped     cause (the task whose end decided it), skip_cause (why: a SkipCause)
    task_cancelled   attempt (the last one made; 0 if it never started)
    input_requested  key, prompt, schema (JSON Schema or null), deadline (Unix time or null)
    input_received   key
    task_logged      attempt, number (the line's place in the attempt's log), stream
                     (stdout|stderr|log|plait), text -- a line the task said (see plait logs)
    run_finished     status (succeeded|failed|cancelled|paused), error (string or null)
    run_summary      status, makespan, task_time, parallelism, critical_path (ids),
                     critical_path_seconds, tasks ({status: count}), waiting
                     ([{task_id, key, prompt, schema}]) -- the last line, written by the CLI
"""

from __future__ import annotations

import json
import queue
import re
import threading
from abc import abstractmethod
from collections import Counter
from collections.abc import Sequence
from types import TracebackType
from typing import IO, Any, Self

from rich.console import Console

from .._events import (
    Event,
    InputReceived,
    InputRequested,
    RunFinished,
    RunStarted,
    TaskCancelled,
    TaskEvent,
    TaskFailed,
    TaskLogged,
    TaskMapped,
    TaskRetrying,
    TaskSkipped,
    TaskStarted,
    TaskSucceeded,
)
from .._results import RunResult, TaskError
from ._outcome import last_line, print_summary
from ._summary import RunFigures, format_seconds
from ._watcher import Watcher, said, skip_why

__all__ = ["JsonLines", "LogLines", "event_record"]


def _error_record(error: TaskError) -> dict[str, str]:
    return {"type": error.type, "message": error.message}


def _snake(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


def event_record(event: Event) -> dict[str, Any]:
    """``event`` as a JSON-able dict, in the schema of the module docstring."""
    record: dict[str, Any] = {
        "event": _snake(type(event).__name__),
        "run_id": event.run_id,
        "time": event.time,
    }
    if isinstance(event, TaskEvent):
        record["task_id"] = event.task_id
    if isinstance(event, RunStarted):
        record.update(workflow=event.workflow, tasks=event.tasks)
    elif isinstance(event, RunFinished):
        record.update(status=str(event.status), error=event.error)
    elif isinstance(event, TaskStarted | TaskSucceeded | TaskCancelled):
        record["attempt"] = event.attempt
    elif isinstance(event, TaskRetrying):
        record.update(attempt=event.attempt, error=_error_record(event.error), delay=event.delay)
    elif isinstance(event, TaskFailed):
        record.update(attempt=event.attempt, error=_error_record(event.error))
    elif isinstance(event, TaskSkipped):
        record.update(cause=event.cause, skip_cause=str(event.skip_cause))
    elif isinstance(event, TaskMapped):
        record["count"] = event.count
    elif isinstance(event, InputRequested):
        question = event.question
        record.update(
            key=question.key,
            prompt=question.prompt,
            schema=None if question.schema is None else dict(question.schema),
            deadline=question.deadline,
        )
    elif isinstance(event, InputReceived):
        record["key"] = event.key
    elif isinstance(event, TaskLogged):
        record.update(
            attempt=event.attempt, number=event.number, stream=event.stream, text=event.text
        )
    return record


class _LineWriter(Watcher):
    """A watcher whose events become lines, written in order by a thread of its own."""

    def __init__(self, console: Console, *, store: str | None = None) -> None:
        super().__init__(console, store=store)
        self._lines: queue.SimpleQueue[str | None] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._write_all, name="plait-cli-lines", daemon=True)

    def _write_all(self) -> None:
        for line in iter(self._lines.get, None):
            self._write(line)

    @abstractmethod
    def _write(self, line: str) -> None: ...

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._lines.put(None)
        self._thread.join()


class JsonLines(_LineWriter):
    """One JSON object per line per event (the schema is in the module docstring)."""

    def __init__(self, console: Console, *, store: str | None = None) -> None:
        super().__init__(console, store=store)
        self._stream: IO[str] = console.file

    def __call__(self, event: Event) -> None:
        self._lines.put(json.dumps(event_record(event)))

    def _write(self, line: str) -> None:
        self._stream.write(line + "\n")
        self._stream.flush()

    def finish(self, result: RunResult, figures: RunFigures) -> None:
        """Write the ``run_summary`` line."""
        counts = Counter(str(task.status) for task in result.tasks.values())
        self._write(
            json.dumps(
                {
                    "event": "run_summary",
                    "run_id": result.run_id,
                    "time": result.finished_at,
                    "status": str(result.status),
                    "makespan": figures.makespan,
                    "task_time": figures.task_time,
                    "parallelism": figures.parallelism,
                    "critical_path": list(figures.critical_path),
                    "critical_path_seconds": figures.critical_seconds,
                    "tasks": dict(counts),
                    "waiting": [
                        {
                            "task_id": task_id,
                            "key": question.key,
                            "prompt": question.prompt,
                            "schema": None if question.schema is None else dict(question.schema),
                        }
                        for task_id, question in result.waiting.items()
                    ],
                }
            )
        )

    def interrupted(self, run_id: str) -> None:
        """Nothing more to say: the ``run_finished`` line already says ``cancelled``."""


class LogLines(_LineWriter):
    """Plain log lines, one per task start, end, failure, retry or question.

    Each line starts with the seconds since the run started: ``[  0.21s] started   fetch``.
    With ``quiet``, only failures are written (and the summary at the end); with ``verbose``,
    what the tasks say too (see the module docstring).
    """

    def __init__(
        self,
        console: Console,
        *,
        store: str | None = None,
        quiet: bool = False,
        verbose: bool = False,
    ) -> None:
        super().__init__(console, store=store)
        self.quiet = quiet
        self.verbose = verbose
        self._start: float | None = None
        self._started: dict[str, float] = {}
        self._mapped: dict[str, int] = {}  # a mapped task's number of instances, once expanded
        self._done_before: int | None = None  # set on a resume

    def seed(self, succeeded: Sequence[str]) -> None:
        self._done_before = len(succeeded)

    def __call__(self, event: Event) -> None:
        line = self._describe(event)
        if line is not None:
            if self._start is None:
                self._start = event.time
            prefix = f"[{event.time - self._start:7.2f}s] "
            self._lines.put(prefix + line.replace("\n", "\n" + " " * len(prefix)))

    def _describe(self, event: Event) -> str | None:
        if isinstance(event, RunStarted):
            self._start = event.time  # even when quiet: times count from the run's start
        if isinstance(event, TaskFailed):
            # attempt 0: a mapped task as a whole, which fails through its instances or because
            # it could not expand; it made no attempt of its own
            attempt = f" (attempt {event.attempt})" if event.attempt else ""
            return f"failed    {event.task_id}{attempt}: {last_line(event.error)}"
        if isinstance(event, TaskLogged):
            return said(event) if self.verbose and not event.echoed else None
        if self.quiet:
            return None
        if isinstance(event, RunStarted):
            if self._done_before is not None:
                return (
                    f"run {event.run_id} ({event.workflow}) resumed: {event.tasks} tasks, "
                    f"{self._done_before} succeeded before"
                )
            return f"run {event.run_id} ({event.workflow}) started: {event.tasks} tasks"
        if isinstance(event, TaskStarted):
            self._started[event.task_id] = event.time
            return f"started   {event.task_id} (attempt {event.attempt})"
        if isinstance(event, TaskMapped):
            self._started[event.task_id] = event.time
            self._mapped[event.task_id] = event.count
            return f"mapped    {event.task_id} into {_instances(event.count)}"
        if isinstance(event, TaskSucceeded):
            took = event.time - self._started.get(event.task_id, event.time)
            count = self._mapped.get(event.task_id)
            what = event.task_id if count is None else f"{event.task_id} ({_instances(count)})"
            return f"succeeded {what} in {format_seconds(took)}"
        if isinstance(event, TaskRetrying):
            return (
                f"retrying  {event.task_id} in {format_seconds(event.delay)} (attempt "
                f"{event.attempt} failed: {last_line(event.error)})"
            )
        if isinstance(event, TaskSkipped):
            return f"skipped   {event.task_id} ({skip_why(event)})"
        if isinstance(event, TaskCancelled):
            return f"cancelled {event.task_id}"
        if isinstance(event, InputRequested):
            return f"waiting   {event.task_id}: {event.question.prompt}"
        if isinstance(event, InputReceived):
            return f"answered  {event.task_id}"
        return None

    def _write(self, line: str) -> None:
        self.console.print(line, markup=False, highlight=False)

    def finish(self, result: RunResult, figures: RunFigures) -> None:
        print_summary(self.console, result, figures, store=self.store, quiet=self.quiet)


def _instances(count: int) -> str:
    return f"{count:,} instance{'' if count == 1 else 's'}"
