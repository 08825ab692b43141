"""The context a task function can ask for: who it is, whether to stop, and people's answers."""

from __future__ import annotations

import logging
from collections.abc import Mapping, MutableMapping
from typing import TYPE_CHECKING, Any, Protocol

from ._exceptions import TaskCancelledError
from ._pause import NO_DEFAULT, InputRequired, as_schema_value
from ._public import publish_exports
from ._text import check_name

if TYPE_CHECKING:
    from ._results import TaskResult

__all__ = ["Context"]

_task_logger = logging.getLogger("plait.task")


class AttemptState(Protocol):
    """What the engine's record of one attempt tells the context."""

    @property
    def cancelled(self) -> bool: ...

    def answer(self, key: str) -> Any:
        """The answer given to the task's question ``key``, or NO_DEFAULT."""
        ...

    def upstream(self) -> Mapping[str, TaskResult]:
        """Each direct dependency's result as it stands, by task id."""
        ...


class _TaskLogAdapter(logging.LoggerAdapter[logging.Logger]):
    def process(self, msg: Any, kwargs: MutableMapping[str, Any]) -> tuple[Any, Any]:
        extra = self.extra or {}
        kwargs.setdefault("extra", {}).update(extra)
        return f"[{extra['task_id']}#{extra['attempt']}] {msg}", kwargs


class Context:
    """What a running task knows about itself; ask for it with a parameter named ``ctx``.

    Sync functions run in worker threads and cannot be interrupted from outside: a long one should
    look at :attr:`cancelled` (or call :meth:`raise_if_cancelled`) now and then, so that a
    timeout, a critical failure elsewhere or Ctrl-C stops it promptly. Async functions are
    cancelled at their next ``await``.
    """

    __slots__ = ("_asked", "_logger", "_state", "attempt", "map_over", "run_id", "task_id")

    def __init__(
        self,
        run_id: str,
        task_id: str,
        attempt: int,
        state: AttemptState,
        map_over: str | None = None,
    ) -> None:
        self.run_id = run_id
        self.task_id = task_id
        self.attempt = attempt
        #: For an instance of a mapped task (``task_id`` is ``convert[3]``), the dependency it
        #: maps over: the parameter of that name holds its item. None for any other task.
        self.map_over = map_over
        self._state = state
        self._asked = 0
        self._logger: logging.LoggerAdapter[logging.Logger] | None = None

    @property
    def cancelled(self) -> bool:
        """Whether this attempt has been asked to stop (timeout, run stopped, or interrupt)."""
        return self._state.cancelled

    def raise_if_cancelled(self) -> None:
        """Raise :class:`TaskCancelledError` if this attempt has been asked to stop.

        Does nothing otherwise, so it is cheap to call in a loop.
        """
        if self._state.cancelled:
            raise TaskCancelledError(
                f"task {self.task_id!r} (attempt {self.attempt}) was cancelled"
            )

    @property
    def upstream(self) -> Mapping[str, TaskResult]:
        """Each direct dependency's :class:`TaskResult` as it stands when the task starts, by
        task id: its status, output, error and ``skip_cause``. Under a trigger rule other than
        ``all_success`` this says which dependencies succeeded (a parameter named after one that
        did not gets its default); under ``one_success`` or ``always`` a dependency may still be
        ``pending`` or ``running``. A mapped dependency's result has ``instances``, each
        instance's result. In an instance of a mapped task, these are its mapped task's
        dependencies, without their ``instances`` (each instance reading them all would cost
        the square of their number)."""
        return self._state.upstream()

    @property
    def input(self) -> Any:
        """The answer to this task's ``pause`` question (None for a task without one)."""
        value = self._state.answer("")
        return None if value is NO_DEFAULT else value

    def request_input(
        self,
        prompt: str,
        *,
        schema: Any = None,
        key: str | None = None,
        timeout: float | None = None,
        default: Any = NO_DEFAULT,
    ) -> Any:
        """Ask a person for a value, mid-task; return the answer.

        The first time, the answer is not there: the task stops here (its slot is freed, the
        rest of the run goes on) and waits. When the answer arrives, **the task runs again from
        the top** and this same call returns it -- so code before the call runs twice: keep side
        effects after it, or make them idempotent (see :attr:`idempotency_key`). Like
        LangGraph's ``interrupt``. A task that asks after the run has stopped (a critical
        failure, ``fail_fast``, Ctrl-C) ends ``cancelled``: nobody will answer it in this run.

        Args:
            prompt: the question.
            schema: a JSON Schema (dict) or pydantic model class the answer must fit; with a
                model, the answer is returned as an instance of it.
            key: tells several questions of one task apart; by default their order in the task.
            timeout: seconds to wait; then the task fails with ``InputTimeoutError`` (or gets
                ``default``).
            default: the answer to use when the timeout passes.

        Raises:
            InvalidOptionError: ``key`` holds text no store can keep (NUL, a lone surrogate).
        """
        if key is None:
            key = str(self._asked)
            self._asked += 1
        else:
            check_name("question key", key)
        value = self._state.answer(key)
        if value is NO_DEFAULT:
            raise InputRequired(key, prompt, schema, timeout, default)
        return as_schema_value(schema, value)

    async def arequest_input(
        self,
        prompt: str,
        *,
        schema: Any = None,
        key: str | None = None,
        timeout: float | None = None,
        default: Any = NO_DEFAULT,
    ) -> Any:
        """:meth:`request_input` for async tasks (``await ctx.arequest_input(...)``)."""
        return self.request_input(prompt, schema=schema, key=key, timeout=timeout, default=default)

    @property
    def idempotency_key(self) -> str:
        """``run_id/task_id``: the same for every attempt and every resume of the run, so side
        effects can be deduplicated by whoever receives them."""
        return f"{self.run_id}/{self.task_id}"

    @property
    def logger(self) -> logging.LoggerAdapter[logging.Logger]:
        """A logger (``plait.task``) whose records carry run_id, task_id and attempt."""
        if self._logger is None:
            self._logger = _TaskLogAdapter(
                _task_logger,
                {"run_id": self.run_id, "task_id": self.task_id, "attempt": self.attempt},
            )
        return self._logger

    def __repr__(self) -> str:
        return (
            f"<Context run={self.run_id!r} task={self.task_id!r} attempt={self.attempt}"
            f"{' cancelled' if self.cancelled else ''}>"
        )


publish_exports(globals())  # plait.X, not plait._context.X: see plait._public
