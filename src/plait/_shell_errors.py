"""What a failed shell command said that matters: the message of its ``ShellCommandError``.

A command's output may run to thousands of lines; the message shows the lines of stderr (of
stdout when stderr is empty) that tell what went wrong: the first few that look like errors, in
the words tools use (``error``, ``fatal``, ``undefined reference``...), wherever they are, and
the last 10. :func:`telling_lines` chooses them; the command line's summary of a failed run
chooses from a stored message the same way.
"""

from __future__ import annotations

import re
import signal
from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ._shell_process import Finished

__all__ = ["failure_message", "looks_like_error", "telling_lines"]

_SHOWN_LINES = 10  # last lines of stderr (or stdout) in a ShellCommandError's message
_SHOWN_ERRORS = 5  # and at most this many earlier lines that look like errors
#: What a line that reports an error says, in the tools' own words (gcc, make, Python, shells).
_ERROR_LIKE = re.compile(
    r"\b(errors?|fatal|fail(ed|ure)?|exception|traceback|panic|denied|cannot|can't|undefined|"
    r"not found|no such file|segmentation fault|abort(ed)?)\b",
    re.IGNORECASE,
)
_SHOWN_LINE_LENGTH = 300


def looks_like_error(line: str) -> bool:
    """Whether a line of a command's output reports an error, in the words tools use."""
    return _ERROR_LIKE.search(line) is not None


def telling_lines(lines: Sequence[str], *, errors: int, tail: int) -> list[str]:
    """The lines of a command's output that matter, in order: the first ``errors`` lines that
    look like errors and the last ``tail`` lines; ``...`` stands for each run of lines left out.

    A compiler names the error near the top and follows it with context (``3 |  x = 1``,
    ``  |  ^``), so the last lines alone may show nothing but punctuation.
    """
    chosen = set(range(max(0, len(lines) - tail), len(lines)))
    chosen.update([i for i, line in enumerate(lines) if looks_like_error(line)][:errors])
    shown: list[str] = []
    previous = -1
    for i in sorted(chosen):
        if i > previous + 1:
            shown.append("...")
        shown.append(lines[i])
        previous = i
    return shown


def failure_message(task_id: str, command: str, finished: Finished) -> str:
    """The message of the ``ShellCommandError`` of task ``task_id``, whose ``command`` (as
    shown) ended as ``finished`` with a non-zero status."""
    code = finished.returncode
    if code < 0:
        try:
            how = f"was killed by {signal.Signals(-code).name}"
        except ValueError:
            how = f"was killed by signal {-code}"
    else:
        how = f"exited with status {code}"
    head = f"task {task_id!r}: command {command!r} {how}"
    stream, text = ("stderr", finished.stderr)
    if not text.strip():
        stream, text = ("stdout", finished.stdout)
    lines = text.rstrip().splitlines()
    if not "".join(lines).strip():
        return f"{head} (and wrote nothing)"
    shown = [
        line if len(line) <= _SHOWN_LINE_LENGTH else line[: _SHOWN_LINE_LENGTH - 3] + "..."
        for line in telling_lines(lines, errors=_SHOWN_ERRORS, tail=_SHOWN_LINES)
    ]
    if len(shown) == len(lines):
        label = stream
    elif len(shown) == _SHOWN_LINES + 1:  # nothing that looks like an error above the tail
        label = f"last {_SHOWN_LINES} lines of {stream}"
        shown = shown[1:]  # the label says the lines before them are left out
    else:
        label = f"{stream}, its first lines that look like errors and its last {_SHOWN_LINES}"
    return f"{head}; {label}:\n" + "\n".join(f"  {line}" for line in shown)
