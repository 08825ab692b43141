"""Task functions in worker processes: parallel Python, and attempts that can be killed.

:class:`ProcessExecutor` keeps one worker process per slot. Each slot (``_process_slot``) is a
thread of this process that owns one worker -- started when the slot first has work, with the
``forkserver`` start method (``_forkserver``: ``fork`` is unsafe in a process with threads,
which plait always has) -- and two pipes to it, one for calls and outcomes, one for cancels.
The slot takes a job from the executor's queue, asks it for its
:class:`~plait.executors.TaskCall`, pickles it (``_pickling``: by reference, by value when it
must), sends it, and waits -- on the pipe and on the worker's exit at once -- for the outcome,
which it hands to ``job.complete``; meanwhile it writes out what the task prints and hands the
lines it says, batched, to ``job.logged`` (so they are in the attempt's log as they are said,
and stay there if the worker is killed). The worker's side is ``_process_worker``; its module
docstring gives the protocol, and ``_process_outcomes`` what its messages mean to the slot.

**What can go wrong, and what each costs.**

- A function, argument or output that cannot be pickled fails that attempt with
  :class:`~plait.NotPicklableError`, naming the task and the value's type; the worker lives on.
- A worker that dies unasked (the OOM killer, a segfault, ``os._exit``, ``kill -9``) fails only
  its own attempt, with a retryable :class:`~plait.WorkerLostError`; its group is killed (so
  nothing it started lives on) and the slot starts a fresh worker with its next job. Other
  slots never notice.
- ``cancel`` (a timeout, a critical failure elsewhere, Ctrl-C) sends ``C``: ``ctx.cancelled``
  turns true in the worker, and an async task is cancelled at its next ``await``.
- ``abandon`` (the engine stopped waiting: the timeout passed, or the cancel grace period ran
  out) frees the job's slot at once -- a new slot with a fresh worker takes its place when there
  is work -- and kills the old worker once ``cancel_grace`` seconds have passed since the job's
  cancel (at once after a halt's grace; ``cancel_grace`` later after a timeout, so a task sees
  ``ctx.cancelled`` as it would on a thread): ``SIGTERM`` to its process group, ``SIGKILL`` to
  the group :data:`KILL_GRACE` seconds later (or as soon as the worker is gone, for what it
  left behind). A task that stops by itself within the grace is not killed.
- ``shutdown`` ends every worker and kills its group. If plait itself dies (``kill -9``), each
  worker ends its group when its pipes close, and plait's watchdog process (``_groups``, the one
  that guards shell commands) kills every worker's group too -- even one whose task holds the
  GIL in C code, where the worker's own listener cannot run. The forkserver (one per plait
  process, shared by every process executor) is multiprocessing's, and ends with this process.

**Sizing.** ``max_workers`` is also :attr:`capacity`: the scheduler never hands the executor
more jobs than that, so work that waits stays in plait's ready queue, in critical-path order.
``max_workers=None`` sets no limit of its own: as many workers as the engine runs tasks at once
(its ``max_concurrency``).

**The worker's world.** Its ``sys.path`` and working directory are the parent's when it starts,
and ``sys.path`` is sent again before a call whenever it changed (a workflow loaded from a file
puts its directory there). The parent's ``__main__`` is *not* run in the worker (as
multiprocessing would): a script's functions travel by value instead, so a workflow script
needs no ``if __name__ == "__main__"`` guard for its workers' sake.

Why a thread per slot rather than one reader for all pipes (or the event loop's reader): a
slot's whole life (send, wait, kill, restart) reads top to bottom in one place, a blocked wait
costs nothing, and a slot that completes a job picks the next one the engine submits in the
same thread, with no hand-off. With the few workers a machine has (one per core), the threads
are cheap.

**Pipelining.** A worker reads its calls in order, so a slot sends it the next call while it runs
the current one (``job.queue_behind()``, one call queued at a time): when a call ends, the next is
already in the worker's pipe, and the worker goes on without waiting for the outcome to reach
this process, be settled by the engine and the next task named -- a round trip that made a
no-op task's worker idle for most of its time (``ProcessPoolExecutor.map`` keeps calls queued
ahead of its workers likewise). The queued call holds no slot of ``max_concurrency`` (the
scheduler, ``_scheduler_behind``): when the outcome of the call ahead comes back, the queued one
has begun, and the slot says so (``job.began()``: its ``TaskStarted``, its timeout starts). A
call queued behind a cancelled one is skipped by the worker (``C`` before it begins: its
function is never called); when the job ahead is abandoned or its worker dies, the queued call
has not begun: it runs in a fresh worker (a worker killed just as it began it may have run part
of it). Measured with ``bench/_process.py``'s no-op tasks (2,000, two workers), per task: the
workers' waits on an empty pipe 1.0 -> 0.6, this process's CPU 54 -> 46 us.
"""

