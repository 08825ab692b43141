"""Task functions in worker processes: parallel Python, and attempts that can be killed.

:class:`ProcessExecutor` keeps one worker process per slot. Each slot is a thread of this
process that owns one worker (started when the slot first has work, with the ``forkserver``
start method: ``fork`` is unsafe in a process with threads, which plait always has) and one
pipe to it. The slot takes a job from the executor's queue, asks it for its
:class:`~plait.executors.TaskCall`, pickles it (``_pickling``: by reference, by value when it
must), sends it, and waits -- on the pipe and on the worker's exit at once -- for the outcome,
which it hands to ``job.complete``. The worker's side is ``_process_worker``; its module
docstring gives the protocol.

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
  out) kills the job's worker: ``SIGTERM`` to its process group, ``SIGKILL`` to the group
  :data:`KILL_GRACE` seconds later (or at once once the worker is gone, for what it left
  behind), then the slot ends; a new slot with a fresh worker takes its place when there is
  work.
- ``shutdown`` ends every worker and kills its group; a worker also ends its group when its
  pipe closes, so a ``kill -9`` of plait itself takes the workers down with it. The forkserver
  (one per plait process, shared by every process executor) is multiprocessing's, and ends with
  this process.

**Sizing.** ``max_workers`` is also :attr:`capacity`: the scheduler never hands the executor
more jobs than that, so work that waits stays in plait's ready queue, in critical-path order.
``max_workers=None`` sets no limit of its own: as many workers as the engine runs tasks at once
(its ``max_concurrency``).

**The worker's world.** Its ``sys.path`` and working directory are the parent's when it starts,
and ``sys.path`` is sent again before a call whenever it changed (a workflow loaded from a file
puts its directory there). The parent's ``__main__`` is *not* run in the worker (as
multiprocessing would): a script's functions travel by value instead, so a workflow script
needs no ``if __name__ == "__main__"`` guard for its workers' sake.

Why a thread per slot rather than one reader for all pipes: a slot's whole life (send, wait,
kill, restart) reads top to bottom in one place, and a blocked wait costs nothing; with the
few workers a machine has (one per core), the threads are cheap.
"""

from __future__ import annotations

import atexit
import contextlib
import io
import multiprocessing
import os
import select
import signal
import sys
import threading
import weakref
from dataclasses import dataclass
from multiprocessing import (
    forkserver,
    popen_forkserver,
    process,
    reduction,
    spawn,
    util,
)
from multiprocessing.context import ForkServerProcess, set_spawning_popen
from queue import SimpleQueue
from typing import Any

from .._exceptions import ConfigError, NotPicklableError, TaskCancelledError, WorkerLostError
from ._base import Executor, Job, Outcome, TaskCall
from ._pickling import dumps, loads
from ._process_worker import CALL, CANCEL, OUTCOME, PATH, SEQ, UNREADABLE, serve

__all__ = ["KILL_GRACE", "ProcessExecutor", "ProcessStatistics"]

#: Seconds between the ``SIGTERM`` and the ``SIGKILL`` sent to an abandoned worker's group.
KILL_GRACE = 1.0

_PRELOAD = ["plait.executors._process_worker"]  # the forkserver imports it once for all workers


