"""What the Dask executor keeps of an attempt: the output it leaves on the cluster
(:class:`DaskOutput`), its record while it is out (:class:`_Submitted`, found by job or by key
in :class:`_SubmittedAttempts`), and how an ending
that is not an outcome is told (:func:`_lost`). See ``plait.executors._dask``."""

from __future__ import annotations

import contextlib
import dataclasses
import threading
from typing import TYPE_CHECKING, Any

from .._exceptions import WorkerLostError
from ._base import Job
from ._dask_worker import _Failed, _unwrap
from ._remote import RemoteOutput

if TYPE_CHECKING:
    from ._base import Executor

__all__ = ["DaskOutput"]


class DaskOutput(RemoteOutput):
    """A task's output that stays on the Dask cluster: a handle on the future that holds it.

    :meth:`fetch` brings the value to this process (once: it is kept after). A task on an
    executor with the same client receives the future instead, and Dask moves the data worker
    to worker. The value lives on the cluster as long as a handle (or a task) needs it.
    """

    __slots__ = ("_fetched", "_lock", "_value", "future")

    def __init__(self, future: Any) -> None:  # a distributed.Future
        self.future = future
        self._lock = threading.Lock()
        self._fetched = False
        self._value: Any = None

    def fetch(self) -> Any:
        with self._lock:
            if not self._fetched:
                value = self.future.result()
                if type(value) is _Failed:  # lost with its worker, and not computed again
                    raise WorkerLostError(
                        f"the output of Dask task {self.future.key!r} was lost with the worker "
                        "that held it"
                    )
                self._value = _unwrap(value)
                self._fetched = True
            return self._value

    def kept_by(self, executor: Executor) -> bool:
        from ._dask import DaskExecutor  # noqa: PLC0415 - which imports this module

        return isinstance(executor, DaskExecutor) and executor.client is self.future.client

    def __repr__(self) -> str:
        where = "fetched" if self._fetched else "on the cluster"
        return f"<DaskOutput {self.future.key!r} {where}>"


@dataclasses.dataclass(slots=True)
class _Submitted:
    """What the executor knows of an attempt it submitted."""

    job: Job
    key: Any  # a Dask key: see DaskExecutor.key_of
    future: Any  # a distributed.Future; None until the attempt is sent
    task_id: str
    attempt: int
    sent: float = 0.0  # time.monotonic() when it went to the cluster
    cancel_set: bool = False  # its cancel Event was set: clear it once the attempt has ended
    abandoned: bool = False  # the engine stopped waiting: ignore how it ends

    def describe(self) -> str:
        return f"task {self.task_id!r} (attempt {self.attempt})"


class _SubmittedAttempts:
    """The attempts a Dask executor submitted and has not seen end, by job and by Dask key.

    By key because a batch of log lines names its attempt by key alone (see
    ``DaskExecutor._lines_came``): a lookup rather than a scan of every attempt out. Not
    thread-safe: the executor holds its lock around each call.
    """

    __slots__ = ("_by_job", "_by_key")

    def __init__(self) -> None:
        self._by_job: dict[Job, _Submitted] = {}
        self._by_key: dict[Any, _Submitted] = {}

    def add(self, submitted: _Submitted) -> None:
        self._by_job[submitted.job] = submitted
        self._by_key[submitted.key] = submitted

    def get(self, job: Job) -> _Submitted | None:
        return self._by_job.get(job)

    def with_key(self, key: Any) -> _Submitted | None:
        """The attempt whose Dask key is ``key`` (a tuple), if it is still out."""
        return self._by_key.get(key)

    def pop(self, job: Job) -> _Submitted | None:
        """Forget ``job``'s attempt; it, or None if it was not out."""
        submitted = self._by_job.pop(job, None)
        if submitted is not None and self._by_key.get(submitted.key) is submitted:
            del self._by_key[submitted.key]
        return submitted

    def values(self) -> list[_Submitted]:
        return list(self._by_job.values())

    def __len__(self) -> int:
        return len(self._by_job)


def _type_name(kind: Any) -> str:
    """The name of a result's type as Dask reports it (a class, or its name when the class
    could not be loaded here)."""
    return str(getattr(kind, "__name__", kind))


async def _quietly(handler: Any, name: str) -> None:
    with contextlib.suppress(Exception):  # cancel flags are best effort; the engine settles
        await handler(name=name)


def _lost(submitted: _Submitted, cause: BaseException | str) -> WorkerLostError:
    error = WorkerLostError(f"{submitted.describe()}: the Dask cluster lost it ({cause})")
    if isinstance(cause, BaseException):
        error.__cause__ = cause
    return error
