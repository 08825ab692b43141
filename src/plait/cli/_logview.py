"""Showing a run's task logs: what ``plait logs RUN [TASK] [--attempt N] [--follow]`` prints.

One line per line a task said, oldest first, across tasks::

    14:02:03.120 compile#1 stderr main.c:3:5: error: expected ';' before 'return'

the time, the task and attempt, the stream (``stdout``, ``stderr``, ``log`` for a logging
record, ``plait`` for plait's note of lines cut) and the text; a record that spans several lines
(a traceback) is indented under its first.

``--follow`` keeps printing lines as the run writes them, until the run is no longer running
(it ended or paused, or its process died and its lease lapsed). The run is written by another
process, which cannot wake this one, so the store is read again every
:data:`FOLLOW_INTERVAL` seconds, as ``tail -f`` reads a file again; a line is printed once, by
its number in its attempt's log.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from rich.console import Console
from rich.text import Text

from .._logs import LogLine
from .._state import RunStatus
from .._stored_runs import get_logs
from ..stores import RunRecord, Store

__all__ = ["FOLLOW_INTERVAL", "line_text", "print_logs"]

#: Seconds between two reads of the store with ``--follow`` (a live run writes every 0.1 s).
FOLLOW_INTERVAL = 0.25

_STYLE = {"stderr": "red", "plait": "yellow", "log": "", "stdout": ""}


def line_text(line: LogLine) -> Text:
    """``line`` as ``plait logs`` prints it (see the module docstring)."""
    clock = time.strftime("%H:%M:%S", time.localtime(line.time))
    prefix = f"{clock}.{int(line.time % 1 * 1000):03d} {line.task_id}#{line.attempt} "
    prefix += f"{line.stream:<6} "
    text = Text(prefix, style="dim")
    text.append(line.text.replace("\n", "\n" + " " * len(prefix)), style=_STYLE.get(line.stream))
    return text


def print_logs(
    console: Console,
    store: Store,
    run_id: str,
    task_id: str | None,
    *,
    attempt: int | None = None,
    follow: bool = False,
    live: Callable[[RunRecord], bool],
) -> int:
    """Print the run's log lines (``task_id``'s, attempt ``attempt``'s) to ``console``; with
    ``follow``, go on until the run is not running any more. Return how many were printed.

    Args:
        live: whether a run recorded ``running`` still has a live owner.
    """
    printed: dict[tuple[str, int], int] = {}  # (task, attempt) -> the last line number printed
    count = 0
    while True:
        # Read the run before its logs: once it is over, this read has every line it wrote.
        record = store.get_run(run_id)
        going_on = (
            follow and record is not None and record.status is RunStatus.RUNNING and live(record)
        )
        for line in get_logs(run_id, task_id, attempt=attempt, store=store):
            key = (line.task_id, line.attempt)
            if line.number > printed.get(key, 0):
                console.print(line_text(line), highlight=False, markup=False)
                printed[key] = max(line.number, printed.get(key, 0))
                count += 1
        if not going_on:
            return count
        time.sleep(FOLLOW_INTERVAL)
