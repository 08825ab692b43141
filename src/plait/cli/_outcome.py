"""How a run ended, as the terminal shows it: the summary, and a failure's telling lines.

Every watcher but JSON ends with :func:`print_summary`: the run's status and counts, each
failure with its error's last line (at most :data:`NOTES_PER_GROUP` instances of one mapped
task, then how many more), the skipped tasks and why, each waiting question with the exact
``plait resume`` command that answers it, the figures line (``makespan ... · critical path
...``) and, for a paused or failed run, the command that continues it.

:func:`last_line` and :func:`failure_lines` pick the lines of an error a person needs to see
(the live view, the log lines and ``plait status`` show them too), and :data:`STATUS_STYLE`
colours each status wherever the terminal names one.
"""

from __future__ import annotations

import re
import reprlib
from collections import Counter
from collections.abc import Mapping

from rich.console import Console
from rich.text import Text

from .._results import RunResult, TaskError, TaskResult
from .._rules import skip_note
from .._shell_errors import looks_like_error, telling_lines
from .._state import RunStatus, TaskStatus
from ._commands import resume_command
from ._mapped import instance_of
from ._summary import RunFigures

__all__ = [
    "NOTES_PER_GROUP",
    "SHOWN_ORDER",
    "SKIPS_SHOWN",
    "STATUS_STYLE",
    "counts_text",
    "failure_lines",
    "last_line",
    "print_summary",
]

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
SHOWN_ORDER = (
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
    :func:`plait._shell_errors.telling_lines`): the first that look like errors, and the last
    ones."""
    if error is None:
        return "", []
    lines = [line.rstrip() for line in error.message.strip().splitlines() if line.strip()]
    if len(lines) < 2 or not error.type.endswith("ShellCommandError"):
        return last_line(error), []
    head = lines[0].removeprefix(f"task {task_id!r}: ")
    rest = [line.removeprefix("  ") for line in lines[1:]]
    return f"{error.type}: {head}", telling_lines(rest, errors=3, tail=4)


def counts_text(counts: Mapping[str, int]) -> Text:
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
        ordered = {s.value: counts[s.value] for s in SHOWN_ORDER}
        headline.append(" · ").append_text(counts_text(ordered))
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


def _count(n: int, word: str) -> str:
    return f"{n:,} {word}{'' if n == 1 else 's'}"
