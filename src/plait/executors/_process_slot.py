"""One slot of the process executor: a worker process, and the thread of this process that
feeds it jobs: the one it runs, and one queued behind it in its pipe. See ``_process`` for the
design, ``_process_worker`` for the protocol."""

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

from .._exceptions import TaskCancelledError, WorkerLostError
from .._groups import forget_group, start_watchdog, watch_group
from ._base import Job, Outcome, TaskCall
from ._forkserver import WorkerProcess, child_path, signal_group, start_forkserver
from ._pickling import dumps
from ._process_outcomes import not_picklable, outcome_of, worker_lost, write_out
from ._process_worker import (
    CALL,
    CANCEL,
    LINES,
    PATH,
    SEQ,
    WRITE,
    Inbox,
    send,
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
    """One worker process: its two pipes (see ``_process_worker``), the inbox of its calls pipe,
    and one poll object that watches the calls pipe, the process's exit and the slot's wake-up
    pipe together."""

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
        self.inbox = Inbox(self.calls)  # every read of the calls pipe goes through it
        self.exit_fd: int = self.process.sentinel
        for fd in (self.calls_fd, self.exit_fd, wake):
            self.poll.register(fd, select.POLLIN)

    def close_pipes(self) -> None:
        for pipe in (self.calls, self.control):
            if not pipe.closed:
                pipe.close()


class _Sent:
    """A job whose call was sent down the worker's calls pipe: the call, and its number."""

    __slots__ = ("call", "job", "seq")

    def __init__(self, job: Job, call: TaskCall, seq: int) -> None:
        self.job = job
        self.call = call
        self.seq = seq


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
        self._ahead: _Sent | None = None  # the call the worker runs (a cancel can follow it)
        self._behind: _Sent | None = None  # the call queued behind it, in the worker's pipe
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
        """Cancel ``job``'s call: the running one sees ``ctx.cancelled``; one queued behind it
        is skipped by the worker (its function never called)."""
        with self._lock:
            worker = self._worker
            if worker is None:
                return
            for sent in (self._ahead, self._behind):
                if sent is not None and sent.job is job:
                    self._send_cancel(worker, sent)

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

    def _send_cancel(self, worker: _Worker, sent: _Sent) -> None:
        """Under the lock."""
        if sent is self._ahead and self._cancelled_at is None:
            self._cancelled_at = time.monotonic()
        with contextlib.suppress(OSError):  # the worker is gone: nothing to stop
            worker.control.send_bytes(CANCEL + sent.seq.to_bytes(SEQ, "little"))

    # -- the slot's thread ----------------------------------------------------------------

    def _serve(self) -> None:
        executor = self._executor
        job: Job | None = None  # a job to start next, whose worker was lost (see _pipeline)
        try:
            while True:
                if job is None and (job := executor._take(self)) is None:
                    break
                sent = self._start(job)
                job.began()  # (a queued job whose worker was lost begins now, in a fresh one)
                if isinstance(sent, Outcome):  # it ended before it reached the worker
                    serving = executor._done(self, job, idle=True)
                    job.complete(sent)
                    job = None
                else:
                    job, serving = self._pipeline(sent)
                if not serving:
                    break
        finally:
            self._end_worker(polite=self._spared or not self._killing)
            executor._forget(self)
            os.close(self._wake_reader)
            os.close(self._wake_writer)

    def _start(self, job: Job) -> _Sent | Outcome:
        """Send ``job`` to the idle worker (started if need be); or the outcome it ended with
        before it got there."""
        prepared = self._prepare(job)
        if isinstance(prepared, Outcome):
            return prepared
        call, payload = prepared
        try:
            worker = self._ready_worker()
        except Exception as error:  # no process could be started
            return Outcome(
                error=WorkerLostError(
                    f"task {call.task_id!r} (attempt {call.attempt}): no worker process "
                    f"could be started ({type(error).__name__}: {error})"
                )
            )
        return self._send(job, call, payload, worker, running=True)

    def _pipeline(self, ahead: _Sent) -> tuple[Job | None, bool]:
        """Run the call ``ahead`` (sent) and, one after another, the jobs queued behind it,
        each sent to the worker while the one before it runs (see ``_process``), until the
        worker has none left. Returns a job left to start in a fresh worker (its worker died
        before it began, or its call could not be made) and whether the slot serves on."""
        executor = self._executor
        while True:
            left = self._queue_behind(ahead)  # a job queued but not sent
            outcome = self._wait(ahead)
            lost = self._worker is None  # it died: the queued call never began
            with self._lock:
                behind, self._ahead, self._behind = self._behind, None, None
                self._cancelled_at = None
            running = None  # the queued call, running in the worker now
            if behind is not None:
                if outcome is not None and not lost:
                    running = behind
                else:
                    left = behind.job
                    if outcome is None:  # the worker is to be killed: it must not begin it
                        self._skip(behind)
            serving = executor._done(self, ahead.job, idle=running is None and left is None)
            if not serving and (running is not None or left is not None):
                if running is not None:  # (it may have begun: the worker is killed)
                    self._skip(running)
                    left = running.job
                assert left is not None
                executor._hand_back(left)  # it runs elsewhere, in a fresh worker
                running = left = None
            if running is not None:
                with self._lock:
                    self._ahead = running
            if outcome is not None and not ahead.job.abandoned:  # (it ended as it was abandoned)
                ahead.job.complete(outcome)
            if running is None:
                return left, serving
            running.job.began()  # it began as the outcome of the one ahead came
            ahead = running

    def _queue_behind(self, ahead: _Sent) -> Job | None:
        """Queue the next job behind ``ahead`` in the worker's pipe, if the engine has one;
        the job if it is queued but could not be sent (it starts once the worker is idle)."""
        if ahead.job.cancelled:
            return None
        job = ahead.job.queue_behind()
        if job is None:
            return None
        self._executor._queued(self, job)
        worker = self._worker
        prepared = self._prepare(job)
        if isinstance(prepared, Outcome) or worker is None:
            return job  # it fails again, with its outcome, once the worker is idle
        call, payload = prepared
        if sys.path != worker.path:
            self._send_path(worker)
        self._send(job, call, payload, worker, running=False)
        return None

    def _skip(self, sent: _Sent) -> None:
        """The worker must not begin ``sent``'s call (it is to run elsewhere)."""
        with self._lock:
            worker = self._worker
            if worker is not None:
                with contextlib.suppress(OSError):  # the worker is gone: it begins nothing
                    worker.control.send_bytes(CANCEL + sent.seq.to_bytes(SEQ, "little"))

    def _prepare(self, job: Job) -> tuple[TaskCall, bytes] | Outcome:
        """``job``'s call and its pickle; or the outcome it ends with, if it cannot be made."""
        if job.cancelled:  # the run stopped before a worker got to it: never call it
            return Outcome(error=TaskCancelledError("cancelled before it started"))
        try:
            call = job.call()
        except BaseException as error:  # the attempt's failure, e.g. a binding error
            return Outcome(error=error)
        try:
            return call, dumps(call)
        except Exception as error:  # some part of it does not pickle
            return Outcome(error=not_picklable(call, error))

    def _ready_worker(self) -> _Worker:
        """A live worker, started if need be, with ``sys.path`` up to date."""
        worker = self._worker
        if worker is None:
            worker = _Worker(self._wake_reader)
            with self._lock:
                self._worker = worker
            self._executor._count_start()
        if sys.path != worker.path:
            self._send_path(worker)
        return worker

    def _send_path(self, worker: _Worker) -> None:
        path = list(sys.path)
        with contextlib.suppress(OSError):  # it died: the wait for the outcome says so
            send(worker.calls, PATH + dumps(path))
        worker.path = path

    def _send(
        self, job: Job, call: TaskCall, payload: bytes, worker: _Worker, *, running: bool
    ) -> _Sent:
        """Send ``call`` down the worker's pipe: the call it runs now (``running``), or the
        one queued behind that."""
        worker.seq += 1
        sent = _Sent(job, call, worker.seq)
        with contextlib.suppress(OSError):  # it died before it took the call: found out later
            send(worker.calls, CALL + worker.seq.to_bytes(SEQ, "little") + payload)
        with self._lock:
            if running:
                self._ahead = sent
            else:
                self._behind = sent
            if job.cancelled:  # cancelled before the call got there
                self._send_cancel(worker, sent)
        return sent

    def _wait(self, sent: _Sent) -> Outcome | None:
        """Wait for the outcome of ``sent``, the call the worker runs; None when its job was
        abandoned (or the executor shut down) and must not be completed."""
        worker = self._worker
        assert worker is not None
        job, call = sent.job, sent.call
        ended = False  # the calls pipe said end of file
        kill_at: float | None = None  # the job was abandoned: kill the worker then
        inbox = worker.inbox
        while True:
            message = inbox.next()  # one read may have brought more than one message
            if message is None:
                timeout = None if kill_at is None else max(0.0, kill_at - time.monotonic()) * 1000
                ready = {fd for fd, _ in worker.poll.poll(timeout)}
                if kill_at is not None and time.monotonic() >= kill_at:
                    return None  # the grace is over: the thread kills the worker on its way out
                if worker.calls_fd in ready and not ended:
                    try:
                        inbox.read()
                    except (EOFError, OSError):  # it died: its exit says so too, soon
                        ended = True
                        worker.poll.unregister(worker.calls_fd)
                    else:
                        message = inbox.next()
            if message is not None:
                if message[:1] == WRITE:
                    write_out(message)
                    continue
                if message[:1] == LINES:  # abandoned too: a timed-out task's last words
                    if int.from_bytes(message[1 : 1 + SEQ], "little") == sent.seq:
                        job.logged(pickle.loads(message[1 + SEQ :]), echoed=True)
                    continue  # (its prints were written out as they came: echoed)
                if kill_at is not None:  # it stopped within the grace: its worker is fine
                    self._spared = True
                    return None
                return outcome_of(call, message)
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

    def _lost(self, call: TaskCall) -> WorkerLostError:
        """The worker died unasked: clean up after it and say how it ended."""
        worker = self._worker
        assert worker is not None
        lost = worker_lost(call, worker.pid, worker.process.exitcode)  # (before it is closed)
        self._end_worker(polite=False)
        return lost

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
