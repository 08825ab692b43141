"""A shell command's process: started in a session of its own, its output captured, and its
whole process group cleared when it ends or is stopped -- the half of ``ShellTask`` that
leaves no process behind (the contract is in :mod:`plait._shell`'s docstring).

:func:`run_in_group` starts the command as the leader of a new session (so its own process
group), with stdin ``/dev/null``; keeps the last 64 KiB of its stdout and stderr and feeds both,
line by line, into the running attempt's log; and waits for it to exit. Cancelling the caller
only asks the job that looks after the process to stop it, then waits until it has: the group
gets ``SIGTERM``, then ``SIGKILL`` for whatever is left once the command and its pipes have
closed, or after ``_KILL_GRACE`` seconds; the command is reaped. Meanwhile the group is watched
(``_groups``), so it dies with plait however plait dies.
"""

from __future__ import annotations

import asyncio
import codecs
import contextlib
import os
import signal
import subprocess
from asyncio import FIRST_COMPLETED
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ._groups import forget_group, start_watchdog, watch_group
from ._log_capture import current_log
from ._logs import AttemptLog

__all__ = ["Finished", "run_in_group"]

_OUTPUT_LIMIT = 64 * 1024  # bytes kept of stdout, and of stderr
_KILL_GRACE = 2.0  # seconds between SIGTERM and SIGKILL
_DRAIN_GRACE = 0.5  # seconds to wait for pipes held open by a process outside the group


class _Capture(asyncio.SubprocessProtocol):
    """Collects the end of the command's stdout and stderr, and says when it exited and when
    its pipes closed (once every process holding them is gone).

    ``Process.wait()`` of ``asyncio.create_subprocess_exec`` waits for the pipes as well, so it
    cannot tell a command that exited from one whose leftover children still hold its output;
    this protocol on ``loop.subprocess_exec`` can.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop, log: AttemptLog | None) -> None:
        self.output = {1: bytearray(), 2: bytearray()}
        self.exited: asyncio.Future[None] = loop.create_future()
        self.closed: asyncio.Future[None] = loop.create_future()
        self._open = {1, 2}
        self._log = log
        # Text for the log as it comes; a character split between two reads waits for the rest.
        self._decoders = {fd: codecs.getincrementaldecoder("utf-8")("replace") for fd in (1, 2)}

    def pipe_data_received(self, fd: int, data: bytes) -> None:
        kept = self.output[fd]
        kept += data
        if len(kept) > _OUTPUT_LIMIT:
            del kept[:-_OUTPUT_LIMIT]
        if self._log is not None and fd in _STREAMS:
            self._log.write(_STREAMS[fd], self._decoders[fd].decode(data))

    def pipe_connection_lost(self, fd: int, exc: Exception | None) -> None:
        if self._log is not None and fd in _STREAMS:
            self._log.write(_STREAMS[fd], self._decoders[fd].decode(b"", final=True))
        self._open.discard(fd)
        if not self._open and not self.closed.done():
            self.closed.set_result(None)

    def process_exited(self) -> None:
        if not self.exited.done():
            self.exited.set_result(None)

    def text(self, fd: int) -> str:
        return self.output[fd].decode("utf-8", errors="replace")


_STREAMS = {1: "stdout", 2: "stderr"}


@dataclass(frozen=True, slots=True)
class Finished:
    """How a command ended: its exit status (negative: killed by that signal), and the last
    64 KiB of its stdout and of its stderr, decoded as UTF-8 (bad bytes replaced)."""

    returncode: int
    stdout: str
    stderr: str


async def run_in_group(
    argv: Sequence[str], *, cwd: Path | None, env: dict[str, str], run_id: str
) -> Finished:
    """Run ``argv`` in ``cwd`` with ``env`` (exactly) as a process group of its own, and wait
    for it to end; if cancelled, stop the whole group first (see the module docstring).

    Raises:
        OSError: the command could not be started (e.g. no such program, or no ``cwd``).
    """
    stop = asyncio.Event()
    # The process is looked after by a job that is never cancelled itself: cancelling this
    # task only asks the job to stop the process group, then waits for it to have done so.
    job = asyncio.ensure_future(_run(argv, cwd, env, stop, run_id))
    try:
        return await asyncio.shield(job)
    except asyncio.CancelledError:
        stop.set()
        await _wait_through_cancellation(job)
        raise


async def _run(
    argv: Sequence[str], cwd: Path | None, env: dict[str, str], stop: asyncio.Event, run_id: str
) -> Finished:
    """Start the command, wait for it to exit or for ``stop``, then clear its group. The
    group is watched meanwhile (``_groups``): it dies with plait, however plait dies."""
    loop = asyncio.get_running_loop()
    log = current_log()
    start_watchdog()
    transport, capture = await loop.subprocess_exec(
        lambda: _Capture(loop, log),
        *argv,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        cwd=cwd,
        env=env,
        start_new_session=True,
    )
    group = transport.get_pid()
    watch_group(run_id, group)
    try:
        stopping: asyncio.Future[Any] = asyncio.ensure_future(stop.wait())
        try:
            await asyncio.wait([capture.exited, stopping], return_when=FIRST_COMPLETED)
        finally:
            stopping.cancel()
            await _clear_group(group, capture)
            forget_group(run_id, group)
    finally:
        transport.close()  # the command has exited: this only closes pipes left open
    returncode = transport.get_returncode()
    assert returncode is not None
    return Finished(returncode, capture.text(1), capture.text(2))


async def _clear_group(group: int, capture: _Capture) -> None:
    """Stop every process of the command's group (whose id is the command's pid); reap the
    command.

    SIGTERM first, unless everything is over already; then SIGKILL to whatever is left once the
    command has exited and its output pipes have closed (so every member that shared them is
    gone), or after ``_KILL_GRACE`` seconds. A pipe still open after that is held by a process
    outside the group: stop waiting for it after ``_DRAIN_GRACE`` seconds.
    """
    exited, closed = capture.exited, capture.closed
    if not (exited.done() and closed.done()) or _group_exists(group):
        _signal_group(group, signal.SIGTERM)
        await asyncio.wait([exited, closed], timeout=_KILL_GRACE)
        if _group_exists(group):
            _signal_group(group, signal.SIGKILL)
    await exited  # asyncio's child watcher has reaped the command when this is set
    await asyncio.wait([closed], timeout=_DRAIN_GRACE)


def _group_exists(group: int) -> bool:
    try:
        os.killpg(group, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # a member changed its user id; it still counts as there
        return True
    return True


def _signal_group(group: int, signum: signal.Signals) -> None:
    # The group may be gone already (or hold nothing that is ours to signal).
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(group, signum)


async def _wait_through_cancellation(job: asyncio.Future[Any]) -> None:
    """Wait for ``job`` to finish even if cancelled again meanwhile; ignore how it ended.

    The caller re-raises its own cancellation afterwards, which is the outcome that matters.
    """
    while not job.done():
        try:
            await asyncio.shield(job)
        except asyncio.CancelledError:
            continue
        except Exception:
            break
    if not job.cancelled():
        job.exception()  # mark it retrieved
