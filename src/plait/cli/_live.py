"""Watching a run from the terminal, and asking a person a run's questions.

A *watcher* is a plait subscriber that shows a run as it goes, in one of three forms:

- :class:`LiveView` (on a terminal): a rich ``Live`` area with a progress bar of finished/total
  tasks, the counts by status and the running tasks with their elapsed time; retries, failures,
  skips (with why: see ``plait._rules.skip_note``) and questions are printed above it as they
  happen. A mapped task's instances (``convert[3]``, see ``_mapped``) count as tasks; while more
  than ``_mapped.COLLAPSE_OVER`` of them exist, the running ones are one line for the mapped task
  (``▶ convert [12/20 done · 1 failed · 4 running]``), and their failures and skips are not
  printed one by one beyond :data:`NOTES_PER_GROUP` (the summary counts them).
- :class:`LogLines` (not on a terminal, or ``--quiet``): one plain line per task start, success,
  failure, retry, skip, cancellation or question -- with ``quiet``, only the failures. Each line
  starts with the seconds since the run started.
- :class:`JsonLines` (``--json``): one JSON object per line per event, in the schema below.

With ``verbose`` (``-v``), the live view and the log lines also show what the tasks say (their
log records, and their shell commands' output) as they say it, each line after its task's id;
what a task prints is not repeated, since it reaches the terminal anyway.

Subscribers are called under the engine's lock, from the event loop or a worker thread, so a
watcher's ``__call__`` only records what happened (under its own lock) or queues a line; a thread
of the watcher's own does the writing: the live view redraws at ``REFRESH_PER_SECOND`` (as rich
itself would), the line writers block on a queue. Use a watcher as a context manager around the
run, then call :meth:`Watcher.finish` (or :meth:`Watcher.interrupted` after Ctrl-C).

Every mode but JSON ends with :func:`print_summary`: the run's status and counts, each failure
with its error's last line (at most :data:`NOTES_PER_GROUP` instances of one mapped task, then
how many more), the skipped tasks and why, each waiting question with the exact ``plait
resume`` command that answers it, the figures line (``makespan ... · critical path ...``) and,
for a paused or failed run, the command that continues it.

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

Finally, :func:`ask` puts one waiting question to a person: it shows the task, the prompt and
the fields the JSON Schema expects, reads a value and re-asks until plait's own validation
accepts it.
"""

from __future__ import annotations

import json
import queue
import re
import reprlib
import shlex
import threading
import time
from abc import ABC, abstractmethod
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from types import TracebackType
from typing import IO, TYPE_CHECKING, Any, Self

from rich.console import Console, Group, RenderableType
from rich.text import Text

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
from .._exceptions import InputValidationError
from .._pause import Question, validate_answer
from .._results import RunResult, TaskError, TaskResult
from .._rules import skip_note
from .._shell import looks_like_error, telling_lines
from .._state import RunStatus, TaskStatus
from ._mapped import COLLAPSE_OVER, deciding_task, instance_of
from ._summary import RunFigures, format_seconds

if TYPE_CHECKING:
    from rich.live import Live

__all__ = [
    "REFRESH_PER_SECOND",
    "JsonLines",
    "LiveView",
    "LogLines",
    "Watcher",
    "answer_example",
    "ask",
    "event_record",
    "failure_lines",
    "last_line",
    "print_summary",
    "resume_command",
    "said",
]

#: How often the live view redraws.
REFRESH_PER_SECOND = 10

#: How many running tasks the live view lists (the longest-running first).
SHOWN_RUNNING = 8

#: How many failures or skips of one mapped task's instances are printed one by one (as they
#: happen, and in the summary); the rest are counted.
NOTES_PER_GROUP = 5

#: How many skipped tasks the summary names, with why.
SKIPS_SHOWN = 5

