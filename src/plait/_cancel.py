"""Cancelling a run from anywhere: :func:`cancel` (and ``plait cancel``, which calls it).

What a cancel does depends on where the run is:

- **Live** (its owner holds its lease -- this process, another one, another host): a ``cancel``
  request goes to the owner through the store (see ``plait._requests``). The owner stops the run
  as Ctrl-C would -- nothing new starts, running tasks are cancelled, shell commands' process
  groups are killed -- and records it ``cancelled``, with the request's outcome, in one write.
  No signal is sent to any process: a store row naming a PID is not proof of who owns it.
- **Not live** (paused, failed, or *stale*: recorded ``running`` while its owner's lease has run
  out): recorded ``cancelled`` here, with its unfinished tasks, under a lease of its own, so no
  resume can slip in meanwhile.
- **Gone quiet**: if a live owner lets its lease run out without answering (killed, frozen,
  cut off from the store), the run has become stale: it is recorded cancelled here, and its
  error says that the owner did not answer.

A run of the memory store lives only in its own process, and is stopped there directly.
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
import socket
import time

from ._claims import LEASE_SECONDS, _live_runs, _owner
from ._exceptions import CancelTimeoutError, NothingToCancelError
from ._public import publish_exports
from ._requests import RequestKind, RequestState, RunRequest, send, sender
from ._state import RunStatus, TaskStatus
from ._stored_runs import _record
from .stores import LeaseHeldError, RunRecord, RunUpdate, Store, WriteBatch, open_store
from .stores._open import opens_store

__all__ = ["cancel"]

#: Seconds between two looks at the store while waiting for a live owner to answer. The owner
#: itself looks for requests every ``plait._requests.POLL_INTERVAL`` (0.25 s).
_WAIT_STEP = 0.05


@opens_store
def cancel(
    run_id: str,
    *,
    store: Store | str | None = None,
    wait: bool = True,
    timeout: float | None = None,
) -> RunRecord:
    """Cancel run ``run_id``, wherever it runs; return its record (``cancelled`` once done).

    A live run is asked to stop through the store and stops within about a second, on any host
    that shares the store; a paused, failed or stale run is recorded cancelled at once (see the
    module docstring). The record's ``error`` says who cancelled it and how. Cancelling a
    cancelled run returns it as it is.

    Args:
        run_id: the run to cancel.
        store: the run's store (a :class:`~plait.stores.Store` or a URL; default as for
            :func:`plait.run`); one opened from a URL is closed on return.
        wait: wait until the run is recorded cancelled; False returns as soon as a live run's
            owner has been sent the request (the record returned is then still ``running``).
        timeout: the longest to wait for a live owner, in seconds; None waits until it answers
            or its lease runs out (then the run is stale, and is recorded cancelled here).

    Raises:
        RunNotFoundError: the store has no such run.
        NothingToCancelError: the run succeeded (perhaps while the request was on its way).
        CancelTimeoutError: the owner still holds its lease but did not answer within
            ``timeout``; the request stays pending, and the owner acts on it when it looks.
        RuntimeError: called with ``wait`` from a running event loop, which it would block.
    """
    if wait:
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            pass
        else:
            raise RuntimeError(
                "plait.cancel(..., wait=True) blocks until the run is recorded cancelled; from a "
                "running event loop, pass wait=False (or call it in a thread)"
            )
    the_store = open_store(store)
    live = _live_runs.get(run_id)
    if live is not None and not the_store.durable:  # a memory store's run: stop it directly
        live.stop(f"cancelled by plait.cancel in this process ({sender()})")
        if wait and not live.recorded.wait(timeout):
            raise CancelTimeoutError(
                f"run {run_id!r} did not stop within {timeout}s; its sync tasks may be "
                "ignoring ctx.cancelled",
                _record(the_store, run_id).owner or sender(),
            )
        return _record(the_store, run_id)
    deadline = None if timeout is None else time.monotonic() + timeout
    request: RunRequest | None = None
    while True:
        record = _record(the_store, run_id)
        if record.status is RunStatus.CANCELLED and (
            request is None or _live_owner(record) != request.owner
        ):  # recorded, and the owner let the run go (so a resume can take it at once)
            return record
        if record.status is RunStatus.SUCCEEDED:
            late = " before the cancel reached it" if request is not None else ""
            raise NothingToCancelError(
                f"run {run_id!r} succeeded{late}; there is nothing to cancel"
            )
        owner = _live_owner(record)
        if owner is None:  # paused, failed, stale or gone: no one else will record it
            try:
                cancelled = _record_cancelled(the_store, record, request)
            except LeaseHeldError:  # a process took the run meanwhile (a resume): ask it
                time.sleep(_WAIT_STEP)
                continue
            if cancelled is not None:
                return cancelled
            continue  # it ended meanwhile: look again
        if request is None or request.owner != owner:
            request = send(the_store, run_id, owner, RequestKind.CANCEL)
            if not wait:
                return record
        if deadline is not None and time.monotonic() >= deadline:
            raise CancelTimeoutError(
                f"run {run_id!r} is owned by {owner}, which did not record it cancelled within "
                f"{timeout}s although its lease is live; the cancel request stays pending and "
                "that process acts on it when it next looks. If it is frozen, it loses the "
                "run when its lease runs out: cancel again then",
                owner,
            )
        time.sleep(_WAIT_STEP)  # another process answers: only the store can tell when


def _live_owner(record: RunRecord) -> str | None:
    """The process that holds ``record``'s lease, or None when no live process does.

    An owner on this host whose process does not exist is dead, whatever its lease says (a
    PID that exists may belong to another process since: only the lease is trusted then).
    """
    until = record.lease_expires_at
    owner = record.owner
    if owner is None or until is None or until <= time.time():
        return None
    host, _, rest = owner.rpartition(":")[0].rpartition(":")  # "host:pid:nonce"
    pid = rest if host else ""
    if host == socket.gethostname() and pid.isdigit():
        try:
            os.kill(int(pid), 0)  # signal 0: only asks whether the process exists
        except ProcessLookupError:
            return None
        except PermissionError:
            pass  # it exists (another user's)
    return owner


def _record_cancelled(
    store: Store, record: RunRecord, request: RunRequest | None
) -> RunRecord | None:
    """Take the run, record it and its unfinished tasks cancelled, and let it go; return the
    record, or None if the run ended meanwhile (the caller looks again).

    Raises:
        LeaseHeldError: a live process took the run since ``record`` was read.
    """
    owner = _owner()
    until = record.lease_expires_at
    # Forced only when the lease is live but its process is known to be dead (_live_owner): a
    # lease that ran out is free to claim, and a racing resume then wins or loses atomically.
    dead = record.owner is not None and until is not None and until > time.time()
    claimed = store.claim(record.run_id, owner, lease_seconds=LEASE_SECONDS, force=dead)
    try:
        if claimed.status in (RunStatus.SUCCEEDED, RunStatus.CANCELLED):
            return None
        now = time.time()
        how = f"cancelled by plait.cancel from {sender()} (it was {claimed.status}"
        if claimed.status is not RunStatus.RUNNING:
            how += ")"
        elif request is not None:
            how += f"; its owner {request.owner} did not answer and its lease ran out: stale)"
        else:
            how += f", but its owner {record.owner or '(none)'} was gone: stale)"
        unfinished = [
            dataclasses.replace(task, status=TaskStatus.CANCELLED)
            for task in store.load_tasks(record.run_id).values()
            if not task.status.is_final
        ]
        done = []
        if request is not None:
            done.append(
                dataclasses.replace(
                    request,
                    state=RequestState.DONE,
                    done_at=now,
                    outcome=f"cancelled by {sender()}: the owner did not answer",
                )
            )
        store.write(
            record.run_id,
            owner,
            WriteBatch(
                run=RunUpdate(status=RunStatus.CANCELLED, finished_at=now, error=how),
                tasks=unfinished,
                requests_done=done,
            ),
        )
    finally:
        store.release(record.run_id, owner)
    return _record(store, record.run_id)


publish_exports(globals())  # plait.X, not plait._cancel.X: see plait._public