@dataclass(frozen=True, slots=True)
class ProcessStatistics:
    """What a :class:`ProcessExecutor` holds at one moment.

    Attributes:
        slots: worker slots serving jobs (each with its worker process, once it had work).
        busy: jobs running (or about to) in a worker.
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

    Raises:
        ConfigError: ``max_workers`` is not a positive int (or None).
    """

    def __init__(self, max_workers: int | None = None) -> None:
        if max_workers is not None and (
            isinstance(max_workers, bool) or not isinstance(max_workers, int) or max_workers < 1
        ):
            raise ConfigError(f"max_workers must be an int >= 1 or None, not {max_workers!r}")
        self._max_workers = max_workers
        self._queue: SimpleQueue[Job | None] = SimpleQueue()
        self._lock = threading.Lock()
        self._slots: list[_Slot] = []  # live slots: each serves the queue
        self._retired: list[_Slot] = []  # slots killing an abandoned job's worker
        self._free = 0  # live slots waiting on the queue and not yet claimed by a submit
        self._running: dict[Job, _Slot] = {}
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

    def submit(self, job: Job) -> None:
        with self._lock:
            if self._closed:
                raise RuntimeError("this ProcessExecutor was shut down; make a new one")
            self._queue.put(job)
            if self._free:
                self._free -= 1  # a waiting slot takes it
                return
            if self._max_workers is not None and len(self._slots) >= self._max_workers:
                return  # more jobs than capacity: the next slot to finish takes it
            slot = _Slot(self, len(self._slots) + len(self._retired))
            self._slots.append(slot)
        slot.start()

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

    def _take(self, slot: _Slot) -> Job | None:
        """The next job for ``slot`` (blocks); None when it should end."""
        job = self._queue.get()
        if job is not None:
            with self._lock:
                if self._closed:
                    return None
                self._running[job] = slot
        return job

    def _done(self, slot: _Slot, job: Job) -> bool:
        """``slot`` finished ``job``; whether it serves on (not if it was retired)."""
        with self._lock:
            self._running.pop(job, None)
            if slot in self._retired or self._closed:
                return False
            self._free += 1
            return True

    def _forget(self, slot: _Slot) -> None:
        """``slot``'s thread ends, its worker reaped."""
        with self._lock:
            if slot in self._retired:
                self._retired.remove(slot)
            elif slot in self._slots:
                self._slots.remove(slot)

    def _count_start(self) -> None:
        with self._lock:
            self._started += 1


class _Worker:
    """One worker process: its two pipes (see ``_process_worker``), and one poll object that
    watches the calls pipe, the process's exit and the slot's wake-up pipe together."""

    def __init__(self, wake: int) -> None:
        self.calls, theirs_calls = multiprocessing.Pipe(duplex=True)
        theirs_control, self.control = multiprocessing.Pipe(duplex=False)
        self.process = _WorkerProcess(
            target=serve, args=(theirs_calls, theirs_control), name="plait-process-worker"
        )
        _start_forkserver()
        self.process.start()
        theirs_calls.close()
        theirs_control.close()
        pid = self.process.pid
        assert pid is not None  # started
        self.pid = pid
        self.path = _child_path()  # the sys.path it has
        self.seq = 0  # the number of the last call sent
        self.poll = select.poll()
        self.calls_fd = self.calls.fileno()
        self.exit_fd: int = self.process.sentinel
        for fd in (self.calls_fd, self.exit_fd, wake):
            self.poll.register(fd, select.POLLIN)

    def close_pipes(self) -> None:
        for pipe in (self.calls, self.control):
            if not pipe.closed:
                pipe.close()


