"""The ``plait`` commands: run, resume, validate, graph, runs, status, inputs, cancel, report,
logs.

Where runs are kept: ``--store URL`` if given, else ``$PLAIT_STORE``, else the SQLite file at
``$PLAIT_HOME/plait.db`` (``~/.plait/plait.db``), so that ``runs``, ``status`` and ``resume``
see what ``run`` did.

How ``resume`` finds a run's workflow: a run's record holds its definition and a *target* (how
to import the workflow): ``plait run`` records the TARGET it was given (a file made absolute),
``plait.run`` the module and attribute that hold the workflow (see ``plait._targets``). The
stored target is a hint, never an order: ``plait resume RUN_ID`` imports it only when it
resolves inside the current directory or a directory on ``PLAIT_PATH``, and otherwise shows it
and asks for ``--target``. The ``--param`` values of ``plait run`` are part of the run's
definition (each task's params), and ``plait resume`` applies them again.

Exit codes: 0 the run succeeded (or the command did its work), 1 the run failed, 2 a usage or
validation error (one red line, no traceback), 3 the run paused for input, 4 plait lost the run
(another process took it over, or its store stayed unavailable), 130 / 143 / 129 interrupted by
SIGINT (Ctrl-C) / SIGTERM / SIGHUP: the run was stopped and recorded cancelled first (see
``plait._signals``; a second signal stops at once).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shlex
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

import click

from .._exceptions import PlaitError, WorkflowFileError
from .._state import RunStatus, TaskStatus

if TYPE_CHECKING:
    from rich.console import Console
    from rich.text import Text

    from .._events import Subscriber
    from .._pause import Question
    from .._results import RunResult
    from .._serialization import Serializer
    from .._workflow import Workflow
    from ..executors import Executor
    from ..stores import InputRequest, RunRecord, Store, StoreError
    from ._live import Watcher

# Start-up time: `plait --help` must not load the engine, rich, the stores or jsonschema, so
# this module imports them inside the commands that use them (bench/run.py measures it).

__all__ = [
    "EXIT_FAILED",
    "EXIT_INTERRUPTED",
    "EXIT_LOST",
    "EXIT_OK",
    "EXIT_PAUSED",
    "EXIT_USAGE",
    "cli",
]

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_PAUSED = 3
EXIT_INTERRUPTED = 130
EXIT_LOST = 4  # LeaseLostError or StoreUnavailableError: the run stopped, and was not recorded

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


def _raise_interrupted(signum: int, frame: object) -> None:
    from .._signals import Interrupted

    raise Interrupted(signum)


class _Plait(click.Group):
    """The command group: plait's own errors become one red line and exit code 2. SIGTERM and
    SIGHUP interrupt a command as Ctrl-C does (unless they were ignored when it started); a
    run in progress is stopped and recorded cancelled first."""

    def invoke(self, ctx: click.Context) -> Any:
        installed = {}
        if threading.current_thread() is threading.main_thread():
            for signum in (signal.SIGTERM, signal.SIGHUP):
                if signal.getsignal(signum) is signal.SIG_DFL:
                    installed[signum] = signal.signal(signum, _raise_interrupted)
        try:
            return super().invoke(ctx)
        except WorkflowFileError as error:  # every problem of a file, each on its own line
            _fail(*(cli_words(str(problem)) for problem in error.errors))
        except PlaitError as error:
            _fail(cli_words(str(error)))
        except KeyboardInterrupt as interrupt:
            from rich.text import Text

            from ._terminal import TextConsole

            TextConsole(stderr=True).print(Text("interrupted", style="red"))
            raise click.exceptions.Exit(_exit_code(interrupt)) from None
        finally:
            for signum, previous in installed.items():
                signal.signal(signum, previous)


# -- stores and stored targets ------------------------------------------------------------------


def _store_url(option: str | None) -> str:
    """The store to use: ``--store``, else ``$PLAIT_STORE``, else SQLite in ``$PLAIT_HOME``."""
    from ..stores import default_sqlite_path

    return option or os.environ.get("PLAIT_STORE") or f"sqlite://{default_sqlite_path()}"


@contextlib.contextmanager
def _monitoring(*, trace: bool, metrics_port: int | None) -> Iterator[None]:
    """The tracer provider (``--trace``) and the metrics endpoint (``--metrics-port``) of a
    command, for as long as it runs (see ``_monitoring``)."""
    with contextlib.ExitStack() as stack:
        if trace:
            from ._monitoring import tracing_provider

            stack.enter_context(tracing_provider())
        if metrics_port is not None:
            from ._monitoring import metrics_server

            stack.enter_context(metrics_server(metrics_port))
        yield


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


def _absolute_target(target: str) -> str:
    """``target`` with a file path made absolute, so that it still works from elsewhere."""
    path, colon, attribute = target.rpartition(":") if ":" in target else (target, "", "")
    if Path(path).suffix in (".py", ".yaml", ".yml", ".json") or Path(path).is_file():
        return str(Path(path).resolve()) + colon + attribute
    return target


def _stored_target(record: RunRecord) -> str:
    """The run's stored target, if it may be imported from here (see the module docstring).

    Raises:
        click.exceptions.Exit: there is none, or it lies outside the trusted directories.
    """
    run_id = record.run_id
    if record.target is None:
        _fail(
            f"run {run_id!r} does not record where its workflow comes from (it was started "
            "from an interactive session, or by an older plait); give it with --target TARGET"
        )
    from .._targets import trusted_target

    trusted = trusted_target(record.target)
    if trusted is None:
        _fail(
            f"run {run_id!r} was started from {record.target!r}, which is not inside the "
            f"current directory ({os.getcwd()}) or a directory on PLAIT_PATH; plait imports a "
            "stored target only from there (a store holds data, not code): run this in the "
            f"workflow's project, add its directory to PLAIT_PATH, or pass --target "
            f"{record.target} if you trust it"
        )
    target, root = trusted
    if str(root) not in sys.path:
        sys.path.insert(0, str(root))  # `pkg.flows:wf` imports from where it was found
    return target


def _stored_params(record: RunRecord, workflow: Workflow) -> dict[str, Any]:
    """The ``--param`` values the run was started with: the params its definition holds for
    its tasks that the workflow's own tasks do not set."""
    from .._tagged import from_document

    params: dict[str, Any] = {}
    for task in record.definition:
        spec = workflow.tasks.get(task["id"])
        if spec is None:
            continue
        for name, value in dict(task.get("params") or {}).items():
            if name in spec.params:
                continue
            try:
                params[name] = from_document(value)
            except ValueError:  # a value only the Python API could give: not a --param
                continue
    return params


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
    import inspect

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
    from .._workflow import Workflow

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
            executor=spec.executor,
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
    from .._pause import schema_document

    if task_id in waiting:
        return waiting[task_id].schema
    spec = workflow.tasks.get(task_id)
    return schema_document(spec.pause.schema) if spec and spec.pause else None


