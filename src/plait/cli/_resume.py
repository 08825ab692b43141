"""``plait resume``: continue a run -- answer its questions, or run its failed tasks again --
and watch it; the answers given with ``--input`` (or asked at the terminal) read here."""

from __future__ import annotations

import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from .._state import RunStatus, TaskStatus
from ._common import EXIT_OK, EXIT_PAUSED, _console, _fail, _live_owner, _opened, _record
from ._loading import _stored_params, _stored_target, with_params
from ._options import (
    _DASK_HELP,
    _answerer,
    _by_option,
    _given,
    _pairs,
    _serializer,
    _setting_options,
    _store_option,
    _unsafe_pickle_option,
)
from ._session import _join_dask, _shut_down_after, _watch, _watcher

if TYPE_CHECKING:
    from .._pause import Question
    from .._workflow import Workflow

# Start-up time: `plait --help` imports this module; it must not load the engine, rich, the
# stores or jsonschema, so they are imported inside the functions that use them (bench/run.py
# measures it).

__all__ = ["resume"]


def _schema_for(task_id: str, waiting: Mapping[str, Question], workflow: Workflow) -> Any:
    """The JSON Schema an answer for ``task_id`` must fit, as far as the CLI can tell."""
    from .._pause import schema_document

    if task_id in waiting:
        return waiting[task_id].schema
    spec = workflow.tasks.get(task_id)
    return schema_document(spec.pause.schema) if spec and spec.pause else None


def _answers(
    values: Sequence[str], waiting: Mapping[str, Question], workflow: Workflow
) -> dict[str, Any]:
    from ._asking import parse_answer

    answers = {}
    for task_id, text in _pairs(values, "--input", "TASK=JSON or TASK=@FILE"):
        if text.startswith("@"):
            try:
                text = Path(text[1:]).read_text().strip()  # noqa: PLW2901 - the file's text
            except OSError as error:
                raise click.BadParameter(
                    f"cannot read the answer for {task_id!r}: {error}", param_hint="--input"
                ) from None
        try:
            answers[task_id] = parse_answer(text, _schema_for(task_id, waiting, workflow))
        except ValueError as error:
            raise click.BadParameter(f"{task_id}: {error}", param_hint="--input") from None
    return answers


_RESUME_EPILOG = """\b
Examples:
  plait resume 3f2a9c1b2e4d --input 'approve={"approved": true}'
  plait resume 3f2a9c1b2e4d --input approve=@answer.json
  plait resume 3f2a9c1b2e4d          # on a terminal: asks each waiting question

  plait resume 3f2a9c1b2e4d --rerun publish      # publish and what follows, again
  plait resume 3f2a9c1b2e4d --accept-changes     # with the workflow as it is now

\b
Tasks that succeeded keep their outputs; the others run (again), a failed one
with a fresh retry budget. The workflow comes from the target the run recorded,
imported only if it lies in the current directory or on PLAIT_PATH; --target
names it otherwise. --accept-changes keeps the successes of tasks whose
function (by module:name, not its body), dependencies and params did not
change; added and changed tasks and all after them run; removed ones are
dropped.
"""


