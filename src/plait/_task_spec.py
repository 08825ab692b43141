"""A task's spec: :class:`TaskSpec`, one task of a workflow with its options, and the checks
those options pass when the task is added.

``Workflow.add_task`` (see ``plait._workflow``) makes one TaskSpec per task, and checks only the
options given a value other than their default (``make bench`` Part 5 times ``add_task``). An
option with a value plait cannot use is an :class:`InvalidOptionError` that names the task, the
option and the value, at once, before anything runs.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import Any, NamedTuple, TypeGuard

from ._binding import _NO_BINDING, _NO_PARAMS, Binding
from ._exceptions import InvalidOptionError
from ._pause import Pause
from ._policies import RetryPolicy
from ._public import publish_exports
from ._rules import TriggerRule, coerce_rule

__all__ = ["TaskSpec"]

#: The default priority, for ``priority is _NO_PRIORITY``: CPython keeps one object for every
#: int 0 (its small ints), so any other value -- an int subclass, ``False``, ``0.0`` -- takes
#: the path that checks it. One identity test instead of ``type(p) is int and p == 0``.
_NO_PRIORITY = 0


class TaskSpec(NamedTuple):
    """One task of a workflow: what to run, after what, and with which options (immutable).

    A named tuple rather than a frozen dataclass: ``add_task`` makes one per task, and a frozen
    dataclass of these fourteen fields costs more to make than all the rest of ``add_task``
    (its ``__init__`` goes through ``object.__setattr__`` field by field); ``make bench`` Part 5
    times ``add_task``. ``binding`` is derived from ``fn``, ``depends_on`` and ``params``.
    """

    id: str
    fn: Callable[..., Any] | None
    depends_on: tuple[str, ...] = ()
    params: Mapping[str, Any] = _NO_PARAMS
    retry: RetryPolicy | None = None
    timeout: float | None = None
    critical: bool = False
    pool: str | None = None
    priority: int = 0
    estimate: float | None = None
    pause: Pause | None = None
    executor: str | None = None
    is_async: bool = False
    trigger: TriggerRule = TriggerRule.ALL_SUCCESS
    cleanup: bool = False
    map_over: str | None = None
    binding: Binding = _NO_BINDING

    # ``binding`` follows from the other fields: left out of comparisons and the repr.
    def __eq__(self, other: object) -> bool:
        if not isinstance(other, TaskSpec):
            return NotImplemented
        return self[:-1] == other[:-1]

    def __ne__(self, other: object) -> bool:
        equal = self.__eq__(other)
        return equal if equal is NotImplemented else not equal

    def __hash__(self) -> int:
        return hash(self[:-1])

    @property
    def passed(self) -> tuple[str, ...]:
        """The dependencies whose outputs are passed to ``fn``, each as the parameter of its
        own name (or in ``**kwargs``, keyed by id), in ``depends_on`` order."""
        passed = self.binding.passed
        return self.depends_on if passed is None else passed

    def __repr__(self) -> str:
        fields = zip(self._fields[:-1], self[:-1], strict=True)
        shown = ", ".join(f"{name}={value!r}" for name, value in fields)
        return f"TaskSpec({shown})"


def _check_given_options(
    task_id: str,
    dependencies: tuple[str, ...],
    dependency_id: Callable[[str, Any], str],
    *,
    params: Mapping[str, Any] | None,
    retry: object,
    timeout: object,
    critical: object,
    pool: object,
    priority: object,
    estimate: object,
    pause: Pause | None,
    executor: object,
    trigger: TriggerRule | str | None,
    cleanup: object,
    map_over: Any,
) -> tuple[TriggerRule, str | None, Mapping[str, Any], bool]:
    """Check the options of a task added with some (``add_task`` tells the common case, none,
    by itself): its rule, the id it maps over, its params frozen, and whether its options are
    the defaults that tasks share (see ``plait._task_columns.DEFAULT_OPTIONS``).

    ``dependency_id`` resolves ``map_over`` (an id, or a function added as a task) to an id.
    """
    if trigger is None:
        rule = TriggerRule.ALL_DONE if cleanup is True else TriggerRule.ALL_SUCCESS
    elif type(trigger) is TriggerRule:
        rule = trigger
    else:
        rule = coerce_rule(trigger, task_id)
    if cleanup is not False and cleanup is not True:
        raise InvalidOptionError(
            f"task {task_id!r}: cleanup must be True or False, not {cleanup!r}"
        )
    mapped: str | None = None
    if map_over is not None:
        mapped = _check_map_over(
            task_id,
            dependency_id(task_id, map_over),
            dependencies,
            rule,
            pause=pause,
            default_rule=trigger is None,
        )
    default_options = True
    if (
        retry is not None
        or timeout is not None
        or critical is not False
        or pool is not None
        or priority is not _NO_PRIORITY
        or estimate is not None
        or executor is not None
    ):
        default_options = False
        _check_options(
            task_id,
            retry=retry,
            timeout=timeout,
            critical=critical,
            pool=pool,
            priority=priority,
            estimate=estimate,
            executor=executor,
        )
    frozen_params = MappingProxyType(dict(params)) if params else _NO_PARAMS
    shared = (
        default_options
        and rule is TriggerRule.ALL_SUCCESS
        and pause is None
        and cleanup is False
        and mapped is None
        and frozen_params is _NO_PARAMS
    )
    return rule, mapped, frozen_params, shared


def _check_options(
    task_id: str,
    *,
    retry: object,
    timeout: object,
    critical: object,
    pool: object,
    priority: object,
    estimate: object,
    executor: object = None,
) -> None:
    def bad(option: str, value: object, expected: str) -> InvalidOptionError:
        return InvalidOptionError(f"task {task_id!r}: {option} must be {expected}, not {value!r}")

    if retry is not None and not isinstance(retry, RetryPolicy):
        raise bad("retry", retry, "a plait.RetryPolicy")
    if timeout is not None and not (_is_number(timeout) and timeout > 0 and math.isfinite(timeout)):
        raise bad("timeout", timeout, "a number of seconds > 0")
    if not isinstance(critical, bool):
        raise bad("critical", critical, "True or False")
    if pool is not None and not (isinstance(pool, str) and pool):
        raise bad("pool", pool, "a non-empty pool name")
    if executor is not None and not (isinstance(executor, str) and executor):
        raise bad("executor", executor, "a non-empty executor name")
    if isinstance(priority, bool) or not isinstance(priority, int):
        raise bad("priority", priority, "an int")
    if estimate is not None and not (
        _is_number(estimate) and estimate >= 0 and math.isfinite(estimate)
    ):
        raise bad("estimate", estimate, "a number of seconds >= 0")


def _check_map_over(
    task_id: str,
    map_over: str,
    dependencies: tuple[str, ...],
    rule: TriggerRule,
    *,
    pause: Pause | None,
    default_rule: bool = False,
) -> str:
    """``map_over`` (an id) if task ``task_id`` can be mapped over it.

    Raises:
        InvalidOptionError: it is not one of the task's dependencies, or the task's rule or
            pause does not go with mapping.
    """
    if map_over not in dependencies:
        raise InvalidOptionError(
            f"task {task_id!r}: map_over={map_over!r} is not one of its dependencies "
            f"{list(dependencies)!r}; add {map_over!r} to depends_on (the task maps over its "
            "output)"
        )
    if not rule.needs_every_success and default_rule:  # a cleanup task's: all_done
        raise InvalidOptionError(
            f"task {task_id!r}: a mapped task runs under trigger='all_success' only (it needs "
            f"the items of {map_over!r}), and a cleanup task's rule defaults to "
            f"{rule.value!r}; give it trigger='all_success'"
        )
    if not rule.needs_every_success:
        raise InvalidOptionError(
            f"task {task_id!r}: a mapped task runs under trigger='all_success' only (it needs "
            f"the items of {map_over!r}), not trigger={rule.value!r}; put the rule on a task "
            "that depends on it"
        )
    if pause is not None:
        raise InvalidOptionError(
            f"task {task_id!r}: a mapped task cannot pause; put the pause on a task before it "
            "(an approval gate it depends on)"
        )
    return map_over


def _is_number(value: object) -> TypeGuard[float]:
    return isinstance(value, int | float) and not isinstance(value, bool)


publish_exports(globals())  # plait.X, not plait._task_spec.X: see plait._public
