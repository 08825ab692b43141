"""The process groups of running shell commands, so that none outlives plait.

Each shell task's command leads a process group of its own (see ``_shell_process.py``), and so
does each worker of a process executor (see ``executors/_process_slot.py``, which registers its
workers under a key of its own rather than a run id). Two things here make sure those groups end
with plait:

- **A registry, by run.** A second Ctrl-C (or signal) does not wait for commands to stop
  politely: :func:`kill_groups` sends ``SIGKILL`` to every group of the run at once.
- **A watchdog process, for when plait itself is killed** (``kill -9``, the OOM killer, a
  crash). It is started with the first shell command and lives as long as this process: plait
  tells it, through a pipe, each group that starts and ends; when the pipe's far end closes --
  which the kernel does when this process dies, however it dies -- the watchdog sends
  ``SIGKILL`` to every group still registered, then exits. So a resumed attempt never overlaps
  an orphaned copy of the same command.

Why not ``PR_SET_PDEATHSIG``: on Linux it signals only the command itself, not the children it
started (``make -j`` and its compilers would live on), it fires when the *thread* that started
the command ends rather than the process, and it needs a ``preexec_fn``, which is unsafe in a
threaded process and makes every spawn a full ``fork``. The watchdog covers the whole group,
works the same on every POSIX system (macOS and the BSDs, which have no PDEATHSIG), and costs
one small process per plait process plus a few bytes per command. A group that a command leaves
on purpose (``setsid``) is not followed.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading

__all__ = ["forget_group", "kill_groups", "start_watchdog", "watch_group"]

# The watchdog: reads "+PGID" / "-PGID" lines until end of file, then kills what is left.
# It ignores the signals a terminal or a supervisor sends to plait's group or session: it must
# outlive plait to do its work, and it ends by itself right after.
_WATCHDOG = """
import os, signal, sys
for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT):
    signal.signal(s, signal.SIG_IGN)
groups = set()
for line in sys.stdin.buffer:
    sign, group = line[:1], int(line[1:])
    if sign == b"+":
        groups.add(group)
    else:
        groups.discard(group)
for group in groups:
    try:
        os.killpg(group, signal.SIGKILL)
    except OSError:
        pass
"""

_lock = threading.Lock()
_groups: dict[str, set[int]] = {}  # run id -> the process groups of its running commands
_watchdog: subprocess.Popen[bytes] | None = None


def start_watchdog() -> None:
    """Have the watchdog running before a command starts, so that a command is registered as
    soon as it exists (a kill in the moment between the two would leave it behind)."""
    with _lock:
        _running_watchdog()


def watch_group(run_id: str, group: int) -> None:
    """Register the process group ``group`` of a command of run ``run_id`` (just started)."""
    with _lock:
        _groups.setdefault(run_id, set()).add(group)
        _tell(b"+%d\n" % group)


def forget_group(run_id: str, group: int) -> None:
    """The group ``group`` is gone (its command was reaped and the group cleared)."""
    with _lock:
        groups = _groups.get(run_id)
        if groups is not None:
            groups.discard(group)
            if not groups:
                del _groups[run_id]
        _tell(b"-%d\n" % group)


def kill_groups(run_id: str) -> None:
    """Send ``SIGKILL`` to every process group of run ``run_id``'s running commands, now."""
    with _lock:
        groups = list(_groups.get(run_id, ()))
    for group in groups:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(group, signal.SIGKILL)


def _tell(line: bytes) -> None:
    """Send ``line`` to the watchdog, starting it (again) if need be. Under ``_lock``."""
    global _watchdog  # one watchdog per process
    try:
        _write(_running_watchdog(), line)
    except BrokenPipeError:  # it died (someone killed it): another one learns every group
        _watchdog = None
        _running_watchdog()


def _running_watchdog() -> subprocess.Popen[bytes]:
    """The watchdog, started (with every live group) if it is not running. Under ``_lock``."""
    global _watchdog  # one watchdog per process
    if _watchdog is None or _watchdog.poll() is not None:
        _watchdog = _start_watchdog()
        for groups in _groups.values():
            for group in groups:
                _write(_watchdog, b"+%d\n" % group)
    return _watchdog


def _write(watchdog: subprocess.Popen[bytes], line: bytes) -> None:
    assert watchdog.stdin is not None
    os.write(watchdog.stdin.fileno(), line)  # unbuffered: the line must be there if we die


def _start_watchdog() -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-I", "-S", "-c", _WATCHDOG],
        stdin=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,  # not in plait's group: a Ctrl-C or `kill -- -PGID` spares it
        bufsize=0,
    )
