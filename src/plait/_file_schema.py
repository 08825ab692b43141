"""The schema of a workflow file, and its problems in words.

Steps 2 and 3 of checking a file (see :mod:`plait._files`): :data:`SCHEMA` is the JSON Schema of
the format, :func:`check_schema` checks a file's data against it and keeps the most telling
problem of each place, :func:`describe` puts a schema error in the words of the file's author
(``expected a number of seconds > 0, not 'soon'``, ``unknown key 'retires'; did you mean
'retry'?``), and :func:`check_settings` asks :class:`~plait.EngineConfig` about the ``config``
values. The ``config`` section's schema is derived from EngineConfig (:func:`config_properties`);
the ``executors`` section's (``_EXECUTOR``) lists the kinds of executor a file may make (``dask``,
``process``, ``thread``, ``inline``: see ``plait.executors._named``).

jsonschema is imported only when a file is checked.
"""

from __future__ import annotations

import difflib
import typing
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from ._config import EngineConfig
from ._exceptions import ConfigError, WorkflowFileError
from ._file_parsing import FieldPath, Source
from ._rules import TriggerRule

if TYPE_CHECKING:
    import jsonschema

__all__ = [
    "CONFIG_SETTINGS",
    "SCHEMA",
    "check_schema",
    "check_settings",
    "config_properties",
    "describe",
]

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


def config_properties(config_class: Any = EngineConfig) -> dict[str, dict[str, Any]]:
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
_CONFIG_PROPERTIES = config_properties()

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


def check_schema(data: Any, source: Source) -> list[WorkflowFileError]:
    """Check ``data`` against SCHEMA; return its problems, the most telling one per place."""
    import jsonschema  # noqa: PLC0415 - 0.1 s to import: only when a file is loaded

    validator = jsonschema.Draft202012Validator(SCHEMA)
    problems = [describe(error) for error in validator.iter_errors(data)]
    # Unknown keys first (a misspelt key explains the other errors), then rules between keys
    # last; within each, the first in the file. A problem is kept unless one kept before it is
    # at the same place or around it (an unknown key in a task explains "a task needs...").
    kept: list[tuple[FieldPath, WorkflowFileError]] = []
    for _, _, field, at, problem in sorted(
        problems, key=lambda p: (p[0], source.line(p[3]) or 0, len(p[3]), p[1])
    ):
        if any(at[: len(place)] == place or place[: len(at)] == at for place, _ in kept):
            continue
        kept.append((at, source.error(problem, field, at=at)))
    return [error for _, error in kept]


def describe(error: jsonschema.ValidationError) -> tuple[int, str, FieldPath, FieldPath, str]:
    """(rank, sort key, field, where, problem) of a schema error, in words."""
    path: FieldPath = tuple(error.absolute_path)
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


def check_settings(settings: dict[str, Any], source: Source) -> list[WorkflowFileError]:
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