STATUS_STYLE: Mapping[str, str] = {
    "succeeded": "green",
    "failed": "red",
    "skipped": "yellow",
    "cancelled": "magenta",
    "waiting_for_input": "cyan",
    "paused": "cyan",
    "running": "blue",
    "pending": "dim",
}

#: The order in which counts by status are shown: outcomes first, then what is still to come.
_SHOWN_ORDER = (
    TaskStatus.SUCCEEDED,
    TaskStatus.FAILED,
    TaskStatus.SKIPPED,
    TaskStatus.CANCELLED,
    TaskStatus.WAITING_FOR_INPUT,
    TaskStatus.RUNNING,
    TaskStatus.PENDING,
)

_STATUS_MARK: Mapping[str, str] = {
    "succeeded": "✓",
    "failed": "✗",
    "cancelled": "✗",
    "paused": "⏸",
    "running": "▶",
}


_SAYS_SOMETHING = re.compile(r"[^\W_]")  # a letter or a digit: not ``|    ;`` nor ``^~~~``


def last_line(error: TaskError | None) -> str:
    """``Type: line``: the one line of a task's error a person needs to see.

    The line is the message's last line, unless the message has several: then the first line
    after its first that looks like an error (a compiler's ``error:`` line in a shell command's
    output), else the last one with a letter or digit in it.
    """
    if error is None:
        return ""
    lines = [line.strip() for line in error.message.strip().splitlines() if line.strip()]
    if not lines:
        return error.type
    if len(lines) > 1:
        details = [line for line in lines[1:] if _SAYS_SOMETHING.search(line)]
        errors = [line for line in details if looks_like_error(line)]
        if errors:
            return f"{error.type}: {errors[0]}"
        if details:
            return f"{error.type}: {details[-1]}"
    return f"{error.type}: {lines[-1]}"


def failure_lines(task_id: str, error: TaskError | None) -> tuple[str, list[str]]:
    """A failed task's error as the summary shows it: :func:`last_line`; for a shell command,
    the first line of its message and the lines of its output that matter (see
    :func:`plait._shell.telling_lines`): the first that look like errors, and the last ones."""
    if error is None:
        return "", []
    lines = [line.rstrip() for line in error.message.strip().splitlines() if line.strip()]
    if len(lines) < 2 or not error.type.endswith("ShellCommandError"):
        return last_line(error), []
    head = lines[0].removeprefix(f"task {task_id!r}: ")
    rest = [line.removeprefix("  ") for line in lines[1:]]
    return f"{error.type}: {head}", telling_lines(rest, errors=3, tail=4)


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


def said(event: TaskLogged) -> str:
    """A line a task said, as ``-v`` shows it: ``task | text`` (continued lines indented)."""
    mark = "!" if event.stream == "stderr" else "|"
    indent = "\n" + " " * (len(event.task_id) + 3)
    return f"{event.task_id} {mark} " + event.text.replace("\n", indent)


# -- the commands a person copies --------------------------------------------------------------


def answer_example(schema: Mapping[str, Any] | None) -> Any:
    """A value that fits ``schema`` (as far as a quick look can tell), to show in a command.

    Uses the schema's ``default``, ``examples``, ``const`` or first ``enum`` value when it has
    one; an object gets its required properties (all of them when none is required).
    """
    if not schema:
        return "..."
    for key in ("default", "const"):
        if key in schema:
            return schema[key]
    if schema.get("examples"):
        return schema["examples"][0]
    if schema.get("enum"):
        return schema["enum"][0]
    for key in ("anyOf", "oneOf"):
        if schema.get(key):
            return answer_example(schema[key][0])
    kind = schema.get("type")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), None)
    if kind == "object" or "properties" in schema:
        properties: Mapping[str, Any] = schema.get("properties", {})
        wanted = schema.get("required") or list(properties)
        return {name: answer_example(properties.get(name, {})) for name in wanted}
    if kind == "array":
        return []
    if kind == "boolean":
        return True
    if kind in ("integer", "number"):
        minimum = schema.get("minimum", schema.get("exclusiveMinimum"))
        if isinstance(minimum, int | float) and not isinstance(minimum, bool):
            return minimum + (1 if "exclusiveMinimum" in schema and "minimum" not in schema else 0)
        return 0
    if kind == "null":
        return None
    return "..."


