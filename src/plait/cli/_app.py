"""The ``plait`` commands: run, resume, validate, graph, runs, status, inputs, cancel, report,
logs.

Where runs are kept: ``--store URL`` if given, else ``$PLAIT_STORE``, else the SQLite file at
``$PLAIT_HOME/plait.db`` (``~/.plait/plait.db``), so that ``runs``, ``status`` and ``resume``
see what ``run`` did.

How ``resume`` finds a run's workflow: a run's record holds its definition, not where the code
came from, so ``plait run`` writes the TARGET (a file target made absolute), the ``--param``
values and the working directory to ``$PLAIT_HOME/targets.json`` (run id -> entry) when the run
starts. ``plait resume RUN_ID`` reads it from there; ``--target`` names it for runs started
otherwise (from Python, or with another ``PLAIT_HOME``). The file keeps the newest
``TARGETS_KEPT`` entries; writers take a lock file next to it.

Exit codes: 0 the run succeeded (or the command did its work), 1 the run failed, 2 a usage or
validation error (one red line, no traceback), 3 the run paused for input, 130 interrupted.
"""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import inspect
import json
import os
import signal
import socket
import sys
import time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, NoReturn

import click
from rich.console import Console
from rich.table import Table
from rich.text import Text

from .._events import Event, RunStarted, Subscriber
from .._exceptions import PlaitError
from .._files import load_target
from .._pause import Question, schema_document
from .._recorder import question_of
from .._results import RunResult
from .._runs import LEASE_SECONDS, get_run
from .._runs import resume as resume_run
from .._runs import run as start_run
from .._serialization import PickleSerializer, Serializer
from .._state import RunStatus, TaskStatus
from .._workflow import Workflow
from ..stores import RunRecord, RunUpdate, Store, WriteBatch, default_sqlite_path, open_store
from ._live import (
    STATUS_STYLE,
    JsonLines,
    LiveView,
    LogLines,
    Watcher,
    ask,
    last_line,
    parse_answer,
    resume_command,
)
from ._summary import (
    dependencies_of,
    format_seconds,
    graph_shape,
    run_figures,
)
from ._terminal import TextConsole
from ._timeline import stored_figures

__all__ = ["EXIT_FAILED", "EXIT_INTERRUPTED", "EXIT_OK", "EXIT_PAUSED", "EXIT_USAGE", "cli"]

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_PAUSED = 3
EXIT_INTERRUPTED = 130

#: How many runs ``targets.json`` remembers (the oldest are forgotten first).
TARGETS_KEPT = 10_000

_EXIT_FOR_STATUS = {
    RunStatus.SUCCEEDED: EXIT_OK,
    RunStatus.FAILED: EXIT_FAILED,
    RunStatus.CANCELLED: EXIT_FAILED,
    RunStatus.PAUSED: EXIT_PAUSED,
    RunStatus.RUNNING: EXIT_FAILED,
}


# -- output -------------------------------------------------------------------------------------


#: The width of tables written to a pipe or file (a terminal's own width is used otherwise).
PIPE_WIDTH = 160


def _console() -> Console:
    # soft_wrap: commands and JSON printed for copying must not be broken at column 80
    console = TextConsole(soft_wrap=True)
    if not console.is_terminal and "COLUMNS" not in os.environ:
        console.width = PIPE_WIDTH
    return console


def _fail(message: str) -> NoReturn:
    """Print ``error: message`` in red on stderr and exit with code 2."""
    TextConsole(stderr=True, soft_wrap=True).print(Text(f"error: {message}", style="red"))
    raise click.exceptions.Exit(EXIT_USAGE)


