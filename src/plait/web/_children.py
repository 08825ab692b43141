"""Resuming runs from the page, each in a child process the server supervises.

A resume imports the run's workflow, and a workflow is code: it may crash, hang, or exit the
interpreter. So the server never imports one itself: it starts ``plait resume RUN_ID`` (the
command line, with its rules: the stored target is imported only from the server's working
directory or ``PLAIT_PATH``) in a child process, with no terminal (no question is asked) and
the server's store. The page follows the run through the store as it follows any run; the
child's exit status and the last lines it wrote are kept for the page to show, so a resume that
could not start says why.

:class:`Children` keeps at most one live child per run (a second click while one runs is
refused), reaps each child when it exits, and stops those still running when the server stops
(SIGTERM: ``plait resume`` records the run cancelled first, and it can be resumed again).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
import time
from dataclasses import dataclass, field

__all__ = ["Child", "Children", "ResumeRefusedError"]

#: The last bytes of a child's output kept for the page.
OUTPUT_KEPT = 4000


class ResumeRefusedError(RuntimeError):
    """A resume was not started (one is already running for the run)."""


@dataclass(slots=True)
class Child:
    """A ``plait resume`` child process, and how it ended."""

    run_id: str
    pid: int
    started_at: float = field(default_factory=time.time)
    returncode: int | None = None
    output: str = ""

    @property
    def running(self) -> bool:
        return self.returncode is None


class Children:
    """The server's resume children, by run."""

    def __init__(self, store_url: str) -> None:
        self._store_url = store_url
        self._children: dict[str, Child] = {}
        self._processes: dict[int, asyncio.subprocess.Process] = {}
        self._reapers: set[asyncio.Task[None]] = set()

    def get(self, run_id: str) -> Child | None:
        """The last child started for ``run_id`` (running, or how it ended)."""
        return self._children.get(run_id)

    async def resume(self, run_id: str) -> Child:
        """Start ``plait resume RUN_ID`` for the run.

        Raises:
            ResumeRefusedError: a resume of this run started here is still running.
        """
        known = self._children.get(run_id)
        if known is not None and known.running:
            raise ResumeRefusedError(
                f"run {run_id!r} is being resumed already (process {known.pid}); "
                "its page follows it"
            )
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "plait.cli",
            "resume",
            run_id,
            "--store",
            self._store_url,
            "--quiet",
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            env={**os.environ, "NO_COLOR": "1", "TERM": "dumb"},
            start_new_session=True,  # a Ctrl-C meant for the server is not the run's
        )
        child = Child(run_id=run_id, pid=process.pid)
        self._children[run_id] = child
        self._processes[process.pid] = process
        reaper = asyncio.create_task(self._reap(child, process))
        self._reapers.add(reaper)
        reaper.add_done_callback(self._reapers.discard)
        return child

    async def _reap(self, child: Child, process: asyncio.subprocess.Process) -> None:
        assert process.stdout is not None
        kept = b""
        while chunk := await process.stdout.read(65536):
            kept = (kept + chunk)[-OUTPUT_KEPT:]
            child.output = kept.decode("utf-8", "replace")
        child.returncode = await process.wait()
        self._processes.pop(process.pid, None)

    async def stop(self, *, grace: float = 10.0) -> None:
        """SIGTERM every running child; wait up to ``grace`` seconds, then SIGKILL."""
        for process in list(self._processes.values()):
            with contextlib.suppress(ProcessLookupError):
                process.send_signal(signal.SIGTERM)
        if self._reapers:
            _, pending = await asyncio.wait(set(self._reapers), timeout=grace)
            for process in list(self._processes.values()):
                with contextlib.suppress(ProcessLookupError):
                    process.kill()
            if pending:
                await asyncio.wait(pending, timeout=grace)
