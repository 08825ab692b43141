"""Resumes run in child processes: a crashing one is reported, and never takes the server down."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from plait.web._children import Children, ResumeRefusedError


def test_a_failing_resume_is_kept_with_its_exit_status_and_output(tmp_path: Path) -> None:
    async def main() -> tuple[int | None, str]:
        children = Children(f"sqlite:///{tmp_path / 'missing.db'}")
        child = await children.resume("nope")
        # Nothing awaited in between: its reaper has not even looked at it yet.
        with pytest.raises(ResumeRefusedError, match=r"^run 'nope' is being resumed already"):
            await children.resume("nope")
        for _ in range(600):
            if not child.running:
                break
            await asyncio.sleep(0.05)
        await children.stop()
        return child.returncode, child.output

    code, output = asyncio.run(main())
    assert code == 2
    assert "error:" in output  # the command line's own words: the store does not exist


def test_stop_ends_a_child_still_running(tmp_path: Path) -> None:
    async def main() -> int | None:
        children = Children("sqlite:///x.db")
        # A child that would outlive the server: stop() sends it SIGTERM.
        process = await asyncio.create_subprocess_exec("sleep", "60")
        children._processes[process.pid] = process
        reaper = asyncio.ensure_future(process.wait())
        children._reapers.add(reaper)  # type: ignore[arg-type]
        await children.stop(grace=5)
        return process.returncode

    assert asyncio.run(main()) == -15