def resume_command(
    run_id: str,
    *,
    store: str | None = None,
    task_id: str | None = None,
    schema: Mapping[str, Any] | None = None,
) -> str:
    """The shell command that resumes ``run_id``; with ``task_id``, answering its question with an
    example value of ``schema`` (``--input 'approve={"approved": true}'``)."""
    words = ["plait", "resume", run_id]
    if store is not None:
        words += ["--store", store]
    if task_id is not None:
        words += ["--input", f"{task_id}={json.dumps(answer_example(schema))}"]
    return shlex.join(words)


def answer_command(
    run_id: str, task_id: str, *, store: str | None = None, schema: Mapping[str, Any] | None = None
) -> str:
    """The shell command that answers ``task_id``'s question of a running run (live, or stale)
    with an example value of ``schema``: ``plait answer RUN 'approve={"approved": true}'``."""
    words = ["plait", "answer", run_id, f"{task_id}={json.dumps(answer_example(schema))}"]
    if store is not None:
        words += ["--store", store]
    return shlex.join(words)


# -- the summary at the end ----------------------------------------------------------------------


def _counts_text(counts: Mapping[str, int]) -> Text:
    text = Text()
    for status, n in counts.items():
        if n:
            if text:
                text.append(" · ")
            text.append(f"{n} {status}", style=STATUS_STYLE.get(status, ""))
    return text


_RESULTS_SHOWN = 5
_repr = reprlib.Repr()
_repr.maxstring = _repr.maxother = 80
_repr.maxdict = _repr.maxlist = 6
_short_repr = _repr.repr


def print_summary(
    console: Console,
    result: RunResult,
    figures: RunFigures,
    *,
    store: str | None = None,
    quiet: bool = False,
) -> None:
    """Print what a person needs to know once a run has ended (or paused).

    Args:
        console: where to print.
        result: the run's result.
        figures: its figures (:func:`~plait.cli._summary.run_figures`).
        store: the ``--store`` URL to repeat in ``plait resume`` commands (None: the default).
        quiet: leave out the counts by status and the skipped tasks (``--quiet``).
    """
    status = str(result.status)
    # A mapped task counts as its instances (as in the report and the live view).
    mapped = {named[0] for task_id in result.tasks if (named := instance_of(task_id))}
    counts = Counter(
        str(task.status) for task_id, task in result.tasks.items() if task_id not in mapped
    )
    headline = Text()
    headline.append(f"{_STATUS_MARK.get(status, '·')} ", style=STATUS_STYLE.get(status, ""))
    headline.append(f"run {result.run_id} ({result.workflow}) ")
    headline.append(status, style=f"bold {STATUS_STYLE.get(status, '')}")
    if not quiet:
        ordered = {s.value: counts[s.value] for s in _SHOWN_ORDER}
        headline.append(" · ").append_text(_counts_text(ordered))
    console.print(headline)
    _print_failures(console, result)
    if not quiet:
        _print_skips(console, result)
    for task_id, question in result.waiting.items():
        line = Text("  ⏸ ", style="cyan").append(task_id, style="bold")
        line.append(f" waits for an answer: {question.prompt}")
        console.print(line)
        command = resume_command(
            result.run_id, store=store, task_id=task_id, schema=question.schema
        )
        console.print(Text(f"      {command}"))
    if result.status is RunStatus.SUCCEEDED:
        shown = [t for t in figures.final_tasks if result.tasks[t].output is not None]
        for task_id in shown[:_RESULTS_SHOWN]:
            line = Text("  → ", style="green").append(task_id, style="bold")
            console.print(line.append(f": {_short_repr(result.tasks[task_id].output)}"))
        if len(shown) > _RESULTS_SHOWN:
            console.print(Text(f"  → ... and {len(shown) - _RESULTS_SHOWN} more results"))
    console.print(Text(str(figures), style="dim"))
    if result.status is RunStatus.PAUSED:
        console.print(Text(f"continue with: {resume_command(result.run_id, store=store)}"))
    elif result.status is RunStatus.FAILED:
        console.print(
            Text(f"run the failed tasks again with: {resume_command(result.run_id, store=store)}")
        )


