"""Engine settings for one run: :class:`EngineConfig`, keyword settings applied over it, and the
config as a run's record keeps it (read back when the run is resumed)."""

from __future__ import annotations

import difflib
import math
import os
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from ._exceptions import ConfigError, InvalidOptionError
from ._logs import MAX_LOG_BYTES, MIN_LOG_BYTES
from ._policies import RetryPolicy, check_retry_settings
from ._public import publish_exports

if TYPE_CHECKING:
    from ._serialization import Serializer

__all__ = ["MIN_LEASE_SECONDS", "EngineConfig", "check_pools", "pool_problem"]

#: The shortest lease a run may have: renewing it (every third of its length) must stay cheap
#: beside a store write, and a store's answer must fit in it many times over.
MIN_LEASE_SECONDS = 0.5


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _default_concurrency() -> int:
    return os.cpu_count() or 1


@dataclass(frozen=True, slots=True, kw_only=True)
class EngineConfig:
    """How a run executes; per-task options (``retry``, ``timeout``) override these defaults.

    Attributes:
        max_concurrency: the most tasks running at once (default: the number of CPUs).
        task_timeout: seconds an attempt may run before it fails with ``TaskTimeoutError``;
            ``None`` for no limit.
        retry_failed_tasks: whether tasks without their own ``retry`` policy are retried.
        max_retries, retry_backoff, retry_max_backoff, retry_jitter: the default
            :class:`RetryPolicy` (exponential backoff with jitter, first delay 0.1 s).
        fail_fast: stop the whole run at the first failure, as if every task were critical.
        pools: named concurrency limits (pool name -> slots) for tasks that name a ``pool``; a
            task whose pool has no limit here is refused before the run starts.
        cancel_grace: seconds to wait for running sync tasks to notice a cancellation before the
            run ends without them.
        max_log_bytes: the most bytes of text kept of one attempt's log (what it logged,
            printed, or its command wrote): the first and last halves, with a note of what was
            cut between them; 0 keeps no logs.
        lease_seconds: how long a durable run's lease lasts. The owner renews it every third of
            that; another process may resume the run once it has expired. An owner that could not
            renew it in time stops (see ``plait.LeaseLostError``), and one whose store stays
            unavailable that long stops too (``plait.StoreUnavailableError``).
        default_executor: the name of the executor that runs sync tasks which name none
            (``"thread"``, ``"inline"``, ``"process"``, or one given to
            ``plait.run(executors=...)``); async tasks that name none run on the event loop.
        learn_estimates: give each task without an ``estimate`` one learned from the store's
            history of the workflow (see ``plait._estimates``), read once at the run's start;
            it changes only the order of ready tasks. False orders by given estimates alone.
        tracing: emit OpenTelemetry spans of the run -- one per run, one per attempt, one per
            question's wait -- through the globally configured tracer provider (needs
            ``plait[otel]``; see ``plait._tracing``). Off, no tracing work is done at all.
        max_map: the most instances one mapped task may expand into (default 100,000); a
            longer list fails the mapped task, naming its length. A guard against mapping over
            the wrong output by mistake.
    """

    max_concurrency: int = field(default_factory=_default_concurrency)
    task_timeout: float | None = 300.0
    retry_failed_tasks: bool = True
    max_retries: int = 3
    retry_backoff: float = 0.1
    retry_max_backoff: float = 30.0
    retry_jitter: float = 0.5
    fail_fast: bool = False
    pools: Mapping[str, int] = field(default_factory=dict)
    cancel_grace: float = 5.0
    max_log_bytes: int = MAX_LOG_BYTES
    lease_seconds: float = 30.0
    default_executor: str = "thread"
    learn_estimates: bool = True
    tracing: bool = False
    max_map: int = 100_000

    def __post_init__(self) -> None:
        for name in ("learn_estimates", "tracing"):
            if not isinstance(getattr(self, name), bool):
                raise ConfigError(f"{name} must be True or False, not {getattr(self, name)!r}")
        if not _is_int(self.max_concurrency) or self.max_concurrency < 1:
            raise ConfigError(f"max_concurrency must be an int >= 1, not {self.max_concurrency!r}")
        if self.task_timeout is not None and not (
            _is_number(self.task_timeout) and self.task_timeout > 0
        ):
            raise ConfigError(
                f"task_timeout must be > 0 seconds or None, not {self.task_timeout!r}"
            )
        if not _is_int(self.max_map) or self.max_map < 0:
            raise ConfigError(f"max_map must be an int >= 0, not {self.max_map!r}")
        if not (_is_number(self.cancel_grace) and self.cancel_grace >= 0):
            raise ConfigError(f"cancel_grace must be >= 0 seconds, not {self.cancel_grace!r}")
        if not _is_int(self.max_log_bytes) or not (
            self.max_log_bytes == 0 or self.max_log_bytes >= MIN_LOG_BYTES
        ):
            raise ConfigError(
                f"max_log_bytes must be 0 (keep no logs) or an int >= {MIN_LOG_BYTES}, "
                f"not {self.max_log_bytes!r}"
            )
        if not (
            _is_number(self.lease_seconds) and MIN_LEASE_SECONDS <= self.lease_seconds < math.inf
        ):
            raise ConfigError(
                f"lease_seconds must be a number of seconds >= {MIN_LEASE_SECONDS}, not "
                f"{self.lease_seconds!r}"
            )
        if not isinstance(self.retry_failed_tasks, bool) or not isinstance(self.fail_fast, bool):
            raise ConfigError("retry_failed_tasks and fail_fast must be True or False")
        if not (isinstance(self.default_executor, str) and self.default_executor):
            raise ConfigError(
                f"default_executor must be an executor's name such as 'thread', not "
                f"{self.default_executor!r}"
            )
        for name, limit in self.pools.items():
            if not _is_int(limit) or limit < 1:
                raise ConfigError(f"pool {name!r} needs an int limit >= 1, not {limit!r}")
        object.__setattr__(self, "pools", MappingProxyType(dict(self.pools)))
        check_retry_settings(
            max_retries=self.max_retries,
            backoff=self.retry_backoff,
            max_backoff=self.retry_max_backoff,
            jitter=self.retry_jitter,
            prefix="retry_",
        )

    @property
    def default_retry(self) -> RetryPolicy:
        """The retry policy of tasks that set none (no retries if ``retry_failed_tasks`` is off)."""
        return RetryPolicy(
            max_retries=self.max_retries if self.retry_failed_tasks else 0,
            backoff=self.retry_backoff,
            max_backoff=self.retry_max_backoff,
            jitter=self.retry_jitter,
        )


