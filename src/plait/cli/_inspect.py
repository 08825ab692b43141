"""The commands that look at stored runs: ``runs``, ``status``, ``inputs``, ``report`` and
``logs``."""

from __future__ import annotations

import shlex
import time
from pathlib import Path
from typing import TYPE_CHECKING

import click

from .._state import RunStatus
from ._common import _console, _json_line, _live_owner, _opened, _record
from ._options import _JSON_HELP, _serializer, _store_option, _unsafe_pickle_option

if TYPE_CHECKING:
    from rich.console import Console
    from rich.text import Text

    from ..stores import InputRequest, RunRecord

# Start-up time: `plait --help` imports this module; it must not load the engine, rich, the
# stores or jsonschema, so they are imported inside the functions that use them (bench/run.py
# measures it).

__all__ = ["answered_text", "inputs", "logs", "report", "runs", "status"]


def _when(at: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(at))


def _status_text(status: str) -> Text:
    from rich.text import Text

    from ._outcome import STATUS_STYLE

    return Text(status, style=STATUS_STYLE.get(status, ""))


def _cancel_command(run_id: str, store: str | None) -> str:
    return shlex.join(["plait", "cancel", run_id, *(["--store", store] if store else [])])


def _run_status_text(record: RunRecord) -> Text:
    """The run's status; a stale one (recorded running, its owner gone) says since when."""
    text = _status_text(str(record.status))
    since = record.stale_since
    if since is not None:
        text.append(f" · stale since {_when(since)}", style="yellow")
    return text


_RUNS_EPILOG = """\b
Examples:
  plait runs
  plait runs --status paused --limit 5
  plait runs --workflow nightly
  plait runs --json | jq -r 'select(.status == "failed") | .run_id'

\b
With --json, one JSON object per line per run:
  run_id, workflow, status, created_at, updated_at, finished_at, duration,
  error, live_owner, stale_since  (times in Unix seconds, or null)
"""


@click.command(epilog=_RUNS_EPILOG)
@click.option(
    "--status",
    type=click.Choice([s.value for s in RunStatus]),
    help="Only the runs with this status.",
)
@click.option("--workflow", metavar="NAME", help="Only the runs of this workflow.")
@click.option(
    "--limit", type=click.IntRange(min=1), default=20, show_default=True, help="At most N runs."
)
@_store_option
@click.option("--json", "as_json", is_flag=True, help=_JSON_HELP)
def runs(
    status: str | None, workflow: str | None, limit: int, store: str | None, as_json: bool
) -> None:
    """List the runs in the store, newest first."""
    from rich.table import Table

    from ._records import run_record
    from ._summary import format_seconds

    console = _console()
    with _opened(store) as the_store:
        wanted = None if status is None else RunStatus(status)
        records = the_store.list_runs(status=wanted, workflow=workflow, limit=limit).runs
    if as_json:
        for record in records:
            _json_line(run_record(record, live_owner=_live_owner(record)))
        return
    if not records:
        which = f" of workflow {workflow!r}" if workflow else ""
        console.print(
            f"no runs{which}{f' with status {status}' if status else ''} in {the_store!r}"
        )
        return
    table = Table(box=None, padding=(0, 2), show_edge=False)
    for column in ("run", "workflow", "status", "started", "took", "error"):
        table.add_column(column, no_wrap=column != "error")
    for record in records:
        took = (record.finished_at or record.updated_at) - record.created_at
        error = (record.error or "").strip().splitlines()
        table.add_row(
            record.run_id,
            record.workflow,
            _run_status_text(record),
            _when(record.created_at),
            format_seconds(took),
            error[0] if error else "",
        )
    console.print(table)


_STATUS_EPILOG = """\b
Examples:
  plait status 3f2a9c1b2e4d
  plait status 3f2a9c1b2e4d --json | jq '.tasks[] | select(.status == "failed")'

\b
With --json, one JSON object: the fields of a `plait runs --json` line, and
  tasks    [{task_id, status, attempts, started_at, finished_at, duration,
            error {type, message} or null}]
  figures  {makespan, task_time, parallelism, critical_path, critical_path_seconds}
  waiting  [{task_id, key, prompt, schema, deadline, asked_at, command}]
"""


