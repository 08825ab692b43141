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
"""

from __future__ import annotations

import dataclasses
import difflib
import importlib
import importlib.util
import json
import os
import re
import sys
import typing
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any

from ._config import EngineConfig, pool_problem
from ._exceptions import (
    ConfigError,
    CycleError,
    DuplicateTaskError,
    InvalidOptionError,
    WorkflowError,
    WorkflowFileError,
)
from ._graph import unknown_dependency
from ._pause import Pause
from ._policies import RetryPolicy
from ._rules import TriggerRule
from ._shell import ShellTask
from ._targets import importing
from ._workflow import Workflow
from .executors import Executor
from .executors._named import executor_of_kind

if TYPE_CHECKING:
    import jsonschema
    import yaml

from ._public import publish_exports

__all__ = ["CONFIG_SETTINGS", "SCHEMA", "LoadedTarget", "load_target"]

_FILE_SUFFIXES = (".yaml", ".yml", ".json")

# -- the config section: derived from EngineConfig ---------------------------------------------
# Every EngineConfig field that holds a plain value is a ``config`` key of the same name, typed
# from its annotation: a field added to EngineConfig is accepted in files without a change here.
# The schema checks types only; EngineConfig itself checks values (one source for each rule).
# A field that holds objects rather than settings (its type has no JSON form, as executors
# would) cannot be set in ``config``; the schema names it as such, so that the error says so
# rather than "unknown key".

_JSON_TYPES: Mapping[Any, tuple[str, str]] = {
    bool: ("boolean", "true or false"),
    int: ("integer", "an int"),
    float: ("number", "a number"),
    str: ("string", "a string"),
}

#: How a few settings read in an error, where "an int" would say too little.
_SETTING_WORDS: Mapping[str, str] = {
    "pools": "a mapping of pool names to slots (ints)",
    "task_timeout": "a number of seconds, or null for no limit",
}


def _setting_schema(name: str, hint: Any) -> dict[str, Any] | None:
    """The JSON Schema of EngineConfig field ``name`` of type ``hint``; None if it holds objects."""
    if hint in _JSON_TYPES:
        kind, words = _JSON_TYPES[hint]
        return {"type": kind, "description": _SETTING_WORDS.get(name, words)}
    args = typing.get_args(hint)
    origin = typing.get_origin(hint)
    if type(None) in args and len(args) == 2:  # X | None
        inner = _setting_schema(name, next(a for a in args if a is not type(None)))
        if inner is None:
            return None
        words = _SETTING_WORDS.get(name, f"{inner['description']}, or null")
        return {"type": [inner["type"], "null"], "description": words}
    if origin is not None and issubclass(origin, Mapping) and len(args) == 2 and args[0] is str:
        value = _setting_schema(f"{name}.*", args[1])  # a value's words are its type's
        if value is None:
            return None
        return {
            "type": "object",
            "propertyNames": _NAMES,
            "additionalProperties": value,
            "description": _SETTING_WORDS.get(name, f"a mapping of names to {value['type']}s"),
        }
    return None


def _config_properties(config_class: Any = EngineConfig) -> dict[str, dict[str, Any]]:
    """The schema of each field of ``config_class`` (EngineConfig) under ``config``."""
    hints = typing.get_type_hints(config_class)
    properties = {}
    for name in config_class.__dataclass_fields__:
        properties[name] = _setting_schema(name, hints[name]) or {
            "not": {},
            "description": f"{name!r} holds objects rather than a setting; it cannot be given "
            "under config (pass it to plait.run)",
        }
    return properties


_NAMES = {"type": "string", "description": "a string key"}
_CONFIG_PROPERTIES = _config_properties()

CONFIG_SETTINGS: Mapping[str, str] = {name: name for name in _CONFIG_PROPERTIES}
"""Each ``config`` key of a workflow file, and the :class:`EngineConfig` field it sets (its
namesake: every EngineConfig field that holds a plain value)."""

# -- the schema ------------------------------------------------------------------------------
# Each "description" says what a value should be; an error message reads "expected <it>". The
# descriptions of the two task rules (under allOf) are the error messages themselves.

_POSITIVE_SECONDS = {
    "type": "number",
    "exclusiveMinimum": 0,
    "description": "a number of seconds > 0",
}
_SECONDS = {"type": "number", "minimum": 0, "description": "a number of seconds >= 0"}

_RETRY = {
    "type": "object",
    "description": "a mapping of retry settings (max_retries, backoff, max_backoff, jitter)",
    "additionalProperties": False,
    "properties": {
        "max_retries": {"type": "integer", "minimum": 0, "description": "an int >= 0"},
        "backoff": _SECONDS,
        "max_backoff": _SECONDS,
        "jitter": {
            "type": "number",
            "minimum": 0,
            "maximum": 1,
            "description": "a number between 0 and 1",
        },
    },
}

_PAUSE = {
    "type": "object",
    "description": "a mapping with a 'prompt'",
    "required": ["prompt"],
    "additionalProperties": False,
    "properties": {
        "prompt": {"type": "string", "minLength": 1, "description": "a non-empty question"},
        "schema": {"type": "object", "description": "a JSON Schema (a mapping)"},
        "timeout": _POSITIVE_SECONDS,
        "default": {"description": "any value: the answer to use after the timeout"},
    },
}

_TASK = {
    "type": "object",
    "description": "a task (a mapping with an 'id')",
    "required": ["id"],
    "additionalProperties": False,
    "properties": {
        "id": {"type": "string", "minLength": 1, "description": "a non-empty task id"},
        "function": {
            "type": "string",
            "pattern": r"^[A-Za-z_][\w.]*:[A-Za-z_][\w.]*$",
            "description": "a 'package.module:function' reference",
        },
        "shell": {
            "type": ["string", "array"],
            "minLength": 1,
            "minItems": 1,
            "items": {"type": "string", "description": "a string (one argument)"},
            "description": "a command string or a non-empty list of arguments",
        },
        "cwd": {"type": "string", "minLength": 1, "description": "a directory path"},
        "env": {
            "type": "object",
            "propertyNames": {"type": "string", "minLength": 1, "description": "a variable name"},
            "additionalProperties": {
                "type": "string",
                "description": "a string (quote numbers and booleans)",
            },
            "description": "a mapping of environment variable names to strings",
        },
        "params": {
            "type": "object",
            "propertyNames": _NAMES,
            "description": "a mapping of parameter names to values",
        },
        "depends_on": {
            "type": "array",
            "items": {"type": "string", "minLength": 1, "description": "a task id"},
            "description": "a list of task ids",
        },
        "retry": _RETRY,
        "timeout": _POSITIVE_SECONDS,
        "critical": {"type": "boolean", "description": "true or false"},
        "pool": {"type": "string", "minLength": 1, "description": "a non-empty pool name"},
        "priority": {"type": "integer", "description": "an int"},
        "estimate": _SECONDS,
        "pause": _PAUSE,
        "executor": {
            "type": "string",
            "minLength": 1,
            "description": "an executor's name ('thread', 'inline', 'process', or one under "
            "executors)",
        },
        "trigger": {
            "enum": [rule.value for rule in TriggerRule],
            "description": "a trigger rule: " + ", ".join(rule.value for rule in TriggerRule),
        },
        "cleanup": {"type": "boolean", "description": "true or false"},
        "map_over": {
            "type": "string",
            "minLength": 1,
            "description": "the id of one of its depends_on, whose output (a list) it maps over",
        },
    },
    "dependentRequired": {"params": ["function"], "cwd": ["shell"], "env": ["shell"]},
    "allOf": [
        {
            "description": "give either 'function' or 'shell', not both",
            "not": {"required": ["function", "shell"]},
        },
        {
            "description": "a task needs a 'function', a 'shell' command, or a 'pause' "
            "(an approval gate)",
            "anyOf": [{"required": ["function"]}, {"required": ["shell"]}, {"required": ["pause"]}],
        },
    ],
}

_EXECUTOR = {
    "type": "object",
    "description": "one executor: {dask: ADDRESS}, {process: {max_workers: N}}, "
    "{thread: {max_workers: N}} or {inline: {}}",
    "minProperties": 1,
    "maxProperties": 1,
    "additionalProperties": False,
    "properties": {
        "dask": {
            "type": "string",
            "minLength": 1,
            "description": "a Dask scheduler's address, such as 'tcp://10.0.0.5:8786'",
        },
        "process": {
            "type": "object",
            "description": "a mapping of process executor settings (max_workers)",
            "additionalProperties": False,
            "properties": {
                "max_workers": {"type": "integer", "minimum": 1, "description": "an int >= 1"}
            },
        },
        "thread": {
            "type": "object",
            "description": "a mapping with max_workers",
            "required": ["max_workers"],
            "additionalProperties": False,
            "properties": {
                "max_workers": {"type": "integer", "minimum": 1, "description": "an int >= 1"}
            },
        },
        "inline": {
            "type": "object",
            "maxProperties": 0,
            "description": "an empty mapping ({})",
        },
    },
}

SCHEMA: Mapping[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "title": "plait workflow file",
    "type": "object",
    "description": "a mapping with 'name' and 'tasks'",
    "required": ["name", "tasks"],
    "additionalProperties": False,
    "properties": {
        "name": {"type": "string", "minLength": 1, "description": "a non-empty workflow name"},
        "config": {
            "type": "object",
            "description": "a mapping of engine settings (plait.EngineConfig fields)",
            "additionalProperties": False,
            "properties": _CONFIG_PROPERTIES,
        },
        "tasks": {"type": "array", "description": "a list of tasks", "items": _TASK},
        "executors": {
            "type": "object",
            "propertyNames": {"type": "string", "minLength": 1, "description": "a name"},
            "additionalProperties": _EXECUTOR,
            "description": "a mapping of executor names to executors",
        },
    },
}
"""The JSON Schema (draft 2020-12) of a workflow file; see the module docstring."""

# The validators whose failures are about a rule between keys rather than a value.
_RULES = ("not", "anyOf")

_FieldPath = tuple[str | int, ...]


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


class _Problem(Exception):
    """A problem found while building, not yet placed in the file."""


class _Source:
    """A parsed workflow file: its name, and the line of every key and list item."""

    def __init__(self, label: str, lines: dict[_FieldPath, int]) -> None:
        self.label = label
        self.lines = lines

    def line(self, path: _FieldPath) -> int | None:
        """The line of ``path``, or of the nearest enclosing key or item that has one."""
        for end in range(len(path), -1, -1):
            line = self.lines.get(path[:end])
            if line is not None:
                return line
        return None

    def error(
        self, problem: str, field: _FieldPath = (), *, at: _FieldPath | None = None
    ) -> WorkflowFileError:
        """An error about ``field``, on the line of ``at`` (default: of ``field``)."""
        return WorkflowFileError(
            problem,
            file=self.label,
            line=self.line(field if at is None else at),
            field=_field_name(field) or None,
        )


def _field_name(path: _FieldPath) -> str:
    text = ""
    for part in path:
        if isinstance(part, int):
            text += f"[{part}]"
        elif re.fullmatch(r"[A-Za-z_][\w-]*", part):
            text += f".{part}" if text else part
        else:
            text += f"[{part!r}]"
    return text


def _load_file(file: str, pools: Collection[str]) -> LoadedTarget:
    path = Path(file)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise WorkflowFileError("there is no such file", file=file) from None
    except (OSError, UnicodeDecodeError) as error:
        raise WorkflowFileError(f"cannot read it: {error}", file=file) from None
    if path.suffix.lower() == ".json":
        data, source = _parse_json(text, file)
    else:
        data, source = _parse_yaml(text, file)
    problems = _check(data, source)
    if not isinstance(data, Mapping) or not isinstance(data.get("tasks"), list):
        raise WorkflowFileError.several(problems)  # nothing more can be read from it
    config = data.get("config")
    settings = dict(config) if isinstance(config, Mapping) else {}
    config_is_right = not any(_under(problem, ("config",)) for problem in problems)
    if config_is_right:
        problems += _check_settings(settings, source)
    directory = path.resolve().parent
    _put_on_sys_path(Path.cwd())
    _put_on_sys_path(directory)
    # Pools are checked against config.pools only when it could be read: else every pooled
    # task would repeat its problem.
    pools_are_right = isinstance(config, Mapping | None) and not any(
        _under(problem, ("config", "pools")) for problem in problems
    )
    limited = {*pools, *(settings.get("pools") or {})} if pools_are_right else None
    workflow = _build(data, source, directory, limited, problems)
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


def _under(problem: WorkflowFileError, path: _FieldPath) -> bool:
    """Whether ``problem`` is about ``path`` or something inside it."""
    return problem.field is not None and (
        problem.field == _field_name(path)
        or problem.field.startswith(_field_name(path) + ".")
        or problem.field.startswith(_field_name(path) + "[")
    )


def _check_settings(settings: dict[str, Any], source: _Source) -> list[WorkflowFileError]:
    """EngineConfig's verdict on the file's settings, each placed at its key when it can be."""
    try:
        EngineConfig(**settings)
    except ConfigError as error:
        # Which key is wrong? The one that EngineConfig refuses on its own; if none does, the
        # problem lies between keys (such as a backoff above its maximum).
        alone = []
        for key, value in settings.items():
            try:
                EngineConfig(**{key: value})
            except ConfigError as own:
                alone.append(source.error(str(own), ("config", key)))
        return alone or [source.error(str(error), ("config",))]
    return []


def _yaml() -> Any:
    try:
        import yaml  # noqa: PLC0415 - an optional dependency, needed for YAML files only
    except ModuleNotFoundError:
        raise ModuleNotFoundError(
            "reading YAML workflow files needs PyYAML: pip install 'plait[cli]'"
        ) from None
    return yaml


class _AliasFound(Exception):
    """A YAML anchor or alias, met while composing (see :func:`_loader`)."""

    def __init__(self, what: str, line: int, column: int) -> None:
        super().__init__(what)
        self.what = what
        self.line = line
        self.column = column


_NO_ALIASES: Any = None


def _loader() -> Any:
    """PyYAML's SafeLoader, refusing anchors and aliases as it composes (made once, on first
    use: PyYAML is imported only for YAML files)."""
    global _NO_ALIASES
    if _NO_ALIASES is None:
        yaml = _yaml()

        class NoAliasesLoader(yaml.SafeLoader):  # type: ignore[misc,name-defined]
            def compose_node(self, parent: Any, index: Any) -> Any:
                event = self.peek_event()
                mark = event.start_mark
                if isinstance(event, yaml.AliasEvent):
                    raise _AliasFound(f"alias *{event.anchor}", mark.line + 1, mark.column + 1)
                if getattr(event, "anchor", None) is not None:
                    raise _AliasFound(f"anchor &{event.anchor}", mark.line + 1, mark.column + 1)
                return super().compose_node(parent, index)

        _NO_ALIASES = NoAliasesLoader
    return _NO_ALIASES


def _too_deep(file: str) -> WorkflowFileError:
    return WorkflowFileError(
        "its values are nested deeper than plait can read (about a thousand levels); a "
        "workflow file needs only a few",
        file=file,
    )


def _parse_yaml(text: str, file: str) -> tuple[Any, _Source]:
    yaml = _yaml()
    loader = _loader()(text)
    try:
        node = loader.get_single_node()
        lines: dict[_FieldPath, int] = {}
        if node is not None:
            _index(node, (), lines, _Source(file, lines))
        data = None if node is None else loader.construct_document(node)
    except _AliasFound as found:
        raise WorkflowFileError(
            f"YAML anchors and aliases are not supported (found the {found.what}): an alias "
            "repeats a value without copying it, which lets a small file expand without bound; "
            "write the value out where it is used",
            file=file,
            line=found.line,
            column=found.column,
        ) from None
    except RecursionError:
        raise _too_deep(file) from None
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        problem, context = error.problem or "", error.context or ""
        if problem and context.startswith("while "):  # "while parsing a block mapping"
            problem = f"{problem} ({context})"
        elif context:  # "expected a single document in the stream"
            problem = f"{context}, {problem}" if problem else context
        raise WorkflowFileError(
            f"invalid YAML: {problem or 'cannot be parsed'}",
            file=file,
            line=None if mark is None else mark.line + 1,
            column=None if mark is None else mark.column + 1,
        ) from None
    except yaml.YAMLError as error:
        raise WorkflowFileError(f"invalid YAML: {error}", file=file) from None
    finally:
        loader.dispose()
    return data, _Source(file, lines)


def _parse_json(text: str, file: str) -> tuple[Any, _Source]:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as error:
        raise WorkflowFileError(
            f"invalid JSON: {error.msg}", file=file, line=error.lineno, column=error.colno
        ) from None
    except RecursionError:
        raise _too_deep(file) from None
    lines: dict[_FieldPath, int] = {}
    source = _Source(file, lines)
    # JSON is (nearly always) YAML too, and PyYAML knows where every node starts: use it for
    # line numbers when it is installed and agrees; the data itself is json's.
    try:
        node = _yaml().compose(text, Loader=_loader())
    except Exception:
        return data, source
    if node is not None:
        _index(node, (), lines, source)
    return data, source


def _index(
    node: yaml.Node, path: _FieldPath, lines: dict[_FieldPath, int], source: _Source
) -> None:
    """Record the line of every key and item under ``node``; refuse a key given twice.

    Runs on the composed nodes, before construction applies ``<<`` merges (whose keys may
    legitimately be given again).
    """
    import yaml  # noqa: PLC0415 - only ever called once yaml is imported

    if not path:
        lines[()] = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        seen: set[str] = set()
        for key_node, value_node in node.value:
            if not isinstance(key_node, yaml.ScalarNode) or key_node.value == "<<":
                continue
            key = key_node.value
            if key in seen and key_node.tag == "tag:yaml.org,2002:str":
                lines[(*path, key)] = key_node.start_mark.line + 1
                raise source.error(
                    f"key {key!r} appears twice; give each key once", path, at=(*path, key)
                )
            seen.add(key)
            lines[(*path, key)] = key_node.start_mark.line + 1
            if len(path) < 32:  # deep enough for the format; stops recursive aliases too
                _index(value_node, (*path, key), lines, source)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            lines[(*path, i)] = item.start_mark.line + 1
            if len(path) < 32:
                _index(item, (*path, i), lines, source)


def _check(data: Any, source: _Source) -> list[WorkflowFileError]:
    """Check ``data`` against SCHEMA; return its problems, the most telling one per place."""
    import jsonschema  # noqa: PLC0415 - 0.1 s to import: only when a file is loaded

    validator = jsonschema.Draft202012Validator(SCHEMA)
    problems = [_describe(error) for error in validator.iter_errors(data)]
    # Unknown keys first (a misspelt key explains the other errors), then rules between keys
    # last; within each, the first in the file. A problem is kept unless one kept before it is
    # at the same place or around it (an unknown key in a task explains "a task needs...").
    kept: list[tuple[_FieldPath, WorkflowFileError]] = []
    for _, _, field, at, problem in sorted(
        problems, key=lambda p: (p[0], source.line(p[3]) or 0, len(p[3]), p[1])
    ):
        if any(at[: len(place)] == place or place[: len(at)] == at for place, _ in kept):
            continue
        kept.append((at, source.error(problem, field, at=at)))
    return [error for _, error in kept]


def _describe(error: jsonschema.ValidationError) -> tuple[int, str, _FieldPath, _FieldPath, str]:
    """(rank, sort key, field, where, problem) of a schema error, in words."""
    path: _FieldPath = tuple(error.absolute_path)
    kind = error.validator
    instance = error.instance
    rule: Any = error.validator_value
    schema = error.schema if isinstance(error.schema, Mapping) else {}
    if kind == "additionalProperties" and isinstance(instance, Mapping):
        known = list(schema.get("properties", {}))
        key = next(k for k in instance if k not in known)
        close = difflib.get_close_matches(str(key), known, n=1)
        hint = f"did you mean {close[0]!r}?" if close else f"expected one of: {', '.join(known)}"
        where = (*path, key) if isinstance(key, str) else path
        return 0, str(path), path, where, f"unknown key {key!r}; {hint}"
    if kind == "required" and isinstance(instance, Mapping):
        missing = next(k for k in rule if k not in instance)
        return 1, str(path), path, path, f"missing required key {missing!r}"
    if kind == "dependentRequired" and isinstance(instance, Mapping):
        for key, needs in rule.items():
            if key in instance and any(need not in instance for need in needs):
                return 2, key, path, (*path, key), f"{key!r} is only for {needs[0]!r} tasks"
    if kind in _RULES and "description" in schema:
        return 2, str(kind), path, path, str(schema["description"])
    if "description" in schema:
        return 1, str(path), path, path, f"expected {schema['description']}, not {_show(instance)}"
    return 1, str(path), path, path, error.message


def _show(value: Any) -> str:
    """A value as the file's author would recognise it, in a few words."""
    if isinstance(value, Mapping):
        return "a mapping" if value else "an empty mapping"
    if isinstance(value, list):
        return "a list" if value else "an empty list"
    if value is None:
        return "null (an empty value)"
    if isinstance(value, bool):
        return "true" if value else "false"
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _build(
    data: Mapping[str, Any],
    source: _Source,
    directory: Path,
    limited: Collection[str] | None,
    problems: list[WorkflowFileError],
) -> Workflow:
    """The workflow of a checked file; plait's own errors are placed at their task.

    Tasks at or under a place in ``problems`` are left out; the problems found here are added
    to it. A task's ``pool`` must be one of ``limited`` (None: not checked). The whole workflow
    is validated (cycles) only when there were no problems.
    """
    name = data.get("name")
    workflow = Workflow(name if isinstance(name, str) and name else "workflow")
    tasks: list[Any] = data["tasks"]
    ids = [task["id"] for task in tasks if isinstance(task, Mapping) and _is_text(task.get("id"))]
    for i, task in enumerate(tasks):
        at: _FieldPath = ("tasks", i)
        if not isinstance(task, Mapping) or any(_under(p, at) for p in problems):
            continue
        try:
            _add_task(workflow, task, at, source=source, directory=directory, limited=limited)
        except WorkflowFileError as error:
            problems.append(error)
        for j, dependency in enumerate(task.get("depends_on", ())):
            if dependency not in ids:
                unknown = unknown_dependency(task["id"], dependency, ids, workflow.name)
                problems.append(source.error(str(unknown), (*at, "depends_on", j)))
                problems[-1].__cause__ = unknown
    if problems:
        return workflow
    try:
        workflow.validate()
    except CycleError as error:
        problems.append(source.error(str(error), _cycle_edge(tasks, error.cycle)))
        problems[-1].__cause__ = error
    return workflow


