"""Binding: how a task's parameters are filled when it runs, worked out once when it is added.

``Workflow.add_task`` (see ``plait._workflow``) reads each function once per workflow, however
many tasks run it (``_analyse``, a ``_FunctionInfo``), then works out each task's
:class:`Binding` from that reading (``_bind``):

- a parameter named like one of the task's dependencies receives that dependency's output, and
  a ``**kwargs`` parameter receives the outputs of the dependencies not named (keyed by id, so
  ids that are not Python names work too) -- of those that succeeded: under a trigger rule other
  than ``all_success`` a dependency may not have, and the parameter keeps its default (which it
  must then have);
- a parameter named ``ctx`` or annotated :class:`plait.Context` receives the task's context;
- any other parameter comes from ``params``, or keeps its default value.

A parameter that none of these can fill is a :class:`BindingError` at once, before anything runs;
so is a mapped task's function without a parameter for its item (``_check_item_parameter``).
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, NamedTuple

from ._context import Context
from ._exceptions import BindingError, InvalidOptionError
from ._rules import TriggerRule

__all__ = ["Binding"]


class Binding(NamedTuple):
    """How to fill a task function's parameters: from dependency outputs, the context, params.

    A dependency's output always fills the parameter named like the dependency (or goes into
    ``**kwargs`` under its id), so ``passed`` holds ids only, and is ``None`` when every
    dependency is passed: then all such tasks share one Binding (see ``_EVERY_DEPENDENCY``)
    instead of each keeping one for the garbage collector to walk. Read it through
    :attr:`TaskSpec.passed`.
    """

    passed: tuple[str, ...] | None  # the dependencies whose outputs are passed; None: all
    context_parameter: str | None
    params: Mapping[str, Any]


_NO_PARAMS: Mapping[str, Any] = MappingProxyType({})
_NO_BINDING = Binding((), None, _NO_PARAMS)
_EVERY_DEPENDENCY = Binding(None, None, _NO_PARAMS)  # e.g. ``def f(**upstream)``


@dataclass(frozen=True, slots=True)
class _Parameter:
    """What binding needs to know of one parameter of a task function."""

    name: str
    positional_only: bool
    has_default: bool
    wants_context: bool


@dataclass(frozen=True, slots=True)
class _FunctionInfo:
    """A task function, analysed once however many tasks run it."""

    is_async: bool
    parameters: tuple[_Parameter, ...]  # in order; not *args or **kwargs
    names: frozenset[str]
    accepts_any_keyword: bool  # a **kwargs parameter
    # ``def f(**upstream)``: every dependency's output is passed, nothing else can be.
    takes_only_any_keyword: bool


def _check_item_parameter(
    task_id: str,
    fn: Callable[..., Any],
    info: _FunctionInfo,
    map_over: str,
    params: Mapping[str, Any],
) -> None:
    """Raise unless ``fn`` has a parameter that receives the item: the one named after the
    dependency mapped over (or ``**kwargs``)."""
    if map_over in params:
        raise BindingError(
            f"task {task_id!r}: params[{map_over!r}] would hide the item it maps over; "
            f"remove {map_over!r} from params"
        )
    if map_over not in info.names and not info.accepts_any_keyword:
        name = getattr(fn, "__qualname__", repr(fn))
        raise BindingError(
            f"task {task_id!r} maps over {map_over!r}, but {name} has no parameter "
            f"{map_over!r} to receive each item; add a parameter named {map_over!r}"
        )


def _is_async(fn: Callable[..., Any]) -> bool:
    while isinstance(fn, functools.partial):
        fn = fn.func
    if inspect.iscoroutinefunction(fn):
        return True
    call = getattr(type(fn), "__call__", None)  # noqa: B004 - instances with an async __call__
    return not inspect.isfunction(fn) and inspect.iscoroutinefunction(call)


def _analyse(task_id: str, fn: Callable[..., Any]) -> _FunctionInfo:
    """Read what binding needs from ``fn``'s signature (once per function and workflow)."""
    if not callable(fn):
        raise InvalidOptionError(f"task {task_id!r}: fn must be callable, not {fn!r}")
    try:
        signature = inspect.signature(fn)
    except (TypeError, ValueError) as error:
        raise BindingError(
            f"task {task_id!r}: cannot read the signature of {fn!r}, so plait cannot tell "
            "which parameters to fill; wrap it in a def or lambda"
        ) from error
    parameters = []
    accepts_any_keyword = False
    for parameter in signature.parameters.values():
        if parameter.kind is inspect.Parameter.VAR_KEYWORD:
            accepts_any_keyword = True
        elif parameter.kind is not inspect.Parameter.VAR_POSITIONAL:
            parameters.append(
                _Parameter(
                    name=parameter.name,
                    positional_only=parameter.kind is inspect.Parameter.POSITIONAL_ONLY,
                    has_default=parameter.default is not inspect.Parameter.empty,
                    wants_context=_wants_context(fn, parameter),
                )
            )
    return _FunctionInfo(
        is_async=_is_async(fn),
        parameters=tuple(parameters),
        names=frozenset(p.name for p in parameters),
        accepts_any_keyword=accepts_any_keyword,
        takes_only_any_keyword=accepts_any_keyword and not parameters,
    )


