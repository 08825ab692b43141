"""``plait answer`` and ``plait cancel``: act on a run from outside the process that runs
it, through its store."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import click

from .._state import RunStatus
from ._common import EXIT_FAILED, _console, _fail, _live_owner, _opened, _record
from ._options import (
    _answerer,
    _by_option,
    _pairs,
    _serializer,
    _store_option,
    _unsafe_pickle_option,
)

if TYPE_CHECKING:
    pass

# Start-up time: `plait --help` imports this module; it must not load the engine, rich, the
# stores or jsonschema, so they are imported inside the functions that use them (bench/run.py
# measures it).

__all__ = ["answer", "cancel"]


_ANSWER_EPILOG = """\b
Examples:
  plait answer 3f2a9c1b2e4d 'approve=true'
  plait answer 3f2a9c1b2e4d approve=@answer.json --by ada

\b
The answer is checked against the question's schema, then recorded with who
gave it (--by, or your user name) for the next `plait resume` of a paused run.
"""


@click.command(epilog=_ANSWER_EPILOG)
@click.argument("run_id")
@click.argument("answer", metavar="TASK=JSON")
@click.option("--key", metavar="KEY", help="Which of the task's questions (default: the open one).")
@_by_option
@_store_option
@_unsafe_pickle_option
def answer(
    *,
    run_id: str,
    answer: str,
    key: str | None,
    by: str | None,
    store: str | None,
    unsafe_pickle: bool,
) -> None:
    """Answer a question of run RUN_ID, without resuming it."""
    from .._answers import answer as answer_run
    from ._asking import parse_answer
    from ._commands import resume_command

    console = _console()
    ((task_id, text),) = _pairs([answer], "TASK=JSON", "TASK=JSON or TASK=@FILE")
    with _opened(store) as the_store:
        record = _record(the_store, run_id)
        asked = [r for r in the_store.load_requests(run_id) if r.task_id == task_id]
        open_ = [r for r in asked if not r.answered and key in (None, r.key)]
        if text.startswith("@"):
            try:
                text = Path(text[1:]).read_text().strip()
            except OSError as error:
                raise click.BadParameter(
                    f"cannot read the answer for {task_id!r}: {error}", param_hint="TASK=JSON"
                ) from None
        try:
            value = parse_answer(text, open_[0].schema if open_ else None)
        except ValueError as error:
            raise click.BadParameter(f"{task_id}: {error}", param_hint="TASK=JSON") from None
        answered_by = _answerer(by)
        answer_run(
            run_id,
            task_id,
            value,
            key=key,
            by=answered_by,
            via="cli",
            store=the_store,
            serializer=_serializer(unsafe_pickle),
        )
        waiting = [r for r in the_store.load_requests(run_id) if not r.answered]
    who = f" (by {answered_by})" if answered_by else ""
    console.print(f"answered {task_id} of run {run_id} ({record.workflow}){who}")
    if record.status is RunStatus.PAUSED and not waiting:
        console.print(
            f"every question is answered; go on with: {resume_command(run_id, store=store)}"
        )


_CANCEL_EPILOG = """\b
Examples:
  plait cancel 3f2a9c1b2e4d
  plait cancel 3f2a9c1b2e4d --timeout 10

\b
A live run -- in this process or another, on this host or another that shares
the store -- is sent a cancel request through the store: its process cancels the
running tasks, kills shell commands, and records the run cancelled, within about
a second. A paused, failed or stale run (its process gone) is recorded cancelled
at once. No signal is sent to any process.
"""


@click.command(epilog=_CANCEL_EPILOG)
@click.argument("run_id")
@_store_option
@click.option(
    "--wait/--no-wait",
    default=True,
    show_default=True,
    help="Wait until the run is recorded cancelled, or only send the request.",
)
@click.option(
    "--timeout",
    type=click.FloatRange(min=0),
    metavar="SECONDS",
    help="Give up waiting for a live run's process after this long (default: until it "
    "answers, or its lease runs out and the run is recorded cancelled as stale).",
)
def cancel(run_id: str, store: str | None, wait: bool, timeout: float | None) -> None:
    """Cancel run RUN_ID, wherever it runs."""
    from rich.text import Text

    from .._cancel import cancel as cancel_run
    from .._exceptions import CancelTimeoutError
    from ._terminal import TextConsole

    console = _console()
    with _opened(store) as the_store:
        before = _record(the_store, run_id)
        if before.status is RunStatus.CANCELLED:
            console.print(f"run {run_id} is already cancelled")
            return
        if before.status is RunStatus.SUCCEEDED:
            _fail(f"run {run_id!r} already succeeded; there is nothing to cancel")
        live = _live_owner(before)
        try:
            after = cancel_run(run_id, store=the_store, wait=wait, timeout=timeout)
        except CancelTimeoutError as error:
            TextConsole(stderr=True, soft_wrap=True).print(Text(f"error: {error}", style="red"))
            raise click.exceptions.Exit(EXIT_FAILED) from None
    if after.status is not RunStatus.CANCELLED:  # --no-wait
        console.print(
            Text(
                f"sent a cancel request to process {live}, which runs {run_id}; "
                f"`plait status {run_id}` shows when it has stopped"
            )
        )
        return
    console.print(f"run {run_id} ({before.workflow}) was {before.status}; now cancelled")
    if before.status is RunStatus.RUNNING and after.error:  # by its process, or here as stale
        console.print(Text(f"  {after.error.strip().splitlines()[0]}", style="dim"))
