"""What every command shares: exit codes, the console and the one-line error, the API's
advice in the command line's words, and the store a command opens.

Where runs are kept: ``--store URL`` if given, else ``$PLAIT_STORE``, else the SQLite file at
``$PLAIT_HOME/plait.db`` (``~/.plait/plait.db``), so that ``runs``, ``status`` and ``resume``
see what ``run`` did.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import time
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Any, NoReturn

import click

if TYPE_CHECKING:
    from rich.console import Console

    from ..stores import RunRecord, Store

# Start-up time: `plait --help` imports this module; it must not load the engine, rich, the
# stores or jsonschema, so they are imported inside the functions that use them (bench/run.py
# measures it).

__all__ = [
    "EXIT_FAILED",
    "EXIT_INTERRUPTED",
    "EXIT_LOST",
    "EXIT_OK",
    "EXIT_PAUSED",
    "EXIT_USAGE",
    "PIPE_WIDTH",
    "cli_words",
]


EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_PAUSED = 3
EXIT_INTERRUPTED = 130
EXIT_LOST = 4  # LeaseLostError or StoreUnavailableError: the run stopped, and was not recorded


# -- output -------------------------------------------------------------------------------------


#: The width of tables written to a pipe or file (a terminal's own width is used otherwise).
PIPE_WIDTH = 160


def _console() -> Console:
    from ._terminal import TextConsole

    # soft_wrap: commands and JSON printed for copying must not be broken at column 80
    console = TextConsole(soft_wrap=True)
    if not console.is_terminal and "COLUMNS" not in os.environ:
        console.width = PIPE_WIDTH
    return console


def _fail(message: str, *more: str) -> NoReturn:
    """Print ``error: message`` (and a line for each of ``more``) in red on stderr and exit
    with code 2."""
    from rich.text import Text

    from ._terminal import TextConsole

    console = TextConsole(stderr=True, soft_wrap=True)
    for line in (message, *more):
        console.print(Text(f"error: {line}", style="red"))
    raise click.exceptions.Exit(EXIT_USAGE)


def _flag(match: re.Match[str]) -> str:
    """``accept_changes=True`` as the flag that says it: ``--accept-changes``."""
    return "--" + match.group(1).replace("_", "-")


#: How the Python API's advice reads on the command line. plait's errors say what would fix
#: them in the words of the API (``force=True``); a command shows them in its own.
_CLI_WORDS: Sequence[tuple[re.Pattern[str], str | Callable[[re.Match[str]], str]]] = [
    (re.compile(r"\b(force|accept_changes|fail_fast)=True\b"), _flag),
    (re.compile(r"\bplait\.resume\((['\"])(.+?)\1, workflow\)"), r"`plait resume \2`"),
    (re.compile(r"\bplait\.list_runs\(store=\.\.\.\)"), "`plait runs`"),
    (re.compile(r"\bpools=\{(['\"])(.+?)\1: N\}"), r"--pool \2=N"),
    (re.compile(r"\bwith another run_id\b"), "with another --run-id"),
]


def cli_words(message: str) -> str:
    """``message`` with the API's advice (``force=True``) put as flags (``--force``)."""
    for pattern, replacement in _CLI_WORDS:
        message = pattern.sub(replacement, message)
    return message


def _exit_code(interrupt: KeyboardInterrupt) -> int:
    """128 + the signal that interrupted the command: 130 for Ctrl-C, 143 SIGTERM, 129 SIGHUP."""
    return 128 + getattr(interrupt, "signum", signal.SIGINT)  # see plait._signals.Interrupted


def _json_line(document: Any) -> None:
    click.echo(json.dumps(document))


# -- stores -------------------------------------------------------------------------------------


def _store_url(option: str | None) -> str:
    """The store to use: ``--store``, else ``$PLAIT_STORE``, else SQLite in ``$PLAIT_HOME``."""
    from ..stores import default_sqlite_path

    return option or os.environ.get("PLAIT_STORE") or f"sqlite://{default_sqlite_path()}"


@contextlib.contextmanager
def _opened(option: str | None, *, create: bool = False) -> Iterator[Store]:
    """The store to use, closed afterwards. Only ``run`` creates it (``create=True``): the
    other commands look at runs that must already be there, so a missing store is an error
    (exit 2) and a mistyped ``--store`` leaves nothing behind."""
    from ..stores import StoreNotFoundError, open_store

    url = _store_url(option)
    try:
        store = open_store(url, create=create)
    except StoreNotFoundError as error:
        origin = "--store" if option else "$PLAIT_STORE" if os.environ.get("PLAIT_STORE") else ""
        _fail(f"{error}; check {origin}" if origin else f"{error}; `plait run` creates it")
    try:
        yield store
    finally:
        store.close()


def _record(store: Store, run_id: str) -> RunRecord:
    record = store.get_run(run_id)
    if record is None:
        _fail(f"there is no run {run_id!r} in {store!r}; `plait runs` lists the runs it has")
    return record


def _live_owner(record: RunRecord) -> str | None:
    """The owner of ``record``'s lease if that lease is live, else None."""
    until = record.lease_expires_at
    if record.owner is not None and until is not None and until > time.time():
        return record.owner
    return None
