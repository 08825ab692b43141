"""A store failure is never reported as success.

Real faults on real stores: an SQLite write lock held by another process (the ``plait`` command
in a child process), a PostgreSQL backend ended with ``pg_terminate_backend``; and, on a real
SQLite file, a store whose writes fail for a while, or commit and then fail (a commit whose
outcome the writer cannot know). Then text the stores cannot hold: escaped in free text,
refused up front in names.
"""

from __future__ import annotations

import collections
import json
import os
import re
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from _modules import module_from_file
from stores.conftest import POSTGRES_URL, drop_schemas, postgres_unreachable

import plait
from plait import RunStatus, TaskStatus
from plait.stores import (
    PostgresStore,
    SQLiteStore,
    Store,
    StoreError,
    StoreUnavailableError,
    WriteBatch,
)


def chain(n: int, seconds: float = 0.0, name: str = "chain") -> plait.Workflow:
    wf = plait.Workflow(name)
    for i in range(n):

        def step(i: int = i) -> int:
            time.sleep(seconds)
            return i

        wf.add_task(f"t{i}", step, depends_on=[f"t{i - 1}"] if i else [])
    return wf


def assert_recorded_once(store: Store, run_id: str, tasks: int) -> None:
    """Every task recorded succeeded, and its success logged exactly once."""
    records = store.load_tasks(run_id)
    assert sorted(records) == sorted(f"t{i}" for i in range(tasks))
    assert all(r.status is TaskStatus.SUCCEEDED for r in records.values())
    logged = collections.Counter(
        e.task_id for e in store.load_events(run_id) if e.kind == "TaskSucceeded"
    )
    assert logged == {f"t{i}": 1 for i in range(tasks)}


# -- an SQLite file locked by another process, under the plait command ------------------------

FLOW = """
import time, plait

wf = plait.Workflow("locked")

def step(i):
    def run():
        time.sleep(0.05)
        return i
    return run

for i in range(20):
    wf.add_task(f"t{i}", step(i), depends_on=[f"t{i - 1}"] if i else [])
"""


#: The module the command imports FLOW as (from its file's name): a name no other test uses, so
#: that its functions have the same module:name here as in the run's definition.
FLOW_MODULE = "store_faults_locked_flow"