def _is_text(value: Any) -> bool:
    return isinstance(value, str) and bool(value)


def _add_task(
    workflow: Workflow,
    task: Mapping[str, Any],
    at: _FieldPath,
    *,
    source: _Source,
    directory: Path,
    limited: Collection[str] | None,
) -> None:
    """Add the file's ``task`` to ``workflow``.

    Raises:
        WorkflowFileError: the task is wrong; the error names its line and field.
    """
    pool = task.get("pool")
    problem = None if pool is None or limited is None else pool_problem(task["id"], pool, limited)
    if problem is not None:
        raise source.error(
            f"{problem} (add it under config.pools, or give it one with --pool {pool}=N)",
            (*at, "pool"),
        )
    fn: Callable[..., Any] | None = None
    if "function" in task:
        try:
            fn = _import_callable(task["function"])
        except _Problem as problem_:
            raise source.error(str(problem_), (*at, "function")) from problem_.__cause__
    elif "shell" in task:
        try:
            fn = ShellTask(task["shell"], cwd=directory / task.get("cwd", "."), env=task.get("env"))
        except InvalidOptionError as error:
            raise source.error(str(error), at) from error
    retry = pause = None
    try:
        if "retry" in task:
            retry = RetryPolicy(**task["retry"])
    except ConfigError as error:
        raise source.error(str(error), (*at, "retry")) from error
    try:
        if "pause" in task:
            pause = Pause(**task["pause"])
    except InvalidOptionError as error:
        raise source.error(str(error), (*at, "pause")) from error
    options = {
        key: task[key]
        for key in (
            "params",
            "timeout",
            "critical",
            "pool",
            "priority",
            "estimate",
            "executor",
            "trigger",
            "cleanup",
            "map_over",
        )
        if key in task
    }
    try:
        workflow.add_task(
            task["id"],
            fn,
            depends_on=task.get("depends_on", ()),
            retry=retry,
            pause=pause,
            **options,
        )
    except DuplicateTaskError as error:
        raise source.error(str(error), (*at, "id")) from error
    except WorkflowError as error:
        raise source.error(str(error), at) from error