@click.command(epilog=_RESUME_EPILOG)
@click.argument("run_id")
@click.option(
    "--input",
    "inputs",
    multiple=True,
    metavar="TASK=JSON",
    help="Answer TASK's question with a JSON value (or TASK=@file.json).",
)
@click.option(
    "--target",
    metavar="TARGET",
    help="The run's workflow, if its recorded one is missing or not trusted here.",
)
@_store_option
@click.option("--force", is_flag=True, help="Take over a run whose owner is known to be dead.")
@_by_option
@click.option(
    "--accept-changes",
    is_flag=True,
    help="Resume with the workflow as it is now, even if its definition changed (shows how).",
)
@click.option(
    "--rerun",
    "reruns",
    multiple=True,
    metavar="TASK",
    help="Run TASK and everything downstream of it again (repeatable); on a finished run too.",
)
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line per event.")
@click.option("--quiet", "-q", is_flag=True, help="Only failures and the end.")
@click.option(
    "--verbose", "-v", is_flag=True, help="Show what the tasks log, and their commands' output."
)
@_unsafe_pickle_option
@click.option("--dask", "dask_address", metavar="ADDRESS", help=_DASK_HELP)
@_setting_options
def resume(
    *,
    run_id: str,
    dask_address: str | None,
    inputs: tuple[str, ...],
    target: str | None,
    store: str | None,
    force: bool,
    by: str | None,
    accept_changes: bool,
    reruns: tuple[str, ...],
    as_json: bool,
    quiet: bool,
    verbose: bool,
    unsafe_pickle: bool,
    **flags: Any,
) -> None:
    """Continue run RUN_ID: answer its questions, or run its failed tasks again.

    The run keeps the engine settings it was started with; the settings flags (named like the
    EngineConfig fields, as for run) change them for this resume: --max-retries 5.
    """
    import logging

    from rich.text import Text

    from .._definition import definition_diff
    from .._exceptions import InvalidOptionError
    from .._files import load_target
    from .._restart import cleared_tasks
    from .._resume import resume as resume_run
    from .._stored_runs import get_run
    from ._asking import ask
    from ._commands import resume_command
    from ._summary import dependencies_of
    from ._terminal import TextConsole

    console = _console()
    with _opened(store) as the_store:
        record = _record(the_store, run_id)
        loaded = load_target(target or _stored_target(record))
        workflow = with_params(loaded.workflow, _stored_params(record, loaded.workflow))
        graph = workflow.graph()
        diff = definition_diff(record.definition, graph.definition()) if accept_changes else None
        changes = diff.describe() if diff else []
        try:
            fresh = set(cleared_tasks(graph, diff, reruns, run_id))  # they run again
        except InvalidOptionError as error:
            raise click.BadParameter(str(error), param_hint="--rerun") from None
        if record.status is RunStatus.SUCCEEDED and not reruns and not changes:
            console.print(f"run {run_id} already succeeded; there is nothing to resume")
            raise click.exceptions.Exit(EXIT_OK)
        notes = TextConsole(stderr=True) if as_json else console  # stdout: JSON only
        for change in changes:  # what --accept-changes accepts, before anything runs
            notes.print(Text(f"accepting: {change}", style="yellow"))
        # plait.resume logs the same changes for scripts; here they were shown just above.
        runs_log = logging.getLogger("plait.runs")
        if not any(isinstance(h, logging.NullHandler) for h in runs_log.handlers):
            runs_log.addHandler(logging.NullHandler())
        owner = _live_owner(record)
        if owner is not None and not force:  # say so before asking anyone anything
            _fail(
                f"run {run_id!r} is live in process {owner}; wait for it to finish or pause, "
                "or pass --force if that process is dead"
            )
        serializer = _serializer(unsafe_pickle)
        before = get_run(run_id, store=the_store, serializer=serializer)
        answers = _answers(inputs, before.waiting, workflow)
        if not inputs and before.waiting and not as_json and sys.stdin.isatty():
            try:
                for task_id, question in before.waiting.items():
                    answers[task_id] = ask(question, console)
            except EOFError:
                console.print(Text("\nno answer given; the run stays paused", style="yellow"))
                console.print(f"continue with: {resume_command(run_id, store=store)}")
                raise click.exceptions.Exit(EXIT_PAUSED) from None
        watcher = _watcher(console, as_json=as_json, quiet=quiet, store=store, verbose=verbose)
        watcher.seed(
            [
                t
                for t, r in before.tasks.items()
                if r.status is TaskStatus.SUCCEEDED and t not in fresh and t in workflow
            ]
        )
        executors = dict(loaded.executors)  # as for `plait run`
        settings = _given(flags)
        with _shut_down_after(executors):
            sized = "max_concurrency" not in settings
            _join_dask(executors, settings, dask_address, size=sized)
            code = _watch(
                watcher,
                run_id,
                lambda subscribers: resume_run(
                    run_id,
                    workflow,
                    inputs=answers,
                    store=the_store,
                    force=force,
                    serializer=serializer,
                    subscribers=subscribers,
                    accept_changes=accept_changes,
                    rerun=reruns,
                    executors=executors,
                    answered_by=_answerer(by),
                    answered_via="cli",
                    **settings,
                ),
                dependencies_of(workflow),
                store=the_store,
            )
    raise click.exceptions.Exit(code)