def _print_failures(console: Console, result: RunResult) -> None:
    """Each failed task with its error; of a mapped task's failed instances, the first
    :data:`NOTES_PER_GROUP`, then how many more (the mapped task itself failed with them)."""
    failed: dict[str, list[str]] = {}  # mapped task -> its failed instances
    for task_id, task in result.tasks.items():
        named = instance_of(task_id)
        if named is not None and task.status is TaskStatus.FAILED:
            failed.setdefault(named[0], []).append(task_id)
    for task_id, task in result.tasks.items():
        if task.status is not TaskStatus.FAILED or instance_of(task_id) is not None:
            continue
        instances = failed.get(task_id)
        if instances is None:
            _print_failure(console, task_id, task)
            continue
        line = Text("  ✗ ", style="red").append(task_id, style="bold")
        console.print(line.append(f" failed: {_count(len(instances), 'instance')} failed"))
        for instance in instances[:NOTES_PER_GROUP]:
            _print_failure(console, instance, result.tasks[instance], indent="    ")
        if len(instances) > NOTES_PER_GROUP:
            more = len(instances) - NOTES_PER_GROUP
            console.print(Text(f"    … and {more:,} more (plait report shows them all)"))


def _print_failure(console: Console, task_id: str, task: TaskResult, indent: str = "  ") -> None:
    attempts = f"{task.attempts} attempt{'' if task.attempts == 1 else 's'}"
    head, details = failure_lines(task_id, task.error)
    line = Text(f"{indent}✗ ", style="red").append(task_id, style="bold")
    line.append(f" failed after {attempts}: {head}")
    console.print(line)
    for detail in details:
        console.print(Text(f"{indent}    {detail}"), highlight=False)


def _print_skips(console: Console, result: RunResult) -> None:
    """The first :data:`SKIPS_SHOWN` skipped tasks (instances apart) and why, then how many
    more."""
    skipped = [
        (task_id, task)
        for task_id, task in result.tasks.items()
        if task.status is TaskStatus.SKIPPED and instance_of(task_id) is None
    ]
    for task_id, task in skipped[:SKIPS_SHOWN]:
        line = Text("  ⤼ ", style="yellow").append(task_id, style="bold")
        console.print(line.append(f" skipped: {skip_note(task.skip_cause)}"))
    if len(skipped) > SKIPS_SHOWN:
        console.print(Text(f"  ⤼ … and {len(skipped) - SKIPS_SHOWN:,} more skipped"))


def _why(event: TaskSkipped) -> str:
    return skip_note(event.skip_cause, deciding_task(event.task_id, event.cause))


def _count(n: int, word: str) -> str:
    return f"{n:,} {word}{'' if n == 1 else 's'}"


# -- watchers ------------------------------------------------------------------------------------