def _answers(
    values: Sequence[str], waiting: Mapping[str, Question], workflow: Workflow
) -> dict[str, Any]:
    from ._live import parse_answer

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
    from ._live import JsonLines, LiveView, LogLines

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
    *,
    store: Store,
) -> int:
    """Run ``start`` under ``watcher``; show the end; return the exit code."""
    from ..stores import LeaseLostError, StoreUnavailableError
    from ._summary import run_figures
    from ._timeline import stored_figures

    try:
        with watcher:
            result = start([watcher])
    except KeyboardInterrupt as interrupt:  # Ctrl-C, SIGTERM, SIGHUP: recorded cancelled
        watcher.interrupted(run_id)
        return _exit_code(interrupt)
    except (LeaseLostError, StoreUnavailableError) as error:
        _lost(run_id, error, store=watcher.store)
        return EXIT_LOST
    # The whole run, every session of it, weighed as the report weighs it.
    record = store.get_run(run_id)
    figures = run_figures(result, dependencies) if record is None else stored_figures(store, record)
    watcher.finish(result, figures)
    return _EXIT_FOR_STATUS[result.status]


def _lost(run_id: str, error: StoreError, *, store: str | None) -> None:
    """Say on stderr why the run stopped unrecorded (``error``: a LeaseLostError or a
    StoreUnavailableError), and how it goes on."""
    from rich.text import Text

    from ..stores import LeaseLostError
    from ._live import resume_command
    from ._terminal import TextConsole

    console = TextConsole(stderr=True, soft_wrap=True)
    if isinstance(error, LeaseLostError):
        console.print(Text(f"plait lost the run: {error}", style="red"))
        if error.owner is None:  # nobody took it: it can be resumed once the lease expires
            console.print(Text(f"continue with: {resume_command(run_id, store=store)}"))
    else:
        console.print(Text(f"plait could not record the run: {error}", style="red"))
        console.print(Text(f"continue with: {resume_command(run_id, store=store)}"))


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
  4    plait lost the run: another process took it over, or its store
       stayed unavailable; nothing more was started or recorded
  130  interrupted with Ctrl-C: running tasks were cancelled, the run
       recorded cancelled (143 for SIGTERM, 129 for SIGHUP; a second
       signal stops at once)