from __future__ import annotations

import atexit
import threading
import weakref
from dataclasses import dataclass
from queue import SimpleQueue

from .._exceptions import ConfigError
from ._base import Executor, Job
from ._process_slot import KILL_GRACE, Slot

__all__ = ["KILL_GRACE", "ProcessExecutor", "ProcessStatistics"]


@dataclass(frozen=True, slots=True)
class ProcessStatistics:
    """What a :class:`ProcessExecutor` holds at one moment.

    Attributes:
        slots: worker slots serving jobs (each with its worker process, once it had work).
        busy: jobs running (or about to) in a worker, or queued in one behind the running job.
        retiring: slots still killing the worker of an abandoned job.
        started: worker processes started since the executor was made.
    """

    slots: int
    busy: int
    retiring: int
    started: int


class ProcessExecutor(Executor):
    """Runs each job in a worker process of its own slot; see the module docstring.

    Args:
        max_workers: the most worker processes at once (and jobs at once); None to follow the
            engine's ``max_concurrency``.
        cancel_grace: seconds a cancelled attempt may run on, seeing ``ctx.cancelled``, before
            its worker is killed once the engine gives up on it (a timeout gives up at once).
            The ``"process"`` executor a run makes by name takes the run's ``cancel_grace``;
            the default is ``EngineConfig``'s.

    Raises:
        ConfigError: ``max_workers`` is not a positive int (or None), or ``cancel_grace`` is
            negative.
    """

    def __init__(self, max_workers: int | None = None, *, cancel_grace: float = 5.0) -> None:
        if max_workers is not None and (
            isinstance(max_workers, bool) or not isinstance(max_workers, int) or max_workers < 1
        ):
            raise ConfigError(f"max_workers must be an int >= 1 or None, not {max_workers!r}")
        if (
            isinstance(cancel_grace, bool)
            or not isinstance(cancel_grace, int | float)
            or not cancel_grace >= 0
        ):
            raise ConfigError(f"cancel_grace must be >= 0 seconds, not {cancel_grace!r}")
        self._max_workers = max_workers
        self._cancel_grace = float(cancel_grace)
        self._queue: SimpleQueue[Job | None] = SimpleQueue()
        self._lock = threading.Lock()
        self._slots: list[Slot] = []  # live slots: each serves the queue
        self._retired: list[Slot] = []  # slots killing an abandoned job's worker
        self._free = 0  # live slots waiting on the queue and not yet claimed by a submit
        self._running: dict[Job, Slot] = {}
        self._closed = False
        self._started = 0  # worker processes started, for statistics and tests
        _live_executors.add(self)

    @property
    def capacity(self) -> int | None:
        return self._max_workers

    @property
    def max_workers(self) -> int | None:
        """The most worker processes at once; None follows the engine's ``max_concurrency``."""
        return self._max_workers

    @property
    def pipelines(self) -> bool:
        """True: a worker is sent its next call while it runs the current one (see
        ``_process``)."""
        return True

    def submit(self, job: Job) -> None:
        with self._lock:
            if self._closed:
                raise RuntimeError("this ProcessExecutor was shut down; make a new one")
            slot = self._place(job)
        if slot is not None:
            slot.start()

    def _place(self, job: Job) -> Slot | None:
        """Queue ``job`` for the slots; a new slot to start for it, if none will take it. Under
        the lock."""
        self._queue.put(job)
        if self._free:
            self._free -= 1  # a waiting slot takes it
            return None
        if self._max_workers is not None and len(self._slots) >= self._max_workers:
            return None  # more jobs than capacity: the next slot to finish takes it
        slot = Slot(self, len(self._slots) + len(self._retired), self._cancel_grace)
        self._slots.append(slot)
        return slot

    def cancel(self, job: Job) -> None:
        with self._lock:
            slot = self._running.get(job)
        if slot is not None:
            slot.cancel(job)

    def abandon(self, job: Job) -> None:
        with self._lock:
            slot = self._running.pop(job, None)
            if slot is None or slot not in self._slots:
                return
            self._slots.remove(slot)
            self._retired.append(slot)
        slot.kill()

    def shutdown(self, *, wait: bool = True) -> None:
        """Stop every worker (killing its process group) and, with ``wait``, reap them all.

        A job still running is not waited for: its worker is killed and the job is not
        completed (the run it belonged to is over). Calling it again does nothing more.
        """
        with self._lock:
            self._closed = True
            slots = [*self._slots, *self._retired]
            for _ in self._slots:
                self._queue.put(None)
        for slot in slots:
            slot.stop()
        if wait:
            for slot in slots:
                slot.join()
        _live_executors.discard(self)

    def statistics(self) -> ProcessStatistics:
        """A snapshot of the workers: see :class:`ProcessStatistics`."""
        with self._lock:
            return ProcessStatistics(
                slots=len(self._slots),
                busy=len(self._running),
                retiring=len(self._retired),
                started=self._started,
            )

    def worker_pids(self) -> list[int]:
        """The process ids of the live workers (each leads its process group)."""
        with self._lock:
            slots = [*self._slots, *self._retired]
        return [pid for slot in slots if (pid := slot.pid) is not None]

    def __repr__(self) -> str:
        size = "auto" if self._max_workers is None else self._max_workers
        with self._lock:
            busy = len(self._running)
        state = " closed" if self._closed else ""
        return f"<ProcessExecutor {busy}/{size} busy{state}>"

    # -- for the slots --------------------------------------------------------------------

    def _take(self, slot: Slot) -> Job | None:
        """The next job for ``slot`` (blocks); None when it should end."""
        job = self._queue.get()
        if job is not None:
            with self._lock:
                if self._closed:
                    return None
                self._running[job] = slot
        return job

    def _done(self, slot: Slot, job: Job, *, idle: bool) -> bool:
        """``slot`` finished ``job``; whether it serves on (not if it was retired). ``idle``: it
        has no job queued behind to go on with, and waits on the queue next."""
        with self._lock:
            self._running.pop(job, None)
            if slot in self._retired or self._closed:
                return False
            if idle:
                self._free += 1
            return True

    def _queued(self, slot: Slot, job: Job) -> None:
        """``slot`` queued ``job`` behind the job its worker runs."""
        with self._lock:
            self._running[job] = slot

    def _hand_back(self, job: Job) -> None:
        """A job queued behind an abandoned one, which its worker never began: another slot
        runs it, in a fresh worker (unless the executor shut down: the run is over)."""
        with self._lock:
            self._running.pop(job, None)
            if self._closed:
                return
            slot = self._place(job)
        if slot is not None:
            slot.start()

    def _forget(self, slot: Slot) -> None:
        """``slot``'s thread ends, its worker reaped."""
        with self._lock:
            if slot in self._retired:
                self._retired.remove(slot)
            elif slot in self._slots:
                self._slots.remove(slot)

    def _count_start(self) -> None:
        with self._lock:
            self._started += 1


# -- no worker outlives this process ------------------------------------------------------------

_live_executors: weakref.WeakSet[ProcessExecutor] = weakref.WeakSet()


@atexit.register
def _shutdown_all() -> None:
    """Kill every worker still running when this process exits. Registered after
    multiprocessing's own exit hook, so it runs first (multiprocessing would wait for them)."""
    for executor in list(_live_executors):
        executor.shutdown(wait=True)
