"""Workflows: tasks, their options, and how a task's parameters are filled.

A :class:`Workflow` is a named, ordered collection of :class:`TaskSpec`. Tasks are added with the
``@wf.task`` decorator or with ``wf.add_task``; both check the options and work out, once, how each
parameter of the function will be filled when it runs (its *binding*):

- a parameter named like one of the task's dependencies receives that dependency's output, and
  a ``**kwargs`` parameter receives the outputs of the dependencies not named (keyed by id, so
  ids that are not Python names work too) -- of those that succeeded: under a trigger rule other
  than ``all_success`` a dependency may not have, and the parameter keeps its default (which it
  must then have);
- a parameter named ``ctx`` or annotated :class:`plait.Context` receives the task's context;
- any other parameter comes from ``params``, or keeps its default value.

A parameter that none of these can fill is a :class:`BindingError` at once, before anything runs.
"""

from __future__ import annotations

import functools
import inspect
import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, NamedTuple, TypeGuard, TypeVar, overload

from ._context import Context
from ._exceptions import BindingError, DuplicateTaskError, InvalidOptionError
from ._graph import Graph
from ._pause import Pause
from ._policies import RetryPolicy
from ._public import publish_exports
from ._rules import TriggerRule, coerce_rule
from ._text import check_name

__all__ = ["TaskSpec", "Workflow"]

F = TypeVar("F", bound=Callable[..., Any])
Dependency = str | Callable[..., Any]


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


# The default rules as constants: reading a member off the enum class costs more than all of
# add_task's other option handling (make bench Part 5 times add_task).
_ALL_SUCCESS = TriggerRule.ALL_SUCCESS
_ALL_DONE = TriggerRule.ALL_DONE

#: ``tuple.__new__(TaskSpec, fields)`` makes a TaskSpec from a full tuple of fields: one call
#: less than the named tuple's own ``__new__``.
_tuple_new = tuple.__new__


