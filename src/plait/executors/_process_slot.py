"""One slot of the process executor: a worker process, and the thread of this process that
feeds it jobs, one at a time. See ``_process`` for the design, ``_process_worker`` for the
protocol."""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import pickle
import select
import signal
import sys
import threading
import time
from typing import TYPE_CHECKING

from .._exceptions import NotPicklableError, TaskCancelledError, WorkerLostError
from .._groups import forget_group, start_watchdog, watch_group
from ._base import Job, Outcome, TaskCall
from ._forkserver import WorkerProcess, child_path, signal_group, start_forkserver
from ._pickling import dumps, loads
from ._process_worker import (
    CALL,
    CANCEL,
    LINES,
    OUTCOME,
    PATH,
    SEQ,
    UNREADABLE,
    WRITE,
    serve,
)

if TYPE_CHECKING:
    from ._process import ProcessExecutor

__all__ = ["KILL_GRACE", "Slot"]

#: Seconds between the ``SIGTERM`` and the ``SIGKILL`` sent to an abandoned worker's group.
KILL_GRACE = 1.0

#: The key under which workers' process groups are registered with plait's watchdog
#: (``_groups``), which kills them if this process dies -- even while a worker's own listener
#: cannot run (a task holding the GIL in C code). Not a run id: no run's Ctrl-C kills them.
WORKER_GROUPS = "plait-process-workers"


class _Worker:
    """One worker process: its two pipes (see ``_process_worker``), and one poll object that
    watches the calls pipe, the process's exit and the slot's wake-up pipe together."""

    def __init__(self, wake: int) -> None:
        self.calls, theirs_calls = multiprocessing.Pipe(duplex=True)
        theirs_control, self.control = multiprocessing.Pipe(duplex=False)
        self.process = WorkerProcess(
            target=serve, args=(theirs_calls, theirs_control), name="plait-process-worker"
        )
        start_forkserver()
        start_watchdog()
        self.process.start()
        theirs_calls.close()
        theirs_control.close()
        pid = self.process.pid
        assert pid is not None  # started
        self.pid = pid
        watch_group(WORKER_GROUPS, pid)  # its group: the worker makes it first thing
        self.path = child_path()  # the sys.path it has
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


class Slot:
    """One worker process and the thread that feeds it; see the module docstring."""

    def __init__(self, executor: ProcessExecutor, number: int, cancel_grace: float) -> None:
        self._executor = executor
        self._cancel_grace = cancel_grace
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
        self._cancelled_at: float | None = None  # when the running call was cancelled
        self._spared = False  # its job was abandoned, but it ended by itself within the grace

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
        """Kill the worker (its job was abandoned) once the job's cancel grace period is over
        (``cancel_grace`` after its cancel, or at once if the grace is over): the thread does it
        and then ends. A task that stops by itself within the grace keeps its worker alive
        until the thread ends it politely."""
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
        if self._cancelled_at is None:
            self._cancelled_at = time.monotonic()
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
            self._end_worker(polite=self._spared or not self._killing)
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
            return self._wait(job, call, worker)
        finally:
            with self._lock:
                self._job = None
                self._sent = False
                self._cancelled_at = None

    def _wait(self, job: Job, call: TaskCall, worker: _Worker) -> Outcome | None:
        ended = False  # the calls pipe said end of file
        kill_at: float | None = None  # the job was abandoned: kill the worker then
        while True:
            timeout = None if kill_at is None else max(0.0, kill_at - time.monotonic()) * 1000
            ready = {fd for fd, _ in worker.poll.poll(timeout)}
            if kill_at is not None and time.monotonic() >= kill_at:
                return None  # the grace is over: the thread kills the worker on its way out
            if worker.calls_fd in ready and not ended:
                try:
                    message = worker.calls.recv_bytes()
                except (EOFError, OSError):  # it died: its exit says so too, soon
                    ended = True
                    worker.poll.unregister(worker.calls_fd)
                else:
                    if message[:1] == WRITE:
                        _write_out(message)
                        continue
                    if message[:1] == LINES:  # abandoned too: a timed-out task's last words
                        if int.from_bytes(message[1 : 1 + SEQ], "little") == worker.seq:
                            job.logged(pickle.loads(message[1 + SEQ :]), echoed=True)
                        continue  # (its prints were written out as they came: echoed)
                    if kill_at is not None:  # it stopped within the grace: its worker is fine
                        self._spared = True
                        return None
                    return self._outcome(call, message)
            if self._wake_reader in ready:
                os.read(self._wake_reader, 64)
                if self._stopping:
                    return None  # the thread ends the worker on its way out
                if self._killing and kill_at is None:
                    with self._lock:
                        cancelled_at = self._cancelled_at
                    now = time.monotonic()
                    kill_at = now if cancelled_at is None else cancelled_at + self._cancel_grace
            # Dead, with nothing left to read (an outcome sent just before the end is read
            # first: the pipe stays watched until it says end of file).
            if worker.exit_fd in ready and (ended or not worker.calls.poll()):
                if kill_at is not None:
                    return None
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
        outcome.echoed = True  # what it printed was written out as it came (_write_out)
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
            signal_group(process, signal.SIGTERM)
            process.join(KILL_GRACE)
        signal_group(process, signal.SIGKILL)
        process.join()
        forget_group(WORKER_GROUPS, worker.pid)
        worker.close_pipes()
        process.close()
        with self._lock:
            self._worker = None


def _write_out(message: bytes) -> None:
    """Write what a worker wrote (a ``W`` message) to this process's stdout or stderr: outside
    any task's context, so it is not kept twice (the task's log has it from an ``L`` message or
    the outcome)."""
    stream = sys.stdout if message[1:2] == b"1" else sys.stderr
    if stream is None:
        return
    try:
        stream.write(message[2:].decode("utf-8", "replace"))
        stream.flush()
    except (OSError, ValueError):  # a closed or broken stream: the log keeps the lines
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