class _Plait(click.Group):
    """The command group: plait's own errors become one red line and exit code 2."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except PlaitError as error:
            _fail(str(error))
        except KeyboardInterrupt:
            TextConsole(stderr=True).print(Text("interrupted", style="red"))
            raise click.exceptions.Exit(EXIT_INTERRUPTED) from None


# -- stores and the targets file ----------------------------------------------------------------


def _store_url(option: str | None) -> str:
    """The store to use: ``--store``, else ``$PLAIT_STORE``, else SQLite in ``$PLAIT_HOME``."""
    return option or os.environ.get("PLAIT_STORE") or f"sqlite://{default_sqlite_path()}"


@contextlib.contextmanager
def _opened(option: str | None) -> Iterator[Store]:
    store = open_store(_store_url(option))
    try:
        yield store
    finally:
        store.close()


def _targets_path() -> Path:
    return default_sqlite_path().parent / "targets.json"


@contextlib.contextmanager
def _targets() -> Iterator[dict[str, Any]]:
    """The targets file as a dict, under its lock; changes are written back atomically."""
    path = _targets_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.with_name(path.name + ".lock"), "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            entries: dict[str, Any] = json.loads(path.read_text()) if path.exists() else {}
        except (OSError, ValueError):
            entries = {}  # unreadable: start again rather than refuse to run
        before = json.dumps(entries)
        yield entries
        if json.dumps(entries) != before:
            for old in list(entries)[: max(0, len(entries) - TARGETS_KEPT)]:
                del entries[old]
            temporary = path.with_name(f"{path.name}.{os.getpid()}.tmp")
            temporary.write_text(json.dumps(entries, indent=1))
            temporary.replace(path)


def _absolute_target(target: str) -> str:
    """``target`` with a file path made absolute, so that it still works from elsewhere."""
    path, colon, attribute = target.rpartition(":") if ":" in target else (target, "", "")
    if Path(path).suffix in (".py", ".yaml", ".yml", ".json") or Path(path).is_file():
        return str(Path(path).resolve()) + colon + attribute
    return target


@dataclasses.dataclass(frozen=True, slots=True)
class _Remember:
    """A subscriber that writes the run's target to the targets file once the run has started.

    It acts on ``RunStarted`` only -- once per run, before any task starts -- so a run that was
    never created (a bad setting, a taken run id) leaves no entry behind.
    """

    target: str
    params: Mapping[str, Any]

    def __call__(self, event: Event) -> None:
        if not isinstance(event, RunStarted):
            return
        entry = {"target": self.target, "params": dict(self.params), "cwd": os.getcwd()}
        try:
            with _targets() as entries:
                entries.pop(event.run_id, None)  # re-insert: the newest entries are kept
                entries[event.run_id] = entry
        except OSError as error:
            TextConsole(stderr=True).print(
                Text(
                    f"warning: cannot record the target of run {event.run_id} in "
                    f"{_targets_path()}: {error}; resume it with --target",
                    style="yellow",
                )
            )


def _recall(run_id: str) -> tuple[str, dict[str, Any]] | None:
    """The target and params recorded for ``run_id``, or None."""
    with _targets() as entries:
        entry = entries.get(run_id)
    if not isinstance(entry, dict) or not isinstance(entry.get("target"), str):
        return None
    cwd = entry.get("cwd")
    if isinstance(cwd, str) and cwd not in sys.path:
        sys.path.append(cwd)  # a `pkg.module:wf` target imports as it did where the run began
    return entry["target"], dict(entry.get("params") or {})


# -- parsing options ----------------------------------------------------------------------------


def _pairs(values: Sequence[str], option: str, form: str) -> list[tuple[str, str]]:
    pairs = []
    for value in values:
        key, equals, rest = value.partition("=")
        if not equals or not key:
            raise click.BadParameter(f"{value!r} is not of the form {form}", param_hint=option)
        pairs.append((key, rest))
    return pairs


def _json_or_text(text: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text
    except RecursionError:
        raise click.BadParameter(
            f"{text[:20]}... is nested deeper than plait can read (about a thousand levels)",
            param_hint="--param",
        ) from None


def _pools(values: Sequence[str]) -> dict[str, int]:
    pools = {}
    for name, limit in _pairs(values, "--pool", "NAME=N"):
        if not limit.isdigit() or int(limit) < 1:
            raise click.BadParameter(
                f"pool {name!r} needs a whole number of slots >= 1, not {limit!r}",
                param_hint="--pool",
            )
        pools[name] = int(limit)
    return pools


def _takes(spec_fn: Callable[..., Any] | None, name: str, excluded: Sequence[str]) -> bool:
    """Whether ``spec_fn`` has a parameter ``name`` that params may fill."""
    if spec_fn is None or name in excluded:
        return False
    try:
        parameters = inspect.signature(spec_fn).parameters
    except (TypeError, ValueError):
        return False
    parameter = parameters.get(name)
    return parameter is not None and parameter.kind in (
        inspect.Parameter.POSITIONAL_OR_KEYWORD,
        inspect.Parameter.KEYWORD_ONLY,
    )


def with_params(workflow: Workflow, params: Mapping[str, Any]) -> Workflow:
    """A copy of ``workflow`` where every task whose function has a parameter named like a key
    of ``params`` (one that neither a dependency nor the context fills) gets that value.

    The copy has the same ids, dependencies and functions, so the same fingerprint: a run
    started with params can be resumed with them.

    Raises:
        click.BadParameter: a key that no task takes.
    """
    if not params:
        return workflow
    copy = Workflow(workflow.name)
    used: set[str] = set()
    for spec in workflow.tasks.values():
        excluded = [*spec.depends_on, spec.binding.context_parameter or ""]
        extra = {k: v for k, v in params.items() if _takes(spec.fn, k, excluded)}
        used.update(extra)
        copy.add_task(
            spec.id,
            spec.fn,
            depends_on=spec.depends_on,
            params={**spec.params, **extra},
            retry=spec.retry,
            timeout=spec.timeout,
            critical=spec.critical,
            pool=spec.pool,
            priority=spec.priority,
            estimate=spec.estimate,
            pause=spec.pause,
        )
    unused = sorted(set(params) - used)
    if unused:
        raise click.BadParameter(
            f"no task of workflow {workflow.name!r} has a parameter named "
            f"{', '.join(map(repr, unused))} (that a dependency or the context does not fill)",
            param_hint="--param",
        )
    return copy


def _schema_for(task_id: str, waiting: Mapping[str, Question], workflow: Workflow) -> Any:
    """The JSON Schema an answer for ``task_id`` must fit, as far as the CLI can tell."""
    if task_id in waiting:
        return waiting[task_id].schema
    spec = workflow.tasks.get(task_id)
    return schema_document(spec.pause.schema) if spec and spec.pause else None


def _answers(
    values: Sequence[str], waiting: Mapping[str, Question], workflow: Workflow
) -> dict[str, Any]:
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


# -- watching a run -----------------------------------------------------------------------------


def _watcher(
    console: Console, *, as_json: bool, quiet: bool, store: str | None, verbose: bool = False
) -> Watcher:
    if as_json:
        return JsonLines(console, store=store)
    if quiet or not console.is_terminal:
        return LogLines(console, store=store, quiet=quiet, verbose=verbose)
    return LiveView(console, store=store, verbose=verbose)


def _watch(
    watcher: Watcher,
    run_id: str,
    start: Callable[[Sequence[Subscriber]], RunResult],
    dependencies: Mapping[str, Sequence[str]],
    remember: _Remember,
    *,
    store: Store,
) -> int:
    """Run ``start`` under ``watcher``; show the end; return the exit code."""
    try:
        with watcher:
            result = start([remember, watcher])
    except KeyboardInterrupt:
        watcher.interrupted(run_id)
        return EXIT_INTERRUPTED
    # The whole run, every session of it, weighed as the report weighs it.
    record = store.get_run(run_id)
    figures = run_figures(result, dependencies) if record is None else stored_figures(store, record)
    watcher.finish(result, figures)
    return _EXIT_FOR_STATUS[result.status]


# -- the commands -------------------------------------------------------------------------------

_MAIN_HELP = """Run workflows, watch them, answer their questions, and look back at them.