@click.command(epilog=_STATUS_EPILOG)
@click.argument("run_id")
@_store_option
@_unsafe_pickle_option
@click.option("--json", "as_json", is_flag=True, help=_JSON_HELP)
def status(run_id: str, store: str | None, unsafe_pickle: bool, as_json: bool) -> None:
    """Show run RUN_ID task by task: status, attempts, duration, the error's last line."""
    from rich.table import Table
    from rich.text import Text

    from .._stored_runs import get_run
    from ._commands import resume_command
    from ._outcome import last_line
    from ._records import status_record
    from ._summary import format_seconds
    from ._timeline import stored_figures

    console = _console()
    with _opened(store) as the_store:
        record = _record(the_store, run_id)
        result = get_run(run_id, store=the_store, serializer=_serializer(unsafe_pickle))
        figures = stored_figures(the_store, record)
    live = _live_owner(record)
    if as_json:
        commands = {
            task_id: resume_command(run_id, store=store, task_id=task_id, schema=question.schema)
            for task_id, question in result.waiting.items()
        }
        _json_line(status_record(record, result, figures, live_owner=live, commands=commands))
        return
    console.print(
        Text(f"run {run_id} ({record.workflow}) ")
        .append_text(_status_text(str(record.status)))
        .append(f" · started {_when(record.created_at)}")
        .append(f" · live in process {live}" if live else "")
    )
    since = record.stale_since
    if since is not None:
        gone = f"its owner {record.owner} is" if record.owner else "no process has owned it"
        console.print(
            Text(
                f"  stale: {gone} gone since {_when(since)} (its lease ran out while the run was "
                f"running); `{resume_command(run_id, store=store)}` takes it over, "
                f"`{_cancel_command(run_id, store)}` records it cancelled",
                style="yellow",
            )
        )
    if record.error:  # its first line: the table below has each task's error
        console.print(Text(f"  {record.error.strip().splitlines()[0]}", style="red"))
    table = Table(box=None, padding=(0, 2), show_edge=False)
    for column in ("task", "status", "attempts", "duration", "error"):
        table.add_column(column, no_wrap=column != "error")
    for task_id, task in result.tasks.items():
        duration = task.duration
        table.add_row(
            task_id,
            _status_text(str(task.status)),
            str(task.attempts),
            "" if duration is None else format_seconds(duration),
            last_line(task.error),
        )
    console.print(table)
    console.print(Text(str(figures), style="dim"))
    for task_id, question in result.waiting.items():
        console.print(Text("⏸ ", style="cyan").append(f"{task_id} waits: {question.prompt}"))
        command = resume_command(run_id, store=store, task_id=task_id, schema=question.schema)
        console.print(f"    {command}")


_INPUTS_EPILOG = """\b
Examples:
  plait inputs
  plait inputs --json | jq -r .command
  plait inputs 3f2a9c1b2e4d          # that run's questions, and who answered

\b
Questions come earliest deadline first (those without one last), then oldest.
With --json, one JSON object per line per waiting question:
  run_id, workflow, task_id, key, prompt, schema (JSON Schema or null),
  deadline (Unix time or null), asked_at, command (the `plait resume` that answers
  it, or for a running run the `plait answer`)
and with RUN_ID, for each of its questions, also:
  answered, answered_by, answered_at, answered_via ("api", "cli" or "web"; or null)
"""


@click.command(epilog=_INPUTS_EPILOG)
@click.argument("run_id", required=False)
@_store_option
@click.option("--json", "as_json", is_flag=True, help=_JSON_HELP)
def inputs(run_id: str | None, store: str | None, as_json: bool) -> None:
    """List every question waiting for an answer, across runs, with the command to answer it;
    with RUN_ID, every question of that run, and who answered it, when and how."""
    from rich.text import Text

    from .._pause import Question
    from ._commands import answer_command, resume_command
    from ._records import question_record

    console = _console()
    now = time.time()
    if run_id is not None:
        _run_inputs(console, run_id, store, as_json=as_json)
        return
    with _opened(store) as the_store:
        inbox = the_store.open_questions(limit=1_000_000)
    for found in inbox:
        question = Question(
            task_id=found.task_id,
            prompt=found.prompt,
            schema=found.schema,
            key=found.key,
            deadline=found.deadline,
            asked_at=found.asked_at,
        )
        if found.run_status is RunStatus.RUNNING:  # live, or stale: answered without a resume
            command = answer_command(
                found.run_id, question.task_id, store=store, schema=question.schema
            )
        else:
            command = resume_command(
                found.run_id, store=store, task_id=question.task_id, schema=question.schema
            )
        if as_json:
            document = question_record(question, command=command)
            _json_line({"run_id": found.run_id, "workflow": found.workflow, **document})
            continue
        line = (
            Text(f"{found.run_id} ({found.workflow}) · ")
            .append(question.task_id, style="bold")
            .append(f": {question.prompt}")
        )
        if question.deadline is not None and question.deadline <= now:
            # The next resume applies the timeout: the default, or InputTimeoutError.
            line.append(
                f" · expired {_when(question.deadline)}: resuming applies its "
                "timeout (its default, or the task fails)",
                style="yellow",
            )
        elif question.deadline is not None:
            line.append(f" · answer by {_when(question.deadline)}", style="dim")
        console.print(line)
        console.print(f"    {command}")
    if not inbox and not as_json:
        console.print("no questions are waiting for an answer")


