"""Signals, with real processes and real signals: SIGTERM and SIGHUP stop a run as Ctrl-C does
(shell commands' process groups killed, the run recorded cancelled, exit 143 / 129); a second
signal stops at once; ignored signals stay ignored; and shell commands die with plait even when
it is killed with ``kill -9``, leaving a run that ``plait runs`` and ``plait status`` call stale.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner

import plait
from plait import RunStatus, TaskStatus
from plait.cli._app import cli
from plait.stores import SQLiteStore

# A workflow whose shell command starts a child of its own and waits for it, so the process
# group holds two processes; each writes its pid to the file named by $PIDS.
FLOWS = """
import os, time, plait
wf = plait.Workflow("sigs")
wf.add_task("sh", plait.ShellTask('echo $$ >> "$PIDS"; sleep 60 & echo $! >> "$PIDS"; wait'))
wf.add_task("after", lambda sh: None, depends_on=["sh"])

def stubborn(ctx):
    '''Ignores cancellation: only a second signal stops waiting for it.'''
    while not ctx.cancelled:
        time.sleep(0.01)
    print("saw the cancel", flush=True)
    time.sleep(60)

slow = plait.Workflow("stubborn")
slow.add_task("stubborn", stubborn)
slow.add_task("sh", plait.ShellTask('trap "" TERM; echo $$ >> "$PIDS"; sleep 60 & wait'))
"""


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    (tmp_path / "sigflows.py").write_text(FLOWS)
    return {
        **os.environ,
        "PYTHONPATH": f"{tmp_path}{os.pathsep}{os.environ.get('PYTHONPATH', '')}",
        "PLAIT_HOME": str(tmp_path / "home"),
        "PIDS": str(tmp_path / "pids"),
    }


def pids(env: dict[str, str], count: int) -> list[int]:
    """The pids the shell commands wrote, once there are ``count`` of them."""
    path = Path(env["PIDS"])
    deadline = time.monotonic() + 20
    while True:
        found = path.read_text().split() if path.exists() else []
        if len(found) >= count:
            return [int(p) for p in found]
        assert time.monotonic() < deadline, f"the shell commands did not start: {found}"
        time.sleep(0.01)


def dead(pid: int) -> bool:
    """Whether process ``pid`` is gone (a zombie counts as gone: it runs nothing)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return True
    return stat.rsplit(")", 1)[1].split()[0] == "Z"


def eventually(condition: Callable[[], bool], seconds: float = 10.0) -> bool:
    """Whether ``condition`` holds within ``seconds`` (for what other processes do)."""
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