class _Slot:
    """One worker process and the thread that feeds it; see the module docstring."""

    def __init__(self, executor: ProcessExecutor, number: int) -> None:
        self._executor = executor
        self._thread = threading.Thread(
            target=self._serve, name=f"plait-process-slot-{number}", daemon=True
        )
        self._lock = threading.Lock()  # guards what cancel/kill/stop read from other threads
        self._worker: _Worker | None = None
        self._job: Job | None = None
        self._sent = False  # the job's call has reached the pipe: a cancel can follow it
        self._wake_reader, self._wake_writer = os.pipe()  # wakes the thread for a kill or stop
        self._killing = False
        self._stopping = False

    @property
    def pid(self) -> int | None:
        """The worker's process id (its group's id too), while it lives."""
        worker = self._worker
        return None if worker is None else worker.pid

    def start(self) -> None:
        self._thread.start()

    def join(self) -> None:
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join()

    def cancel(self, job: Job) -> None:
        with self._lock:
            if self._job is job and self._sent and self._worker is not None:
                self._send_cancel(self._worker)

    def kill(self) -> None:
        """Kill the worker (its job was abandoned); the thread does it and then ends."""
        with self._lock:
            self._killing = True
        self._wake()

    def stop(self) -> None:
        """End the worker, idle or not, and the thread (the executor is shutting down)."""
        with self._lock:
            self._stopping = True
        self._wake()

    def _wake(self) -> None:
        with contextlib.suppress(OSError):
            os.write(self._wake_writer, b"!")

    def _send_cancel(self, worker: _Worker) -> None:
        """Under the lock."""
        with contextlib.suppress(OSError):  # the worker is gone: nothing to stop
            worker.control.send_bytes(CANCEL + worker.seq.to_bytes(SEQ, "little"))

    # -- the slot's thread ----------------------------------------------------------------

    def _serve(self) -> None:
        executor = self._executor
        try:
            while (job := executor._take(self)) is not None:
                outcome = self._run(job)
                # Free before completing: completing may submit the next job at once, and it
                # must find this slot free rather than start another.
                serving = executor._done(self, job)
                if outcome is not None:
                    job.complete(outcome)
                if not serving:
                    break
        finally:
            self._end_worker(polite=not self._killing)
            executor._forget(self)
            os.close(self._wake_reader)
            os.close(self._wake_writer)

    def _run(self, job: Job) -> Outcome | None:
        """Run ``job`` in the worker; its outcome, or None if it must not be completed (it was
        abandoned, or the executor is shutting down)."""
        if job.cancelled:  # the run stopped before a worker got to it: never call it
            return Outcome(error=TaskCancelledError("cancelled before it started"))
        try:
            call = job.call()
        except BaseException as error:  # the attempt's failure, e.g. a binding error
            return Outcome(error=error)
        try:
            payload = dumps(call)
        except Exception as error:  # some part of it does not pickle
            return Outcome(error=_not_picklable(call, error))
        try:
            worker = self._ready_worker()
        except Exception as error:  # no process could be started
            return Outcome(
                error=WorkerLostError(
                    f"task {call.task_id!r} (attempt {call.attempt}): no worker process "
                    f"could be started ({type(error).__name__}: {error})"
                )
            )
        return self._send_and_wait(job, call, worker, payload)

    def _ready_worker(self) -> _Worker:
        """A live worker, started if need be, with ``sys.path`` up to date."""
        worker = self._worker
        if worker is None:
            worker = _Worker(self._wake_reader)
            with self._lock:
                self._worker = worker
            self._executor._count_start()
        if sys.path != worker.path:
            path = list(sys.path)
            with contextlib.suppress(OSError):  # it died: the wait for the outcome says so
                worker.calls.send_bytes(PATH + dumps(path))
            worker.path = path
        return worker

    def _send_and_wait(
        self, job: Job, call: TaskCall, worker: _Worker, payload: bytes
    ) -> Outcome | None:
        """Run ``call`` in the worker; its outcome, or None when the job was abandoned (or the
        executor shut down) and must not be completed."""
        worker.seq += 1
        with self._lock:
            self._job = job
        with contextlib.suppress(OSError):  # it died before it took the call: found out below
            worker.calls.send_bytes(CALL + worker.seq.to_bytes(SEQ, "little") + payload)
        with self._lock:
            self._sent = True
            if job.cancelled:  # cancelled before the call got there
                self._send_cancel(worker)
        try:
            return self._wait(call, worker)
        finally:
            with self._lock:
                self._job = None
                self._sent = False

    def _wait(self, call: TaskCall, worker: _Worker) -> Outcome | None:
        ended = False  # the calls pipe said end of file
        while True:
            ready = {fd for fd, _ in worker.poll.poll()}
            if worker.calls_fd in ready and not ended:
                try:
                    message = worker.calls.recv_bytes()
                except (EOFError, OSError):  # it died: its exit says so too, soon
                    ended = True
                    worker.poll.unregister(worker.calls_fd)
                else:
                    return self._outcome(call, message)
            if self._wake_reader in ready:
                os.read(self._wake_reader, 64)
                if self._killing or self._stopping:
                    return None  # the thread kills the worker on its way out
            # Dead, with nothing left to read (an outcome sent just before the end is read
            # first: the pipe stays watched until it says end of file).
            if worker.exit_fd in ready and (ended or not worker.calls.poll()):
                return Outcome(error=self._lost(call))

    def _outcome(self, call: TaskCall, message: bytes) -> Outcome:
        body = memoryview(message)[1:]
        if message[:1] == UNREADABLE:
            return Outcome(
                error=NotPicklableError(
                    f"task {call.task_id!r}: its call could not be unpickled in the worker "
                    f"process ({bytes(body).decode('utf-8', 'replace')}); make its function and "
                    "arguments importable there (a module on sys.path), or run the task on the "
                    "thread executor"
                )
            )
        assert message[:1] == OUTCOME, message[:1]
        try:
            outcome = loads(body)
        except Exception as error:  # e.g. a class this process cannot import
            return Outcome(
                error=NotPicklableError(
                    f"task {call.task_id!r}: its outcome came back from the worker process but "
                    f"cannot be unpickled here ({type(error).__name__}: {error}); return plain "
                    "data, or run the task on the thread executor"
                )
            )
        assert isinstance(outcome, Outcome)
        return outcome

    def _lost(self, call: TaskCall) -> WorkerLostError:
        """The worker died unasked: clean up after it and say how it ended."""
        worker = self._worker
        assert worker is not None
        how = _how_it_ended(worker.process.exitcode)
        self._end_worker(polite=False)
        return WorkerLostError(
            f"task {call.task_id!r} (attempt {call.attempt}): its worker process (pid "
            f"{worker.pid}) {how} before the attempt ended; another attempt runs in a fresh "
            "worker if the task's retries allow"
        )

    def _end_worker(self, *, polite: bool) -> None:
        """End the worker and everything in its group, and reap it.

        Politely (an idle worker of an executor shutting down): close the pipes and let it end
        its group itself. Otherwise ``SIGTERM`` to the group, then ``SIGKILL`` after
        :data:`KILL_GRACE` seconds, or as soon as the worker is gone (for what it left behind).
        """
        with self._lock:
            worker = self._worker
        if worker is None:
            return
        process = worker.process
        if polite:
            worker.close_pipes()
            process.join(KILL_GRACE)
        elif process.exitcode is None:
            _signal_group(process, signal.SIGTERM)
            process.join(KILL_GRACE)
        _signal_group(process, signal.SIGKILL)
        process.join()
        worker.close_pipes()
        process.close()
        with self._lock:
            self._worker = None