class Watcher(ABC):
    """Shows a run as it goes; a plait subscriber and a context manager around the run.

    Args:
        console: where to write (the JSON writer uses ``console.file`` as a plain stream).
        store: the ``--store`` URL to repeat in ``plait resume`` commands (None: the default).
    """

    def __init__(self, console: Console, *, store: str | None = None) -> None:
        self.console = console
        self.store = store

    @abstractmethod
    def __call__(self, event: Event) -> None:
        """Take one event of the run; called under the engine's lock, so quick."""

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        return None

    def seed(self, succeeded: Sequence[str]) -> None:  # noqa: B027 - optional hook
        """Count ``succeeded`` as done: on a resume they keep their outputs and send no events."""

    def finish(self, result: RunResult, figures: RunFigures) -> None:
        """Show how the run ended; call it after leaving the ``with`` block."""
        print_summary(self.console, result, figures, store=self.store)

    def interrupted(self, run_id: str) -> None:
        """Say that Ctrl-C stopped the run; call it after leaving the ``with`` block."""
        self.console.print(
            Text(f"interrupted: run {run_id} was cancelled and its tasks stopped", style="red")
        )
        self.console.print(Text(f"continue with: {resume_command(run_id, store=self.store)}"))


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
            return f"failed    {event.task_id} (attempt {event.attempt}): {last_line(event.error)}"
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
        if isinstance(event, TaskSucceeded):
            took = event.time - self._started.get(event.task_id, event.time)
            return f"succeeded {event.task_id} in {format_seconds(took)}"
        if isinstance(event, TaskRetrying):
            return (
                f"retrying  {event.task_id} in {format_seconds(event.delay)} (attempt "
                f"{event.attempt} failed: {last_line(event.error)})"
            )
        if isinstance(event, TaskSkipped):
            return f"skipped   {event.task_id} ({_why(event)})"
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


