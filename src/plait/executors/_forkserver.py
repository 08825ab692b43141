"""Starting a process executor's worker: multiprocessing's forkserver, minus ``__main__``.

Workers start with the ``forkserver`` method: ``fork`` is unsafe in a process with threads (plait
always has some), and a forkserver that has imported the worker's module once starts each worker
in a few milliseconds (a fresh interpreter takes some 0.1 s).

Two changes to multiprocessing's way, both here:

- the forkserver preloads the worker module instead of ``__main__`` (multiprocessing's default),
  so a script's top-level code does not run in it;
- a worker does not run the parent's ``__main__`` either (``init_main_from_*`` is dropped from
  its preparation data). A script's functions travel by value instead (``_pickling``), so a
  workflow script needs no ``if __name__ == "__main__"`` guard for its workers' sake.

Each worker makes itself the leader of a process group (``_process_worker``);
:func:`signal_group` signals that group.
"""

from __future__ import annotations

import contextlib
import io
import multiprocessing
import os
import sys
import threading
from multiprocessing import forkserver, popen_forkserver, process, reduction, spawn, util
from multiprocessing.context import ForkServerProcess, set_spawning_popen
from typing import Any

__all__ = ["WorkerProcess", "child_path", "signal_group", "start_forkserver"]

_PRELOAD = ["plait.executors._process_worker"]  # the forkserver imports it once for all workers

_forkserver_lock = threading.Lock()
_forkserver_started = False


def start_forkserver() -> None:
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


class WorkerProcess(ForkServerProcess):
    """A forkserver process started by :class:`_Popen`."""

    @staticmethod
    def _Popen(process_obj: Any) -> Any:
        return _Popen(process_obj)


def signal_group(worker: WorkerProcess, signum: int) -> None:
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


def child_path() -> list[str]:
    """The ``sys.path`` a new worker starts with (multiprocessing's ``prepare``)."""
    path = list(sys.path)
    if "" in path:
        path[path.index("")] = getattr(process, "ORIGINAL_DIR", None) or os.getcwd()
    return path
