"""Which workflow a command loads, and the ``--param`` values it applies.

How ``resume`` finds a run's workflow: a run's record holds its definition and a *target* (how
to import the workflow): ``plait run`` records the TARGET it was given (a file made absolute),
``plait.run`` the module and attribute that hold the workflow (see ``plait._targets``). The
stored target is a hint, never an order: ``plait resume RUN_ID`` imports it only when it
resolves inside the current directory or a directory on ``PLAIT_PATH``, and otherwise shows it
and asks for ``--target``. The ``--param`` values of ``plait run`` are part of the run's
definition (each task's params), and ``plait resume`` applies them again.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from ._common import _fail

if TYPE_CHECKING:
    from .._workflow import Workflow
    from ..stores import RunRecord

# Start-up time: `plait --help` imports this module; it must not load the engine, rich, the
# stores or jsonschema, so they are imported inside the functions that use them (bench/run.py
# measures it).

__all__ = ["with_params"]


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
