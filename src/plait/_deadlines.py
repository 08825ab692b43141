"""Deadlines: task timeouts, the cancel grace period, and the gate of a durable run's lease.

- *Timeouts*: running attempts' deadlines wait in one queue per timeout length (so each queue is
  in deadline order as attempts start); one timer on the loop serves the earliest. An async
  attempt's deadline is queued only once it suspends (see :class:`_DriverWatch`): until then
  it holds the loop, and no timer could fire. An async attempt that times out is cancelled (it
  settles as timed out); a sync one is flagged
  (``ctx.cancelled``, and :meth:`~plait.executors.Executor.cancel`) and abandoned at once: its
  executor frees the slot, and its late outcome is ignored.
- *Grace*: when the run halts, sync attempts are flagged and given ``cancel_grace`` seconds; then
  they are abandoned.
- *The gate*: a durable run starts a task only before its *gate*, the earlier of the lease's
  deadline and the moment the store stalled (a call failed, or has taken ``STALL_SECONDS``),
  both on ``lease_clock`` (the recorder keeps them up to date). Past the lease's deadline the
  run stops -- a timer on the loop stops it then too, and cancels what runs; past a stall, new
  tasks wait until the store answers. Dispatch compares the clock with the gate every time, so
  even a worker thread that wakes before the loop after a SIGSTOP starts nothing late.
"""

from __future__ import annotations

import math
import time
from collections import deque

from ._attempt import _Attempt
from ._exceptions import TaskCancelledError
from ._lease import lease_clock
from ._run_state import _RunState

__all__: list[str] = []

#: How many deadlines one queue holds before those of ended attempts behind a running one are
#: dropped.
_PRUNE_AT = 1024


class _DriverWatch:
    """What one async driver (``_Run._drive``) runs now, for the deadline of an attempt that
    suspends.

    An async attempt that never suspends holds the loop from its start to its end: no timer can
    fire meanwhile, so it cannot time out, and queueing its deadline is wasted work (a tenth of
    an async no-op task's whole call: a clock read, the queue entry, and the collector passes
    its tuples caused; 83.5k -> 75.0k instructions per task of a 2,000-task chain, callgrind).
    So the driver only notes the attempt and when it started (the clock it read
    as the previous one settled: no read of its own); a callback it schedules on the loop (one
    pending at a time) runs once the driver's Task has given the loop back -- the attempt
    suspended, or the driver let others run between attempts -- and queues the deadline of the
    attempt it finds still running, from its start. A driver whose attempt suspended turns
    *eager*: it queues the deadlines of the next ones as it takes them, as the sync path does,
    rather than pay a callback per suspension; it turns lazy again when it next lets others run.
    """

    __slots__ = ("attempt", "eager", "pending", "queued", "started")

    def __init__(self) -> None:
        self.attempt: _Attempt | None = None  # the attempt it last started while lazy
        self.started = 0.0  # when that attempt started, on time.time()
        self.pending = False  # a callback to look at it is scheduled
        self.eager = False  # it queues its attempts' deadlines as it takes them
        self.queued: _Attempt | None = None  # taken while eager, started lazy: queued already


