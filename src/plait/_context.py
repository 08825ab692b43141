"""The context a task function can ask for: who it is, and whether it should stop."""

from __future__ import annotations

import logging
from collections.abc import MutableMapping
from typing import Any, Protocol

from ._exceptions import TaskCancelledError

__all__ = ["Context"]

_task_logger = logging.getLogger("plait.task")


class CancelFlag(Protocol):
    """Anything with a ``cancelled`` attribute: the engine's record of one attempt."""

    @property
    def cancelled(self) -> bool: ...


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

    __slots__ = ("_flag", "_logger", "attempt", "run_id", "task_id")

    def __init__(self, run_id: str, task_id: str, attempt: int, flag: CancelFlag) -> None:
        self.run_id = run_id
        self.task_id = task_id
        self.attempt = attempt
        self._flag = flag
        self._logger: logging.LoggerAdapter[logging.Logger] | None = None

    @property
    def cancelled(self) -> bool:
        """Whether this attempt has been asked to stop (timeout, run stopped, or interrupt)."""
        return self._flag.cancelled

    def raise_if_cancelled(self) -> None:
        """Raise :class:`TaskCancelledError` if this attempt has been asked to stop.

        Does nothing otherwise, so it is cheap to call in a loop.
        """
        if self._flag.cancelled:
            raise TaskCancelledError(
                f"task {self.task_id!r} (attempt {self.attempt}) was cancelled"
            )

    @property
    def idempotency_key(self) -> str:
        """``run_id/task_id``: the same for every attempt, so side effects can be deduplicated."""
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