def _cycle_edge(tasks: list[dict[str, Any]], cycle: list[str]) -> _FieldPath:
    """Where the cycle shows: the dependency, within the cycle, of its first task in the file.

    ``cycle`` runs the way work flows (``a -> b -> a``: b depends on a, a on b).
    """
    i = min(i for i, task in enumerate(tasks) if task["id"] in cycle)
    k = cycle.index(tasks[i]["id"], 1)  # the element before it is the dependency that closes it
    j = tasks[i]["depends_on"].index(cycle[k - 1])
    return ("tasks", i, "depends_on", j)


def _import_callable(reference: str) -> Callable[..., Any]:
    """``package.module:attribute.path``, imported."""
    module_name, _, attribute = reference.partition(":")
    module = _import_module(module_name)
    value: Any = module
    parts = attribute.split(".")
    for n, part in enumerate(parts):
        try:
            value = getattr(value, part)
        except AttributeError:
            owner = (
                f"module {module_name!r}"
                if n == 0
                else f"{module_name}:{'.'.join(parts[:n])} ({_kind(value)})"
            )
            names = [name for name in dir(value) if not name.startswith("_")]
            close = difflib.get_close_matches(part, names, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise _Problem(f"{owner} has no attribute {part!r}{hint}") from None
    if not callable(value):
        raise _Problem(f"{reference!r} is {_kind(value)}, not a callable")
    return value  # type: ignore[no-any-return]


def _import_module(module_name: str) -> ModuleType:
    try:
        return importlib.import_module(module_name)
    except ModuleNotFoundError as error:
        missing = error.name or ""
        if module_name == missing or module_name.startswith(missing + "."):
            raise _Problem(
                f"cannot import {module_name!r}: there is no module {missing!r}"
            ) from error
        raise _Problem(f"importing module {module_name!r} failed: {error}") from error
    except Exception as error:
        raise _Problem(
            f"importing module {module_name!r} failed: {type(error).__name__}: {error}"
        ) from error


def _kind(value: Any) -> str:
    if isinstance(value, ModuleType):
        return "a module"
    if isinstance(value, type):
        return "a class"
    name = type(value).__name__
    return f"an {name}" if name[:1].lower() in "aeiou" else f"a {name}"


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
        module = _import_module(module_name)
    except _Problem as problem:
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
        raise WorkflowFileError(f"{name!r} is {_kind(value)}, not a plait.Workflow", file=source)
    try:
        value.validate()
    except WorkflowError as error:
        raise WorkflowFileError(str(error), file=source, field=name) from error
    return value


publish_exports(globals())  # plait.X, not plait._files.X: see plait._public