\b
Example:
  plait run examples/build.yaml --max-concurrency 4
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


def _by_option(fn: Callable[..., Any]) -> Callable[..., Any]:
    return click.option(
        "--by",
        metavar="NAME",
        help="Who answers, as recorded with the answers (default: your user name).",
    )(fn)


def _answerer(by: str | None) -> str | None:
    """Who answers from this command line: ``--by``, or the user this process runs as."""
    if by is not None:
        return by
    import getpass

    try:
        return getpass.getuser()
    except (OSError, KeyError):  # no user name in the environment nor the password database
        return None


def _serializer(unsafe_pickle: bool) -> Serializer | None:
    """The serializer ``--unsafe-pickle`` asks for (None: plait's default, JSON)."""
    from .._serialization import PickleSerializer

    return PickleSerializer() if unsafe_pickle else None


_RUN_EPILOG = """\b
Examples:
  plait run examples/build.yaml
  plait run flow.py:wf --max-concurrency 8 --pool db=2 --param region=emea
  plait run examples/build.yaml --max-retries 0 --task-timeout 60
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
  task_skipped     task_id, cause, skip_cause
  task_cancelled   task_id, attempt
  input_requested  task_id, key, prompt, schema, deadline
  input_received   task_id, key
  task_logged      task_id, attempt, number, stream, text
  run_finished     status, error
  run_summary      status, makespan, task_time, parallelism, critical_path,
                   critical_path_seconds, tasks {status: count}, waiting [...]

\b
Exit codes: 0 succeeded, 1 failed, 2 usage/validation error, 3 paused,
4 lost the run (its lease or its store), 130 Ctrl-C (143 SIGTERM, 129 SIGHUP).
"""


#: What ``--task-timeout none`` gives: no limit (None itself means "flag not given").
_NO_LIMIT = "none"


class _Seconds(click.ParamType):  # type: ignore[type-arg] # generic from click 8.2 on
    """A number of seconds > 0, or ``none`` for no limit."""

    name = "seconds"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if value is None or isinstance(value, float):
            return value
        if str(value).lower() == _NO_LIMIT:
            return _NO_LIMIT
        try:
            seconds = float(value)
        except ValueError:
            seconds = -1.0
        if not seconds > 0:
            self.fail(f"{value!r} is not a number of seconds > 0, nor 'none'", param, ctx)
        return seconds


#: The EngineConfig settings that ``run`` and ``resume`` take as flags, under their API names
#: (``max_retries`` is ``--max-retries``); ``run`` has flags of its own for ``max_concurrency``,
#: ``fail_fast`` and ``pools``. A flag left out keeps the workflow file's setting (on a resume:
#: the run's).
_SETTING_FLAGS: dict[str, tuple[Any, str]] = {
    "max_retries": (
        click.IntRange(min=0),
        "Retries of a failed task that sets no retry policy (default 3; 0 for none).",
    ),
    "retry_backoff": (click.FloatRange(min=0), "Seconds before the first retry (default 0.1)."),
    "retry_max_backoff": (
        click.FloatRange(min=0),
        "The longest wait between retries, in seconds (default 30).",
    ),
    "retry_jitter": (
        click.FloatRange(0, 1),
        "The random share of each retry delay, 0 to 1 (default 0.5).",
    ),
    "task_timeout": (_Seconds(), "Seconds an attempt may run, or 'none' (default 300)."),
    "cancel_grace": (
        click.FloatRange(min=0),
        "Seconds sync tasks get to notice a cancel (default 5).",
    ),
    "max_log_bytes": (
        click.IntRange(min=0),
        "Bytes of log kept per attempt: its first and last halves (default 1 MiB; 0: none).",
    ),
    "lease_seconds": (
        click.FloatRange(min=0.5),  # EngineConfig's MIN_LEASE_SECONDS
        "Seconds the run's lease lasts; the owner renews it every third (default 30).",
    ),
    "default_executor": (
        str,
        "Where sync tasks that name no executor run: thread, inline, process, or an executor "
        "of the workflow file's executors section (default: thread).",
    ),
}