class LiveView(Watcher):
    """A rich ``Live`` area: progress bar, counts by status, running tasks with elapsed time.

    Retries, failures and questions are printed above the area as they happen. :meth:`render`
    draws the area from the recorded state; it is what the refresher thread shows ten times a
    second, and what tests look at.
    """

    def __init__(
        self, console: Console, *, store: str | None = None, verbose: bool = False
    ) -> None:
        super().__init__(console, store=store)
        self.verbose = verbose
        self._lock = threading.Lock()
        self.total = 0
        self.status: dict[str, TaskStatus] = {}
        self.counts: Counter[TaskStatus] = Counter()
        self.running: dict[str, float] = {}  # task id -> when its attempt started; oldest first
        #: Each mapped task's instances: how many (from TaskMapped), by status (those seen), and
        #: when the first one started.
        self.sizes: dict[str, int] = {}
        self.groups: dict[str, Counter[TaskStatus]] = {}
        self.group_started: dict[str, float] = {}
        self._noted: Counter[str] = Counter()  # failures and skips printed, by mapped task
        self.retries = 0
        self.started_at: float | None = None
        self._notes: list[Text] = []
        self._live: Live | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._refresh, name="plait-cli-live", daemon=True)

    # -- recording (under the engine's lock: quick) --

    def _set(self, task_id: str, status: TaskStatus) -> None:
        if self.sizes.get(task_id):  # a mapped task with instances counts as them
            return
        before = self.status.get(task_id)
        if before is not None:
            self.counts[before] -= 1
        self.status[task_id] = status
        self.counts[status] += 1
        named = instance_of(task_id)
        if named is not None:
            group = self.groups.get(named[0])
            if group is None:
                group = self.groups[named[0]] = Counter()
            if before is not None:
                group[before] -= 1
            group[status] += 1

    def _note(self, task_id: str, note: Text) -> None:
        """Print ``note`` above the area, unless it is about an instance of a mapped task that
        already had :data:`NOTES_PER_GROUP` printed."""
        named = instance_of(task_id)
        if named is not None:
            self._noted[named[0]] += 1
            if self._noted[named[0]] > NOTES_PER_GROUP:
                return
        self._notes.append(note)

    def seed(self, succeeded: Sequence[str]) -> None:
        with self._lock:
            for task_id in succeeded:
                self._set(task_id, TaskStatus.SUCCEEDED)

    def __call__(self, event: Event) -> None:
        with self._lock:
            if isinstance(event, RunStarted):
                self.total = event.tasks
                self.started_at = event.time
            elif isinstance(event, TaskMapped):
                self.sizes[event.task_id] = event.count
                before = self.status.pop(event.task_id, None) if event.count else None
                if before is not None:
                    self.counts[before] -= 1
            elif isinstance(event, TaskStarted):
                self.running[event.task_id] = event.time
                self._set(event.task_id, TaskStatus.RUNNING)
                named = instance_of(event.task_id)
                if named is not None:
                    self.group_started.setdefault(named[0], event.time)
            elif isinstance(event, TaskSucceeded):
                self.running.pop(event.task_id, None)
                self._set(event.task_id, TaskStatus.SUCCEEDED)
            elif isinstance(event, TaskRetrying):
                self.running.pop(event.task_id, None)
                self._set(event.task_id, TaskStatus.PENDING)
                self.retries += 1
                self._notes.append(
                    Text("↻ ", style="yellow")
                    .append(event.task_id, style="bold")
                    .append(
                        f" attempt {event.attempt} failed, retrying in "
                        f"{format_seconds(event.delay)}: {last_line(event.error)}"
                    )
                )
            elif isinstance(event, TaskFailed):
                self.running.pop(event.task_id, None)
                self._set(event.task_id, TaskStatus.FAILED)
                # A mapped task fails with its instances, and made no attempt of its own.
                attempt = f" (attempt {event.attempt})" if event.task_id not in self.sizes else ""
                self._note(
                    event.task_id,
                    Text("✗ ", style="red")
                    .append(event.task_id, style="bold red")
                    .append(f" failed{attempt}: {last_line(event.error)}"),
                )
            elif isinstance(event, TaskSkipped):
                self.running.pop(event.task_id, None)  # it may have skipped itself
                self._set(event.task_id, TaskStatus.SKIPPED)
                self._note(
                    event.task_id,
                    Text("⤼ ", style="yellow")
                    .append(event.task_id, style="bold")
                    .append(f" skipped: {_why(event)}"),
                )
            elif isinstance(event, TaskCancelled):
                self.running.pop(event.task_id, None)
                self._set(event.task_id, TaskStatus.CANCELLED)
            elif isinstance(event, InputRequested):
                self.running.pop(event.task_id, None)
                self._set(event.task_id, TaskStatus.WAITING_FOR_INPUT)
                self._notes.append(
                    Text("⏸ ", style="cyan")
                    .append(event.task_id, style="bold")
                    .append(f" waits for an answer: {event.question.prompt}")
                )
            elif isinstance(event, InputReceived):
                self._set(event.task_id, TaskStatus.PENDING)
            elif isinstance(event, TaskLogged) and self.verbose and not event.echoed:
                self._notes.append(
                    Text(said(event), style="red" if event.stream == "stderr" else "dim")
                )

    # -- drawing (on the refresher thread) --

    def render(self, now: float | None = None) -> RenderableType:
        """The live area as it stands (``now``: the time to measure elapsed times against)."""
        now = time.time() if now is None else now
        with self._lock:
            # A mapped task with instances counts as them, once it has expanded.
            total = self.total + sum(
                self._size(mapped) - (1 if self.sizes.get(mapped) else 0)
                for mapped in self.sizes.keys() | self.groups.keys()
            )
            counts = dict(self.counts)
            running = self._running_lines()
            retries = self.retries
            started_at = self.started_at
        if started_at is None:
            # Before RunStarted the total is unknown; a resume has seeded the tasks it keeps,
            # and a bar drawn now would read "3/0 tasks".
            return Text("starting…", style="dim")
        # Imported here: only a terminal draws them, and a command in a pipe starts faster.
        from rich.progress_bar import ProgressBar  # noqa: PLC0415
        from rich.table import Table  # noqa: PLC0415

        done = sum(counts.get(s, 0) for s in TaskStatus if s.is_final)
        bar = Table.grid(padding=(0, 1))
        bar.add_row(
            ProgressBar(
                total=max(total, 1),
                completed=done,
                width=40,
                complete_style="blue",
                finished_style="green",
            ),
            Text(f"{done}/{total} tasks", style="bold"),
            Text(format_seconds(now - started_at) if started_at else "", style="dim"),
        )
        shown = {s.value: counts.get(s, 0) for s in _SHOWN_ORDER}
        shown["pending"] = max(0, total - sum(n for s, n in counts.items() if s.value != "pending"))
        line = _counts_text(shown)
        if retries:
            line.append(f" · {retries} retr{'y' if retries == 1 else 'ies'}", style="yellow")
        parts: list[RenderableType] = [bar, line]
        listed, more = running[:SHOWN_RUNNING], sum(n for _, _, n in running[SHOWN_RUNNING:])
        if listed:
            table = Table.grid(padding=(0, 2))
            for what, since, _ in listed:
                table.add_row(Text(f"  ▶ {what}", style="blue"), Text(format_seconds(now - since)))
            if more:
                table.add_row(Text(f"    … and {more} more running", style="dim"), Text(""))
            parts.append(table)
        return Group(*parts)

    def _size(self, mapped: str) -> int:
        """How many instances ``mapped`` has: as it said when it expanded, or as many as
        were seen (a resumed run's earlier instances, say)."""
        group = self.groups.get(mapped)
        return max(self.sizes.get(mapped, 0), group.total() if group else 0)

    def _running_lines(self) -> list[tuple[str, float, int]]:
        """What runs, oldest first, as (what the line says, since when, how many tasks it
        stands for): a task, or a mapped task with more than ``COLLAPSE_OVER`` instances,
        ``convert [12/20 done · 1 failed · 4 running]``, since its first instance started."""
        lines: list[tuple[str, float, int]] = []
        seen: set[str] = set()
        for task_id, since in self.running.items():
            named = instance_of(task_id)
            group = self.groups.get(named[0]) if named is not None else None
            if named is None or group is None or self._size(named[0]) <= COLLAPSE_OVER:
                lines.append((task_id, since, 1))
                continue
            if named[0] in seen:
                continue
            seen.add(named[0])
            done = sum(n for status, n in group.items() if status.is_final)
            words = [f"{done:,}/{self._size(named[0]):,} done"]
            if group[TaskStatus.FAILED]:
                words.append(f"{group[TaskStatus.FAILED]:,} failed")
            words.append(f"{group[TaskStatus.RUNNING]:,} running")
            first = self.group_started.get(named[0], since)
            lines.append((f"{named[0]} [{' · '.join(words)}]", first, group[TaskStatus.RUNNING]))
        return lines

    def _flush(self) -> None:
        with self._lock:
            notes, self._notes = self._notes, []
        live = self._live
        assert live is not None
        for note in notes:
            live.console.print(note)
        live.update(self.render(), refresh=True)

    def _refresh(self) -> None:
        # Redraw at a fixed rate, as rich's own auto-refresh does; events only touch counters.
        while not self._stop.wait(1 / REFRESH_PER_SECOND):
            self._flush()

    def __enter__(self) -> Self:
        from rich.live import Live  # noqa: PLC0415 - only a terminal needs it

        self._live = Live(self.render(), console=self.console, auto_refresh=False, transient=True)
        self._live.start()
        self._thread.start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._stop.set()
        self._thread.join()
        self._flush()
        assert self._live is not None
        self._live.stop()