def _signal_group(worker: _WorkerProcess, signum: int) -> None:
    """Send ``signum`` to the worker's process group (the worker leads it); to the worker
    alone if it has not made its group yet (then it has started nothing)."""
    pid = worker.pid
    if pid is None:
        return
    try:
        os.killpg(pid, signum)
    except ProcessLookupError:  # no group yet, or none left
        with contextlib.suppress(ProcessLookupError):
            if worker.exitcode is None:
                os.kill(pid, signum)
    except PermissionError:  # the pid's group is someone else's now: leave it alone
        pass


def _how_it_ended(exitcode: int | None) -> str:
    if exitcode is None:
        return "stopped answering"
    if exitcode < 0:
        try:
            name = signal.Signals(-exitcode).name
        except ValueError:
            name = f"signal {-exitcode}"
        hint = " (the OOM killer, or a kill -9)" if -exitcode == signal.SIGKILL else ""
        return f"was killed by {name}{hint}"
    return f"exited with status {exitcode}"


def _not_picklable(call: TaskCall, error: Exception) -> NotPicklableError:
    """The error for a call that cannot be pickled, naming the part of it at fault."""
    what = "its call"
    value: object = call
    if not _pickles(call.fn):
        what, value = "its function", call.fn
    else:
        for name, argument in call.kwargs.items():
            if not _pickles(argument):
                what, value = f"its argument {name!r}", argument
                break
        else:
            for key, answer in call.answers.items():
                if not _pickles(answer):
                    what, value = f"the answer to its question {key!r}", answer
                    break
    kind = type(value)
    name = (
        kind.__qualname__
        if kind.__module__ == "builtins"
        else f"{kind.__module__}.{kind.__qualname__}"
    )
    return NotPicklableError(
        f"task {call.task_id!r}: {what}, a {name}, cannot be pickled to reach its worker "
        f"process ({type(error).__name__}: {error}); pass plain data (or something that says "
        "where to find the value, such as a path), or run the task on the thread executor"
    )