\b
TARGET names a workflow: a YAML or JSON file (flow.yaml, flow.json), a Python
file and variable (path/flow.py:wf) or a module and variable (pkg.module:wf).
Runs are kept in --store URL, else $PLAIT_STORE, else $PLAIT_HOME/plait.db
(PLAIT_HOME defaults to ~/.plait).
"""

_MAIN_EPILOG = """\b
Exit codes:
  0    the run succeeded (or the command did what it was asked)
  1    the run failed (a task failed, was skipped or cancelled)
  2    usage or validation error: bad option, invalid workflow, bad answer
  3    the run paused: tasks wait for answers (see `plait inputs`)
  130  interrupted with Ctrl-C: running tasks were cancelled

\b
Example:
  plait run examples/build.yaml --concurrency 4
"""


@click.group(cls=_Plait, help=_MAIN_HELP, epilog=_MAIN_EPILOG)
@click.version_option(package_name="plait", prog_name="plait")
def cli() -> None:
    """The ``plait`` command group."""


_STORE_HELP = "Store URL (default: $PLAIT_STORE, else sqlite in $PLAIT_HOME)."


def _store_option(fn: Callable[..., Any]) -> Callable[..., Any]:
    return click.option("--store", metavar="URL", help=_STORE_HELP)(fn)


_UNSAFE_PICKLE_HELP = (
    "Store and load task outputs and answers with pickle (any picklable value). UNSAFE: "
    "loading a pickle runs whatever code its writer put in it, so anyone who can write to the "
    "store can run code as you. Only for a store nobody else can write to."
)


def _unsafe_pickle_option(fn: Callable[..., Any]) -> Callable[..., Any]:
    return click.option("--unsafe-pickle", is_flag=True, help=_UNSAFE_PICKLE_HELP)(fn)


def _serializer(unsafe_pickle: bool) -> Serializer | None:
    """The serializer ``--unsafe-pickle`` asks for (None: plait's default, JSON)."""
    return PickleSerializer() if unsafe_pickle else None


_RUN_EPILOG = """\b
Examples:
  plait run examples/build.yaml
  plait run flow.py:wf --concurrency 8 --pool db=2 --param region=emea
  plait run flow.yaml --json | jq 'select(.event == "task_failed")'

\b
Output: on a terminal, a live view; otherwise (or with --quiet) log lines;
with --json one JSON object per line per event:
  {"event": "task_succeeded", "run_id": ..., "time": ..., "task_id": ..., "attempt": 1}
Events (snake_case), with their fields besides event, run_id and time:
  run_started      workflow, tasks
  task_ready       task_id
  task_started     task_id, attempt
  task_succeeded   task_id, attempt
  task_retrying    task_id, attempt, error {type, message}, delay
  task_failed      task_id, attempt, error {type, message}
  task_skipped     task_id, cause
  task_cancelled   task_id, attempt
  input_requested  task_id, key, prompt, schema, deadline
  input_received   task_id, key
  task_logged      task_id, attempt, number, stream, text
  run_finished     status, error
  run_summary      status, makespan, task_time, parallelism, critical_path,
                   critical_path_seconds, tasks {status: count}, waiting [...]

\b
Exit codes: 0 succeeded, 1 failed, 2 usage/validation error, 3 paused, 130 Ctrl-C.
"""


@cli.command(epilog=_RUN_EPILOG)
@click.argument("target")
@click.option("--concurrency", "-c", type=click.IntRange(min=1), help="Most tasks running at once.")
@click.option("--sequential", is_flag=True, help="One task at a time (--concurrency 1).")
@click.option("--fail-fast", is_flag=True, help="Stop the whole run at the first failure.")
@click.option(
    "--pool", "pools", multiple=True, metavar="NAME=N", help="Limit pool NAME to N tasks."
)
@click.option(
    "--param",
    "params",
    multiple=True,
    metavar="KEY=VALUE",
    help=(
        "Give VALUE to every task whose function has a parameter named KEY (one no dependency "
        "or context fills); VALUE is parsed as JSON if it parses, else taken as text. A KEY "
        "no task takes is an error. `plait resume` applies the same values. (Shell tasks take "
        "no parameters: set environment variables for them.)"
    ),
)
@_store_option
@click.option("--run-id", metavar="ID", help="The run's id (default: a new random one).")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line per event.")
@click.option("--quiet", "-q", is_flag=True, help="Only failures and the end.")
@click.option(
    "--verbose", "-v", is_flag=True, help="Show what the tasks log, and their commands' output."
)
@_unsafe_pickle_option
def run(
    *,
    target: str,
    concurrency: int | None,
    sequential: bool,
    fail_fast: bool,
    pools: tuple[str, ...],
    params: tuple[str, ...],
    store: str | None,
    run_id: str | None,
    as_json: bool,
    quiet: bool,
    verbose: bool,
    unsafe_pickle: bool,
) -> None:
    """Run the workflow TARGET and watch it."""
    if sequential and concurrency not in (None, 1):
        raise click.UsageError("--sequential and --concurrency contradict each other")
    values = {key: _json_or_text(text) for key, text in _pairs(params, "--param", "KEY=VALUE")}
    loaded = load_target(target)
    workflow = with_params(loaded.workflow, values)
    settings = dict(loaded.settings)
    if concurrency is not None or sequential:
        settings["max_concurrency"] = 1 if sequential else concurrency
    if fail_fast:
        settings["fail_fast"] = True
    if pools:
        settings["pools"] = {**settings.get("pools", {}), **_pools(pools)}
    run_id = run_id or uuid.uuid4().hex[:12]
    console = _console()
    with _opened(store) as the_store:
        if the_store.get_run(run_id) is not None:
            _fail(
                f"run {run_id!r} already exists in {the_store!r}; continue it with "
                f"`{resume_command(run_id, store=store)}`, or choose another --run-id"
            )
        watcher = _watcher(console, as_json=as_json, quiet=quiet, store=store, verbose=verbose)
        code = _watch(
            watcher,
            run_id,
            lambda subscribers: start_run(
                workflow,
                run_id=run_id,
                store=the_store,
                serializer=_serializer(unsafe_pickle),
                subscribers=subscribers,
                **settings,
            ),
            dependencies_of(workflow),
            _Remember(_absolute_target(target), values),
            store=the_store,
        )
    raise click.exceptions.Exit(code)


_RESUME_EPILOG = """\b
Examples:
  plait resume 3f2a9c1b2e4d --input 'approve={"approved": true}'
  plait resume 3f2a9c1b2e4d --input approve=@answer.json
  plait resume 3f2a9c1b2e4d          # on a terminal: asks each waiting question

\b
Tasks that succeeded keep their outputs; the others run (again). The workflow
comes from $PLAIT_HOME/targets.json, where `plait run` recorded it; give
--target for a run started otherwise.
"""


@cli.command(epilog=_RESUME_EPILOG)
@click.argument("run_id")
@click.option(
    "--input",
    "inputs",
    multiple=True,
    metavar="TASK=JSON",
    help="Answer TASK's question with a JSON value (or TASK=@file.json).",
)
@click.option("--target", metavar="TARGET", help="The run's workflow, if plait did not record it.")
@_store_option
@click.option("--force", is_flag=True, help="Take over a run whose owner is known to be dead.")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line per event.")
@click.option("--quiet", "-q", is_flag=True, help="Only failures and the end.")
@click.option(
    "--verbose", "-v", is_flag=True, help="Show what the tasks log, and their commands' output."
)
@_unsafe_pickle_option
def resume(
    *,
    run_id: str,
    inputs: tuple[str, ...],
    target: str | None,
    store: str | None,
    force: bool,
    as_json: bool,
    quiet: bool,
    verbose: bool,
    unsafe_pickle: bool,
) -> None:
    """Continue run RUN_ID: answer its questions, or run its failed tasks again."""
    console = _console()
    with _opened(store) as the_store:
        record = _record(the_store, run_id)
        remembered = _recall(run_id)
        if target is None and remembered is None:
            _fail(
                f"plait does not know the workflow of run {run_id!r}: it was not started by "
                f"`plait run` with this PLAIT_HOME ({default_sqlite_path().parent}); give it "
                "with --target TARGET"
            )
        params = remembered[1] if remembered else {}
        if target is None:
            assert remembered is not None
            target = remembered[0]
        workflow = with_params(load_target(target).workflow, params)
        if record.status is RunStatus.SUCCEEDED:
            console.print(f"run {run_id} already succeeded; there is nothing to resume")
            raise click.exceptions.Exit(EXIT_OK)
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
        watcher.seed([t for t, r in before.tasks.items() if r.status is TaskStatus.SUCCEEDED])
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
            ),
            dependencies_of(workflow),
            _Remember(_absolute_target(target), params),
            store=the_store,
        )
    raise click.exceptions.Exit(code)


