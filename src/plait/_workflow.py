"""Workflows: a :class:`Workflow` is a named, ordered collection of :class:`TaskSpec`.

Tasks are added with the ``@wf.task`` decorator or with ``wf.add_task``; both check the options
(see ``plait._task_spec``) and work out, once, how each parameter of the function will be filled
when it runs: its *binding* (see ``plait._binding``). ``wf.graph()`` compiles the workflow into
the validated graph a run schedules (see ``plait._graph``).

A workflow keeps its tasks in columns, not one TaskSpec per task, so that a large build gives
the garbage collector nothing more to walk; :attr:`Workflow.tasks` makes the TaskSpecs when it
is first read (see ``plait._task_columns``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any, TypeVar, overload

from ._binding import (
    _EVERY_DEPENDENCY,
    _NO_BINDING,
    _NO_PARAMS,
    _analyse,
    _bind,
    _check_item_parameter,
    _FunctionInfo,
)
from ._exceptions import DuplicateTaskError, InvalidOptionError
from ._graph import Graph
from ._pause import Pause
from ._policies import RetryPolicy
from ._public import publish_exports
from ._rules import TriggerRule
from ._task_columns import DEFAULT_OPTIONS, TaskColumns, TaskView, options_of
from ._task_spec import _NO_PRIORITY, TaskSpec, _check_given_options
from ._text import check_name

__all__ = ["Workflow"]

F = TypeVar("F", bound=Callable[..., Any])
Dependency = str | Callable[..., Any]

# The default rules as constants: reading a member off the enum class costs more than all of
# add_task's other option handling (make bench Part 5 times add_task).
_ALL_SUCCESS = TriggerRule.ALL_SUCCESS

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
        self._tasks = TaskColumns()  # not a TaskSpec per task: see plait._task_columns
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
        return TaskView(self._tasks)

    def __len__(self) -> int:
        return len(self._tasks.dependencies)

    def __contains__(self, task_id: object) -> bool:
        return task_id in self._tasks.dependencies

    def __repr__(self) -> str:
        return f"<Workflow {self.name!r} with {len(self._tasks.dependencies)} tasks>"

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
            fn: a sync or async function. Its parameters are filled as ``plait._binding``
                says: dependencies' outputs by name, the context, ``params``.
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
        columns = self._tasks
        tasks = columns.dependencies
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
        try:  # every dependency an id (a str), checked in C: cheaper than a loop over them
            "".join(given)  # type: ignore[arg-type]  # what the try finds out
            dependencies: tuple[str, ...] = given  # type: ignore[assignment]  # ids, so
        except TypeError:  # functions among them (or values that are neither)
            dependencies = tuple(self._dependency_id(id, dep) for dep in given)
        # A dependency listed twice is refused by the graph's one pass (Graph.__init__).
        if (  # no option given: the common case, told by one chain of identity tests
            params is None
            and retry is None
            and timeout is None
            and critical is False
            and pool is None
            and priority is _NO_PRIORITY
            and estimate is None
            and pause is None
            and executor is None
            and trigger is None
            and cleanup is False
            and map_over is None
        ):
            rule = _ALL_SUCCESS  # separate stores: a 4-tuple unpacked would be built first
            mapped = None
            frozen_params = _NO_PARAMS
            shared = True
        else:
            rule, mapped, frozen_params, shared = _check_given_options(
                id,
                dependencies,
                self._dependency_id,
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
        if fn is None or entry is None:  # an approval gate: no function
            is_async, binding = False, _NO_BINDING
        else:
            info = entry[0]
            is_async = info.is_async
            if info.takes_only_any_keyword and frozen_params is _NO_PARAMS:  # at once
                binding = _EVERY_DEPENDENCY if dependencies else _NO_BINDING
            else:
                binding = _bind(id, fn, info, dependencies, frozen_params, rule=rule)
            if mapped is not None:
                _check_item_parameter(id, fn, info, mapped, frozen_params)
            if len(entry[1]) < 2:
                entry[1].append(id)
        spec = _tuple_new(
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
        if shared and (binding is _EVERY_DEPENDENCY or binding is _NO_BINDING):
            options = DEFAULT_OPTIONS[is_async][binding is _EVERY_DEPENDENCY]  # one per kind
        else:
            options = options_of(spec)
        tasks[id] = dependencies
        columns.functions.append(fn)
        columns.options.append(options)
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
            every = self._tasks.ids_running(dependency)
            raise InvalidOptionError(
                f"task {task_id!r} depends on {name}, which was added as several tasks "
                f"({', '.join(map(repr, every))}); name the dependency by its id"
            )
        return ids[0]


publish_exports(globals())  # plait.X, not plait._workflow.X: see plait._public
