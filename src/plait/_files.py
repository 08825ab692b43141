"""Workflow files: a workflow written in YAML or JSON, checked whole before anything is built.

:func:`load_target` loads what the command line names: a workflow file (``flow.yaml``,
``flow.yml``, ``flow.json``), a Python file and a workflow in it (``path/to/flow.py:wf``), or an
importable module and a workflow in it (``package.module:wf``).

The format
----------

YAML and JSON files share one format (JSON is read with the ``json`` module; YAML with
``yaml.safe_load`` rules, so no tag can run code). YAML anchors and aliases (``&name``,
``*name``) are refused: an alias repeats a node without copying it, so a few hundred bytes of
nested aliases (a "billion laughs" file) expand to billions of values when the file is
checked; write each value out where it is used. Every key is shown here::

    name: nightly-report               # required: the workflow's name
    config:                            # optional: engine settings, as plait.EngineConfig fields
      max_concurrency: 8               #   (any EngineConfig field that holds a plain value,
      pools: {db: 2}                   #   under its own name: pool name -> slots
      task_timeout: 600                #   seconds, or null for no limit
      max_retries: 2                   #   retries of a failed task (0: none, as a build wants)
      retry_backoff: 0.5               #   seconds
      fail_fast: false                 #   ...and retry_failed_tasks, retry_max_backoff,
      cancel_grace: 5                  #   retry_jitter, cancel_grace, max_log_bytes)
      default_executor: pool           #   where sync tasks that name none run
    executors:                         # optional: executors made by name, for plait.run
      pool: {process: {max_workers: 4}}    # also {thread: {max_workers: N}}, {inline: {}}
      cluster: {dask: "tcp://10.0.0.5:8786"}
    tasks:                             # required: a list of tasks
      - id: fetch                      # required: the task's unique id
        function: reports.jobs:fetch   # a Python callable, "package.module:attribute.path"
        params: {day: "2024-05-01"}    # values for the callable's parameters
        retry: {max_retries: 5, backoff: 1, max_backoff: 30, jitter: 0.5}
        timeout: 120                   # seconds an attempt may run
      - id: approve                    # neither function nor shell: an approval gate, whose
        depends_on: [fetch]            #   output is the answer
        pause:
          prompt: Publish the report?  # required in a pause
          schema: {type: boolean}      # a JSON Schema the answer must fit
          timeout: 3600                # seconds to wait for the answer...
          default: false               # ...then use this one (without it: fail the task)
      - id: publish
        shell: ./publish.sh --quiet    # a command for /bin/sh -c, or an argv list
        cwd: scripts                   # where it runs; relative to this file's directory
        env: {TARGET: prod}            # environment variables (strings)
        depends_on: [fetch, approve]
        critical: true                 # if it fails, stop the whole run
        pool: db                       # a named concurrency pool
        priority: 10                   # higher starts first among ready tasks
        estimate: 30                   # expected seconds (weights the critical path)
        executor: cluster              # where it runs: thread, inline, process, or a name
                                       #   of the executors section
      - id: alert
        shell: ./page-oncall.sh
        depends_on: [fetch, publish]
        trigger: one_failed            # when it runs: an Airflow trigger rule (all_success)
      - id: release
        function: reports.jobs:release
        depends_on: [fetch]
        cleanup: true                  # runs even after a halt (trigger defaults to all_done)
      - id: convert
        shell: convert "$PLAIT_ITEM"   # once per item: convert[0], convert[1]...
        depends_on: [fetch]
        map_over: fetch                # fetch's output is a list; each instance gets one item

The ``config`` keys are the :class:`~plait.EngineConfig` fields, under the same names as in
Python and on the command line (``max_retries``, ``--max-retries``); the schema of the section is
derived from the class, and EngineConfig checks the values. They are returned in
:attr:`LoadedTarget.settings` (only those the file sets), for the caller to pass to
:func:`plait.run` with its own on top. Every ``pool`` a task names must have a limit under
``pools`` (or be given one by the caller: ``load_target(..., pools=...)``, ``plait run --pool``).

The ``executors`` section makes one executor per name (:attr:`LoadedTarget.executors`), for the
caller to pass to :func:`plait.run` (``executors=``) and shut down afterwards; a task's
``executor`` and ``config.default_executor`` may name them, or the built-ins (see
``plait.executors._named``). Names are checked when the run starts.

A task has **exactly one** of ``function`` and ``shell``, or neither when it has a ``pause`` (an
approval gate). ``function`` is imported when the file is loaded; sync and async callables both
work, and their parameters are filled as for any task (a parameter named like a dependency gets
its output; ``params`` fill the rest). ``params`` is only for ``function`` tasks, ``cwd`` and
``env`` only for ``shell`` tasks. A ``shell`` task is a :class:`~plait.ShellTask`: it gets its
dependencies' outputs as ``PLAIT_INPUT_<ID>`` environment variables (JSON) and its output is its
stdout; it runs in ``cwd``, which defaults to the directory of the workflow file, so that a file
works the same from wherever it is run. ``retry`` keys are those of :class:`~plait.RetryPolicy`
(unset ones take its defaults); ``pause`` keys those of :class:`~plait.Pause`.

``map_over`` makes a task *mapped* (see :meth:`plait.Workflow.add_task`): it names one of the
task's ``depends_on``, whose output must be a list, and the task runs once per item, as
instances ``id[0]``, ``id[1]``...; a ``function`` task gets the item in the parameter named
after that dependency, a ``shell`` task in ``PLAIT_ITEM`` (JSON).

Imports (``function``, a ``.py`` target's own imports, a module target) look in the workflow
file's directory first, then the current directory, then the usual ``sys.path``: both
directories are put on ``sys.path`` when a target is loaded.

Checking
--------

Nothing is built from a file that is not right, and every problem of a file is reported at
once, not only the first. In order:

1. it is parsed (a syntax error names the line and column, and the parser's problem; a key that
   appears twice in one mapping, a YAML anchor or alias, and nesting deeper than Python can
   follow are errors too); the file cannot be read further past one;
2. its structure is checked against :data:`SCHEMA`, a JSON Schema of the format above (no
   unknown keys anywhere: a misspelt key gets a "did you mean"); of the problems under one key
   only the most telling is kept (a misspelt key explains the "missing" one beside it);
3. the ``config`` values are checked by :class:`~plait.EngineConfig`, and every task's ``pool``
   must have a limit;
4. each task without a problem so far is built with :meth:`Workflow.add_task
   <plait.Workflow.add_task>`, so plait's own checks run: functions that cannot be imported,
   duplicate ids, parameters nothing can fill, option values; every dependency must name a task;
5. when all of that passed, the workflow is validated whole (cycles).

Every problem is a :class:`~plait.WorkflowFileError` that names the file, the line (for JSON,
when the file can also be read as YAML, which is nearly always), the field as a path such as
``tasks[2].retry.max_retries``, and what was expected there::

    flow.yaml, line 14: tasks[2].timeout: expected a number of seconds > 0, not 'soon'

A file with several problems raises one error with a line for each, in the order of the file
(its ``errors`` holds them one by one). An error raised by plait's own validation keeps its
message, after the file and line.

Where each step lives: reading (1) in :mod:`plait._file_parsing`, the schema and the ``config``
values (2, 3) in :mod:`plait._file_schema`, building the tasks and validating the whole (4, 5)
in :mod:`plait._file_tasks`; this module loads a target, runs the steps in order, and makes the
``executors`` section's executors once the file is right.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import os
import sys
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

from ._exceptions import ConfigError, WorkflowError, WorkflowFileError
from ._file_parsing import parse_json, parse_yaml, under
from ._file_schema import CONFIG_SETTINGS, SCHEMA, check_schema, check_settings
from ._file_tasks import Problem, build_workflow, import_module, kind_of
from ._public import publish_exports
from ._targets import importing
from ._workflow import Workflow
from .executors import Executor
from .executors._named import executor_of_kind

__all__ = ["CONFIG_SETTINGS", "SCHEMA", "LoadedTarget", "load_target"]

_FILE_SUFFIXES = (".yaml", ".yml", ".json")


@dataclass(frozen=True)
class LoadedTarget:
    """A workflow loaded by :func:`load_target`, with the settings its file asks for.

    Attributes:
        workflow: the workflow, validated.
        settings: :class:`EngineConfig` keyword settings from the file's ``config`` (empty for a
            Python target).
        source: the file path or module it came from.
        executors: the executors of the file's ``executors`` section, by name, made when it
            was loaded: pass them to :func:`plait.run` (``executors=``), then shut them down.
    """

    workflow: Workflow
    settings: dict[str, Any]
    source: str
    executors: dict[str, Executor] = dataclasses.field(default_factory=dict)


def load_target(target: str, *, pools: Collection[str] = ()) -> LoadedTarget:
    """'flow.yaml' / 'flow.yml' / 'flow.json' (a workflow file), 'path/to/flow.py:wf' (a Python file
    and the name of a plait.Workflow in it), or 'package.module:wf' (an importable module).

    A Python file is imported as a module named after it, with its directory put on
    ``sys.path`` for its own imports; exceptions raised by its code propagate unchanged. The
    workflow is validated before it is returned.

    Args:
        target: what to load.
        pools: pools the caller will give a limit (``plait run --pool``), besides those of the
            file's ``config.pools``: a file task may name them too.

    Raises:
        WorkflowFileError: the target cannot be read, is invalid, or names no workflow; the
            message says where and what was expected (every problem of a file, one per line);
            or importing it started a run.
    """
    with importing(target):  # a module that starts a run as it is imported is stopped
        return _load_target(target, pools)


def _load_target(target: str, pools: Collection[str]) -> LoadedTarget:
    if target.lower().endswith(_FILE_SUFFIXES):
        return _load_file(target, pools)
    location, colon, name = target.rpartition(":")
    if colon and location and name:
        if location.lower().endswith(".py") or os.sep in location or "/" in location:
            return _load_python_file(location, name)
        return _load_module(location, name)
    if target.lower().endswith(".py"):
        raise WorkflowFileError(
            f"name the workflow to load in it, as in {target + ':wf'!r}", file=target
        )
    raise WorkflowFileError(
        "cannot tell what to load: give a workflow file (.yaml, .yml, .json), a Python file "
        "and the workflow in it (flow.py:wf), or a module and the workflow in it "
        "(package.module:wf)",
        file=target,
    )


# -- workflow files --------------------------------------------------------------------------


def _load_file(file: str, pools: Collection[str]) -> LoadedTarget:
    path = Path(file)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise WorkflowFileError("there is no such file", file=file) from None
    except (OSError, UnicodeDecodeError) as error:
        raise WorkflowFileError(f"cannot read it: {error}", file=file) from None
    if path.suffix.lower() == ".json":
        data, source = parse_json(text, file)
    else:
        data, source = parse_yaml(text, file)
    problems = check_schema(data, source)
    if not isinstance(data, Mapping) or not isinstance(data.get("tasks"), list):
        raise WorkflowFileError.several(problems)  # nothing more can be read from it
    config = data.get("config")
    settings = dict(config) if isinstance(config, Mapping) else {}
    config_is_right = not any(under(problem, ("config",)) for problem in problems)
    if config_is_right:
        problems += check_settings(settings, source)
    directory = path.resolve().parent
    _put_on_sys_path(Path.cwd())
    _put_on_sys_path(directory)
    # Pools are checked against config.pools only when it could be read: else every pooled
    # task would repeat its problem.
    pools_are_right = isinstance(config, Mapping | None) and not any(
        under(problem, ("config", "pools")) for problem in problems
    )
    limited = {*pools, *(settings.get("pools") or {})} if pools_are_right else None
    workflow = build_workflow(data, source, directory, limited, problems)
    if problems:
        problems.sort(key=lambda problem: problem.line or 0)  # stable: the file's order
        raise WorkflowFileError.several(problems)
    executors = {}
    for name, spec in (data.get("executors") or {}).items():
        ((kind, options),) = spec.items()  # the schema let exactly one through
        try:
            executors[name] = executor_of_kind(kind, options)
        except (ConfigError, ValueError, ImportError) as error:
            raise source.error(str(error), ("executors", name)) from error
    return LoadedTarget(workflow=workflow, settings=settings, source=file, executors=executors)


def _put_on_sys_path(directory: Path) -> None:
    entry = str(directory)
    if entry not in sys.path:
        sys.path.insert(0, entry)


# -- Python targets --------------------------------------------------------------------------


def _load_python_file(file: str, name: str) -> LoadedTarget:
    path = Path(file)
    if not path.is_file():
        raise WorkflowFileError("there is no such file", file=file)
    resolved = path.resolve()
    _put_on_sys_path(resolved.parent)
    module_name = resolved.stem
    module = sys.modules.get(module_name)
    if module is None or _file_of(module) != resolved:
        if module is not None:  # the name is taken by another module: do not replace it
            module_name = f"_plait_file_{module_name}"
        spec = importlib.util.spec_from_file_location(module_name, resolved)
        if spec is None or spec.loader is None:
            raise WorkflowFileError("cannot be imported as a Python module", file=file)
        module = importlib.util.module_from_spec(spec)
        sys.modules[module_name] = module
        try:
            spec.loader.exec_module(module)
        except BaseException:
            del sys.modules[module_name]
            raise
    return LoadedTarget(workflow=_workflow_in(module, name, file), settings={}, source=file)


def _file_of(module: ModuleType) -> Path | None:
    file = getattr(module, "__file__", None)
    return None if file is None else Path(file).resolve()


def _load_module(module_name: str, name: str) -> LoadedTarget:
    _put_on_sys_path(Path.cwd())
    try:
        module = import_module(module_name)
    except Problem as problem:
        raise WorkflowFileError(str(problem), file=module_name) from problem.__cause__
    return LoadedTarget(
        workflow=_workflow_in(module, name, module_name), settings={}, source=module_name
    )


def _workflow_in(module: ModuleType, name: str, source: str) -> Workflow:
    """The validated workflow ``name`` (a dotted path) of ``module``."""
    value: Any = module
    for part in name.split("."):
        try:
            value = getattr(value, part)
        except AttributeError:
            found = sorted(k for k, v in vars(module).items() if isinstance(v, Workflow))
            hint = (
                f"; the workflows it defines: {', '.join(map(repr, found))}"
                if found
                else ", and it defines no plait.Workflow"
            )
            raise WorkflowFileError(f"there is no {name!r} in it{hint}", file=source) from None
    if not isinstance(value, Workflow):
        raise WorkflowFileError(f"{name!r} is {kind_of(value)}, not a plait.Workflow", file=source)
    try:
        value.validate()
    except WorkflowError as error:
        raise WorkflowFileError(str(error), file=source, field=name) from error
    return value


publish_exports(globals())  # plait.X, not plait._files.X: see plait._public