@cli.command(epilog="\b\nExample:\n  plait validate examples/build.yaml")
@click.argument("target")
def validate(target: str) -> None:
    """Check the workflow TARGET and show its shape; runs nothing.

    Prints the number of tasks and edges, the depth (the most tasks on one chain), the width
    (the largest layer) and the critical path by estimate.
    """
    loaded = load_target(target)
    shape = graph_shape(loaded.workflow)  # load_target checked the file's engine settings
    console = _console()
    console.print(
        Text("✓ ", style="green").append(
            f"{target}: workflow {loaded.workflow.name!r} is valid", style="bold"
        )
    )
    console.print(
        f"  {shape.tasks} tasks · {shape.edges} edges · depth {shape.depth} · width {shape.width}"
    )
    console.print(f"  critical path (by estimate): {' -> '.join(shape.critical_path) or '-'}")


def _mermaid_label(text: str) -> str:
    # Mermaid reads entity codes inside a quoted label; these four would end or change it.
    for char, code in (("#", "#35;"), ('"', "#quot;"), ("<", "#lt;"), (">", "#gt;")):
        text = text.replace(char, code)
    return f'"{text}"'


def _dot_id(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return f'"{escaped}"'


def mermaid(workflow: Workflow) -> str:
    """The workflow as a Mermaid flowchart; nodes get safe ids (``n0``), labels are quoted."""
    node = {task_id: f"n{i}" for i, task_id in enumerate(workflow.tasks)}
    lines = ["flowchart LR"]
    for task_id, spec in workflow.tasks.items():
        label = _mermaid_label(task_id)
        shape = f"{{{{{label}}}}}" if spec.pause else f"[{label}]"
        lines.append(f"    {node[task_id]}{shape}")
    for task_id, spec in workflow.tasks.items():
        lines += [f"    {node[d]} --> {node[task_id]}" for d in spec.depends_on]
    return "\n".join(lines)


def dot(workflow: Workflow) -> str:
    """The workflow as a Graphviz digraph; every id is a quoted, escaped DOT string."""
    lines = [f"digraph {_dot_id(workflow.name)} {{", "    rankdir=LR;"]
    for task_id, spec in workflow.tasks.items():
        lines.append(f"    {_dot_id(task_id)}{' [shape=hexagon]' if spec.pause else ''};")
    for task_id, spec in workflow.tasks.items():
        lines += [f"    {_dot_id(d)} -> {_dot_id(task_id)};" for d in spec.depends_on]
    lines.append("}")
    return "\n".join(lines)


@cli.command(
    epilog="\b\nExamples:\n  plait graph examples/build.yaml > build.mmd\n"
    "  plait graph examples/build.yaml --format dot | dot -Tsvg > build.svg"
)
@click.argument("target")
@click.option(
    "--format",
    "form",
    type=click.Choice(["mermaid", "dot"]),
    default="mermaid",
    show_default=True,
    help="Mermaid flowchart or Graphviz DOT.",
)
def graph(target: str, form: str) -> None:
    """Print the graph of TARGET as text for another tool to draw (pause tasks are hexagons)."""
    workflow = load_target(target).workflow
    workflow.validate()
    click.echo(mermaid(workflow) if form == "mermaid" else dot(workflow))


def _record(store: Store, run_id: str) -> RunRecord:
    record = store.get_run(run_id)
    if record is None:
        _fail(f"there is no run {run_id!r} in {store!r}; `plait runs` lists the runs it has")
    return record


def _when(at: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(at))


def _status_text(status: str) -> Text:
    return Text(status, style=STATUS_STYLE.get(status, ""))


@cli.command(epilog="\b\nExamples:\n  plait runs\n  plait runs --status paused --limit 5")
@click.option(
    "--status",
    type=click.Choice([s.value for s in RunStatus]),
    help="Only the runs with this status.",
)
@click.option(
    "--limit", type=click.IntRange(min=1), default=20, show_default=True, help="At most N runs."
)
@_store_option
def runs(status: str | None, limit: int, store: str | None) -> None:
    """List the runs in the store, newest first."""
    console = _console()
    with _opened(store) as the_store:
        wanted = None if status is None else RunStatus(status)
        records = the_store.list_runs(status=wanted, limit=limit)
    if not records:
        console.print(f"no runs{f' with status {status}' if status else ''} in {the_store!r}")
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
            _status_text(str(record.status)),
            _when(record.created_at),
            format_seconds(took),
            error[0] if error else "",
        )
    console.print(table)