def _pickles(value: object) -> bool:
    try:
        dumps(value)
    except Exception:  # whatever pickling raises, the value is at fault
        return False
    return True


def _child_path() -> list[str]:
    """The ``sys.path`` a new worker starts with (multiprocessing's ``prepare``)."""
    path = list(sys.path)
    if "" in path:
        path[path.index("")] = getattr(process, "ORIGINAL_DIR", None) or os.getcwd()
    return path


# -- starting workers -------------------------------------------------------------------------

_forkserver_lock = threading.Lock()
_forkserver_started = False


def _start_forkserver() -> None:
    """Start multiprocessing's forkserver if it is not running, preloading the worker module
    (not ``__main__``, multiprocessing's default: see the module docstring)."""
    global _forkserver_started  # once per process
    with _forkserver_lock:
        if _forkserver_started:
            return
        context = multiprocessing.get_context("forkserver")
        if getattr(forkserver._forkserver, "_forkserver_pid", None) is None:
            context.set_forkserver_preload(_PRELOAD)
        forkserver.ensure_running()
        _forkserver_started = True


class _Popen(popen_forkserver.Popen):
    """multiprocessing's forkserver launch, minus running the parent's ``__main__`` in the
    worker (``init_main_from_*``): a script's code travels by value (``_pickling``)."""

    def _launch(self, process_obj: Any) -> None:
        prep_data = spawn.get_preparation_data(process_obj._name)
        prep_data.pop("init_main_from_name", None)
        prep_data.pop("init_main_from_path", None)
        buf = io.BytesIO()
        set_spawning_popen(self)
        try:
            reduction.dump(prep_data, buf)
            reduction.dump(process_obj, buf)
        finally:
            set_spawning_popen(None)
        fds: list[int] = self._fds  # type: ignore[attr-defined]  # set by Popen.__init__
        self.sentinel, w = forkserver.connect_to_new_process(fds)
        parent_w = os.dup(w)  # the worker's view of its parent: see popen_forkserver
        close_fds = util.close_fds  # type: ignore[attr-defined]  # untyped stdlib internals
        self.finalizer = util.Finalize(self, close_fds, (parent_w, self.sentinel))
        with open(w, "wb", closefd=True) as f:
            f.write(buf.getbuffer())
        self.pid = forkserver.read_signed(self.sentinel)


class _WorkerProcess(ForkServerProcess):
    @staticmethod
    def _Popen(process_obj: Any) -> Any:
        return _Popen(process_obj)


# -- no worker outlives this process ------------------------------------------------------------

_live_executors: weakref.WeakSet[ProcessExecutor] = weakref.WeakSet()


@atexit.register
def _shutdown_all() -> None:
    """Kill every worker still running when this process exits. Registered after
    multiprocessing's own exit hook, so it runs first (multiprocessing would wait for them)."""
    for executor in list(_live_executors):
        executor.shutdown(wait=True)
