"""``plait run``: start a run of a workflow and watch it (``plait resume``, which continues
one, is in ``_resume``)."""

from __future__ import annotations

from typing import Any

import click

from ._common import _console, _fail, _opened
from ._loading import _absolute_target, with_params
from ._options import (
    _DASK_HELP,
    _given,
    _json_or_text,
    _pairs,
    _pools,
    _serializer,
    _setting_options,
    _store_option,
    _unsafe_pickle_option,
)
from ._session import _join_dask, _monitoring, _shut_down_after, _watch, _watcher

# Start-up time: `plait --help` imports this module; it must not load the engine, rich, the
# stores or jsonschema, so they are imported inside the functions that use them (bench/run.py
# measures it).

__all__ = ["run"]


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
  task_mapped      task_id, count (the instances task_id[0].. it expanded into)
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


@click.command(epilog=_RUN_EPILOG)
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
    from ._commands import resume_command
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