# -- asking a person -----------------------------------------------------------------------------


def _type_of(schema: Mapping[str, Any]) -> str:
    """A short description of what a (sub)schema accepts: ``integer ≥ 1``, ``one of "a", "b"``."""
    if "enum" in schema:
        return "one of " + ", ".join(json.dumps(v) for v in schema["enum"])
    if "const" in schema:
        return f"exactly {json.dumps(schema['const'])}"
    for key in ("anyOf", "oneOf"):
        if key in schema:
            return " or ".join(_type_of(s) for s in schema[key])
    if "$ref" in schema:
        return str(schema["$ref"]).rsplit("/", 1)[-1]
    kind = schema.get("type", "any value")
    text = " or ".join(kind) if isinstance(kind, list) else str(kind)
    if kind == "array" and isinstance(schema.get("items"), Mapping):
        text = f"array of {_type_of(schema['items'])}"
    bounds = [
        f"{sign} {schema[key]}"
        for key, sign in (
            ("minimum", "≥"),
            ("exclusiveMinimum", ">"),
            ("maximum", "≤"),
            ("exclusiveMaximum", "<"),
        )
        if key in schema
    ]
    return " ".join([text, *bounds])


def describe_question(question: Question) -> RenderableType:
    """A panel with the task, the prompt and the fields the answer must have."""
    from rich.panel import Panel  # noqa: PLC0415 - only asking a person needs them
    from rich.table import Table  # noqa: PLC0415

    schema = question.schema or {}
    parts: list[RenderableType] = [Text(question.prompt, style="bold")]
    properties: Mapping[str, Any] = schema.get("properties", {})
    if properties:
        required = set(schema.get("required", ()))
        table = Table(box=None, padding=(0, 2), show_edge=False)
        described = any("description" in sub for sub in properties.values())
        for column in ("field", "type", "required", *(("about",) if described else ())):
            table.add_column(column, style="dim" if column == "about" else "")
        for name, sub in properties.items():
            row = [name, _type_of(sub), "yes" if name in required else "no"]
            table.add_row(*row, *((str(sub.get("description", "")),) if described else ()))
        parts += [Text("Answer with a JSON object:"), table]
    elif schema:
        parts.append(Text(f"Answer with: {_type_of(schema)}"))
    else:
        parts.append(Text("Answer with any JSON value."))
    example = json.dumps(answer_example(schema))
    parts.append(Text(f"for example: {example}", style="dim"))
    title = Text(
        f"task {question.task_id}" + (f" (question {question.key})" if question.key else "")
    )
    return Panel(Group(*parts), title=title, title_align="left", expand=False)


