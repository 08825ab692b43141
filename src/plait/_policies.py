"""Retry policies: how often a failed task is tried again, and how long to wait in between."""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any

from ._exceptions import (
    BindingError,
    ConfigError,
    NotPicklableError,
    OutputNotStorableError,
    ShellCommandError,
)
from ._public import publish_exports

__all__ = ["RetryPolicy", "can_succeed_on_retry", "check_retry_settings"]

#: Exit statuses of ``/bin/sh`` that no retry changes: 126 the command is not executable, 127
#: it was not found.
_SHELL_NOT_RUNNABLE = (126, 127)


def can_succeed_on_retry(error: BaseException) -> bool:
    """Whether another attempt could end differently from the one that raised ``error``.

    Not when the failure is in the task's definition rather than in the world: a shell command
    that is not found or not executable (exit status 127 or 126), an output the run's
    serializer cannot store, parameters that do not fit the function (:class:`BindingError`),
    a function, argument or output that cannot be pickled for a worker process
    (:class:`NotPicklableError`).
    Retrying those only delays the failure by the backoff.
    """
    if isinstance(error, ShellCommandError):
        return error.returncode not in _SHELL_NOT_RUNNABLE
    return not isinstance(error, OutputNotStorableError | BindingError | NotPicklableError)


def _seconds(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and value >= 0


def check_retry_settings(
    *, max_retries: object, backoff: object, max_backoff: object, jitter: object, prefix: str = ""
) -> None:
    """Check retry settings; errors name them with ``prefix`` (EngineConfig's are ``retry_``).

    Raises:
        ConfigError: a value out of range (NaN included).
    """
    if isinstance(max_retries, bool) or not isinstance(max_retries, int) or max_retries < 0:
        raise ConfigError(f"max_retries must be an int >= 0, not {max_retries!r}")
    if not _seconds(backoff):
        raise ConfigError(f"{prefix}backoff must be >= 0 seconds, not {backoff!r}")
    if not (_seconds(max_backoff) and max_backoff >= backoff):  # type: ignore[operator]
        raise ConfigError(
            f"{prefix}max_backoff ({max_backoff!r}) must be >= {prefix}backoff ({backoff!r})"
        )
    if not (isinstance(jitter, int | float) and 0 <= jitter <= 1):
        raise ConfigError(f"{prefix}jitter must be between 0 and 1, not {jitter!r}")


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Retry a failed attempt up to ``max_retries`` times, with exponential backoff and jitter.

    The n-th retry waits ``backoff * 2 ** (n - 1)`` seconds, capped at ``max_backoff``; ``jitter``
    is the fraction of that delay that is drawn at random (0 waits exactly, 0.5 waits between
    half and all of it), so that many tasks failing together do not retry in lock-step. Only
    exceptions that are instances of ``retry_on`` are retried; any other fails the task at once,
    as do errors that no retry can change (see :func:`can_succeed_on_retry`).

    A task that passes on its third attempt ends ``succeeded`` with ``attempts == 3``; a retry that
    waits out its backoff holds no concurrency slot.

    Raises:
        ConfigError: a negative count or delay, a jitter outside [0, 1], or a ``retry_on`` that is
            not an exception type.
    """

    max_retries: int = 3
    backoff: float = 0.1
    max_backoff: float = 30.0
    jitter: float = 0.5
    retry_on: tuple[type[BaseException], ...] = (Exception,)

    def __post_init__(self) -> None:
        retry_on: Any = self.retry_on
        if isinstance(retry_on, type):
            retry_on = (retry_on,)
        elif isinstance(retry_on, list | tuple | set | frozenset):
            retry_on = tuple(retry_on)
        else:
            raise ConfigError(
                f"retry_on must be an exception type or a tuple of them, not {retry_on!r}"
            )
        object.__setattr__(self, "retry_on", retry_on)
        check_retry_settings(
            max_retries=self.max_retries,
            backoff=self.backoff,
            max_backoff=self.max_backoff,
            jitter=self.jitter,
        )
        for kind in self.retry_on:
            if not (isinstance(kind, type) and issubclass(kind, BaseException)):
                raise ConfigError(f"retry_on must hold exception types, not {kind!r}")

    def should_retry(self, attempt: int, error: BaseException) -> bool:
        """Whether attempt ``attempt`` (1-based), which raised ``error``, gets another try."""
        return (
            attempt <= self.max_retries
            and isinstance(error, self.retry_on)
            and can_succeed_on_retry(error)
        )

    def delay(self, attempt: int) -> float:
        """Seconds to wait after failed attempt number ``attempt`` (1-based) before the next."""
        base = min(self.max_backoff, self.backoff * 2.0 ** min(attempt - 1, 1000))
        return base * (1 - self.jitter * random.random())


publish_exports(globals())  # plait.X, not plait._policies.X: see plait._public
