"""Tasks on a Dask cluster: one Dask task per attempt, plait keeping every decision.

plait's engine stays the orchestrator -- it chooses what runs (the scheduler's ready queue, in
critical-path order), retries, times out, records to the store and resumes -- and Dask is where
the functions run. The executor's :attr:`~DaskExecutor.capacity`, which the engine treats as an
implicit pool, is a **window**: how many attempts may be on the cluster at once, two per worker
thread and up to eight while attempts are short (see :mod:`plait.executors._dask_window`, and
there how it bears on timeouts). Everything past it waits in plait's queue (free to cancel, in
plait's order), not in Dask's.

- **Batches.** Attempts that start together -- a run's first ready tasks, the dependents one
  ending releases, those the outcomes settled in one go start -- go to the scheduler as one
  graph (one ``update-graph`` message, each attempt keeping its priority; see
  :mod:`plait.executors._dask_batch`) rather than one ``client.submit`` each: the scheduler
  handles each message on its own, and one per attempt costs it far more. They are sent by
  the settling thread once it has settled the outcomes that came before them; while the
  window is wide and more than half of it is out, once half have come back (see
  :meth:`Window.sends <plait.executors._dask_window.Window.sends>`).

Each attempt is one Dask task:

- **Key** ``("plait-{run_id}", task_id, attempt, session)``: unique (``session`` is random per
  executor, so a second orchestrator that resumes the same run never meets a key the first
  left behind). Dask files tasks by the key's first part: one task group per run, under one
  prefix, ``plait``. (A key of one part per attempt made a group per attempt, which the
  scheduler scans on every submission -- quadratic in a run's tasks -- and a prefix per
  attempt, which it keeps forever.) Sent with no Dask retries (plait owns retries) and as
  its priority the job's place in plait's ready queue (its ``priority``, then its
  critical-path rank), so Dask agrees with plait when it does have a choice.
- **The function** is :func:`_run_attempt` on the worker (``plait.executors._dask_worker``):
  the attempt guard, then :func:`~plait.executors.run_call` with the
  :class:`~plait.executors.TaskCall` the engine made. It returns the output (wrapped with the
  attempt's log lines when it logged anything), or a :class:`_Failed` around a portable
  :class:`~plait.executors.Outcome`: returned, not raised, and told apart by the result's
  type, which Dask reports to the client without the data.
- **The attempt guard.** Dask runs a task again when its worker dies mid-task (up to the
  cluster's ``allowed-failures``). plait must not run an attempt's body twice: the retry is its
  own decision, counted and recorded. So a second execution fails with
  :class:`plait.WorkerLostError`, which plait's retry policy treats as any failure. It is told
  apart by a scheduler plugin at no cost per attempt, or, where the scheduler cannot load
  plait, by a lock per attempt (a round trip each); see :mod:`plait.executors._dask_guard`.
- **Cancellation** of an attempt not sent yet (submitted, waiting for its batch) is free: it
  never reaches the cluster, and ends as cancelled. Of one sent, it is cooperative:
  :meth:`DaskExecutor.cancel` sets a Dask ``Event`` named after
  the attempt, which the worker reads as ``ctx.cancelled`` (at most every
  :data:`CANCEL_CHECK_SECONDS`: each read past that is a round trip to the scheduler). An
  attempt past its timeout or its grace period is settled by the engine whatever the worker
  does; after :meth:`DaskExecutor.abandon` its late result is dropped unread when it comes (the
  cancel ``Event`` stays set until then, for the worker to see).
  **Dask cannot stop one running task** short of restarting its worker (``client.restart`` or
  the nanny), which would take every other task of that worker with it: a task that never looks
  at ``ctx.cancelled`` keeps its worker thread until it returns.
- **A lost worker**: the attempt fails with ``WorkerLostError`` -- raised by the guard when Dask
  runs it again, or made from Dask's ``KilledWorker`` once the cluster's ``allowed-failures``
  are used up -- and other tasks go on.
- **Logs while it runs**: the worker sends the attempt's lines in batches as it says them, as
  events of a topic of this executor's own (``plait-logs/{session}``), which its client
  subscribes to when a run starts; :meth:`DaskExecutor._lines_came` hands each batch to the
  settling thread, which keeps it in the attempt's log (``job.logged``) -- before the outcome,
  whose result carries only the lines not sent yet. A task that logs nothing sends no event.
  The scheduler keeps the last ``distributed.admin.low-level-log-length`` (1,000) events of a
  topic, at most 64 KiB of text each. Lines said less than 0.1 s before a worker dies are lost
  with it (the rest are in the log).
- **Settling**: a future's end is heard on the client's event loop, which fetches what the
  engine must see -- an error, the log lines, the output unless it stays on the cluster --
  without blocking; then the executor's settling thread calls ``job.complete``. Not the loop
  itself: settling starts the next tasks, and one of them may need to fetch a Dask output
  (a task on another executor), which would wait forever on the loop that delivers it.

Data stays on the cluster when the engine lets it (see :class:`DaskOutput`): a finished
attempt's output is a handle on its future, a dependent task on the same cluster receives the
future itself (Dask moves the data worker to worker), and the value comes to the orchestrator
only when something there reads it.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import threading
import time
import uuid
from queue import SimpleQueue
from typing import TYPE_CHECKING, Any

from .._exceptions import TaskCancelledError
from .._logs import LogLine
from ._base import Executor, Job, Outcome, TaskCall
from ._dask_batch import _Sending
from ._dask_output import DaskOutput, _lost, _quietly, _Submitted, _SubmittedAttempts, _type_name
from ._dask_window import MAX_PREFETCH, PREFETCH, SHORT_ROUND_SECONDS, Window
from ._dask_worker import (
    CANCEL_CHECK_SECONDS,
    _cancel_name,
    _Failed,
    _lines_of,
    _unwrap,
    key_of_event,
    lines_of_event,
    logs_topic,
)

if TYPE_CHECKING:
    from distributed import Client

__all__ = [
    "CANCEL_CHECK_SECONDS",
    "MAX_PREFETCH",
    "PREFETCH",
    "SHORT_ROUND_SECONDS",
    "DaskExecutor",
    "DaskOutput",
]


#: On the settling queue: send the attempts submitted since the last send.
_SEND = "send"

_Item = tuple[Job, Outcome | list[LogLine]] | str | None


class DaskExecutor(_Sending, Executor):
    """Runs tasks on a Dask cluster through a ``distributed.Client`` (see the module docstring).

    Args:
        client: a synchronous ``distributed.Client`` (the executor never closes a client it was
            given), or the scheduler's address (``"tcp://10.0.0.5:8786"``): the executor then
            connects on first use, with a client of its own that :meth:`shutdown` closes (what
            ``plait run --dask ADDRESS`` and ``executors: {name: {dask: ADDRESS}}`` in workflow
            files do).
        capacity: how many attempts may be on the cluster at once (the implicit pool the
            engine keeps), fixed; default: a window that adapts between :data:`PREFETCH` (2)
            and :data:`MAX_PREFETCH` (8) per worker thread of the cluster (read when first
            needed), wide while attempts are short (see the module docstring). Past the
            threads, attempts wait on the cluster, where plait's order and cheap
            cancellation do not reach, and their timeouts run.
        keep_outputs: leave outputs on the cluster (as :class:`DaskOutput`) when the engine
            allows it; False gathers every output as its attempt ends.
    """

    def __init__(
        self, client: Client | str, *, capacity: int | None = None, keep_outputs: bool = True
    ) -> None:
        if capacity is not None and capacity < 1:
            raise ValueError(
                f"capacity must be at least 1 (or None: a window of {PREFETCH} to "
                f"{MAX_PREFETCH} per worker thread of the cluster), not {capacity!r}"
            )
        self.address = client if isinstance(client, str) else None
        self._client: Any = None if isinstance(client, str) else client  # distributed: untyped
        self._owns_client = isinstance(client, str)
        self.keep_outputs = keep_outputs
        self._session = uuid.uuid4().hex[:8]
        self._lock = threading.Lock()
        self._submitted = _SubmittedAttempts()
        self._capacity = capacity
        self._window: Window | None = None  # sized when first needed
        # Outcomes to settle, lines said while attempts run (see _lines_came), in order, and
        # the word to send what was submitted meanwhile.
        self._settling: SimpleQueue[_Item] = SimpleQueue()
        self._pending: list[tuple[_Submitted, tuple[Any, ...]]] = []  # submitted, not sent
        self._send_asked = False  # a _SEND is on the settling queue for what is pending
        self._settler: threading.Thread | None = None  # started by the first submit
        self._fetching: set[asyncio.Future[None]] = set()  # on the client's loop
        self._locked: bool | None = None  # the attempt guard is a lock; None: not known yet
        self._listening: Any = None  # the client subscribed to this executor's logs topic

    @property
    def client(self) -> Client:
        """The ``distributed.Client`` tasks are submitted through (connected on first use when
        the executor was given an address)."""
        client: Client = self._client if self._client is not None else self._connect()
        return client

    def _connect(self) -> Any:
        with self._lock:
            if self._client is None:
                try:
                    from distributed import Client  # noqa: PLC0415 - the optional extra
                except ImportError as error:  # pragma: no cover - the extra is missing
                    raise ImportError(
                        f"running tasks on Dask ({self.address!r}) needs dask.distributed: "
                        "pip install 'plait[dask]'"
                    ) from error
                try:
                    self._client = Client(self.address, set_as_default=False)  # type: ignore[no-untyped-call]
                except (OSError, TimeoutError) as error:
                    raise ConnectionError(
                        f"could not reach the Dask scheduler at {self.address!r} ({error}); "
                        "start one (`dask scheduler`) or check the address"
                    ) from error
            return self._client

    def __repr__(self) -> str:
        where = self.address or getattr(self._client.scheduler, "address", "?")
        size = "?" if self._window is None else self._window.size
        return f"<DaskExecutor {where} capacity={size}>"

    @property
    def capacity(self) -> int:
        """How many attempts may be on the cluster at once now: the ``capacity`` given, or the
        adaptive window, between :data:`PREFETCH` and :data:`MAX_PREFETCH` times the cluster's
        total worker threads (read once, when first asked)."""
        return (self._window or self._size_window()).size

    @property
    def widest(self) -> int:
        """The most attempts the window lets on the cluster at once: the ``capacity`` given,
        or :data:`MAX_PREFETCH` per worker thread (``plait run --dask`` makes it the run's
        ``max_concurrency``)."""
        return (self._window or self._size_window()).widest

    def _size_window(self) -> Window:
        if self._capacity is not None:
            self._window = Window.fixed(self._capacity)
            return self._window
        client: Any = self.client
        threads = sum(client.nthreads().values())
        if threads < 1:
            raise RuntimeError(
                f"the Dask cluster at {client.scheduler.address!r} has no workers; "
                "start some (`dask worker ADDRESS`) before running tasks on it"
            )
        self._window = Window.for_threads(threads)
        return self._window

    def key_of(self, task_call: TaskCall) -> tuple[str, str, int, str]:
        """The Dask key of one attempt: ``("plait-{run_id}", task_id, attempt, session)``
        (the worker finds the executor's logs topic by the session, last: see ``logs_topic``)."""
        return (f"plait-{task_call.run_id}", task_call.task_id, task_call.attempt, self._session)

    def start(self, loop: asyncio.AbstractEventLoop) -> None:
        self._prepare()
        if self._window is not None:  # a run starts narrow: it learns its own attempts' length
            self._window.size = self._window.narrowest

    def _prepare(self) -> None:
        """Connect, and install the attempt guard on the scheduler (once per executor)."""
        if self._client is None:
            self._connect()
        if self._locked is None:
            from . import _dask_guard  # noqa: PLC0415 - imports distributed

            self._locked = not _dask_guard.install(self._client)
        if self._listening is not self._client:
            self._client.subscribe_topic(logs_topic(self._session), self._lines_came)
            self._listening = self._client

    def _lines_came(self, event: Any) -> None:
        """A batch of lines an attempt said on a worker, as an event of this executor's topic
        (on the client's event loop): to the settling thread, which keeps them in the attempt's
        log before it settles the attempt. Lines of an attempt already settled are dropped."""
        key = key_of_event(event)
        with self._lock:
            found = self._submitted.with_key(key)
        if found is not None:
            self._settling.put((found.job, lines_of_event(event, found.task_id, found.attempt)))

    def submit(self, job: Job) -> None:
        if self._settler is None:
            self._start_settler()
        if self._locked is None:  # not started by a run: a caller of the interface's own
            self._prepare()
        try:
            task_call = job.call()
        except Exception as error:  # e.g. a BindingError: the attempt fails
            # Not from here (the engine holds its lock while it submits): the settling thread.
            self._settling.put((job, Outcome(error=error)))
            return
        inputs: dict[str, Any] = {}
        kwargs = task_call.kwargs
        for name, value in kwargs.items():
            if type(value) is DaskOutput and value.kept_by(self):
                inputs[name] = value.future
        if inputs:
            rest = {name: value for name, value in kwargs.items() if name not in inputs}
            task_call = dataclasses.replace(task_call, kwargs=rest)
        key = self.key_of(task_call)
        submitted = _Submitted(job, key, None, task_call.task_id, task_call.attempt)
        args = (task_call, inputs, key, self._locked)
        with self._lock:
            self._submitted.add(submitted)
            self._pending.append((submitted, args))
            send = self._send_due()
        if send:  # the settling thread sends the batch once it has settled what came before
            self._settling.put(_SEND)

    def _send_due(self, *, now: bool = False) -> bool:
        """Whether to ask the settling thread to send the attempts waiting (under the lock):
        once per batch, and, while the window is wide, only once enough of the attempts out
        have come back (see ``Window.sends``), or ``now``."""
        if self._send_asked or not self._pending:
            return False
        window = self._window
        out = len(self._submitted) - len(self._pending)
        if now or window is None or window.sends(out):
            self._send_asked = True
            return True
        return False

    def cancel(self, job: Job) -> None:
        with self._lock:
            submitted = self._submitted.get(job)
            if submitted is None or submitted.cancel_set:
                return
            submitted.cancel_set = True
            if submitted.future is None:  # not sent yet: it never will be (see _send)
                if self._send_due(now=True):  # which ends it as cancelled
                    self._settling.put(_SEND)
                return
        self._set_cancel(submitted)

    def abandon(self, job: Job) -> None:
        # Kept until it ends, unread: its cancel Event must stay set while the worker may
        # still look at it, and releasing the future of a running task would not stop it.
        # Its late result is dropped (and so released) when it comes; see _ended.
        with self._lock:
            submitted = self._submitted.get(job)
            if submitted is not None:
                submitted.abandoned = True

    def shutdown(self, *, wait: bool = True) -> None:
        # Abandoned attempts still running stay watched (_ended clears their cancel Event when
        # they end: cleared now, a worker that has not looked yet would never see it). With a
        # client of our own, closed below, their Events stay on the scheduler (a few bytes).
        with self._lock:
            self._pending.clear()
            self._send_asked = False
            left = [s for s in self._submitted.values() if not s.abandoned or s.future is None]
            for submitted in left:
                self._submitted.pop(submitted.job)
        for submitted in left:
            if submitted.future is not None:
                self._forget(submitted)
                submitted.future.release()
        with self._lock:
            settler, self._settler = self._settler, None
        if settler is not None:
            self._settling.put(None)
            if wait and settler is not threading.current_thread():
                settler.join()
        if self._listening is not None:
            with contextlib.suppress(Exception):  # the client is closed already
                self._listening.unsubscribe_topic(logs_topic(self._session))
            self._listening = None
        if self._owns_client and self._client is not None:
            self._client.close()
            self._client = None  # connect again if used again

    def _forget(self, submitted: _Submitted) -> None:
        if submitted.cancel_set:  # the scheduler keeps a set event until it is cleared
            client = self._client
            with contextlib.suppress(RuntimeError):  # the client's loop has stopped
                client.loop.add_callback(
                    _quietly, client.scheduler.event_clear, _cancel_name(submitted.key)
                )

    def _start_settler(self) -> None:
        with self._lock:
            if self._settler is None:
                self._settler = threading.Thread(
                    target=self._settle, args=(self._settling,), name="plait-dask", daemon=True
                )
                self._settler.start()

    def _ended(self, job: Job, future: Any) -> None:
        """A submitted future ended (on the client's event loop): fetch what the engine must
        see, then hand the outcome to the settling thread."""
        with self._lock:
            submitted = self._submitted.pop(job)
            if submitted is not None and self._window is not None:  # before the engine reads it
                self._window.adapt(time.monotonic() - submitted.sent)
            send = self._send_due()
        if send:
            self._settling.put(_SEND)
        if submitted is None:
            return
        self._forget(submitted)
        if submitted.abandoned or job.abandoned:
            return  # the engine has settled it already: its result is dropped unread
        kind = _type_name(future.type) if future.status == "finished" else None
        if kind is not None and kind not in ("_Failed", "_Logged") and self._keeps(job):
            self._settling.put((job, Outcome(output=DaskOutput(future))))
        else:
            fetch = asyncio.ensure_future(self._fetch(job, submitted, kind))
            self._fetching.add(fetch)  # asyncio keeps only a weak reference to a task
            fetch.add_done_callback(self._fetching.discard)

    def _keeps(self, job: Job) -> bool:
        """Whether ``job``'s output may stay on the cluster (the engine says so, and we may)."""
        return self.keep_outputs and bool(getattr(job, "keeps_remote_output", False))

    async def _fetch(self, job: Job, submitted: _Submitted, kind: str | None) -> None:
        """Fetch the outcome of an attempt from the cluster (on the client's event loop)."""
        future = submitted.future
        try:
            if kind == "_Failed":
                failed: _Failed = await future._result()
                outcome = failed.outcome
            elif kind == "_Logged" and self._keeps(job):  # the lines, fetched without the data
                lines_of = self._client.submit(_lines_of, future, pure=False)
                outcome = Outcome(output=DaskOutput(future), logs=await lines_of._result())
            elif kind is not None:
                result = await future._result()
                outcome = Outcome(output=_unwrap(result), logs=_lines_of(result))
            elif future.status == "cancelled" and job.cancelled:
                outcome = Outcome(error=TaskCancelledError(f"{submitted.describe()} was cancelled"))
            else:
                # KilledWorker (its worker died more often than the cluster's allowed-failures),
                # a future cancelled by someone else, an error in Dask's own machinery.
                outcome = Outcome(error=_lost(submitted, await future._exception()))
        except Exception as error:  # the cluster failed us while fetching: a lost worker
            outcome = Outcome(error=_lost(submitted, error))
        self._settling.put((job, outcome))

    def _settle(self, settling: SimpleQueue[_Item]) -> None:
        """The settling thread: report outcomes to the engine and keep lines in their logs, in
        the order they came, and send the attempts submitted meanwhile.

        Not the client's event loop: settling takes the engine's lock and may start the next
        tasks, and a task elsewhere may fetch a Dask output while it starts, which must not
        wait on the loop that would deliver it. The attempts that settling several outcomes
        starts go to the cluster together (see ``_send``)."""
        get = settling.get
        while (item := get()) is not None:
            if not isinstance(item, tuple):  # _SEND
                self._send()
                continue
            job, outcome = item
            if isinstance(outcome, list):  # lines it said while it ran: its log, abandoned or not
                job.logged(outcome)
            elif not job.abandoned:
                job.complete(outcome)