def _wants_string(schema: Mapping[str, Any] | None) -> bool:
    return bool(schema) and schema is not None and schema.get("type") == "string"


def parse_answer(text: str, schema: Mapping[str, Any] | None) -> Any:
    """``text`` as a JSON value; as the text itself when the schema expects a string.

    Raises:
        ValueError: ``text`` is not JSON (and no string is expected), or is nested deeper than
            Python can read; the message says so.
    """
    try:
        value = json.loads(text)
    except RecursionError:
        raise ValueError(
            "the answer is nested deeper than plait can read (about a thousand levels)"
        ) from None
    except json.JSONDecodeError as error:
        if _wants_string(schema):
            return text
        raise ValueError(
            f"{text!r} is not a JSON value ({error.msg}); write e.g. "
            f"{json.dumps(answer_example(schema))}"
        ) from None
    if _wants_string(schema) and not isinstance(value, str):
        return text  # `42` for a string field means the text "42"
    return value


def ask(question: Question, console: Console, *, read: Callable[[str], str] | None = None) -> Any:
    """Ask ``question`` until the answer is valid; return it.

    Shows :func:`describe_question`, reads a line (``read``, by default ``console.input``),
    parses it (:func:`parse_answer`) and checks it with plait's own validation, printing the
    :class:`~plait.InputValidationError` message and asking again when it does not fit.

    Raises:
        EOFError, KeyboardInterrupt: the person ended the input or pressed Ctrl-C.
    """
    read = read or (lambda prompt: console.input(Text(prompt)))  # a task id is not markup
    console.print(describe_question(question))
    while True:
        text = read(f"{question.task_id}> ").strip()
        if not text:
            continue
        try:
            value = parse_answer(text, question.schema)
            validate_answer(question.task_id, question.schema, value, key=question.key)
        except (ValueError, InputValidationError) as error:
            console.print(Text(str(error), style="red"))
            continue
        return value