def _wants_context(fn: Callable[..., Any], parameter: inspect.Parameter) -> bool:
    annotation = parameter.annotation
    if parameter.name == "ctx" or annotation is Context:
        return True
    if isinstance(annotation, str):  # a postponed annotation: resolve it as typing would
        namespace = getattr(inspect.unwrap(fn), "__globals__", {})
        try:
            return eval(annotation, namespace) is Context
        except Exception:
            return annotation in ("Context", "plait.Context")
    return False


def _bind(
    task_id: str,
    fn: Callable[..., Any],
    info: _FunctionInfo,
    dependencies: tuple[str, ...],
    params: Mapping[str, Any],
    *,
    rule: TriggerRule = TriggerRule.ALL_SUCCESS,
) -> Binding:
    """Work out how to fill ``fn``'s parameters for one task (see the module docstring)."""
    named: set[str] = set()  # parameters filled by the dependency of their name
    context_parameter: str | None = None
    for parameter in info.parameters:
        name = parameter.name
        if parameter.positional_only:
            if not parameter.has_default or name in params:
                raise BindingError(
                    f"task {task_id!r}: parameter {name!r} is positional-only, so plait cannot "
                    "pass it by name; make it a normal parameter"
                )
            continue
        if name in params:
            if name in dependencies:
                raise BindingError(
                    f"task {task_id!r}: parameter {name!r} would get both the output of "
                    f"dependency {name!r} and params[{name!r}]; remove one of them"
                )
            continue
        if name in dependencies:
            if not parameter.has_default and not rule.needs_every_success:
                raise BindingError(
                    f"task {task_id!r}: parameter {name!r} gets the output of dependency {name!r}, "
                    f"which may not succeed under trigger={rule.value!r}; give {name!r} a "
                    f"default (used when it did not succeed), or read ctx.upstream[{name!r}]"
                )
            named.add(name)
        elif context_parameter is None and parameter.wants_context:
            context_parameter = name
        elif not parameter.has_default:
            raise BindingError(
                f"task {task_id!r}: nothing fills parameter {name!r} of "
                f"{getattr(fn, '__qualname__', repr(fn))}; add {name!r} to depends_on (to receive "
                f"that task's output), to params, or give it a default"
            )
    names = info.names
    passed: tuple[str, ...]
    if info.accepts_any_keyword:  # **kwargs takes the outputs of the dependencies not named
        passed = tuple(
            dependency
            for dependency in dependencies
            if dependency in named or (dependency not in names and dependency not in params)
        )
    else:
        if params and not names.issuperset(params):
            unknown = sorted(set(params) - names)
            raise BindingError(
                f"task {task_id!r}: params {unknown!r} match no parameter of "
                f"{getattr(fn, '__qualname__', repr(fn))}; remove them or rename the parameters"
            )
        passed = tuple(dependency for dependency in dependencies if dependency in named)
    if not passed and context_parameter is None and not params:
        return _NO_BINDING
    if len(passed) == len(dependencies):
        if context_parameter is None and not params:
            return _EVERY_DEPENDENCY
        return Binding(None, context_parameter, params)
    return Binding(passed, context_parameter, params)