class _Deadlines(_RunState):
    """Timeouts, grace and the lease's gate; part of :class:`plait._engine._Run`."""

    # -- timeouts ------------------------------------------------------------------------------

    def _watch_deadline(
        self, timeout: float, attempt: _Attempt, in_loop: bool, started: float | None = None
    ) -> None:
        """Remember when ``attempt`` times out, ``timeout`` seconds after it ``started`` (on
        ``time.monotonic()``; default: now); one loop timer serves the earliest deadline."""
        deadline = (time.monotonic() if started is None else started) + timeout
        queue = self._deadlines.get(timeout)
        if queue is None:
            queue = self._deadlines[timeout] = deque()
        if started is None or not queue or queue[-1][0] <= deadline:
            queue.append((deadline, attempt))
        else:  # queued late, from an earlier start (a suspended async attempt): into its place
            k = len(queue)
            while k and queue[k - 1][0] > deadline:
                k -= 1
            queue.insert(k, (deadline, attempt))
        current = self.current
        # Ended attempts are dropped from the head at once: kept queued, they would outlive the
        # young generation and make the collector's full passes over a big run more frequent.
        head = queue[0][1]
        while current[head.index] is not head:
            queue.popleft()  # that attempt already ended
            head = queue[0][1]
        if len(queue) > _PRUNE_AT and len(queue) > 4 * self.scheduler.running:
            # A long attempt at the head keeps ended ones behind it: drop those.
            self._deadlines[timeout] = deque(e for e in queue if current[e[1].index] is e[1])
        if deadline < self._armed_deadline:
            self._armed_deadline = deadline
            if in_loop:
                self._arm_deadline_timer()
            else:
                self._loop.call_soon_threadsafe(self._arm_deadline_timer_locked)

    def _watch_suspended(self, watch: _DriverWatch) -> None:
        """The loop runs while an async driver had an attempt going: if it has not ended, it
        suspended, and its deadline is queued now (loop thread; see :class:`_DriverWatch`)."""
        watch.pending = False
        attempt = watch.attempt
        if attempt is None:
            return
        i = attempt.index
        timeout = self.timeout[i]
        with self.lock:
            if self.current[i] is attempt and not self._closed:
                watch.eager = True
                if timeout is not None and attempt is not watch.queued:
                    # its start, moved from time.time() to time.monotonic()
                    started = time.monotonic() - (time.time() - watch.started)
                    self._watch_deadline(timeout, attempt, True, started)

    def _arm_deadline_timer_locked(self) -> None:
        with self.lock:
            self._arm_deadline_timer()

    def _arm_deadline_timer(self) -> None:
        current = self.current
        earliest = math.inf
        for queue in self._deadlines.values():
            while queue and current[queue[0][1].index] is not queue[0][1]:
                queue.popleft()  # that attempt already ended
            if queue:
                earliest = min(earliest, queue[0][0])
        if self._deadline_timer is not None:
            self._deadline_timer.cancel()
            self._deadline_timer = None
        self._armed_deadline = earliest
        if earliest < math.inf:
            self._deadline_timer = self._loop.call_at(
                self._loop.time() + (earliest - time.monotonic()), self._expire_deadlines
            )

    def _expire_deadlines(self) -> None:
        """The earliest deadline passed: time out every attempt whose deadline has (loop)."""
        with self.lock:
            self._deadline_timer = None
            now = time.monotonic()
            for queue in self._deadlines.values():
                while queue and queue[0][0] <= now:
                    _, attempt = queue.popleft()
                    if self.current[attempt.index] is attempt:
                        self._time_out(attempt)
            self._arm_deadline_timer()
            self._dispatch(in_loop=True)
            self._resolve_if_finished(in_loop=True)

    def _time_out(self, attempt: _Attempt) -> None:
        attempt.timed_out = True
        executor = self.executor_of[attempt.index]
        if executor is None:
            self._cancel_async(attempt, in_loop=True)  # it settles, as a timeout
        else:
            attempt.cancelled = True
            executor.cancel(attempt)
            self._abandon(attempt)

    def _abandon(self, attempt: _Attempt) -> None:
        """Stop waiting for a sync attempt; it keeps its thread until it returns, unheard."""
        attempt.abandoned = True
        executor = self.executor_of[attempt.index]
        assert executor is not None  # an attempt on the loop is cancelled, never abandoned
        executor.abandon(attempt)
        if not attempt.timed_out and not isinstance(attempt.error, TaskCancelledError):
            attempt.error = TaskCancelledError(
                f"task {self.graph.ids[attempt.index]!r} did not stop within the cancel grace "
                f"period of {self.config.cancel_grace}s"
            )
        self._settle(attempt, in_loop=True)

    # -- grace ---------------------------------------------------------------------------------

    def _start_grace_timer(self, grace: float) -> None:
        if self._grace_timer is None:
            self._grace_timer = self._loop.call_later(grace, self._grace_over)

    def _grace_over(self) -> None:
        with self.lock:
            executor_of = self.executor_of
            for attempt in self.current:
                if attempt is not None and executor_of[attempt.index] is not None:
                    self._abandon(attempt)
            self._resolve_if_finished(in_loop=True)

    # -- the gate: the lease and the store -----------------------------------------------------

    def _gate_closed(self, in_loop: bool) -> bool:
        """The clock passed the gate: stop the run if the lease's deadline passed, else hold new
        tasks until the stalled store call succeeds. Whether nothing may start. Under the lock."""
        if lease_clock() >= self.lease_deadline:
            self._stop_for_lease(in_loop=in_loop)
            return True
        self._holding = True
        # Read the gate again: the recorder moves it, then reads _holding (the other order).
        if lease_clock() < self.gate:
            self._holding = False
            return False
        return True

    def _stop_for_lease(self, *, in_loop: bool) -> None:
        if self.store_failure is None and self.recorder is not None:
            self.store_failure = self.recorder.lease.error()
            self._halt(in_loop=in_loop)

    def lease_renewed(self, deadline: float) -> None:
        """The recorder renewed the lease until ``deadline`` (from its thread)."""
        self.lease_deadline = deadline
        self.gate = min(deadline, self._stall)
        self._loop.call_soon_threadsafe(self._gate_moved)

    def store_stalls(self, at: float | None) -> None:
        """Start nothing from ``at`` on until the store answers; None: it answered (recorder
        thread)."""
        self._stall = stall = math.inf if at is None else at
        self.gate = min(self.lease_deadline, stall)
        if at is None and self._holding:
            self._loop.call_soon_threadsafe(self._gate_moved)

    def _gate_moved(self) -> None:
        """The lease was renewed or the store answered: re-arm the timer, let tasks start."""
        with self.lock:
            if self._closed:
                return
            self._arm_lease_timer()
            if self._holding and lease_clock() < self.gate:
                self._holding = False
                self._dispatch(in_loop=True)
                self._resolve_if_finished(in_loop=True)

    def _arm_lease_timer(self) -> None:
        if self._lease_timer is not None:
            self._lease_timer.cancel()
        delay = max(0.0, self.lease_deadline - lease_clock())
        self._lease_timer = self._loop.call_later(delay, self._lease_expired)

    def _lease_expired(self) -> None:
        """The lease's deadline passed with no renewal: stop the run (loop thread)."""
        with self.lock:
            self._lease_timer = None
            if self._closed:
                return
            if lease_clock() < self.lease_deadline:  # renewed meanwhile
                self._arm_lease_timer()
                return
            self._stop_for_lease(in_loop=True)
            self._resolve_if_finished(in_loop=True)