class Workflow:
    """A named graph of tasks; run it with :func:`plait.run` or :func:`plait.arun`.

    Tasks keep the order in which they were added; that order breaks ties between ready tasks of
    equal priority and equal critical path, so runs with ``max_concurrency=1`` are deterministic.
    """

    def __init__(self, name: str) -> None:
        if not isinstance(name, str) or not name:
            raise InvalidOptionError(f"a workflow needs a non-empty name, not {name!r}")
        check_name("workflow name", name)
        self.name = name
        self._tasks: dict[str, TaskSpec] = {}
        # Each function's analysis, and the ids of the first two tasks that run it (a function
        # named in depends_on resolves to the one task that runs it): one lookup per add_task.
        # Two are enough to tell that a function runs as several tasks; the error that says so
        # finds them all (a list of every id would grow with the workflow, for the collector
        # to walk).
        self._functions: dict[Callable[..., Any], tuple[_FunctionInfo, list[str]]] = {}
        self._graph: Graph | None = None

    @property
    def tasks(self) -> Mapping[str, TaskSpec]:
        """The tasks by id, in the order they were added (read-only)."""
        return MappingProxyType(self._tasks)

    def __len__(self) -> int:
        return len(self._tasks)

    def __contains__(self, task_id: object) -> bool:
        return task_id in self._tasks

    def __repr__(self) -> str:
        return f"<Workflow {self.name!r} with {len(self._tasks)} tasks>"

    @overload
    def task(self, fn: F, /) -> F: ...

    @overload
    def task(
        self,
        fn: None = None,
        /,
        *,
        id: str | None = None,
        depends_on: Iterable[Dependency] = (),
        params: Mapping[str, Any] | None = None,
        retry: RetryPolicy | None = None,
        timeout: float | None = None,
        critical: bool = False,
        pool: str | None = None,
        priority: int = 0,
        estimate: float | None = None,
        pause: Pause | None = None,
        executor: str | None = None,
        trigger: TriggerRule | str | None = None,
        cleanup: bool = False,
        map_over: Dependency | None = None,
    ) -> Callable[[F], F]: ...

    def task(
        self,
        fn: Callable[..., Any] | None = None,
        /,
        *,
        id: str | None = None,
        depends_on: Iterable[Dependency] = (),
        params: Mapping[str, Any] | None = None,
        retry: RetryPolicy | None = None,
        timeout: float | None = None,
        critical: bool = False,
        pool: str | None = None,
        priority: int = 0,
        estimate: float | None = None,
        pause: Pause | None = None,
        executor: str | None = None,
        trigger: TriggerRule | str | None = None,
        cleanup: bool = False,
        map_over: Dependency | None = None,
    ) -> Any:
        """Add the decorated function as a task; its id defaults to the function's name.

        Use it bare (``@wf.task``) or with options (``@wf.task(depends_on=[fetch], retry=...)``);
        the options are those of :meth:`add_task`. The function itself is returned unchanged, so
        it can still be called directly and named in other tasks' ``depends_on``.
        """

        def decorate(function: Callable[..., Any]) -> Callable[..., Any]:
            task_id = id if id is not None else getattr(function, "__name__", None)
            if task_id is None:
                raise InvalidOptionError(f"give {function!r} an id: it has no __name__")
            self.add_task(
                task_id,
                function,
                depends_on=depends_on,
                params=params,
                retry=retry,
                timeout=timeout,
                critical=critical,
                pool=pool,
                priority=priority,
                estimate=estimate,
                pause=pause,
                executor=executor,
                trigger=trigger,
                cleanup=cleanup,
                map_over=map_over,
            )
            return function

        return decorate if fn is None else decorate(fn)

    def add_task(
        self,
        id: str,
        fn: Callable[..., Any] | None,
        *,
        depends_on: Iterable[Dependency] = (),
        params: Mapping[str, Any] | None = None,
        retry: RetryPolicy | None = None,
        timeout: float | None = None,
        critical: bool = False,
        pool: str | None = None,
        priority: int = 0,
        estimate: float | None = None,
        pause: Pause | None = None,
        executor: str | None = None,
        trigger: TriggerRule | str | None = None,
        cleanup: bool = False,
        map_over: Dependency | None = None,
    ) -> TaskSpec:
        """Add a task that runs ``fn`` once every task in ``depends_on`` has succeeded.

        Args:
            id: the task's unique id.
            fn: a sync or async function. Its parameters are filled as the module docstring says.
            depends_on: ids, or functions added as tasks of this workflow, each once (the
                graph checks the ids when it is compiled, before anything runs).
            params: values for parameters that are not dependencies or the context.
            retry: this task's retry policy, instead of the engine's default.
            timeout: seconds an attempt may run, instead of the engine's ``task_timeout``.
            critical: if this task fails, stop the whole run (cancel what is running).
            pool: the name of a concurrency pool that limits this task further.
            priority: ready tasks with a higher priority start first.
            estimate: expected seconds; weights the critical path that orders ready tasks
                (a task without one counts as the median of the workflow's known estimates).
            pause: wait for a person's answer (a :class:`Pause`) once the dependencies have
                succeeded; the task then runs with it in ``ctx.input``. With ``fn=None`` the
                task is only that question (an approval gate): its output is the answer.
            executor: the name of the executor that runs it (``"thread"``, ``"inline"``,
                ``"process"``, or one given to ``plait.run(executors=...)``); by default a sync
                task runs on ``EngineConfig.default_executor`` and an async one on the event
                loop. An unknown name is refused when the run starts, before anything runs.
            trigger: when the task runs, judged on how its dependencies ended: a
                :class:`TriggerRule` or its name (Airflow's rules: ``"all_done"``,
                ``"one_failed"``...). The default is ``"all_success"`` (``"all_done"`` for a
                cleanup task). A parameter named after a dependency that did not succeed gets
                its default, so under any other rule such parameters need one.
            cleanup: run even after the run halts (a critical failure, ``fail_fast``, cancel,
                Ctrl-C), once the dependencies are done, as Airflow's teardown tasks do; a second
                Ctrl-C skips it.
            map_over: one of ``depends_on`` (its id, or the function added as it) whose output
                is a list: the task is *mapped* -- it runs once per item, as instances
                ``id[0]``, ``id[1]``... made when that dependency succeeds, each getting ONE
                item in the parameter named after the dependency (see the README's "Mapped
                tasks"). Its result's output is the list of the instances' outputs, in item
                order. A mapped task runs under ``trigger="all_success"`` only, and cannot
                ``pause``.

        Returns:
            The task's :class:`TaskSpec`.

        Raises:
            DuplicateTaskError: the id is taken.
            InvalidOptionError: an option has a value plait cannot use.
            BindingError: a parameter of ``fn`` that nothing can fill.
        """
        # The common case -- a known function, ids as dependencies, default options -- makes
        # no call it can skip: make bench Part 5 times add_task.
        tasks = self._tasks
        if not isinstance(id, str) or not id:
            raise InvalidOptionError(f"task ids must be non-empty strings, not {id!r}")
        if not id.isascii() or "\x00" in id:  # check_name's question, asked of ASCII at once
            check_name("task id", id)
        if "[" in id or "]" in id:
            raise InvalidOptionError(
                f"task id {id!r} contains a bracket; '[' and ']' are reserved for the instances "
                "of mapped tasks ('convert[3]'): use other characters, such as '-' or '.'"
            )
        if id in tasks:
            raise DuplicateTaskError(
                f"task {id!r} is already defined in workflow {self.name!r}; give each task a "
                "unique id (for a decorated function: @wf.task(id=...))"
            )
        entry: tuple[_FunctionInfo, list[str]] | None = None
        if fn is not None:
            try:
                entry = self._functions.get(fn)
            except TypeError:  # unhashable: analysed every time, and named only by id
                entry = (_analyse(id, fn), [])
            else:
                if entry is None:
                    entry = self._functions[fn] = (_analyse(id, fn), [])
        elif pause is None:
            raise InvalidOptionError(
                f"task {id!r} has nothing to do: give it a function, or a pause (an approval gate)"
            )
        if pause is not None and not isinstance(pause, Pause):
            raise InvalidOptionError(f"task {id!r}: pause must be a plait.Pause, not {pause!r}")
        if isinstance(depends_on, str):
            raise InvalidOptionError(
                f"task {id!r}: depends_on must be a list of task ids or tasks, not the string "
                f"{depends_on!r}; write depends_on=[{depends_on!r}]"
            )
        given = tuple(depends_on)
        dependencies: tuple[str, ...] = given  # type: ignore[assignment]  # checked next
        for dependency in given:  # a plain loop: cheaper than all(map(...)) for a few
            if type(dependency) is not str:
                dependencies = tuple(self._dependency_id(id, dep) for dep in given)
                break
        # A dependency listed twice is refused by the graph's one pass (Graph.__init__).
        if trigger is None:
            rule = _ALL_DONE if cleanup is True else _ALL_SUCCESS
        elif type(trigger) is TriggerRule:
            rule = trigger
        else:
            rule = coerce_rule(trigger, id)
        if cleanup is not False and cleanup is not True:
            raise InvalidOptionError(f"task {id!r}: cleanup must be True or False, not {cleanup!r}")
        mapped: str | None = None
        if map_over is not None:
            mapped = _check_map_over(
                id,
                self._dependency_id(id, map_over),
                dependencies,
                rule,
                pause=pause,
                default_rule=trigger is None,
            )
        if (
            retry is not None
            or timeout is not None
            or critical is not False
            or pool is not None
            or type(priority) is not int
            or priority != 0
            or estimate is not None
            or executor is not None
        ):
            _check_options(
                id,
                retry=retry,
                timeout=timeout,
                critical=critical,
                pool=pool,
                priority=priority,
                estimate=estimate,
                executor=executor,
            )
        frozen_params = MappingProxyType(dict(params)) if params else _NO_PARAMS
        if fn is None or entry is None:
            is_async, binding = False, _NO_BINDING
        else:
            info = entry[0]
            is_async = info.is_async
            if info.takes_only_any_keyword and not frozen_params:  # the common case, at once
                binding = _EVERY_DEPENDENCY if dependencies else _NO_BINDING
            else:
                binding = _bind(id, fn, info, dependencies, frozen_params, rule=rule)
            if mapped is not None:
                _check_item_parameter(id, fn, info, mapped, frozen_params)
            if len(entry[1]) < 2:
                entry[1].append(id)
        spec = tasks[id] = _tuple_new(
            TaskSpec,
            (
                id,
                fn,
                dependencies,
                frozen_params,
                retry,
                timeout,
                critical,
                pool,
                priority,
                estimate,
                pause,
                executor,
                is_async,
                rule,
                cleanup,
                mapped,
                binding,
            ),
        )
        self._graph = None
        return spec

    def validate(self) -> None:
        """Check the whole graph: unknown dependencies, dependencies listed twice, and cycles.

        Raises:
            UnknownDependencyError: a dependency names no task of this workflow.
            InvalidOptionError: a task lists a dependency twice.
            CycleError: the dependencies form a cycle.
        """
        self.graph()

    def graph(self) -> Graph:
        """The validated, compiled graph (computed once, until a task is added)."""
        if self._graph is None:
            self._graph = Graph(self)
        return self._graph

    def _dependency_id(self, task_id: str, dependency: Dependency) -> str:
        if isinstance(dependency, str):
            return dependency
        name = getattr(dependency, "__qualname__", repr(dependency))
        try:
            ids = self._functions[dependency][1]
        except (KeyError, TypeError):
            ids = []
        if not ids:
            raise InvalidOptionError(
                f"task {task_id!r} depends on {name}, which is not a task of workflow "
                f"{self.name!r}; add it first, or name the dependency by its id"
            ) from None
        if len(ids) > 1:
            every = [spec.id for spec in self._tasks.values() if spec.fn == dependency]
            raise InvalidOptionError(
                f"task {task_id!r} depends on {name}, which was added as several tasks "
                f"({', '.join(map(repr, every))}); name the dependency by its id"
            )
        return ids[0]


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


def _is_number(value: object) -> TypeGuard[float]:
    return isinstance(value, int | float) and not isinstance(value, bool)


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


publish_exports(globals())  # plait.X, not plait._workflow.X: see plait._public