def _run_inputs(console: Console, run_id: str, store: str | None, *, as_json: bool) -> None:
    """``plait inputs RUN_ID``: the run's questions in the order asked, each with its answer's
    provenance (who, when, through what) or the command that answers it."""
    from rich.text import Text

    from .._run_records import question_of
    from ._commands import resume_command
    from ._records import answered_record, question_record

    with _opened(store) as the_store:
        record = _record(the_store, run_id)
        requests = the_store.load_requests(run_id)
    for request in requests:
        question = question_of(request)
        command = resume_command(
            run_id, store=store, task_id=request.task_id, schema=request.schema
        )
        if as_json:
            document = question_record(question, command=command) | answered_record(request)
            _json_line({"run_id": run_id, "workflow": record.workflow, **document})
            continue
        line = Text(f"{run_id} ({record.workflow}) · ").append(request.task_id, style="bold")
        line.append(f": {request.prompt}")
        console.print(line)
        if request.answered:
            console.print(Text(f"    {answered_text(request)}", style="green"))
        else:
            console.print(f"    {command}")
    if not requests and not as_json:
        console.print(f"run {run_id} asked no questions")


def answered_text(request: InputRequest) -> str:
    """``answered by ada via web at 2026-12-07 05:00:00`` (the parts known)."""
    words = ["answered"]
    if request.answered_by:
        words.append(f"by {request.answered_by}")
    if request.answered_via:
        words.append(f"via {request.answered_via}")
    if request.answered_at is not None:
        words.append(f"at {_when(request.answered_at)}")
    return " ".join(words)


@click.command(epilog="\b\nExample:\n  plait report 3f2a9c1b2e4d -o run.html")
@click.argument("run_id")
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Where to write the page (default: RUN_ID.html).",
)
@_store_option
def report(run_id: str, output: Path | None, store: str | None) -> None:
    """Write a self-contained HTML page with the timeline of run RUN_ID."""
    from ._report import write_report

    with _opened(store) as the_store:
        _record(the_store, run_id)
        path = write_report(run_id, output or Path(f"{run_id}.html"), store=the_store)
    _console().print(f"wrote {path}")


_LOGS_EPILOG = """\b
Examples:
  plait logs 3f2a9c1b2e4d
  plait logs 3f2a9c1b2e4d compile --attempt 2
  plait logs 3f2a9c1b2e4d --follow

\b
Each line: time, task#attempt, stream (stdout, stderr, log, plait), text.
An attempt keeps its first and last max_log_bytes / 2 bytes (1 MiB in all by
default); a `plait` line says what was cut between them.
"""


@click.command(epilog=_LOGS_EPILOG)
@click.argument("run_id")
@click.argument("task_id", required=False)
@click.option("--attempt", type=click.IntRange(min=1), help="Only this attempt (1 is the first).")
@click.option("--follow", "-f", is_flag=True, help="Go on printing lines while the run runs.")
@_store_option
def logs(
    run_id: str, task_id: str | None, attempt: int | None, follow: bool, store: str | None
) -> None:
    """Print what the tasks of run RUN_ID said (or task TASK_ID's): their log records (INFO and
    above), what they printed, and their commands' stdout and stderr, oldest first."""
    from ._logview import print_logs
    from ._terminal import TextConsole

    console = _console()
    with _opened(store) as the_store:
        _record(the_store, run_id)
        printed = print_logs(
            console,
            the_store,
            run_id,
            task_id,
            attempt=attempt,
            follow=follow,
            live=lambda record: _live_owner(record) is not None,
        )
    if not printed:
        which = f"task {task_id!r} of run {run_id}" if task_id else f"run {run_id}"
        if attempt is not None:
            which = f"attempt {attempt} of {which}"
        TextConsole(stderr=True).print(f"{which} said nothing (no logs)")