@cli.command(epilog="\b\nExample:\n  plait status 3f2a9c1b2e4d")
@click.argument("run_id")
@_store_option
@_unsafe_pickle_option
def status(run_id: str, store: str | None, unsafe_pickle: bool) -> None:
    """Show run RUN_ID task by task: status, attempts, duration, the error's last line."""
    console = _console()
    with _opened(store) as the_store:
        record = _record(the_store, run_id)
        result = get_run(run_id, store=the_store, serializer=_serializer(unsafe_pickle))
        figures = stored_figures(the_store, record)
    live = _live_owner(record)
    console.print(
        Text(f"run {run_id} ({record.workflow}) ")
        .append_text(_status_text(str(record.status)))
        .append(f" · started {_when(record.created_at)}")
        .append(f" · live in process {live}" if live else "")
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


def _open_questions(store: Store) -> Iterator[tuple[RunRecord, list[Question]]]:
    """Paused runs (and runs whose owner died) with their unanswered questions."""
    now = time.time()
    candidates = store.list_runs(status=RunStatus.PAUSED, limit=1_000_000) + [
        record
        for record in store.list_runs(status=RunStatus.RUNNING, limit=1_000_000)
        if record.lease_expires_at is None or record.lease_expires_at <= now
    ]
    for record in candidates:
        questions = [question_of(r) for r in store.load_requests(record.run_id) if not r.answered]
        if questions:
            yield record, questions


@cli.command(epilog="\b\nExample:\n  plait inputs")
@_store_option
def inputs(store: str | None) -> None:
    """List every question waiting for an answer, across runs, with the command to answer it."""
    console = _console()
    found = 0
    with _opened(store) as the_store:
        for record, questions in _open_questions(the_store):
            for question in questions:
                found += 1
                console.print(
                    Text(f"{record.run_id} ({record.workflow}) · ")
                    .append(question.task_id, style="bold")
                    .append(f": {question.prompt}")
                )
                command = resume_command(
                    record.run_id, store=store, task_id=question.task_id, schema=question.schema
                )
                console.print(f"    {command}")
    if not found:
        console.print("no questions are waiting for an answer")


def _live_owner(record: RunRecord) -> str | None:
    """The owner of ``record``'s lease if that lease is live, else None."""
    until = record.lease_expires_at
    if record.owner is not None and until is not None and until > time.time():
        return record.owner
    return None


def _cancel_in_store(store: Store, record: RunRecord, *, force: bool) -> None:
    """Claim the run, mark it and its unfinished tasks cancelled, release it."""
    owner = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
    store.claim(record.run_id, owner, lease_seconds=LEASE_SECONDS, force=force)
    try:
        now = time.time()
        unfinished = [
            dataclasses.replace(task, status=TaskStatus.CANCELLED)
            for task in store.load_tasks(record.run_id).values()
            if not task.status.is_final
        ]
        store.write(
            record.run_id,
            owner,
            WriteBatch(
                run=RunUpdate(
                    status=RunStatus.CANCELLED,
                    finished_at=now,
                    error=f"cancelled with `plait cancel` (it was {record.status})",
                ),
                tasks=unfinished,
            ),
        )
    finally:
        store.release(record.run_id, owner)


@cli.command(epilog="\b\nExample:\n  plait cancel 3f2a9c1b2e4d")
@click.argument("run_id")
@_store_option
def cancel(run_id: str, store: str | None) -> None:
    """Cancel run RUN_ID.

    A paused or failed run (or one whose process died) is marked cancelled in the store. A run
    live in a process on this host gets SIGINT, as Ctrl-C would: that process cancels its tasks
    and records the run cancelled. A run live on another host must be stopped there.
    """
    console = _console()
    with _opened(store) as the_store:
        record = _record(the_store, run_id)
        if record.status is RunStatus.CANCELLED:
            console.print(f"run {run_id} is already cancelled")
            return
        if record.status is RunStatus.SUCCEEDED:
            _fail(f"run {run_id!r} already succeeded; there is nothing to cancel")
        owner = _live_owner(record)
        dead_owner = False
        if owner is not None:
            host, pid_text, _ = (*owner.rsplit(":", 2), "", "")[:3]  # "hostname:pid:random"
            if host != socket.gethostname() or not pid_text.isdigit():
                _fail(
                    f"run {run_id!r} is live in process {owner}, on another host; stop it "
                    "there (Ctrl-C), or wait for it to pause or finish"
                )
            try:
                os.kill(int(pid_text), signal.SIGINT)
            except ProcessLookupError:
                dead_owner = True  # the lease outlived its process: take the run over
            else:
                console.print(
                    f"sent SIGINT to process {pid_text}, which runs {run_id}: it cancels the "
                    "running tasks and records the run cancelled"
                )
                return
        _cancel_in_store(the_store, record, force=dead_owner)
    console.print(f"run {run_id} ({record.workflow}) was {record.status}; now cancelled")


@cli.command(epilog="\b\nExample:\n  plait report 3f2a9c1b2e4d -o run.html")
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
    from ._report import write_report  # noqa: PLC0415 - only this command needs it

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


@cli.command(epilog=_LOGS_EPILOG)
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
    from ._logview import print_logs  # noqa: PLC0415 - only this command needs it

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