def plait_command(env: dict[str, str], *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "plait.cli", *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def store(env: dict[str, str]) -> SQLiteStore:
    return SQLiteStore(Path(env["PLAIT_HOME"]) / "plait.db")


@pytest.mark.parametrize(
    ("signum", "code"), [(signal.SIGTERM, 143), (signal.SIGHUP, 129)], ids=["TERM", "HUP"]
)
def test_sigterm_and_sighup_cancel_the_run_kill_its_shell_commands_and_exit_128_plus_n(
    env: dict[str, str], signum: signal.Signals, code: int
) -> None:
    process = plait_command(env, "run", "sigflows:wf", "--run-id", "sig")
    shell, child = pids(env, 2)
    process.send_signal(signum)
    stdout, stderr = process.communicate(timeout=30)
    assert process.returncode == code, (stdout, stderr)
    assert "interrupted: run sig was cancelled and its tasks stopped" in stdout
    assert "Traceback" not in stderr
    assert dead(shell) and dead(child)  # the whole process group, not only the command
    with store(env) as the_store:
        record = the_store.get_run("sig")
        assert record is not None
        assert record.status is RunStatus.CANCELLED
        assert record.error is not None
        assert record.error.startswith(f"the run was interrupted by {signum.name}")
        assert record.owner is None
        tasks = the_store.load_tasks("sig")
    assert {t: r.status for t, r in tasks.items()} == {
        "sh": TaskStatus.CANCELLED,
        "after": TaskStatus.CANCELLED,
    }


def test_a_second_signal_stops_at_once_without_waiting_for_tasks(env: dict[str, str]) -> None:
    # cancel_grace 60 s, a sync task that ignores the cancel, a shell command that ignores
    # SIGTERM: after one Ctrl-C the run would wait a minute for them.
    script = textwrap.dedent(
        """
        import sys, plait, sigflows
        def tell(event):
            print(type(event).__name__, getattr(event, "task_id", ""), flush=True)
        try:
            plait.run(sigflows.slow, run_id="twice", store=sys.argv[1], cancel_grace=60,
                      subscribers=[tell])
        except KeyboardInterrupt:
            print("KeyboardInterrupt", flush=True)
            sys.exit(130)
        """
    )
    url = f"sqlite://{Path(env['PLAIT_HOME']) / 'twice.db'}"
    process = subprocess.Popen(
        [sys.executable, "-c", script, url],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    (shell,) = pids(env, 1)
    process.send_signal(signal.SIGINT)
    seen = []
    for line in process.stdout:  # the first signal reached the tasks
        seen.append(line.strip())
        if line.strip() == "saw the cancel":
            break
    process.send_signal(signal.SIGINT)  # the sync task ignores the cancel: stop at once
    stdout, stderr = process.communicate(timeout=20)  # far less than the 60 s grace
    assert process.returncode == 130, (seen, stdout, stderr)
    assert stdout.splitlines()[-1] == "KeyboardInterrupt"
    assert dead(shell)
    result = plait.get_run("twice", store=url)
    assert result.status is RunStatus.CANCELLED
    assert result.error is not None
    assert result.error.startswith("the run was interrupted by SIGINT")  # the first reason
    assert result.tasks["stubborn"].status is TaskStatus.CANCELLED
    assert result.tasks["sh"].status is TaskStatus.CANCELLED


def test_kill_9_of_plait_kills_its_shell_commands_and_leaves_a_stale_run(
    env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    script = "import sys; from plait.cli import main; sys.argv = ['plait', *sys.argv[1:]]; main()"
    process = subprocess.Popen(
        [
            sys.executable,
            "-c",
            script,
            "run",
            "sigflows:wf",
            "--run-id",
            "k9",
            "--lease-seconds",
            "0.5",
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    shell, child = pids(env, 2)
    # plait registers the command's group a few event-loop steps after it starts; a kill -9
    # inside those milliseconds would beat it (see _groups.py). Give it far more than that.
    time.sleep(0.5)
    process.kill()
    process.wait()
    assert eventually(lambda: dead(shell) and dead(child))
    with store(env) as the_store:
        assert eventually(lambda: bool((r := the_store.get_run("k9")) and r.stale), 5)
        record = the_store.get_run("k9")
    assert record is not None and record.status is RunStatus.RUNNING
    monkeypatch.setenv("PLAIT_HOME", env["PLAIT_HOME"])
    monkeypatch.setenv("COLUMNS", "200")
    runs = CliRunner().invoke(cli, ["runs"], catch_exceptions=False)
    assert "running · stale since " in runs.stdout
    (line,) = CliRunner().invoke(cli, ["runs", "--json"]).stdout.splitlines()
    assert json.loads(line)["stale_since"] == record.lease_expires_at
    status = CliRunner().invoke(cli, ["status", "k9"], catch_exceptions=False)
    assert f"  stale: its owner {record.owner} is gone since " in status.stdout
    assert "`plait resume k9` takes it over, `plait cancel k9` records it cancelled" in (
        status.stdout
    )


CHECK_HANDLERS = """
import signal, sys, threading, plait
signal.signal(signal.SIGHUP, signal.SIG_IGN)  # as nohup does
seen = {}
def look(ctx):
    seen["during"] = {s.name: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    signal.raise_signal(signal.SIGHUP)  # ignored: the run goes on
    return 1
wf = plait.Workflow("handlers")
wf.add_task("look", look)
assert plait.run(wf).status is plait.RunStatus.SUCCEEDED
assert seen["during"]["SIGINT"] is not signal.default_int_handler
assert seen["during"]["SIGTERM"] is not signal.SIG_DFL
assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # put back
assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL
assert signal.getsignal(signal.SIGHUP) is signal.SIG_IGN  # still ignored
# From another thread, plait.run leaves the process's handlers alone.
threading.Thread(target=lambda: plait.run(wf)).start()
print("ok")
"""


def test_plait_run_installs_handlers_for_its_length_and_leaves_ignored_ones_alone() -> None:
    result = subprocess.run(
        [sys.executable, "-c", CHECK_HANDLERS], capture_output=True, text=True, check=False
    )
    assert result.stdout == "ok\n", result.stderr


def test_sigterm_to_a_script_ends_it_with_143_after_the_run_is_recorded(tmp_path: Path) -> None:
    script = textwrap.dedent(
        """
        import os, signal, sys, plait
        def stop_me(ctx):
            os.kill(os.getpid(), signal.SIGTERM)  # as `kill PID` or `docker stop` would
            while not ctx.cancelled:
                pass
            ctx.raise_if_cancelled()
        wf = plait.Workflow("term")
        wf.add_task("stop_me", stop_me)
        try:
            plait.run(wf, run_id="t", store=sys.argv[1])
        finally:
            print("finally ran", flush=True)  # SystemExit: cleanup still happens
        """
    )
    url = f"sqlite://{tmp_path / 'plait.db'}"
    result = subprocess.run(
        [sys.executable, "-c", script, url], capture_output=True, text=True, check=False
    )
    assert result.returncode == 143, result.stderr
    assert result.stdout == "finally ran\n"
    run = plait.get_run("t", store=url)
    assert run.status is RunStatus.CANCELLED
    assert run.error is not None and run.error.startswith("the run was interrupted by SIGTERM")


def test_a_handler_of_the_callers_own_decides_after_the_run_is_recorded() -> None:
    calls: list[int] = []
    if threading.current_thread() is not threading.main_thread():
        pytest.skip("signal handlers live on the main thread")
    previous = signal.signal(signal.SIGUSR1, signal.SIG_DFL)  # unrelated: left alone
    original = signal.signal(signal.SIGTERM, lambda signum, frame: calls.append(signum))
    try:

        def stop_me(ctx: plait.Context) -> None:
            signal.raise_signal(signal.SIGTERM)
            while not ctx.cancelled:
                time.sleep(0.005)
            ctx.raise_if_cancelled()

        wf = plait.Workflow("own")
        wf.add_task("stop_me", stop_me)
        result = plait.run(wf)  # the caller's handler returns: so does plait.run
        assert result.status is RunStatus.CANCELLED
        assert calls == [signal.SIGTERM]
    finally:
        signal.signal(signal.SIGTERM, original)
        signal.signal(signal.SIGUSR1, previous)


def test_a_signal_before_the_run_has_started_acts_at_once() -> None:
    # The store hangs while the run is being created (a PostgreSQL server that does not
    # answer): there is nothing to record yet, so SIGTERM ends the script at once, as it
    # would without plait.
    script = textwrap.dedent(
        """
        import time, plait
        from plait.stores import MemoryStore
        class Hanging(MemoryStore):
            def create_run(self, run):
                print("creating", flush=True)
                time.sleep(60)
        wf = plait.Workflow("never")
        wf.add_task("a", lambda: None)
        plait.run(wf, store=Hanging())
        """
    )
    process = subprocess.Popen(
        [sys.executable, "-c", script], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    assert process.stdout is not None
    assert process.stdout.readline() == "creating\n"
    process.send_signal(signal.SIGTERM)
    process.communicate(timeout=30)  # far less than the 60 s the store would hang
    assert process.returncode == 143