def test_a_store_locked_past_the_lease_stops_the_run_with_exit_4_never_success(
    tmp_path: Path,
) -> None:
    (tmp_path / f"{FLOW_MODULE}.py").write_text(FLOW)
    db = tmp_path / "plait.db"
    env = {**os.environ, "PLAIT_HOME": str(tmp_path / "home")}
    options = ["--store", f"sqlite://{db}", "--run-id", "locked", "--lease-seconds", "1.5"]
    child = subprocess.Popen(
        [sys.executable, "-m", "plait.cli", "run", f"{FLOW_MODULE}.py:wf", "--json", *options],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert child.stdout is not None
    succeeded = 0
    while succeeded < 3:
        line = child.stdout.readline()
        assert line, child.communicate()[1]
        succeeded += json.loads(line)["event"] == "task_succeeded"
    lock = sqlite3.connect(db, isolation_level=None)
    lock.execute("BEGIN IMMEDIATE")  # another process holds the write lock...
    try:
        out, err = child.communicate(timeout=60)  # ...until plait gives up
    finally:
        lock.rollback()
        lock.close()
    assert child.returncode == 4, out + err
    assert "plait could not record the run: run 'locked' stopped: its store could not" in err
    assert "continue with: plait resume locked" in err
    assert '"status": "succeeded"' not in out

    with SQLiteStore(db) as store:
        record = store.get_run("locked")
        assert record is not None and record.status is not RunStatus.SUCCEEDED
        assert record.lease_expires_at is not None
        time.sleep(max(0.0, record.lease_expires_at - time.time()) + 0.05)
        flow = module_from_file(tmp_path / f"{FLOW_MODULE}.py")
        # The stored lease (1.5 s) is what the lock had to outlast; the resumed run's own lease
        # is not under test, and a loaded machine can starve a renewal for that long.
        result = plait.resume("locked", flow.wf, store=store, lease_seconds=30)
        assert result.status is RunStatus.SUCCEEDED
        assert_recorded_once(store, "locked", 20)


# -- a store whose writes fail for a while --------------------------------------------------


class FlakyStore(SQLiteStore):
    """A real SQLite store whose writes (and renewals) fail while ``down`` is set; with
    ``commit_then_fail``, the next write commits and then raises, as a connection that drops
    during COMMIT does."""

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self.down = threading.Event()
        self.commit_then_fail = False
        self.failures = 0

    def _fail(self) -> None:
        self.failures += 1
        raise StoreUnavailableError("the store is down (test)")

    def write(self, run_id: str, owner: str, batch: WriteBatch) -> None:
        if self.down.is_set():
            self._fail()
        super().write(run_id, owner, batch)
        if self.commit_then_fail and batch.events:
            self.commit_then_fail = False
            self._fail()

    def renew(self, run_id: str, owner: str, *, lease_seconds: float) -> None:
        if self.down.is_set():
            self._fail()
        super().renew(run_id, owner, lease_seconds=lease_seconds)


def test_a_store_down_for_a_while_is_retried_and_nothing_is_lost_or_doubled(
    tmp_path: Path,
) -> None:
    store = FlakyStore(tmp_path / "plait.db")
    wf = chain(30, 0.05)
    started: list[tuple[str, bool]] = []

    def fault(event: plait.Event) -> None:
        if isinstance(event, plait.TaskStarted):
            started.append((event.task_id, store.down.is_set()))
            if event.task_id == "t5":
                store.down.set()
                threading.Timer(1.0, store.down.clear).start()

    result = plait.run(wf, store=store, run_id="flaky", lease_seconds=5.0, subscribers=[fault])
    assert result.status is RunStatus.SUCCEEDED
    assert store.failures > 1  # retried, with backoff
    assert_recorded_once(store, "flaky", 30)
    # While nothing could be recorded, new tasks waited (without that, some 20 would start).
    assert sum(down for _, down in started) < 10


def test_a_batch_whose_commit_outcome_is_unknown_is_written_again_once(tmp_path: Path) -> None:
    store = FlakyStore(tmp_path / "plait.db")
    store.commit_then_fail = True
    result = plait.run(chain(10), store=store, run_id="twice")
    assert result.status is RunStatus.SUCCEEDED
    assert store.failures == 1
    assert_recorded_once(store, "twice", 10)
    events = store.load_events("twice")
    assert len(events) == len({(e.kind, e.task_id, e.time) for e in events})


def test_a_store_that_stays_down_stops_the_run_and_releases_the_lease(tmp_path: Path) -> None:
    store = FlakyStore(tmp_path / "plait.db")

    def fault(event: plait.Event) -> None:
        if isinstance(event, plait.TaskSucceeded) and event.task_id == "t3":
            store.down.set()
        elif isinstance(event, plait.RunFinished):  # the run stopped; the store comes back
            store.down.clear()

    with pytest.raises(StoreUnavailableError) as stopped:
        plait.run(
            chain(40, 0.05), store=store, run_id="down", lease_seconds=1.5, subscribers=[fault]
        )
    assert str(stopped.value).startswith("run 'down' stopped: its store could not record it for")
    assert "the store is down (test)" in str(stopped.value)
    assert stopped.value.run_id == "down"
    assert isinstance(stopped.value.__cause__, StoreUnavailableError)

    # On the way out, the store was back: what the run did was recorded, the lease released.
    record = store.get_run("down")
    assert record is not None
    assert record.status is RunStatus.FAILED
    assert record.error is not None and record.error.startswith("run 'down' stopped: its store")
    assert record.owner is None  # it can be resumed at once, without force
    done = [t for t, r in store.load_tasks("down").items() if r.status is TaskStatus.SUCCEEDED]
    assert 4 <= len(done) < 40
    result = plait.resume("down", chain(40, 0.05), store=store)
    assert result.status is RunStatus.SUCCEEDED
    assert_recorded_once(store, "down", 40)


def test_a_final_write_the_store_refuses_is_never_reported_as_success(tmp_path: Path) -> None:
    class Refusing(SQLiteStore):
        def write(self, run_id: str, owner: str, batch: WriteBatch) -> None:
            if batch.run is not None and batch.run.status is RunStatus.SUCCEEDED:
                raise StoreError("the store refused the batch (test)")
            super().write(run_id, owner, batch)

    store = Refusing(tmp_path / "plait.db")
    with pytest.raises(StoreUnavailableError, match=r"the store refused the batch \(test\)"):
        plait.run(chain(3), store=store, run_id="refused")
    record = store.get_run("refused")
    assert record is not None and record.status is RunStatus.RUNNING
    assert record.owner is None  # released on the way out: it can be resumed at once


# -- a PostgreSQL connection ended by the server --------------------------------------------


@pytest.fixture
def postgres_store() -> Iterator[PostgresStore]:
    problem = postgres_unreachable()
    if problem is not None:
        pytest.fail(problem, pytrace=False)
    schema = f"plait_faults_{os.getpid()}_{time.monotonic_ns()}"
    store = PostgresStore(POSTGRES_URL, schema=schema)
    try:
        yield store
    finally:
        store.close()
        drop_schemas(schema)


def test_a_dropped_postgres_connection_is_replaced_and_the_run_goes_on(
    postgres_store: PostgresStore,
) -> None:
    ended: list[int] = []

    def terminate(event: plait.Event) -> None:
        if isinstance(event, plait.TaskSucceeded) and event.task_id in ("t5", "t29"):
            pid = postgres_store._conn.info.backend_pid
            with psycopg.connect(POSTGRES_URL, autocommit=True) as admin:
                admin.execute("SELECT pg_terminate_backend(%s)", (pid,))
            ended.append(pid)

    wf = chain(30, 0.01)
    result = plait.run(wf, store=postgres_store, run_id="dropped", subscribers=[terminate])
    assert result.status is RunStatus.SUCCEEDED
    assert len(ended) == 2  # once mid-run, once during the last task
    assert postgres_store._conn.info.backend_pid not in ended  # a new connection
    assert_recorded_once(postgres_store, "dropped", 30)
    record = postgres_store.get_run("dropped")
    assert record is not None and record.status is RunStatus.SUCCEEDED


# -- text the stores cannot hold ---------------------------------------------------------------

UNDECODABLE = b"caf\xe9".decode("utf-8", "surrogateescape")  # 'caf\udce9'


@pytest.fixture(params=["sqlite", "postgres"])
def durable_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    if request.param == "sqlite":
        with SQLiteStore(tmp_path / "plait.db") as store:
            yield store
    else:
        yield request.getfixturevalue("postgres_store")


@pytest.mark.parametrize("text", [f"bad file {UNDECODABLE}", "a\x00b"])
def test_errors_and_prompts_the_store_cannot_hold_are_escaped(
    durable_store: Store, text: str
) -> None:
    wf = plait.Workflow("texts")

    def broken() -> None:
        raise ValueError(text)

    wf.add_task("broken", broken)
    result = plait.run(wf, store=durable_store, run_id="error")
    assert result.status is RunStatus.FAILED
    record = durable_store.get_run("error")
    assert record is not None and record.status is RunStatus.FAILED
    escaped = text.replace("\x00", "\\x00").replace(UNDECODABLE, "caf\\udce9")
    assert record.error is not None and escaped in record.error
    error = plait.get_run("error", store=durable_store).tasks["broken"].error
    assert error is not None and error.message == text  # JSON keeps it exactly

    gate = plait.Workflow("texts")
    gate.add_task("review", None, pause=plait.Pause(text))
    assert plait.run(gate, store=durable_store, run_id="prompt").status is RunStatus.PAUSED
    (request,) = durable_store.load_requests("prompt")
    assert request.prompt == escaped


@pytest.mark.parametrize(
    ("name", "problem"),
    [
        ("a\x00b", r"a NUL character \('\\x00'\) at position 1"),
        (
            f"x{UNDECODABLE}",
            r"a lone surrogate \('\\udce9', from bytes that are not UTF-8\) at position 4",
        ),
    ],
)
def test_names_the_stores_cannot_hold_are_refused_up_front(name: str, problem: str) -> None:
    fix = "; use text without NUL characters or undecodable bytes$"
    with pytest.raises(
        plait.InvalidOptionError,
        match=rf"^task id {re.escape(repr(name))} cannot be stored: it holds {problem}{fix}",
    ):
        plait.Workflow("w").add_task(name, lambda: None)
    with pytest.raises(
        plait.InvalidOptionError, match=rf"^workflow name {re.escape(repr(name))} cannot"
    ):
        plait.Workflow(name)
    with pytest.raises(plait.InvalidOptionError, match=rf"^run id {re.escape(repr(name))} cannot"):
        plait.run(chain(1), run_id=name, store="memory://")

    def ask(ctx: plait.Context) -> None:
        ctx.request_input("ok?", key=name)

    wf = plait.Workflow("keys")
    wf.add_task("ask", ask)
    result = plait.run(wf, store="memory://")
    error = result.tasks["ask"].error
    assert error is not None and error.type.endswith("InvalidOptionError")
    assert error.message.startswith(f"question key {name!r} cannot be stored")


def test_a_hung_postgres_connection_stops_the_run_within_its_lease(
    postgres_store: PostgresStore,
) -> None:
    stopped_backend: list[int] = []
    started_after: list[str] = []

    def hang(event: plait.Event) -> None:
        if isinstance(event, plait.TaskStarted) and stopped_backend:
            started_after.append(event.task_id)
        if isinstance(event, plait.TaskSucceeded) and event.task_id == "t3":
            pid = postgres_store._conn.info.backend_pid
            os.kill(pid, signal.SIGSTOP)  # the server stops answering this connection
            stopped_backend.append(pid)

    try:
        with pytest.raises(StoreUnavailableError, match=r"^run 'hung' stopped: its store could"):
            plait.run(
                chain(40, 0.05),
                store=postgres_store,
                run_id="hung",
                lease_seconds=1.5,
                subscribers=[hang],
            )
    finally:
        for pid in stopped_backend:
            os.kill(pid, signal.SIGCONT)
    # It stopped starting tasks once the store stalled, long before the end of the chain.
    assert len(started_after) < 20, started_after
    record = postgres_store.get_run("hung")
    assert record is not None and record.status is not RunStatus.SUCCEEDED