def pool_problem(task_id: str, pool: str, limited: Collection[str]) -> str | None:
    """What is wrong with task ``task_id`` naming ``pool`` when only the pools ``limited`` have
    a limit, in words (with a "did you mean"), or None when nothing is.

    A pool without a limit would be bounded by ``max_concurrency`` only: almost always a typo in
    the task or in the settings, so it is refused rather than run unlimited.
    """
    if pool in limited:
        return None
    close = difflib.get_close_matches(pool, list(limited), n=1)
    if close:
        hint = f"did you mean {close[0]!r}?"
    elif limited:
        hint = f"the pools with a limit are {', '.join(map(repr, sorted(limited)))}"
    else:
        hint = "no pool has one"
    return f"task {task_id!r} names pool {pool!r}, which has no limit; {hint}"


def check_pools(config: EngineConfig, task_pools: Iterable[tuple[str, str | None]]) -> None:
    """Refuse a task whose pool has no limit in ``config.pools``.

    Args:
        task_pools: (task id, pool or None) of every task.

    Raises:
        InvalidOptionError: a task names a pool that has no limit; the message names both.
    """
    for task_id, pool in task_pools:
        problem = None if pool is None else pool_problem(task_id, pool, config.pools)
        if problem is not None:
            raise InvalidOptionError(
                f"{problem} (give it one with pools={{{pool!r}: N}}, or fix the task's pool)"
            )


def _config(config: EngineConfig | None, settings: Mapping[str, Any]) -> EngineConfig:
    if config is None:
        config = EngineConfig()
    if not settings:
        return config
    fields = EngineConfig.__dataclass_fields__
    unknown = sorted(set(settings) - set(fields))
    if unknown:
        raise ConfigError(
            f"unknown engine setting(s) {unknown!r}; the settings are: {', '.join(fields)}"
        )
    values = {name: getattr(config, name) for name in fields}
    values.update(settings)
    return EngineConfig(**values)


def _config_document(config: EngineConfig, serializer: Serializer) -> dict[str, Any]:
    document = {name: getattr(config, name) for name in EngineConfig.__dataclass_fields__}
    document["pools"] = dict(config.pools)
    document["serializer"] = serializer.name
    return document


def _stored_config(document: Mapping[str, Any]) -> EngineConfig:
    fields = EngineConfig.__dataclass_fields__
    return EngineConfig(**{k: v for k, v in document.items() if k in fields})


publish_exports(globals())  # plait.X, not plait._config.X: see plait._public
