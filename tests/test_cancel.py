"""plait.cancel: a live run is asked through its store (in another process, with SIGINT ignored,
or on another host) and records itself cancelled; a paused or stale run is recorded cancelled at
once; an owner that does not answer is named, and no process is ever signalled."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import textwrap
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

import plait
from plait import RunStatus, TaskStatus
from plait._requests import RequestKind, RequestState
from plait.stores import MemoryStore, RunRecord, SQLiteStore, Store, open_store

# A run in the background of a script, deaf to Ctrl-C (SIGINT ignored, as `cmd &` in a
# non-interactive shell does): a shell command that would run for a minute, and a sync task.
BACKGROUND = """
import signal, sys, plait
signal.signal(signal.SIGINT, signal.SIG_IGN)
wf = plait.Workflow("background")
wf.add_task("shell", plait.ShellTask("echo $$ > " + sys.argv[2] + "; exec sleep 60"))
def spin(ctx):
    while True:  # until cancelled: raise_if_cancelled raises then
        ctx.raise_if_cancelled()
        __import__("time").sleep(0.01)
wf.add_task("spin", spin)
wf.add_task("after", lambda shell: None, depends_on=["shell"])
def started(event):
    if isinstance(event, plait.TaskStarted) and event.task_id == "shell":
        print("started", flush=True)
