"""Choosing executors: names, the built-in ones, checking a workflow's names, one run's set.

A task names its executor (``executor="process"``) or takes the default: the event loop for an
async function, ``EngineConfig.default_executor`` (``"thread"`` unless set) for a sync one. A
name is one of the built-ins -- ``"thread"`` (:class:`ThreadExecutor`, ``max_concurrency``
threads), ``"inline"`` (:class:`InlineExecutor`) and ``"process"`` (``ProcessExecutor``, sized to
``max_concurrency``) -- or one of the executors given at run time (``plait.run(...,
executors={"cluster": DaskExecutor(...)})``), which also override a built-in of the same name.
Objects come in at run time, so the frozen ``EngineConfig`` holds only names.

Names are checked before anything runs (:func:`check_executors`). A run then makes the built-ins
it uses, and only those (:class:`RunExecutors`), and shuts them down when it ends; the executors
it was given stay their owner's.
"""

from __future__ import annotations

import difflib
import importlib
from collections.abc import Iterable, Mapping
from typing import Any

from .._exceptions import ConfigError, InvalidOptionError
from ._base import Executor
from ._inline import InlineExecutor
from ._thread import ThreadExecutor

__all__ = ["BUILT_IN_EXECUTORS", "RunExecutors", "check_executors", "executor_of_kind"]

#: The executors plait makes by name.
BUILT_IN_EXECUTORS = ("thread", "inline", "process")


def _known(given: Mapping[str, Executor]) -> list[str]:
    return [*BUILT_IN_EXECUTORS, *(name for name in given if name not in BUILT_IN_EXECUTORS)]


def _hint(name: str, known: list[str]) -> str:
    close = difflib.get_close_matches(name, known, n=1)
    listed = ", ".join(map(repr, known))
    if close:
        return f"did you mean {close[0]!r}? The executors are {listed}"
    return f"the executors are {listed}; give others with plait.run(executors={{{name!r}: ...}})"


def check_executors(
    tasks: Iterable[tuple[str, str | None]],
    default_executor: str,
    given: Mapping[str, Executor],
) -> None:
    """Refuse executor names that name no executor, and executors that are not executors.

    Args:
        tasks: (task id, the executor it names or None) of every task.
        default_executor: ``EngineConfig.default_executor``.
        given: the run's own executors, by name.

    Raises:
        ConfigError: ``default_executor`` names no executor, or a value of ``given`` is not an
            :class:`Executor` (or its name not a non-empty string).
        InvalidOptionError: a task names no executor; the message names the task, the name and
            the known names.
    """
    for name, executor in given.items():
        if not (isinstance(name, str) and name):
            raise ConfigError(f"executors are named by non-empty strings, not {name!r}")
        if not isinstance(executor, Executor):
            raise ConfigError(
                f"executors[{name!r}] must be a plait.executors.Executor (such as "
                f"ThreadExecutor(4) or DaskExecutor(client)), not {executor!r}"
            )
    known = _known(given)
    if default_executor not in known:
        raise ConfigError(
            f"default_executor {default_executor!r} is not an executor: "
            f"{_hint(default_executor, known)}"
        )
    for task_id, named in tasks:
        if named is not None and named not in known:
            raise InvalidOptionError(
                f"task {task_id!r} names executor {named!r}, which is not an executor: "
                f"{_hint(named, known)}"
            )


def _make(name: str, max_concurrency: int, cancel_grace: float) -> Executor:
    """The built-in executor ``name``, sized to ``max_concurrency`` (the process executor also
    takes the run's ``cancel_grace``: how long a cancelled task may run on before it is
    killed)."""
    if name == "thread":
        return ThreadExecutor(max_concurrency)
    if name == "inline":
        return InlineExecutor()
    if name == "process":
        # Imported by name when a run first uses it: the process executor's module (and
        # multiprocessing) costs nothing to runs that do not.
        process = importlib.import_module("plait.executors._process")
        executor: Executor = process.ProcessExecutor(
            max_workers=max_concurrency, cancel_grace=cancel_grace
        )
        return executor
    raise ConfigError(
        f"{name!r} is not a built-in executor; the built-ins are {BUILT_IN_EXECUTORS}"
    )


def executor_of_kind(kind: str, options: Any) -> Executor:
    """An executor as a workflow file's ``executors`` section describes it: ``dask`` with a
    scheduler's address, ``process`` / ``thread`` with their settings, ``inline``.

    Raises:
        ConfigError: ``kind`` is none of those.
        ImportError: ``dask`` without ``plait[dask]`` installed.
    """
    if kind == "dask":
        dask = importlib.import_module("plait.executors._dask")
        executor: Executor = dask.DaskExecutor(options)
        return executor
    if kind == "process":
        process = importlib.import_module("plait.executors._process")
        executor = process.ProcessExecutor(**options)
        return executor
    if kind == "thread":
        return ThreadExecutor(**options)
    if kind == "inline":
        return InlineExecutor()
    raise ConfigError(
        f"{kind!r} is not a kind of executor; give one of 'dask', 'process', 'thread', 'inline'"
    )


class RunExecutors:
    """The executors of one run, by name: those it was given, and the built-ins it made."""

    __slots__ = ("_cancel_grace", "_given", "_made", "_max_concurrency", "_used")

    def __init__(
        self, max_concurrency: int, given: Mapping[str, Executor], *, cancel_grace: float = 5.0
    ) -> None:
        self._max_concurrency = max_concurrency
        self._cancel_grace = cancel_grace
        self._given = dict(given)
        self._made: dict[str, Executor] = {}
        self._used: dict[str, Executor] = {}

    def get(self, name: str) -> Executor:
        """The executor named ``name``, made now if it is a built-in not made yet."""
        executor = self._used.get(name)
        if executor is None:
            executor = self._given.get(name)
            if executor is None:
                made = _make(name, self._max_concurrency, self._cancel_grace)
                executor = self._made[name] = made
            self._used[name] = executor
        return executor

    def in_use(self) -> list[Executor]:
        """Every executor this run has asked for, each once."""
        return list({id(e): e for e in self._used.values()}.values())

    def shutdown(self) -> None:
        """Shut down the executors this run made (not the ones it was given), waiting for them."""
        for executor in self._made.values():
            executor.shutdown(wait=True)

    def __repr__(self) -> str:
        return f"<RunExecutors made={sorted(self._made)} given={sorted(self._given)}>"