#: Shorter names a setting's flag also answers to.
_FLAG_ALIASES: dict[str, tuple[str, ...]] = {"default_executor": ("--executor",)}


def _setting_options(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Add a flag for each EngineConfig setting in ``_SETTING_FLAGS`` and ``retry_failed_tasks``
    (their values arrive as keyword arguments named like the settings, None when not given)."""
    fn = click.option(
        "--retry-failed-tasks/--no-retry-failed-tasks",
        "retry_failed_tasks",
        default=None,
        help="Whether tasks without a retry policy of their own are retried (default: yes).",
    )(fn)
    fn = click.option(
        "--learn-estimates/--no-learn-estimates",
        "learn_estimates",
        default=None,
        help="Order ready tasks by estimates learned from the store's history (default: yes).",
    )(fn)
    for name, (kind, text) in reversed(_SETTING_FLAGS.items()):
        flag = "--" + name.replace("_", "-")
        aliases = _FLAG_ALIASES.get(name, ())
        fn = click.option(*aliases, flag, name, type=kind, default=None, help=text)(fn)
    return fn


def _given(settings: Mapping[str, Any]) -> dict[str, Any]:
    """The settings given on the command line (those not left at None), as EngineConfig
    values."""
    return {
        name: None if value == _NO_LIMIT else value
        for name, value in settings.items()
        if value is not None
    }


_DASK_HELP = (
    "Run tasks on the Dask cluster whose scheduler is at ADDRESS (tcp://host:8786): an "
    "executor named dask, made the default; without -c, --max-concurrency becomes its "
    "capacity (two tasks per worker thread of the cluster). Needs plait[dask]."
)


@cli.command(epilog=_RUN_EPILOG)
@click.argument("target")
@click.option(
    "--max-concurrency",
    "--concurrency",
    "-c",
    "concurrency",
    type=click.IntRange(min=1),
    help="Most tasks running at once.",
)
@click.option("--sequential", is_flag=True, help="One task at a time (--max-concurrency 1).")
@click.option("--fail-fast", is_flag=True, help="Stop the whole run at the first failure.")
@click.option(
    "--pool", "pools", multiple=True, metavar="NAME=N", help="Limit pool NAME to N tasks."
)
@_setting_options
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
@click.option(
    "--trace",
    "--tracing",
    "trace",
    is_flag=True,
    help="Emit OpenTelemetry spans (plait[otel]); exporters come from the OTEL_* variables.",
)
@click.option(
    "--metrics-port",
    type=click.IntRange(0, 65535),
    metavar="PORT",
    help="Serve Prometheus metrics of the run on PORT (/metrics) while it runs.",
)
@click.option("--dask", "dask_address", metavar="ADDRESS", help=_DASK_HELP)
def run(
    *,
    target: str,
    dask_address: str | None,
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
    trace: bool,
    metrics_port: int | None,
    **flags: Any,
) -> None:
    """Run the workflow TARGET and watch it.

    Engine settings come from the workflow file's config, overridden by the flags, which
    have the names of the EngineConfig fields: --max-retries sets max_retries.
    """
    import uuid

    from .._files import load_target
    from .._runs import run as start_run
    from ._live import resume_command
    from ._summary import dependencies_of

    if sequential and concurrency not in (None, 1):
        raise click.UsageError("--sequential and --max-concurrency contradict each other")
    values = {key: _json_or_text(text) for key, text in _pairs(params, "--param", "KEY=VALUE")}
    loaded = load_target(target, pools=_pools(pools))
    workflow = with_params(loaded.workflow, values)
    settings = {**loaded.settings, **_given(flags)}
    if concurrency is not None or sequential:
        settings["max_concurrency"] = 1 if sequential else concurrency
    if fail_fast:
        settings["fail_fast"] = True
    if pools:
        settings["pools"] = {**settings.get("pools", {}), **_pools(pools)}
    if trace:
        settings["tracing"] = True
    if metrics_port is not None:
        settings["metrics"] = True
    # The file's executors section; an executor made from a flag (--dask) joins them here.
    executors = dict(loaded.executors)
    run_id = run_id or uuid.uuid4().hex[:12]
    console = _console()
    with (
        _monitoring(trace=trace, metrics_port=metrics_port),
        _opened(store, create=True) as the_store,
        _shut_down_after(executors),
    ):
        sized = concurrency is None and not sequential and "max_concurrency" not in settings
        _join_dask(executors, settings, dask_address, size=sized)
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
                target=_absolute_target(target),
                executors=executors,
                **settings,
            ),
            dependencies_of(workflow),
            store=the_store,
        )
    raise click.exceptions.Exit(code)


def _join_dask(
    executors: dict[str, Executor], settings: dict[str, Any], address: str | None, *, size: bool
) -> None:
    """Add the executor of ``--dask ADDRESS`` (if given) to ``executors``, named ``dask`` and
    made the default; with ``size``, ``max_concurrency`` becomes its capacity (two tasks per
    worker thread of the cluster, see ``DaskExecutor``)."""
    if address is None:
        return
    from ..executors import DaskExecutor

    executor = executors["dask"] = DaskExecutor(address)
    settings["default_executor"] = "dask"
    if size:
        try:
            settings["max_concurrency"] = executor.capacity
        except (ConnectionError, RuntimeError) as error:  # unreachable, or no workers
            _fail(str(error))


@contextlib.contextmanager
def _shut_down_after(executors: Mapping[str, Executor]) -> Iterator[None]:
    """Shut ``executors`` down when the block ends: the command made them, so it owns them."""
    try:
        yield
    finally:
        for executor in executors.values():
            executor.shutdown(wait=True)


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


@cli.command(epilog=_RESUME_EPILOG)
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
    from .._runs import get_run
    from .._runs import resume as resume_run
    from ._live import ask, resume_command
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


@cli.command(
    epilog="\b\nExamples:\n  plait validate examples/build.yaml\n"
    "  plait validate flow.yaml --pool db=2   # a pool `plait run --pool` will limit"
)
@click.argument("target")
@click.option(
    "--pool",
    "pools",
    multiple=True,
    metavar="NAME=N",
    help="A pool the run will limit with --pool (tasks may name it).",
)
def validate(target: str, pools: tuple[str, ...]) -> None:
    """Check the workflow TARGET and show its shape; runs nothing.

    A workflow file's problems are all reported, one line each with its file and line (exit
    2). Otherwise prints the number of tasks and edges, the depth (the most tasks on one
    chain), the width (the largest layer) and the critical path by estimate.
    """
    from rich.text import Text

    from .._files import load_target
    from ._summary import graph_shape

    loaded = load_target(target, pools=_pools(pools))
    for executor in loaded.executors.values():  # made (lazily) to check their settings only
        executor.shutdown()
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
    from .._files import load_target

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
    from rich.text import Text

    from ._live import STATUS_STYLE

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

_JSON_HELP = "JSON instead of a table (the schema is in the examples below)."


def _json_line(document: Any) -> None:
    click.echo(json.dumps(document))


@cli.command(epilog=_RUNS_EPILOG)
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


@cli.command(epilog=_STATUS_EPILOG)
@click.argument("run_id")
@_store_option
@_unsafe_pickle_option
@click.option("--json", "as_json", is_flag=True, help=_JSON_HELP)
def status(run_id: str, store: str | None, unsafe_pickle: bool, as_json: bool) -> None:
    """Show run RUN_ID task by task: status, attempts, duration, the error's last line."""
    from rich.table import Table
    from rich.text import Text

    from .._runs import get_run
    from ._live import last_line, resume_command
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


