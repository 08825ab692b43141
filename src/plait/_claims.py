"""Who owns a run: the runs live in this process, and the lease on a run in its store.

A run is owned by one process at a time through a lease that its recorder renews while the run is
live (see ``plait._lease``). Another process claims it -- takes the lease over -- to resume,
answer or cancel it once the lease has expired, or at once with ``force=True`` when the owner is
known to be dead; while the lease is live the claim is refused with ``LeaseHeldError``, which
says who holds it and until when. A run live in this process is reached through ``_live_runs``,
without its store.
"""

from __future__ import annotations

import os
import socket
import time
import uuid
import weakref
from typing import TYPE_CHECKING

from .stores import LeaseHeldError, RunRecord, Store

__all__ = ["LEASE_SECONDS"]

if TYPE_CHECKING:
    from ._engine import _Run

#: Seconds a lease lasts when no run's settings say (``EngineConfig.lease_seconds`` does for
#: runs): what answering a paused run claims it for.
LEASE_SECONDS = 30.0

# Runs live in this process, so that answer() can reach them without the store.
_live_runs: weakref.WeakValueDictionary[str, _Run] = weakref.WeakValueDictionary()


def _owner() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


def _lease_held(run_id: str, owner: str, until: float) -> LeaseHeldError:
    return LeaseHeldError(
        f"run {run_id!r} is being run by {owner} (its lease lasts until "
        f"{time.strftime('%Y-%m-%d %H:%M:%S UTC', time.gmtime(until))}); wait for it "
        "to finish or pause, or pass force=True if that process is dead",
        owner,
        until,
    )


def _claim(store: Store, run_id: str, *, force: bool, lease_seconds: float = LEASE_SECONDS) -> str:
    """Make a new owner of this process hold the run's lease; return the owner's id."""
    owner = _owner()
    try:
        store.claim(run_id, owner, lease_seconds=lease_seconds, force=force)
    except LeaseHeldError as error:
        raise _lease_held(run_id, error.owner, error.until) from None
    return owner


def _refuse_if_owned(store: Store, record: RunRecord) -> None:
    """Raise LeaseHeldError if another process's lease on the run is live."""
    until = record.lease_expires_at
    if record.owner is not None and until is not None and until > time.time():
        raise _lease_held(record.run_id, record.owner, until)