result = plait.run(wf, run_id="bg", store=sys.argv[1], subscribers=[started])
print(result.status, flush=True)
print(result.error, flush=True)
"""


def start_background(tmp_path: Path, url: str | None = None) -> tuple[subprocess.Popen[str], Path]:
    """The BACKGROUND script, once its shell task has started; and where it writes its pid."""
    pid_file = tmp_path / "shell.pid"
    url = url or f"sqlite://{tmp_path / 'plait.db'}"
    child = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(BACKGROUND), url, pid_file],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert child.stdout is not None
    assert child.stdout.readline().strip() == "started", child.communicate()
    deadline = time.monotonic() + 10
    while not (pid_file.exists() and pid_file.read_text().strip()):
        assert time.monotonic() < deadline, "the shell command did not start"
        time.sleep(0.01)
    return child, pid_file


def exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


POSTGRES_URL = os.environ.get(
    "PLAIT_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test"
)


@pytest.fixture(params=["sqlite", "postgres"])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A new store that another process can open: an SQLite file, or a PostgreSQL schema."""
    if request.param == "sqlite":
        yield f"sqlite://{tmp_path / 'plait.db'}"
        return
    import psycopg  # noqa: PLC0415 - only this backend needs it

    schema = f"plait_test_{uuid.uuid4().hex[:12]}"
    yield f"{POSTGRES_URL}{'&' if '?' in POSTGRES_URL else '?'}schema={schema}"
    with psycopg.connect(POSTGRES_URL, autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


def test_cancel_stops_a_run_in_another_process_that_ignores_sigint(
    tmp_path: Path, url: str
) -> None:
    child, pid_file = start_background(tmp_path, url)
    shell_pid = int(pid_file.read_text())
    store = open_store(url)
    record = plait.cancel("bg", store=store)
    # Returned once recorded: the run, its tasks and the request's outcome say so.
    assert record.status is RunStatus.CANCELLED
    assert record.error is not None
    assert record.error.startswith(
        f"the run was cancelled by a request from {socket.gethostname()}:"
    )
    assert record.owner is None  # the owner let the run go as it ended
    tasks = store.load_tasks("bg")
    assert {t: r.status for t, r in tasks.items()} == {
        "shell": TaskStatus.CANCELLED,
        "spin": TaskStatus.CANCELLED,
        "after": TaskStatus.CANCELLED,
    }
    out, err = child.communicate(timeout=30)
    assert child.returncode == 0, err
    assert out.splitlines()[-2] == "cancelled"
    assert not exists(shell_pid)  # the shell command's process group was killed
    store.close()


def test_a_live_owner_that_does_not_answer_is_named_and_no_process_is_signalled(
    tmp_path: Path,
) -> None:
    # A store row naming a live process of this host (not plait) as the owner: today's
    # `plait cancel` sent it a SIGINT. Now only a request goes, and nobody answers it.
    bystander = subprocess.Popen(["sleep", "30"])
    try:
        store = SQLiteStore(tmp_path / "plait.db")
        owner = f"{socket.gethostname()}:{bystander.pid}:abcdef"
        store.create_run(running_record("spoofed", owner=owner, lease=60))
        with pytest.raises(plait.CancelTimeoutError) as caught:
            plait.cancel("spoofed", store=store, timeout=0.3)
        assert str(caught.value).startswith(
            f"run 'spoofed' is owned by {owner}, which did not record it cancelled within 0.3s "
            "although its lease is live; the cancel request stays pending"
        )
        assert caught.value.owner == owner
        assert bystander.poll() is None  # never signalled
        record = store.get_run("spoofed")
        assert record is not None and record.status is RunStatus.RUNNING
    finally:
        bystander.kill()
        bystander.wait()


def running_record(run_id: str, *, owner: str | None, lease: float) -> RunRecord:
    now = time.time()
    return RunRecord(
        run_id=run_id,
        workflow="elsewhere",
        fingerprint="f",
        definition=[{"id": "work", "depends_on": [], "function": "m:f"}],
        config={},
        status=RunStatus.RUNNING,
        created_at=now,
        updated_at=now,
        owner=owner,
        lease_expires_at=None if owner is None else now + lease,
    )


def test_an_owner_that_goes_quiet_leaves_a_stale_run_that_is_recorded_cancelled(
    tmp_path: Path,
) -> None:
    store = SQLiteStore(tmp_path / "plait.db")
    # Live on another host for 0.5 s more, then never heard of again (killed, cut off).
    store.create_run(running_record("quiet", owner="far-away:77:abcdef", lease=0.5))
    record = plait.cancel("quiet", store=store)
    assert record.status is RunStatus.CANCELLED
    assert record.error is not None
    assert record.error.startswith(f"cancelled by plait.cancel from {socket.gethostname()}:")
    assert record.error.endswith(
        "(it was running; its owner far-away:77:abcdef did not answer and its lease ran out: stale)"
    )
    (request,) = [store.get_request("quiet", r.request_id) for r in _requests_of(store, "quiet")]
    assert request is not None
    assert request.kind is RequestKind.CANCEL
    assert request.state is RequestState.DONE
    assert request.outcome is not None and "the owner did not answer" in request.outcome


def _requests_of(store: SQLiteStore, run_id: str) -> list[plait._requests.RunRequest]:
    rows = store._conn.execute(
        "SELECT request_id FROM run_requests WHERE run_id = ?", (run_id,)
    ).fetchall()
    found = [store.get_request(run_id, row[0]) for row in rows]
    return [r for r in found if r is not None]


def test_a_stale_run_is_recorded_cancelled_at_once(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "plait.db")
    store.create_run(running_record("gone", owner="far-away:77:abcdef", lease=-3))
    gone = store.get_run("gone")
    assert gone is not None and gone.stale
    snapshot = plait.get_run("gone", store=store)
    assert snapshot.stale and snapshot.stale_since == gone.lease_expires_at
    record = plait.cancel("gone", store=store, timeout=0)
    assert record.status is RunStatus.CANCELLED
    assert not record.stale and not plait.get_run("gone", store=store).stale
    assert record.error is not None
    assert record.error.endswith(
        "(it was running, but its owner far-away:77:abcdef was gone: stale)"
    )
    assert _requests_of(store, "gone") == []  # nobody was asked


def test_cancel_of_a_paused_run_records_it_and_its_waiting_tasks_cancelled() -> None:
    store = MemoryStore()
    wf = plait.Workflow("gate")
    wf.add_task("build", lambda: 1)
    wf.add_task("approve", None, depends_on=["build"], pause=plait.Pause("Ship?"))
    paused = plait.run(wf, store=store)
    assert paused.status is RunStatus.PAUSED
    record = plait.cancel(paused.run_id, store=store)
    assert record.status is RunStatus.CANCELLED
    assert record.error is not None and record.error.endswith("(it was paused)")
    after = plait.get_run(paused.run_id, store=store)
    assert after.tasks["approve"].status is TaskStatus.CANCELLED
    assert after.tasks["build"].status is TaskStatus.SUCCEEDED
    assert plait.cancel(paused.run_id, store=store) == record  # again: nothing changes


def test_cancel_of_a_run_that_succeeded_says_there_is_nothing_to_cancel() -> None:
    store = MemoryStore()
    wf = plait.Workflow("done")
    wf.add_task("a", lambda: 1)
    result = plait.run(wf, store=store)
    with pytest.raises(
        plait.NothingToCancelError,
        match=rf"^run '{result.run_id}' succeeded; there is nothing to cancel$",
    ):
        plait.cancel(result.run_id, store=store)
    with pytest.raises(plait.stores.RunNotFoundError):
        plait.cancel("nope", store=store)


def test_cancel_stops_a_memory_store_run_of_this_process_from_another_thread() -> None:
    store: Store = MemoryStore()
    started = threading.Event()

    def work(ctx: plait.Context) -> None:
        started.set()
        while not ctx.cancelled:
            time.sleep(0.01)

    wf = plait.Workflow("here")
    wf.add_task("work", work)
    wf.add_task("next", lambda work: None, depends_on=["work"])
    results: list[plait.RunResult] = []
    runner = threading.Thread(target=lambda: results.append(plait.run(wf, run_id="h", store=store)))
    runner.start()
    assert started.wait(10)
    record = plait.cancel("h", store=store)
    runner.join(10)
    assert record.status is RunStatus.CANCELLED
    (result,) = results
    assert result.status is RunStatus.CANCELLED
    assert result.error is not None
    assert result.error.startswith("the run was cancelled by plait.cancel in this process")


def test_cancel_without_wait_returns_once_the_request_is_sent(tmp_path: Path) -> None:
    child, _ = start_background(tmp_path)
    store = SQLiteStore(tmp_path / "plait.db")
    record = plait.cancel("bg", store=store, wait=False)
    assert record.status is RunStatus.RUNNING
    out, err = child.communicate(timeout=30)
    assert out.splitlines()[-2] == "cancelled", err
    final = store.get_run("bg")
    assert final is not None and final.status is RunStatus.CANCELLED


def test_cancel_with_wait_refuses_to_block_an_event_loop() -> None:
    async def main() -> None:
        with pytest.raises(RuntimeError, match=r"from a running event loop, pass wait=False"):
            plait.cancel("anything", store=MemoryStore())

    asyncio.run(main())
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
