"""Watching a run from the terminal: what every watcher is, and what they share.

A *watcher* is a plait subscriber that shows a run as it goes, in one of three forms:

- :class:`~plait.cli._live.LiveView` (on a terminal): a rich ``Live`` area with a progress bar
  of finished/total tasks, the counts by status and the running tasks with their elapsed time;
  retries, failures, skips and questions are printed above it as they happen.
- :class:`~plait.cli._lines.LogLines` (not on a terminal, or ``--quiet``): one plain line per
  task start, success, failure, retry, skip, cancellation or question -- with ``quiet``, only
  the failures. Each line starts with the seconds since the run started.
- :class:`~plait.cli._lines.JsonLines` (``--json``): one JSON object per line per event, in the
  schema of :mod:`plait.cli._lines`.

With ``verbose`` (``-v``), the live view and the log lines also show what the tasks say (their
log records, and their shell commands' output) as they say it, each line after its task's id
(:func:`said`); what a task prints is not repeated, since it reaches the terminal anyway. A
skip is shown with why (:func:`skip_why`, see ``plait._rules.skip_note``).

Subscribers are called under the engine's lock, from the event loop or a worker thread, so a
watcher's ``__call__`` only records what happened (under its own lock) or queues a line; a thread
of the watcher's own does the writing: the live view redraws at ``REFRESH_PER_SECOND`` (as rich
itself would), the line writers block on a queue. Use a watcher as a context manager around the
run, then call :meth:`Watcher.finish` (or :meth:`Watcher.interrupted` after Ctrl-C). Every mode
but JSON ends with :func:`~plait.cli._outcome.print_summary`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from types import TracebackType
from typing import Self

from rich.console import Console
from rich.text import Text

from .._events import Event, TaskLogged, TaskSkipped
from .._results import RunResult
from .._rules import skip_note
from ._commands import resume_command
from ._mapped import deciding_task
from ._outcome import print_summary
from ._summary import RunFigures

__all__ = ["Watcher", "said", "skip_why"]


def said(event: TaskLogged) -> str:
    """A line a task said, as ``-v`` shows it: ``task | text`` (continued lines indented)."""
    mark = "!" if event.stream == "stderr" else "|"
    indent = "\n" + " " * (len(event.task_id) + 3)
    return f"{event.task_id} {mark} " + event.text.replace("\n", indent)


def skip_why(event: TaskSkipped) -> str:
    return skip_note(event.skip_cause, deciding_task(event.task_id, event.cause))


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
