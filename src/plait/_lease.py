"""A run's lease as its owner keeps it, and the store calls made under it.

The owner renews the lease in the store every third of ``lease_seconds`` (the recorder's writer
thread does). It also keeps its own deadline on :func:`lease_clock` -- a monotonic clock that
keeps counting while the process is stopped or the machine sleeps: the start of its last
successful renewal plus 90 % of the lease (:data:`LEASE_MARGIN`: the store stamped the expiry
later than that start, and the rest is time to cancel what runs). The engine starts no task past
that deadline, and a timer stops the run when it passes (:meth:`Lease.error` says why). A store
that says another process owns the run (:class:`LeaseLostError`) stops it too. The store's
fencing is the second line: a write by an owner that lost the run is refused, so nothing it does
later is recorded.

Every store call of a run goes through :meth:`Lease.call`. One that fails with
:class:`StoreUnavailableError` (SQLite locked, a PostgreSQL connection dropped) is retried with
backoff (:data:`RETRY_DELAYS`) for as long as the lease holds; writing a batch again is safe,
since each has its own key (``WriteBatch.key``). Meanwhile the engine starts nothing: the lease
tells it (``on_stall``) from when to hold new tasks -- at once when a call failed, and
:data:`STALL_SECONDS` after a call began if it has not come back by then -- and when a call
succeeded. If the deadline comes first, the call raises :class:`StoreUnavailableError`: the run
stops.
"""

from __future__ import annotations

import functools
import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from .stores import LeaseLostError, Store, StoreError, StoreUnavailableError

__all__ = ["LEASE_MARGIN", "RETRY_DELAYS", "STALL_SECONDS", "Lease", "lease_clock"]

#: The share of its lease that an owner does not use: it starts nothing once 90 % of the lease
#: has passed since the start of its last renewal.
LEASE_MARGIN = 0.1

#: Seconds a store call may take before the engine stops starting tasks until it succeeds (a
#: write normally takes milliseconds; a big one, a tenth of a second).
STALL_SECONDS = 0.5

#: Seconds between tries of a store call that failed with StoreUnavailableError; the last
#: delay repeats until the lease's deadline.
RETRY_DELAYS = (0.05, 0.1, 0.2, 0.5, 1.0)

#: Seconds on a clock that never jumps and keeps counting while the process is stopped or the
#: machine is suspended (CLOCK_BOOTTIME; ``time.monotonic`` where there is none): a lease
#: deadline on a clock that paused during a suspend would let an owner start tasks after its
#: lease expired in the store.
lease_clock: Callable[[], float] = (
    functools.partial(time.clock_gettime, time.CLOCK_BOOTTIME)
    if hasattr(time, "CLOCK_BOOTTIME")
    else time.monotonic
)

_log = logging.getLogger("plait.store")


