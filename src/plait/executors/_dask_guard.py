"""The attempt guard: an attempt that Dask runs again never runs its task's body twice.

Dask runs a task again when the worker that had it leaves the cluster (a crash, an OOM kill,
a lost connection, a retirement) while the task was on it. For plait that is a second
execution of one attempt: its retry is plait's own decision, counted and recorded. So a second
execution must not call the body; it fails with :class:`plait.WorkerLostError` and plait's
retry policy decides. (A finished attempt whose output was lost with its worker is another
matter: Dask computes it again when something still needs the output, its lineage at work,
and the guard lets it.)

Two ways to know, chosen once per executor (:func:`install`):

- **The scheduler plugin** (:class:`AttemptGuard`), when the scheduler can load it (plait is
  installed where the scheduler runs, as it must be on the workers). The scheduler already
  takes a task back from a worker (``processing`` to ``released``) when that worker leaves;
  the plugin hears it and marks the plait attempt with the :data:`LOST` annotation. Dask sends
  the annotations with the task when it runs it again, and the worker reads them locally
  (:func:`refused`). Nothing is paid per attempt: no round trip, no state kept. The mark does
  not ask which worker the task was on (a steal moves a task without a transition, so the
  plugin could not follow it): Dask also takes a task back from a live worker when a client
  releases it (it is then forgotten, mark and all) and, rarely, when a steal goes stale
  (the task never started; the mark makes a spurious ``WorkerLostError``, which plait's retry
  policy handles): a spurious failure, never a second execution.
- **A lock per attempt** otherwise: the first thing an execution does is take a lock named
  after the attempt, without waiting, in the scheduler's ``MultiLock`` extension (a lock with
  no lease: a ``distributed.Lock``'s would lapse once the dead worker stops renewing it and let
  the second execution in). A second execution finds it held. It costs a blocking round trip
  to the scheduler at the start of every attempt and a release at its end.
"""

from __future__ import annotations

import contextlib
import logging
from typing import Any

from distributed.diagnostics.plugin import SchedulerPlugin

__all__ = ["LOST", "NAME", "AttemptGuard", "install", "is_attempt_key", "refused"]

#: The name the plugin is registered under on the scheduler (once, whoever registers it).
NAME = "plait-attempt-guard"

#: The annotation that marks an attempt Dask runs again.
LOST = "plait-lost"

#: How every attempt's Dask key starts (its first part: see ``DaskExecutor.key_of``).
KEY_PREFIX = "plait-"

logger = logging.getLogger(__name__)


def is_attempt_key(key: object) -> bool:
    """Whether ``key`` is the Dask key of a plait attempt."""
    return type(key) is tuple and type(key[0]) is str and key[0].startswith(KEY_PREFIX)


class AttemptGuard(SchedulerPlugin):
    """On the scheduler: marks the plait attempts Dask is about to run again (see the module
    docstring). Shared by every client of the scheduler; registering it again is a no-op."""

    idempotent = True
    name = NAME

    def __init__(self) -> None:
        self._scheduler: Any = None

    async def start(self, scheduler: Any) -> None:
        self._scheduler = scheduler

    def transition(
        self, key: Any, start: str, finish: str, *args: Any, stimulus_id: str, **kwargs: Any
    ) -> None:
        if start == "processing" and finish == "released" and is_attempt_key(key):
            task = self._scheduler.tasks.get(key)  # it may have started where it was
            if task is not None:
                task.annotations = {**(task.annotations or {}), LOST: True}


def install(client: Any) -> bool:
    """Register :class:`AttemptGuard` on ``client``'s scheduler; False when the scheduler cannot
    load it (plait is not installed there, or it refuses pickled plugins): the executor then
    guards each attempt with a lock."""
    try:
        client.register_plugin(AttemptGuard(), name=NAME)
    except Exception as error:  # any refusal means: use the lock
        logger.info(
            "the Dask scheduler at %s cannot load plait's attempt guard (%s: %s); each attempt "
            "takes a lock there instead (a round trip per attempt): install plait where the "
            "scheduler runs to avoid it",
            getattr(client.scheduler, "address", "?"),
            type(error).__name__,
            error,
        )
        return False
    return True


def refused(worker: Any, key: Any) -> bool:
    """On the worker, with the plugin installed: whether this execution of attempt ``key`` is
    one Dask runs again (its task carries the :data:`LOST` annotation)."""
    task = worker.state.tasks.get(key)
    annotations = None if task is None else task.annotations
    return bool(annotations and annotations.get(LOST))


def _lock_name(key: Any) -> str:
    return f"plait-guard/{key}"


def take_lock(worker: Any, key: Any, holder: str) -> bool:
    """On the worker, without the plugin: take attempt ``key``'s lock for ``holder``, without
    waiting (a round trip to the scheduler); False when an execution before this one holds it."""
    from distributed.utils import sync  # noqa: PLC0415 - runs on a worker

    return bool(
        sync(
            worker.loop,
            worker.scheduler.multi_lock_acquire,
            locks=[_lock_name(key)],
            id=holder,
            timeout=0,
            num_locks=1,
        )
    )


def release_lock(worker: Any, holder: str) -> None:
    """On the worker: release what :func:`take_lock` took, without waiting for the answer."""
    worker.loop.add_callback(_release, worker, holder)


async def _release(worker: Any, holder: str) -> None:
    with contextlib.suppress(Exception):  # a worker closing, a scheduler gone: nothing to keep
        await worker.scheduler.multi_lock_release(id=holder)