@cli.command(epilog=_INPUTS_EPILOG)
@click.argument("run_id", required=False)
@_store_option
@click.option("--json", "as_json", is_flag=True, help=_JSON_HELP)
def inputs(run_id: str | None, store: str | None, as_json: bool) -> None:
    """List every question waiting for an answer, across runs, with the command to answer it;
    with RUN_ID, every question of that run, and who answered it, when and how."""
    from rich.text import Text

    from .._pause import Question
    from ._live import answer_command, resume_command
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

    from .._recorder import question_of
    from ._live import resume_command
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


def _live_owner(record: RunRecord) -> str | None:
    """The owner of ``record``'s lease if that lease is live, else None."""
    until = record.lease_expires_at
    if record.owner is not None and until is not None and until > time.time():
        return record.owner
    return None


_ANSWER_EPILOG = """\b
Examples:
  plait answer 3f2a9c1b2e4d 'approve=true'
  plait answer 3f2a9c1b2e4d approve=@answer.json --by ada

\b
The answer is checked against the question's schema, then recorded with who
gave it (--by, or your user name) for the next `plait resume` of a paused run.
"""


@cli.command(epilog=_ANSWER_EPILOG)
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
    from ._live import parse_answer, resume_command

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


@cli.command(epilog=_CANCEL_EPILOG)
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