class Lease:
    """One owner's lease on one run, and the calls it makes to the store under it.

    Thread contract: :meth:`call` and :meth:`renew` run on the recorder's writer thread;
    :meth:`error` and the attributes may be read from any thread. ``on_renewed`` and
    ``on_stall`` are called from the writer thread, until :attr:`silent` is set (the run is
    over: the engine's loop may be gone).

    Args:
        store, run_id, owner: whose lease, on what.
        seconds: the lease's length (``EngineConfig.lease_seconds``).
        start: when (on :func:`lease_clock`) the lease was taken: just before the run was
            created or claimed.
        on_renewed: called with the new :attr:`deadline` after each renewal.
        on_stall: called with the time from which the engine must start no task until the
            store answers, and with None once a call succeeded.
    """

    def __init__(
        self,
        store: Store,
        run_id: str,
        owner: str,
        *,
        seconds: float,
        start: float,
        on_renewed: Callable[[float], None],
        on_stall: Callable[[float | None], None],
    ) -> None:
        self.store = store
        self.run_id = run_id
        self.owner = owner
        self.seconds = seconds
        self.renewed_at = start
        #: The owner's own deadline, on lease_clock: it starts nothing from then on.
        self.deadline = start + seconds * (1 - LEASE_MARGIN)
        self._on_renewed = on_renewed
        self._on_stall = on_stall
        #: Set when the run is over: the engine is not told anything any more.
        self.silent = False
        #: Set when the run stopped waiting for the writer: retries end at once.
        self.abandoned = threading.Event()
        self.calling_since: float | None = None  # lease_clock time the current call began
        self.trouble: StoreUnavailableError | None = None  # the failure being retried

    @property
    def due(self) -> bool:
        """Whether a renewal is due (a third of the lease passed since the last one)."""
        return lease_clock() >= self.renewed_at + self.seconds / 3

    def renew(self) -> None:
        """Renew the lease in the store (retrying, see :meth:`call`); move the deadline."""
        began = self.call(
            lambda: self.store.renew(self.run_id, self.owner, lease_seconds=self.seconds)
        )
        self.renewed_at = began
        self.deadline = began + self.seconds * (1 - LEASE_MARGIN)
        self._tell(self._on_renewed, self.deadline)

    def call(self, call: Callable[[], None], *, retry: bool = True) -> float:
        """Make a store call; retry it with backoff while it fails with StoreUnavailableError
        and the lease holds. Returns when (on lease_clock) the try that succeeded began.

        Raises:
            StoreUnavailableError: the deadline came first (or not ``retry``), made by
                :meth:`unavailable`.
            StoreError: any other failure of the store, as it came.
        """
        delays = iter(RETRY_DELAYS)
        delay = 0.0
        self.calling_since = first = lease_clock()
        self._tell(self._on_stall, first + STALL_SECONDS)
        while True:
            began = lease_clock()
            try:
                call()
            except StoreUnavailableError as error:
                self.trouble = error
                self._tell(self._on_stall, lease_clock())  # nothing can be recorded: start nothing
                delay = next(delays, delay)
                if not retry or lease_clock() + delay >= self.deadline:
                    raise self.unavailable(error, first) from error
                _log.warning(
                    "run %r: store unavailable, retrying in %gs: %s", self.run_id, delay, error
                )
                if self.abandoned.wait(delay):
                    raise self.unavailable(error, first) from error
                continue
            self.trouble = None
            self.calling_since = None
            self._tell(self._on_stall, None)
            return began

    def error(self) -> LeaseLostError | StoreUnavailableError:
        """Why the deadline passed without a renewal: the store failed, or did not answer, or
        (the store being fine) this process did not run in time -- it was stopped (SIGSTOP),
        suspended, or starved."""
        since, trouble = self.calling_since, self.trouble
        if trouble is not None or since is not None:  # a store call failed, or is not over
            return self.unavailable(trouble, since)
        return LeaseLostError(
            f"plait lost run {self.run_id!r}: its lease was last renewed "
            f"{lease_clock() - self.renewed_at:.1f}s ago and lasts {self.seconds:g}s, so "
            "another process may have taken the run over; this process started nothing more "
            "and cancelled its running tasks",
            run_id=self.run_id,
        )

    def unavailable(
        self, error: BaseException | None, since: float | None = None
    ) -> StoreUnavailableError:
        """The error a run stops with when its store cannot record it (``error``: the store's
        last one, if any; ``since``: when the failing call began)."""
        if isinstance(error, StoreUnavailableError) and error.run_id == self.run_id:
            return error  # made here already
        if error is not None and not isinstance(error, StoreError):
            what = f"{type(error).__name__}: {error}"
        else:
            what = str(error) if error is not None else "it did not answer"
        waited = "" if since is None else f" for {lease_clock() - since:.1f}s"
        unavailable = StoreUnavailableError(
            f"run {self.run_id!r} stopped: its store could not record it{waited} ({what}); "
            "nothing more was started, and the running tasks were cancelled",
            run_id=self.run_id,
        )
        unavailable.__cause__ = error
        return unavailable

    def lost(self, error: LeaseLostError) -> LeaseLostError:
        """The error a run stops with when the store says another process owns it."""
        owner = error.owner
        by = f": its owner is now {owner!r}" if owner else ": it has no owner now"
        lost = LeaseLostError(
            f"plait lost run {self.run_id!r}{by}; this process started nothing more, cancelled "
            "its running tasks, and recorded nothing after that",
            run_id=self.run_id,
            owner=owner,
        )
        lost.__cause__ = error
        return lost

    def _tell(self, callback: Callable[[Any], None], value: Any) -> None:
        if not self.silent:
            callback(value)
