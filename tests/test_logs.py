"""Task logs: what each attempt says is kept per attempt, bounded, in every store (plait._logs)."""

from __future__ import annotations

import logging
import os
import secrets
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from psycopg import sql

import plait
from plait import Context, Event, LogLine, RunStatus, TaskLogged, Workflow
from plait._logs import AttemptLog
from plait.stores import MemoryStore, PostgresStore, SQLiteStore, Store

POSTGRES_URL = os.environ.get(
    "PLAIT_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test"
)


@pytest.fixture(params=["memory", "sqlite", "postgres"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    if request.param == "memory":
        yield MemoryStore()
    elif request.param == "sqlite":
        with SQLiteStore(tmp_path / "plait.db") as sqlite:
            yield sqlite
    else:
        schema = f"test_logs_{secrets.token_hex(6)}"
        try:
            with PostgresStore(POSTGRES_URL, schema=schema) as postgres:
                yield postgres
        finally:
            with psycopg.connect(POSTGRES_URL, autocommit=True) as conn:
                conn.execute(
                    sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema))
                )


def texts(lines: list[LogLine]) -> list[tuple[str, int, str, str]]:
    return [(line.task_id, line.attempt, line.stream, line.text) for line in lines]


def test_what_a_task_logs_and_prints_is_kept_per_attempt_in_every_store(store: Store) -> None:
    wf = Workflow("w")

    @wf.task(retry=plait.RetryPolicy(max_retries=1, backoff=0.01, jitter=0))
    def flaky(ctx: Context) -> str:
        ctx.logger.info("try %d", ctx.attempt)
        logging.getLogger("app.db").warning("slow query")
        print("printed", ctx.attempt)
        print("to stderr", file=sys.stderr)
        if ctx.attempt == 1:
            raise RuntimeError("boom")
        return "ok"

    @wf.task(depends_on=["flaky"])
    async def fetch(flaky: str) -> None:
        logging.getLogger("app").info("fetched %s", flaky)
        logging.getLogger("app").debug("not kept: below INFO")
        print("partial", end="")  # no newline: kept when the attempt ends

    result = plait.run(wf, store=store)
    assert result.status is RunStatus.SUCCEEDED
    assert texts(plait.get_logs(result.run_id, "flaky", store=store)) == [
        ("flaky", 1, "log", "INFO plait.task: try 1"),
        ("flaky", 1, "log", "WARNING app.db: slow query"),
        ("flaky", 1, "stdout", "printed 1"),
        ("flaky", 1, "stderr", "to stderr"),
        ("flaky", 2, "log", "INFO plait.task: try 2"),
        ("flaky", 2, "log", "WARNING app.db: slow query"),
        ("flaky", 2, "stdout", "printed 2"),
        ("flaky", 2, "stderr", "to stderr"),
    ]
    assert texts(plait.get_logs(result.run_id, "flaky", attempt=2, store=store))[0] == (
        "flaky",
        2,
        "log",
        "INFO plait.task: try 2",
    )
    assert texts(plait.get_logs(result.run_id, "fetch", store=store)) == [
        ("fetch", 1, "log", "INFO app: fetched ok"),
        ("fetch", 1, "stdout", "partial"),
    ]
    every = plait.get_logs(result.run_id, store=store)
    assert len(every) == 10
    assert [line.time for line in every] == sorted(line.time for line in every)
    assert [line.number for line in every if line.task_id == "flaky" and line.attempt == 1] == [
        1,
        2,
        3,
        4,
    ]


def test_a_shell_tasks_stdout_and_stderr_are_kept_line_by_line(tmp_path: Path) -> None:
    wf = Workflow("w")
    wf.add_task(
        "build",
        plait.ShellTask("echo compiling; printf 'warn: é\\n' >&2; printf 'no newline'"),
    )
    result = plait.run(wf, store=SQLiteStore(tmp_path / "plait.db"))
    assert result.tasks["build"].output == "compiling\nno newline"
    lines = plait.get_logs(result.run_id, "build", store=SQLiteStore(tmp_path / "plait.db"))
    assert sorted(texts(lines)) == [
        ("build", 1, "stderr", "warn: é"),
        ("build", 1, "stdout", "compiling"),
        ("build", 1, "stdout", "no newline"),
    ]


def test_an_attempt_keeps_the_head_and_tail_of_its_log_and_says_what_was_cut() -> None:
    wf = Workflow("w")

    @wf.task
    def chatty() -> None:
        for n in range(1000):
            print(f"line {n:04d}")  # 10 bytes with its newline

    result = plait.run(wf, max_log_bytes=1024)
    lines = plait.get_logs(result.run_id, "chatty")
    head = [line for line in lines if line.number <= 51 and line.stream == "stdout"]
    assert [line.text for line in head] == [f"line {n:04d}" for n in range(51)]
    note = lines[len(head)]
    assert note.stream == "plait"
    assert note.number == 52
    assert note.text == (
        "[898 lines (8980 bytes) cut here: an attempt keeps the first and last 512 bytes of "
        "its log (max_log_bytes)]"
    )
    tail = lines[len(head) + 1 :]
    assert [line.text for line in tail] == [f"line {n:04d}" for n in range(949, 1000)]
    assert [line.number for line in tail] == list(range(950, 1001))
    kept = sum(len(line.text) + 1 for line in lines if line.stream != "plait")
    assert kept <= 1024