@cli.command(
    epilog="\b\nExamples:\n  plait estimates examples/build.yaml\n"
    "  plait estimates flows.py:etl --store sqlite:///plait.db --json"
)
@click.argument("target")
@_store_option
@click.option("--json", "as_json", is_flag=True, help="One JSON object per task.")
def estimates(target: str, store: str | None, as_json: bool) -> None:
    """Print the estimate of each task of TARGET, and where it comes from: given (the task's
    own estimate), learned (the median of its latest 5 succeeded attempts in the store),
    function (that of the tasks calling the same function), or unknown (it weighs the median
    of the known ones). A run orders its ready tasks by these (see `learn_estimates`)."""
    from rich.table import Table
    from rich.text import Text

    from .._estimates import EstimateSource, estimate_tasks
    from .._files import load_target

    workflow = load_target(target).workflow
    graph = workflow.graph()
    with _opened(store) as the_store:
        history = the_store.task_history(graph.workflow_name)
    found = estimate_tasks(graph, history)
    if as_json:
        for estimate in found:
            _json_line(
                {
                    "task_id": estimate.task_id,
                    "seconds": estimate.seconds,
                    "source": str(estimate.source),
                    "samples": estimate.samples,
                }
            )
        return
    known = sorted(e.seconds for e in found if e.seconds is not None)
    typical = graph.reranked([e.seconds for e in found]).rank  # unknown: the median of known
    table = Table(box=None, pad_edge=False)
    for column in ("task", "estimate", "from", "attempts"):
        table.add_column(column, justify="right" if column != "task" else "left")
    for i, estimate in enumerate(found):
        if estimate.seconds is None:
            below = max((typical[d] for d in graph.dependents[i]), default=0.0)
            seconds = Text(f"({typical[i] - below:.3g} s)", style="dim")
        else:
            seconds = Text(f"{estimate.seconds:.3g} s")
        table.add_row(
            Text(estimate.task_id),
            seconds,
            Text(
                str(estimate.source),
                style="dim" if estimate.source is EstimateSource.UNKNOWN else "",
            ),
            str(estimate.samples or ""),
        )
    console = _console()
    console.print(table)
    counts = {source: sum(e.source is source for e in found) for source in EstimateSource}
    console.print(
        f"{counts[EstimateSource.LEARNED] + counts[EstimateSource.FUNCTION]} learned · "
        f"{counts[EstimateSource.GIVEN]} given · {counts[EstimateSource.UNKNOWN]} unknown"
        + ("" if known or not found else " (no history: every task weighs 1)")
    )


from ._serve import serve as _serve  # noqa: E402 - its own module: the web page's command

cli.add_command(_serve)
