"""Shell tasks' processes (plait._shell_process): the output kept, the command's own session and
process group, and no process left behind after a cancellation or an exit."""

from __future__ import annotations

import asyncio
import os
import shlex
import sys
import time
from pathlib import Path

import pytest
from _shell_runs import error_of, run_one

import plait
import plait._shell_process
from plait import RunStatus, ShellTask, TaskStatus

GUARD = 10.0  # seconds: a hang shows up as a failed wait, never as a hung suite
PF_EXITING = 0x4  # a flag of /proc/<pid>/stat: the process is exiting


def gone(pid: int) -> bool:
    """Whether process ``pid`` runs no more: it does not exist, is a zombie that its new parent
    (init) has not reaped yet, or is exiting (killed, its files closed, not yet a zombie)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return True
    fields = stat.rsplit(")", 1)[1].split()  # after "pid (comm)": state, ppid, ..., flags
    return fields[0] in ("Z", "X") or bool(int(fields[6]) & PF_EXITING)


def pids_command(pid_file: Path, *, prefix: str = "") -> str:
    """A command that starts two background sleeps, writes their pids and its own to
    ``pid_file`` (all at once), then waits: three processes in one group."""
    target = shlex.quote(str(pid_file))
    return (
        f"{prefix}sleep 30 & a=$!; sleep 30 & b=$!; "
        f'echo "$a $b $$" > {target}.tmp && mv {target}.tmp {target}; wait'
    )


def read_pids(pid_file: Path) -> list[int]:
    pids = [int(pid) for pid in pid_file.read_text().split()]
    assert len(pids) == 3
    return pids


async def wait_for_file(path: Path) -> None:
    deadline = time.monotonic() + GUARD
    while not path.exists():
        assert time.monotonic() < deadline, f"{path} was never written"
        await asyncio.sleep(0.01)


# -- output -----------------------------------------------------------------------------------


def test_the_output_is_stdout_without_its_trailing_newline() -> None:
    result = run_one(ShellTask("printf 'line 1\\nline 2\\n\\n'"))
    assert result.status is TaskStatus.SUCCEEDED
    assert result.output == "line 1\nline 2\n"


def test_stdout_is_decoded_as_utf8_with_bad_bytes_replaced() -> None:
    result = run_one(ShellTask("printf '\\303\\251t\\303\\251 \\377'"))
    assert result.output == "été \ufffd"


def test_only_the_last_64_kib_of_stdout_are_kept() -> None:
    result = run_one(ShellTask("head -c 100000 /dev/zero | tr '\\0' a; echo; echo end"))
    assert len(result.output) == 64 * 1024 - 1
    assert result.output.endswith("a\nend")


def test_the_argv_form_runs_without_a_shell() -> None:
    result = run_one(ShellTask(["printf", "%s|%s", "$HOME", "a b; echo x"]))
    assert result.output == "$HOME|a b; echo x"


def test_the_command_leads_its_own_session_and_process_group() -> None:
    code = "import os; print(os.getpid(), os.getpgid(0), os.getsid(0))"
    result = run_one(ShellTask([sys.executable, "-c", code]))
    pid, group, session = map(int, result.output.split())
    assert pid == group == session
    assert session != os.getsid(0)


# -- stopping the process group ---------------------------------------------------------------


def test_a_timeout_kills_the_whole_process_group(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(plait._shell_process, "_KILL_GRACE", GUARD)  # SIGKILL only after GUARD s
    pid_file = tmp_path / "pids"
    started = time.monotonic()
    result = run_one(ShellTask(pids_command(pid_file)), timeout=0.3)
    assert time.monotonic() - started < GUARD  # SIGTERM sufficed: no wait for SIGKILL
    assert isinstance(error_of(result), plait.TaskTimeoutError)
    assert [pid for pid in read_pids(pid_file) if not gone(pid)] == []


def test_a_group_that_ignores_sigterm_gets_sigkill_after_the_grace(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(plait._shell_process, "_KILL_GRACE", 0.3)
    pid_file = tmp_path / "pids"
    started = time.monotonic()
    result = run_one(ShellTask(pids_command(pid_file, prefix="trap '' TERM; ")), timeout=0.2)
    assert 0.5 <= time.monotonic() - started < GUARD
    assert result.status is TaskStatus.FAILED
    assert [pid for pid in read_pids(pid_file) if not gone(pid)] == []


def test_a_critical_failure_elsewhere_kills_the_whole_process_group(tmp_path: Path) -> None:
    pid_file = tmp_path / "pids"
    wf = plait.Workflow("shell")
    wf.add_task("long", ShellTask(pids_command(pid_file)))

    async def boom() -> None:
        await wait_for_file(pid_file)
        raise RuntimeError("boom")

    wf.add_task("boom", boom, critical=True)
    result = plait.run(wf, max_retries=0)
    assert result.status is RunStatus.FAILED
    assert result.tasks["long"].status is TaskStatus.CANCELLED
    assert [pid for pid in read_pids(pid_file) if not gone(pid)] == []


def test_cancelling_the_run_kills_the_whole_process_group(tmp_path: Path) -> None:
    pid_file = tmp_path / "pids"
    wf = plait.Workflow("shell")
    wf.add_task("long", ShellTask(pids_command(pid_file)))

    async def main() -> None:
        run = asyncio.ensure_future(plait.arun(wf))
        await wait_for_file(pid_file)
        run.cancel()
        with pytest.raises(asyncio.CancelledError):
            await asyncio.wait_for(run, GUARD)

    asyncio.run(main())
    assert [pid for pid in read_pids(pid_file) if not gone(pid)] == []


def test_what_a_command_leaves_running_is_stopped_when_it_exits(tmp_path: Path) -> None:
    pid_file = tmp_path / "pid"
    started = time.monotonic()
    result = run_one(ShellTask(f"sleep 30 & echo $! > {shlex.quote(str(pid_file))}; echo done"))
    assert result.output == "done"
    assert time.monotonic() - started < GUARD  # it did not wait for the `sleep 30`
    assert gone(int(pid_file.read_text()))