def test_a_line_longer_than_half_the_bound_keeps_its_start() -> None:
    log = AttemptLog("t", 1, limit=1024)
    log.write("stdout", "x" * 5000 + "\n")
    (line,) = log.lines()
    assert line.text.startswith("x" * 400)
    assert line.text.endswith(" bytes cut]")
    assert len(line.text) < 512


def test_max_log_bytes_0_keeps_no_logs() -> None:
    wf = Workflow("w")

    @wf.task
    def talk() -> None:
        print("said")

    result = plait.run(wf, max_log_bytes=0)
    assert plait.get_logs(result.run_id) == []


@pytest.mark.parametrize("value", [-1, 1, 1023, 1.5, True, "1M"])
def test_max_log_bytes_must_be_0_or_at_least_1024(value: object) -> None:
    with pytest.raises(plait.ConfigError, match=r"^max_log_bytes must be 0 \(keep no logs\)"):
        plait.EngineConfig(max_log_bytes=value)  # type: ignore[arg-type]


def test_subscribers_hear_each_line_and_whether_it_was_printed() -> None:
    wf = Workflow("w")

    @wf.task
    def talk(ctx: Context) -> None:
        print("printed")
        ctx.logger.warning("logged")

    events: list[Event] = []
    plait.run(wf, subscribers=[events.append])
    logged = [e for e in events if isinstance(e, TaskLogged)]
    assert [(e.task_id, e.attempt, e.number, e.stream, e.text, e.echoed) for e in logged] == [
        ("talk", 1, 1, "stdout", "printed", True),
        ("talk", 1, 2, "log", "WARNING plait.task: logged", False),
    ]


def test_get_logs_names_an_unknown_run_or_task() -> None:
    wf = Workflow("w")
    wf.add_task("a", lambda: None)
    result = plait.run(wf)
    with pytest.raises(plait.TaskNotFoundError, match=r"^run '.*' has no task 'b'; its tasks"):
        plait.get_logs(result.run_id, "b")
    with pytest.raises(plait.stores.RunNotFoundError, match="'nope'"):
        plait.get_logs("nope")


def test_a_durable_run_writes_logs_while_it_runs(tmp_path: Path) -> None:
    """A line is in the store before its task ends, with the run's progress."""
    path = tmp_path / "plait.db"
    seen = threading.Event()
    wf = Workflow("w")

    @wf.task
    def talk(ctx: Context) -> None:
        print("early")
        with SQLiteStore(path) as reader:  # another connection, as `plait logs --follow` has
            while not plait.get_logs(ctx.run_id, store=reader):
                seen.wait(0.02)
        seen.set()

    result = plait.run(wf, store=SQLiteStore(path), task_timeout=20)
    assert result.status is RunStatus.SUCCEEDED
    assert seen.is_set()


CRASH_FLOW = """
import time

import plait

wf = plait.Workflow("crashing")


@wf.task
def first() -> int:
    print("said before the crash")
    return 1


@wf.task(depends_on=["first"])
def second(first: int, ctx: plait.Context) -> int:
    print(f"second, attempt {ctx.attempt}", flush=True)
    if ctx.attempt == 1:
        time.sleep(60)  # killed here
    return first + 1


def main(path: str) -> None:
    plait.run(wf, store=plait.stores.SQLiteStore(path), run_id="crash")
"""


def test_logs_are_as_durable_as_task_records_across_kill_9(tmp_path: Path) -> None:
    """Killed with -9 while a later task runs: the log of the task recorded succeeded is in the
    store; the resumed run adds the next attempt's log beside the lost one's."""
    (tmp_path / "crashing.py").write_text(CRASH_FLOW)
    db = tmp_path / "plait.db"
    child = subprocess.Popen(
        [sys.executable, "-c", "import sys, crashing; crashing.main(sys.argv[1])", str(db)],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert child.stdout is not None
        while child.stdout.readline() not in ("second, attempt 1\n", ""):
            pass
        # "first" ended before "second" started; wait until its record is written, then kill.
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            with SQLiteStore(db) as store:
                first = store.load_tasks("crash").get("first")
            if first is not None and first.status is plait.TaskStatus.SUCCEEDED:
                break
            time.sleep(0.02)
        child.send_signal(signal.SIGKILL)
    finally:
        child.wait(timeout=30)
    with SQLiteStore(db) as store:
        assert texts(plait.get_logs("crash", "first", store=store)) == [
            ("first", 1, "stdout", "said before the crash")
        ]
    sys.path.insert(0, str(tmp_path))
    try:
        import crashing  # type: ignore[import-not-found]  # noqa: PLC0415 - written by the test

        with SQLiteStore(db) as store:
            resumed = plait.resume("crash", crashing.wf, store=store, force=True)
            assert resumed.status is RunStatus.SUCCEEDED
            lines = texts(plait.get_logs("crash", "second", store=store))
    finally:
        sys.path.remove(str(tmp_path))
        sys.modules.pop("crashing", None)
    assert lines[-1] == ("second", 2, "stdout", "second, attempt 2")
    assert set(lines[:-1]) <= {("second", 1, "stdout", "second, attempt 1")}
