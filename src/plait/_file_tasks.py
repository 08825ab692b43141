"""Building a workflow file's tasks: each entry of ``tasks`` becomes a task of a Workflow.

Steps 4 and 5 of checking a file (see :mod:`plait._files`): :func:`build_workflow` adds each
task that had no problem so far with :meth:`Workflow.add_task <plait.Workflow.add_task>`, so
plait's own checks run (duplicate ids, parameters nothing can fill, option values), places their
errors at the task's line and field, checks that every dependency names a task and, when all of
that passed, validates the workflow whole (a cycle is shown at the dependency that closes it).
A ``function`` is imported here (with a "did you mean" for a misspelt attribute), a ``shell``
command becomes a :class:`~plait.ShellTask` that runs in the file's directory, ``retry`` a
:class:`~plait.RetryPolicy` and ``pause`` a :class:`~plait.Pause`.
"""

from __future__ import annotations

import difflib
import importlib
from collections.abc import Callable, Collection, Mapping
from pathlib import Path
from types import ModuleType
from typing import Any

from ._config import pool_problem
from ._exceptions import (
    ConfigError,
    CycleError,
    DuplicateTaskError,
    InvalidOptionError,
    WorkflowError,
    WorkflowFileError,
)
from ._file_parsing import FieldPath, Source, under
from ._graph_checks import unknown_dependency
from ._pause import Pause
from ._policies import RetryPolicy
from ._shell import ShellTask
from ._workflow import Workflow

__all__ = ["Problem", "build_workflow", "import_module", "kind_of"]


class Problem(Exception):
    """A problem found while building, not yet placed in the file."""


def build_workflow(
    data: Mapping[str, Any],
    source: Source,
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
        at: FieldPath = ("tasks", i)
        if not isinstance(task, Mapping) or any(under(p, at) for p in problems):
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
    at: FieldPath,
    *,
    source: Source,
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
        except Problem as problem_:
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


def _cycle_edge(tasks: list[dict[str, Any]], cycle: list[str]) -> FieldPath:
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
    module = import_module(module_name)
    value: Any = module
    parts = attribute.split(".")
    for n, part in enumerate(parts):
        try:
            value = getattr(value, part)
        except AttributeError:
            owner = (
                f"module {module_name!r}"
                if n == 0
                else f"{module_name}:{'.'.join(parts[:n])} ({kind_of(value)})"
            )
            names = [name for name in dir(value) if not name.startswith("_")]
            close = difflib.get_close_matches(part, names, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise Problem(f"{owner} has no attribute {part!r}{hint}") from None
    if not callable(value):
        raise Problem(f"{reference!r} is {kind_of(value)}, not a callable")
    return value  # type: ignore[no-any-return]


def import_module(module_name: str) -> ModuleType:
    try:
        return importlib.import_module(module_name)
    except ModuleNotFoundError as error:
        missing = error.name or ""
        if module_name == missing or module_name.startswith(missing + "."):
            raise Problem(
                f"cannot import {module_name!r}: there is no module {missing!r}"
            ) from error
        raise Problem(f"importing module {module_name!r} failed: {error}") from error
    except Exception as error:
        raise Problem(
            f"importing module {module_name!r} failed: {type(error).__name__}: {error}"
        ) from error


def kind_of(value: Any) -> str:
    if isinstance(value, ModuleType):
        return "a module"
    if isinstance(value, type):
        return "a class"
    name = type(value).__name__
    return f"an {name}" if name[:1].lower() in "aeiou" else f"a {name}"
