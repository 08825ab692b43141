"""The Dask executor: attempts submitted to a real cluster (a LocalCluster of two worker
processes, module-scoped), the attempt guard, cancellation, lost workers, data left on the
cluster, and ``plait run --dask`` against a scheduler and workers started as commands."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import plait
import plait.stores
from plait import BindingError, LogLine, WorkerLostError
from plait.executors import (
    DaskExecutor,
    DaskOutput,
    Outcome,
    RemoteError,
    TaskCall,
    _dask_guard,
    run_call,
)
from plait.executors._dask_worker import _Failed, _run_attempt, logs_topic
from plait.executors._streaming import BATCH_LINES

from ._process_tasks import burst
from .conftest import dask_client

dask = pytest.importorskip("dask")
distributed = pytest.importorskip("distributed")

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
def client() -> Any:
    """The tests' shared LocalCluster (see conftest.dask_client)."""
    return dask_client()


class FakeJob:
    """A job as the engine would hand one over: the call to make, and what came back."""

    def __init__(self, task_call: TaskCall | Exception, *, keeps_remote: bool = False) -> None:
        self._call = task_call
        self.cancelled = False
        self.abandoned = False
        self.keeps_remote_output = keeps_remote
        self.outcome: Outcome | None = None
        self.done = threading.Event()
        self.batches: list[list[LogLine]] = []  # lines it said, as they came while it ran

    def call(self) -> TaskCall:
        if isinstance(self._call, Exception):
            raise self._call
        return self._call

    def logged(self, lines: list[LogLine], *, echoed: bool = False) -> None:
        assert self.outcome is None, "lines after the outcome"
        assert not echoed, "a Dask worker's prints are not shown here"
        self.batches.append(lines)

    def said(self) -> list[str]:
        """The text of every line the attempt said: sent while it ran, then the rest with its
        outcome."""
        assert self.outcome is not None
        return [line.text for batch in self.batches for line in batch] + [
            line.text for line in self.outcome.logs
        ]

    def complete(self, outcome: Outcome) -> None:
        assert self.outcome is None, "completed twice"
        self.outcome = outcome
        self.done.set()

    def run(self) -> None:
        raise AssertionError("a shipped job is never run in process")

    def finish(self) -> None:
        raise AssertionError("a shipped job is never finished in process")

    def wait(self) -> Outcome:
        assert self.done.wait(30), "the attempt never completed"
        assert self.outcome is not None
        return self.outcome


def make_call(fn: Any, task_id: str = "t", attempt: int = 1, **kwargs: Any) -> TaskCall:
    return TaskCall(
        run_id="run-1",
        task_id=task_id,
        attempt=attempt,
        idempotency_key=f"run-1/{task_id}",
        fn=fn,
        kwargs=kwargs,
        context_parameter="ctx"
        if "ctx" in getattr(fn, "__code__", (lambda: 0).__code__).co_varnames
        else None,
        log_limit=1 << 20,
    )


def add(a: int, b: int) -> int:
    return a + b


def test_an_attempt_runs_on_a_worker_and_its_output_comes_back(client: Any) -> None:
    executor = DaskExecutor(client)
    job = FakeJob(make_call(add, a=2, b=3))
    executor.submit(job)
    outcome = job.wait()
    assert outcome.error is None
    assert outcome.output == 5
    assert executor.capacity == 4  # two single-threaded workers, PREFETCH 2 (a fresh window)


def fail(a: int) -> int:
    raise ValueError(f"no good: {a!r}")


class Unpicklable(Exception):
    def __init__(self) -> None:
        super().__init__("holds a lock")
        self.lock = threading.Lock()


def fail_unpicklably() -> None:
    raise Unpicklable


def chatty(ctx: plait.Context) -> str:
    ctx.logger.info("hello from %s", ctx.task_id)
    print("printed on the worker")
    return "said"


def hold(started: str, gate: str) -> str:
    distributed.Event(started).set()
    distributed.Event(gate).wait(20)
    return "went"


def wait_for_event(name: str) -> str:
    distributed.Event(name).wait(20)
    return "went"


def loop_until_cancelled(started: str, ctx: plait.Context) -> str:
    distributed.Event(started).set()
    while not ctx.cancelled:
        time.sleep(0.01)
    return "stopped"


def big(n: int) -> bytes:
    return b"x" * n


def size(data: bytes, ctx: plait.Context) -> int:
    ctx.logger.info("got %d bytes", len(data))
    return len(data)


def test_an_error_comes_back_as_raised_with_its_traceback(client: Any) -> None:
    job = FakeJob(make_call(fail, a=7))
    DaskExecutor(client).submit(job)
    outcome = job.wait()
    assert isinstance(outcome.error, ValueError)
    assert str(outcome.error) == "no good: 7"
    assert outcome.traceback is not None and "in fail" in outcome.traceback


def test_an_error_that_cannot_travel_comes_back_as_a_remote_error(client: Any) -> None:
    job = FakeJob(make_call(fail_unpicklably))
    DaskExecutor(client).submit(job)
    error = job.wait().error
    assert isinstance(error, RemoteError)
    assert error.type_name.endswith("Unpicklable")
    assert error.message == "holds a lock"


def test_what_a_task_logs_and_prints_on_the_worker_comes_back(client: Any) -> None:
    job = FakeJob(make_call(chatty, task_id="talker"))
    DaskExecutor(client).submit(job)
    outcome = job.wait()
    assert outcome.output == "said"
    assert job.said() == ["INFO plait.task: hello from talker", "printed on the worker"]


def test_a_burst_of_lines_comes_back_in_a_few_events_in_order(client: Any) -> None:
    executor = DaskExecutor(client)
    job = FakeJob(make_call(burst, n=5_000))
    executor.submit(job)
    assert job.wait().output == 5_000
    assert job.said() == [f"line {i}" for i in range(5_000)]
    assert 5_000 // BATCH_LINES <= len(job.batches) <= 100  # not one event per line
    assert len(client.get_events(logs_topic(executor._session))) == len(job.batches)


def count_aloud(name: str, n: int, started: str, gate: str) -> int:
    """Print ``n`` lines that name ``name``, once the other attempt has started too (both
    wait at the gate), so that their lines' events come in while both are out."""
    distributed.Event(started).set()
    distributed.Event(gate).wait(20)
    for i in range(n):
        print(f"{name} {i}")
    return n


def test_lines_said_while_attempts_run_reach_the_attempt_that_said_them(client: Any) -> None:
    """Two attempts out at once, each sending its lines as it says them: every batch goes to
    its own attempt's log, found by its Dask key."""
    gate = f"gate-{uuid.uuid4().hex}"
    executor = DaskExecutor(client)
    jobs = {}
    for name, attempt in (("left", 1), ("right", 2)):
        started = f"started-{name}-{uuid.uuid4().hex}"
        call = make_call(count_aloud, name, attempt, name=name, n=3_000, started=started, gate=gate)
        jobs[name] = FakeJob(call)
        executor.submit(jobs[name])
        assert distributed.Event(started, client=client).wait(30)
    assert len(executor._submitted) == 2
    distributed.Event(gate, client=client).set()
    for name, attempt in (("left", 1), ("right", 2)):
        job = jobs[name]
        assert job.wait().output == 3_000
        assert job.batches, "no line came while it ran"
        assert {(line.task_id, line.attempt) for b in job.batches for line in b} == {
            (name, attempt)
        }
        assert job.said() == [f"{name} {i}" for i in range(3_000)]
    assert len(executor._submitted) == 0


def test_an_attempt_that_says_nothing_sends_no_event(client: Any) -> None:
    executor = DaskExecutor(client)
    job = FakeJob(make_call(add, a=1, b=2))
    executor.submit(job)
    assert job.wait().output == 3
    assert client.get_events(logs_topic(executor._session)) == ()


def test_a_call_that_cannot_be_made_fails_its_attempt(client: Any) -> None:
    job = FakeJob(BindingError("task 't': no parameter 'x'"))
    DaskExecutor(client).submit(job)
    assert isinstance(job.wait().error, BindingError)


def test_without_the_plugin_a_second_execution_of_one_attempt_is_refused(client: Any) -> None:
    """As when Dask runs a task again after its worker died, on a scheduler that cannot load
    the guard's plugin: the attempt's lock (held by the first execution, still running) makes
    the second fail with WorkerLostError, body not run."""
    started, gate = f"started-{uuid.uuid4().hex}", f"gate-{uuid.uuid4().hex}"
    call = make_call(hold, task_id="once", started=started, gate=gate)
    key = ("plait-run-1", "once", 1, "x")
    first = client.submit(_run_attempt, call, {}, key, True, pure=False)
    try:
        assert distributed.Event(started, client=client).wait(30)
        running_on = {w for w, keys in client.processing().items() if first.key in keys}
        other = sorted(set(client.nthreads()) - running_on)[:1]
        second = client.submit(_run_attempt, call, {}, key, True, pure=False, workers=other)
        refused = second.result(timeout=30)
        assert isinstance(refused, _Failed)
        assert isinstance(refused.outcome.error, WorkerLostError)
        assert "'once' (attempt 1)" in str(refused.outcome.error)
    finally:
        distributed.Event(gate, client=client).set()
    assert first.result(timeout=30) == "went"


def test_the_guard_is_a_plugin_on_a_scheduler_that_can_load_it(client: Any) -> None:
    executor = DaskExecutor(client)
    job = FakeJob(make_call(add, a=1, b=2))
    executor.submit(job)
    assert job.wait().output == 3
    assert executor._locked is False  # no lock, no round trip per attempt

    def has_guard(dask_scheduler: Any) -> bool:
        return _dask_guard.NAME in dask_scheduler.plugins

    assert client.run_on_scheduler(has_guard)


def test_a_scheduler_that_refuses_the_plugin_gets_the_lock(
    client: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    def refuse(*args: Any, **kwargs: Any) -> None:
        raise ModuleNotFoundError("No module named 'plait'")

    executor = DaskExecutor(client)
    monkeypatch.setattr(client, "register_plugin", refuse)
    job = FakeJob(make_call(add, a=2, b=2))
    executor.submit(job)
    assert job.wait().output == 4
    assert executor._locked is True


class FakeTask:
    def __init__(self, annotations: dict[str, Any] | None = None) -> None:
        self.annotations = annotations


class FakeScheduler:
    """What the guard's plugin reads of a scheduler: its tasks."""

    def __init__(self) -> None:
        self.tasks: dict[Any, FakeTask] = {}


def guard_on(scheduler: FakeScheduler) -> Any:
    plugin = _dask_guard.AttemptGuard()
    asyncio.run(plugin.start(scheduler))
    return plugin


KEY = ("plait-run-1", "t", 1, "abcd1234")


@pytest.mark.parametrize(
    ("story", "lost"),
    [
        # Taken back from the worker it was on (that worker left): Dask runs it again, marked.
        ([("waiting", "processing"), ("processing", "released"), ("released", "waiting")], True),
        # Finished, then its output was lost with its worker: Dask may compute it again.
        ([("waiting", "processing"), ("processing", "memory"), ("memory", "released")], False),
        # Failed: nothing to run again.
        ([("waiting", "processing"), ("processing", "erred")], False),
        # Queued on the scheduler, then sent out.
        ([("queued", "processing")], False),
    ],
)
def test_the_guard_marks_an_attempt_dask_would_run_again(
    story: list[tuple[str, str]], lost: bool
) -> None:
    scheduler = FakeScheduler()
    scheduler.tasks[KEY] = FakeTask({"other": 1})
    plugin = guard_on(scheduler)
    for start, finish in story:
        plugin.transition(KEY, start, finish, stimulus_id="test")
    annotations = scheduler.tasks[KEY].annotations
    assert annotations is not None and annotations["other"] == 1  # the task's own are kept
    assert _dask_guard.refused(Worker(scheduler), KEY) is lost


class Worker:
    """What ``refused`` reads of a worker: its tasks, with the annotations Dask sent."""

    def __init__(self, scheduler: FakeScheduler) -> None:
        self.state = type("State", (), {"tasks": scheduler.tasks})()


def test_the_guard_ignores_keys_that_are_not_plaits() -> None:
    scheduler = FakeScheduler()
    scheduler.tasks["noop-123"] = FakeTask()
    plugin = guard_on(scheduler)
    plugin.transition("noop-123", "processing", "released", stimulus_id="test")
    assert scheduler.tasks["noop-123"].annotations is None


def test_cancel_is_seen_as_ctx_cancelled_on_the_worker(client: Any) -> None:
    started = f"started-{uuid.uuid4().hex}"
    executor = DaskExecutor(client)
    job = FakeJob(make_call(loop_until_cancelled, started=started))
    executor.submit(job)
    assert distributed.Event(started, client=client).wait(30)
    job.cancelled = True
    executor.cancel(job)
    outcome = job.wait()
    assert outcome.output == "stopped"


def test_an_abandoned_attempt_is_never_completed(client: Any) -> None:
    gate = f"gate-{uuid.uuid4().hex}"
    executor = DaskExecutor(client)
    job = FakeJob(make_call(wait_for_event, name=gate))
    executor.submit(job)
    job.abandoned = True
    executor.abandon(job)
    distributed.Event(gate, client=client).set()
    # A later attempt on the same cluster runs and completes: the abandoned one never does.
    after = FakeJob(make_call(add, attempt=2, a=1, b=1))
    executor.submit(after)
    assert after.wait().output == 2
    assert job.outcome is None


def loop_until_cancelled_then_tell(started: str, stopped: str, ctx: plait.Context) -> str:
    distributed.Event(started).set()
    while not ctx.cancelled:
        time.sleep(0.01)
    distributed.Event(stopped).set()
    return "stopped"


def test_an_attempt_abandoned_at_once_after_its_cancel_still_sees_it(client: Any) -> None:
    """A timeout cancels and abandons in one go: the worker must still see ctx.cancelled."""
    started, stopped = f"started-{uuid.uuid4().hex}", f"stopped-{uuid.uuid4().hex}"
    executor = DaskExecutor(client)
    job = FakeJob(make_call(loop_until_cancelled_then_tell, started=started, stopped=stopped))
    executor.submit(job)
    assert distributed.Event(started, client=client).wait(30)
    job.cancelled = job.abandoned = True
    executor.cancel(job)
    executor.abandon(job)
    assert distributed.Event(stopped, client=client).wait(30)
    assert job.outcome is None


def test_outputs_can_stay_on_the_cluster_and_feed_a_dependent_there(client: Any) -> None:
    executor = DaskExecutor(client)
    producer = FakeJob(make_call(big, task_id="big", n=1000), keeps_remote=True)
    executor.submit(producer)
    handle = producer.wait().output
    assert isinstance(handle, DaskOutput)
    consumer = FakeJob(make_call(size, task_id="size", data=handle), keeps_remote=True)
    executor.submit(consumer)
    outcome = consumer.wait()
    assert isinstance(outcome.output, DaskOutput)
    assert consumer.said() == ["INFO plait.task: got 1000 bytes"]
    assert outcome.output.fetch() == 1000
    assert handle.fetch() == b"x" * 1000


def slow_on_marked_worker(marker: str) -> str:
    Path(marker).write_text(f"{os.getpid()}\n")
    time.sleep(30)
    return "finished"


def test_a_worker_killed_mid_task_fails_only_that_attempt(client: Any, tmp_path: Path) -> None:
    """SIGKILL the worker process running an attempt: Dask runs it again elsewhere, the guard
    refuses, and the attempt fails with WorkerLostError; an attempt on the other worker goes on."""
    executor = DaskExecutor(client)
    marker = tmp_path / "pid"
    doomed = FakeJob(make_call(slow_on_marked_worker, task_id="doomed", marker=str(marker)))
    executor.submit(doomed)
    for _ in range(3000):  # the body writes its worker's pid first thing
        if marker.exists() and marker.read_text().endswith("\n"):
            break
        time.sleep(0.01)
    os.kill(int(marker.read_text()), signal.SIGKILL)
    error = doomed.wait().error
    assert isinstance(error, WorkerLostError), error
    assert "'doomed' (attempt 1)" in str(error)
    other = FakeJob(make_call(add, task_id="other", a=2, b=2))
    executor.submit(other)
    assert other.wait().output == 4
    client.wait_for_workers(2, timeout=60)  # the nanny starts a new worker for later tests


def test_an_executor_made_from_an_address_connects_on_first_use_and_closes_its_client(
    client: Any,
) -> None:
    executor = DaskExecutor(client.scheduler.address)
    assert executor._client is None  # nothing connects until a task needs the cluster
    job = FakeJob(make_call(add, a=20, b=22))
    executor.submit(job)
    assert job.wait().output == 42
    own = executor.client
    assert own is not client
    executor.shutdown()
    assert own.status == "closed"
    assert client.status == "running"  # a client given by the caller is never closed


def test_an_unreachable_scheduler_is_named_in_the_error() -> None:
    executor = DaskExecutor("tcp://127.0.0.1:9", capacity=1)
    with (
        dask.config.set({"distributed.comm.timeouts.connect": "1s"}),
        pytest.raises(ConnectionError, match=r"Dask scheduler at 'tcp://127\.0\.0\.1:9'"),
    ):
        executor.submit(FakeJob(make_call(add, a=1, b=1)))


def test_capacity_is_twice_the_clusters_threads_unless_given(client: Any) -> None:
    assert DaskExecutor(client).capacity == 4
    assert DaskExecutor(client, capacity=8).capacity == 8
    with pytest.raises(
        ValueError,
        match=r"^capacity must be at least 1 \(or None: a window of 2 to 8 per worker thread "
        r"of the cluster\), not 0$",
    ):
        DaskExecutor(client, capacity=0)


# -- a real scheduler and workers, started as commands, and `plait run --dask` ----------------


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


WORKER_OPTIONS = ("--host", "127.0.0.1", "--no-dashboard", "--no-nanny")


@pytest.fixture
def command_cluster(tmp_path: Path) -> Iterator[tuple[str, list[subprocess.Popen[bytes]]]]:
    """``dask scheduler`` and two ``dask worker`` processes on 127.0.0.1 (free ports), whose
    ``sys.path`` has ``tmp_path`` (where the test's workflow module is). Killed at the end, each
    with its process group."""
    dask_command = str(Path(sys.executable).with_name("dask"))
    port = str(free_port())
    address = f"tcp://127.0.0.1:{port}"
    env = {**os.environ, "PYTHONPATH": str(tmp_path)}
    common = {"cwd": tmp_path, "env": env, "start_new_session": True}
    logs = (tmp_path / "dask.log").open("wb")
    processes = [
        subprocess.Popen(
            [dask_command, "scheduler", "--host", "127.0.0.1", "--port", port, "--no-dashboard"],
            stdout=logs,
            stderr=subprocess.STDOUT,
            **common,  # type: ignore[call-overload]
        )
    ]
    try:
        for _ in range(2):
            processes.append(
                subprocess.Popen(
                    [dask_command, "worker", address, "--nthreads", "1", *WORKER_OPTIONS],
                    stdout=logs,
                    stderr=subprocess.STDOUT,
                    **common,  # type: ignore[call-overload]
                )
            )
        with distributed.Client(address, timeout="30s", set_as_default=False) as probe:
            probe.wait_for_workers(2, timeout=60)
        yield address, processes
    finally:
        for process in reversed(processes):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        logs.close()


FLOW_MODULE = """
import os


def where() -> int:
    return os.getpid()


def total(where: int, shout: str) -> str:
    return f"{where}:{shout.strip()}"
"""

FLOW_YAML = """
name: on-dask
tasks:
  - id: where
    function: flowmod:where
  - id: shout
    shell: echo hello from $(hostname)
  - id: total
    function: flowmod:total
    depends_on: [where, shout]
"""


@pytest.mark.timeout(120)
def test_plait_run_dask_runs_a_workflow_file_on_a_cluster_started_as_commands(
    tmp_path: Path, command_cluster: tuple[str, list[subprocess.Popen[bytes]]]
) -> None:
    address, processes = command_cluster
    (tmp_path / "flowmod.py").write_text(FLOW_MODULE)
    (tmp_path / "flow.yaml").write_text(FLOW_YAML)
    store = tmp_path / "runs.db"
    options = ["--store", f"sqlite:///{store}", "--run-id", "on-dask-1"]
    done = subprocess.run(
        [sys.executable, "-m", "plait.cli", "run", "flow.yaml", "--dask", address, *options],
        cwd=tmp_path,
        env={**os.environ, "PLAIT_HOME": str(tmp_path / "home")},
        capture_output=True,
        text=True,
        timeout=100,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    run = plait.get_run("on-dask-1", store=f"sqlite:///{store}")
    assert run.status is plait.RunStatus.SUCCEEDED
    pid, _, said = run.tasks["total"].output.partition(":")
    workers = {process.pid for process in processes[1:]}
    assert int(pid) in workers  # it ran on a worker, not in the `plait run` process
    assert int(run.tasks["where"].output) in workers
    assert said.startswith("hello from")


def test_a_call_that_cannot_be_pickled_fails_its_attempt_naming_the_task(client: Any) -> None:
    job = FakeJob(make_call(add, task_id="locked", a=threading.Lock(), b=1))
    DaskExecutor(client).submit(job)
    error = job.wait().error
    assert isinstance(error, TypeError)
    assert str(error).startswith("task 'locked': its function or arguments cannot be sent")


# -- whole runs on the cluster ----------------------------------------------------------------


def pid() -> int:
    return os.getpid()


def pair(left: int, right: int) -> tuple[int, int]:
    return (left, right)


class OnlyOnWorkers:
    """A value that cannot be loaded outside a Dask worker: proof that it never came back."""

    def __init__(self, payload: str) -> None:
        self.payload = payload

    def __reduce__(self) -> tuple[Any, ...]:
        return (_load_only_on_workers, (self.payload,))


def _load_only_on_workers(payload: str) -> OnlyOnWorkers:
    distributed.get_worker()  # raises ValueError outside a worker
    return OnlyOnWorkers(payload)


def make_unloadable() -> OnlyOnWorkers:
    return OnlyOnWorkers("kept on the cluster")


def unwrap(make_unloadable: OnlyOnWorkers) -> str:
    return make_unloadable.payload


def test_a_workflow_runs_on_the_workers(client: Any) -> None:
    wf = plait.Workflow("diamond")
    wf.add_task("left", pid)
    wf.add_task("right", pid)
    wf.add_task("both", pair, depends_on=["left", "right"])
    result = plait.run(wf, executors={"cluster": DaskExecutor(client)}, default_executor="cluster")
    assert result.status is plait.RunStatus.SUCCEEDED, result.error
    workers = set(client.run(os.getpid).values())
    left, right = result.tasks["both"].output
    assert {left, right} <= workers
    assert result.outputs["left"] == left


def test_an_output_passes_worker_to_worker_without_coming_back(client: Any) -> None:
    """With the memory store, an output stays on the cluster: a value that cannot even be
    loaded in this process goes from one Dask task to the next."""
    wf = plait.Workflow("kept")
    wf.add_task("make_unloadable", make_unloadable)
    wf.add_task("unwrap", unwrap, depends_on=["make_unloadable"])
    result = plait.run(wf, executors={"cluster": DaskExecutor(client)}, default_executor="cluster")
    assert result.status is plait.RunStatus.SUCCEEDED, result.error
    assert result.tasks["unwrap"].output == "kept on the cluster"
    with pytest.raises(ValueError):  # reading it here fetches it, which is what fails
        result.tasks["make_unloadable"].output  # noqa: B018


def test_a_task_on_threads_gets_the_value_of_a_task_on_dask(client: Any) -> None:
    wf = plait.Workflow("mixed")
    wf.add_task("left", pid)
    wf.add_task("right", pid, executor="thread")
    wf.add_task("both", pair, depends_on=["left", "right"], executor="thread")
    result = plait.run(wf, executors={"cluster": DaskExecutor(client)}, default_executor="cluster")
    assert result.status is plait.RunStatus.SUCCEEDED, result.error
    left, right = result.tasks["both"].output
    assert left in set(client.run(os.getpid).values())
    assert right == os.getpid()


def kill_my_worker_once(ctx: plait.Context) -> int:
    if ctx.attempt == 1:
        os.kill(os.getpid(), signal.SIGKILL)  # a real SIGKILL, mid-task
    return ctx.attempt


def slow_pid(seconds: float) -> int:
    time.sleep(seconds)
    return os.getpid()


@pytest.mark.timeout(90)
def test_a_worker_killed_mid_task_fails_that_attempt_which_is_retried(client: Any) -> None:
    events: list[plait.Event] = []
    wf = plait.Workflow("lost")
    wf.add_task("victim", kill_my_worker_once, retry=plait.RetryPolicy(max_retries=2, backoff=0))
    for i in range(3):
        wf.add_task(f"bystander{i}", slow_pid, params={"seconds": 0.2})
    result = plait.run(
        wf,
        executors={"cluster": DaskExecutor(client)},
        default_executor="cluster",
        subscribers=[events.append],
    )
    assert result.status is plait.RunStatus.SUCCEEDED, result.error
    assert result.tasks["victim"].output == 2
    assert result.tasks["victim"].attempts == 2
    retried = [e for e in events if isinstance(e, plait.TaskRetrying)]
    assert [(e.task_id, e.error.type) for e in retried] == [("victim", "plait.WorkerLostError")]
    assert all(result.tasks[f"bystander{i}"].attempts == 1 for i in range(3))
    client.wait_for_workers(2, timeout=60)  # the nanny starts a new worker for later tests


def sleep_unless_cancelled(marker: str, ctx: plait.Context) -> str:
    while not ctx.cancelled:
        time.sleep(0.01)
    Path(marker).write_text("saw the cancel\n")
    return "stopped"


def deaf_sleep(marker: str, seconds: float) -> str:
    time.sleep(seconds)
    Path(marker).write_text("finished late\n")
    return "late"


@pytest.mark.timeout(60)
def test_a_timeout_settles_the_attempt_whatever_the_worker_does(
    client: Any, tmp_path: Path
) -> None:
    """One task stops when it sees ctx.cancelled; the other never looks. Both fail with
    TaskTimeoutError at their deadline; the run does not wait for the deaf one."""
    heard, deaf = tmp_path / "heard", tmp_path / "deaf"
    wf = plait.Workflow("timeouts")
    no_retry = plait.RetryPolicy(max_retries=0)
    wf.add_task(
        "listens",
        sleep_unless_cancelled,
        params={"marker": str(heard)},
        timeout=0.5,
        retry=no_retry,
    )
    wf.add_task(
        "deaf",
        deaf_sleep,
        params={"marker": str(deaf), "seconds": 2},
        timeout=0.5,
        retry=no_retry,
    )
    result = plait.run(wf, executors={"cluster": DaskExecutor(client)}, default_executor="cluster")
    assert result.status is plait.RunStatus.FAILED
    for task_id in ("listens", "deaf"):
        error = result.tasks[task_id].error
        assert error is not None and error.type == "plait.TaskTimeoutError", error
    assert not deaf.exists()  # settled before its worker finished it: the late result is unread
    for _ in range(3000):  # the worker saw the cancel Event (it stays set after the timeout)
        if heard.exists() and heard.read_text():  # (made, then written: wait for both)
            break
        time.sleep(0.01)
    assert heard.read_text() == "saw the cancel\n"
    # The deaf task keeps its worker's thread until it returns (Dask cannot stop it); wait for
    # it, so that later tests find both workers free.
    for _ in range(3000):
        if deaf.exists():
            break
        time.sleep(0.01)


def ask_name(ctx: plait.Context) -> str:
    ctx.logger.info("asking for a name")
    name = ctx.request_input("Your name?", schema={"type": "string"})
    return f"hello {name} from {os.getpid()}"


def test_a_question_asked_on_a_worker_pauses_the_run_and_resuming_answers_it(
    client: Any, tmp_path: Path
) -> None:
    store = f"sqlite:///{tmp_path / 'runs.db'}"
    wf = plait.Workflow("asks")
    wf.add_task("ask_name", ask_name)
    executors = {"cluster": DaskExecutor(client)}
    paused = plait.run(
        wf, run_id="asks-1", store=store, executors=executors, default_executor="cluster"
    )
    assert paused.status is plait.RunStatus.PAUSED
    assert paused.waiting["ask_name"].prompt == "Your name?"
    done = plait.resume(
        "asks-1",
        wf,
        store=store,
        inputs={"ask_name": "Ada"},
        executors=executors,
        default_executor="cluster",
    )
    assert done.status is plait.RunStatus.SUCCEEDED, done.error
    greeting, _, pid_text = done.tasks["ask_name"].output.rpartition(" from ")
    assert greeting == "hello Ada"
    assert int(pid_text) in set(client.run(os.getpid).values())
    assert done.tasks["ask_name"].attempts == 2  # it ran again from the top with the answer
    said = [line.text for line in plait.get_logs("asks-1", "ask_name", store=store)]
    assert said.count("INFO plait.task: asking for a name") == 2  # each attempt's, kept


def test_a_durable_run_records_outputs_gathered_from_the_cluster(
    client: Any, tmp_path: Path
) -> None:
    store = f"sqlite:///{tmp_path / 'runs.db'}"
    wf = plait.Workflow("durable")
    wf.add_task("left", pid)
    wf.add_task("right", pid)
    wf.add_task("both", pair, depends_on=["left", "right"])
    result = plait.run(
        wf,
        run_id="durable-1",
        store=store,
        executors={"cluster": DaskExecutor(client)},
        default_executor="cluster",
    )
    assert result.status is plait.RunStatus.SUCCEEDED, result.error
    stored = plait.get_run("durable-1", store=store)
    assert stored.tasks["both"].output == (stored.outputs["left"], stored.outputs["right"])
    assert stored.outputs["left"] in set(client.run(os.getpid).values())


CRASHING_ORCHESTRATOR = """
import sys, plait
from distributed import Client
from plait.executors import DaskExecutor
from executors.test_dask import count_and_return, wait_for_file

address, store, marker, gate = sys.argv[1:]
wf = plait.Workflow("crash")
wf.add_task("first", count_and_return, params={"marker": marker})
wf.add_task("second", wait_for_file, params={"path": gate}, depends_on=["first"])
with Client(address, set_as_default=False) as client:
    plait.run(wf, run_id="crash-1", store=store, executors={"c": DaskExecutor(client)},
              default_executor="c")
"""


def count_and_return(marker: str) -> str:
    with Path(marker).open("a") as file:
        file.write("ran\n")
    return "first done"


def wait_for_file(path: str, first: str) -> str:
    for _ in range(3000):
        if Path(path).exists():
            return f"{first}, then {Path(path).read_text()}"
        time.sleep(0.01)
    raise TimeoutError(f"{path} never came")


def recorded_success(store: str, run_id: str, task_id: str) -> bool:
    """Whether ``store`` has recorded ``task_id`` of ``run_id`` as succeeded (the run may not be
    in the store yet)."""
    try:
        run = plait.get_run(run_id, store=store)
    except plait.stores.RunNotFoundError:
        return False
    return run.tasks[task_id].status is plait.TaskStatus.SUCCEEDED


@pytest.mark.timeout(90)
def test_a_durable_run_on_dask_resumes_after_its_orchestrator_is_killed(
    client: Any, tmp_path: Path
) -> None:
    """kill -9 the process that runs the workflow once the store has recorded the first task;
    resume it here, on the same cluster: the recorded task does not run again."""
    store = f"sqlite:///{tmp_path / 'runs.db'}"
    marker, gate = tmp_path / "ran", tmp_path / "gate"
    tests_dir = str(Path(__file__).resolve().parents[1])
    arguments = [store, str(marker), str(gate)]
    orchestrator = subprocess.Popen(
        [sys.executable, "-c", CRASHING_ORCHESTRATOR, client.scheduler.address, *arguments],
        env={**os.environ, "PYTHONPATH": tests_dir},
    )
    try:
        for _ in range(6000):  # until the store has the first task's success
            if recorded_success(store, "crash-1", "first"):
                break
            assert orchestrator.poll() is None, "the orchestrator ended before the kill"
            time.sleep(0.01)
    finally:
        os.kill(orchestrator.pid, signal.SIGKILL)
        orchestrator.wait()
    gate.write_text("the gate opened")
    wf = plait.Workflow("crash")
    wf.add_task("first", count_and_return, params={"marker": str(marker)})
    wf.add_task("second", wait_for_file, params={"path": str(gate)}, depends_on=["first"])
    resumed = plait.resume(
        "crash-1",
        wf,
        store=store,
        force=True,
        executors={"c": DaskExecutor(client)},
        default_executor="c",
    )
    assert resumed.status is plait.RunStatus.SUCCEEDED, resumed.error
    assert resumed.tasks["second"].output == "first done, then the gate opened"
    assert marker.read_text().splitlines() == ["ran"]  # recorded: it did not run again


def test_an_attempt_goes_to_dask_with_plaits_priority(client: Any) -> None:
    started, gate = f"started-{uuid.uuid4().hex}", f"gate-{uuid.uuid4().hex}"
    executor = DaskExecutor(client)
    job = FakeJob(make_call(hold, started=started, gate=gate))
    job.priority = 7  # type: ignore[attr-defined]  # what the engine's attempt says
    executor.submit(job)
    try:
        assert distributed.Event(started, client=client).wait(30)
        (key,) = (s.key for s in executor._submitted.values())

        def priority_of(dask_scheduler: Any) -> Any:
            return dask_scheduler.tasks[key].priority

        assert client.run_on_scheduler(priority_of)[0] == -7  # Dask: lower runs first
    finally:
        distributed.Event(gate, client=client).set()
    assert job.wait().output == "went"


def test_plaits_queue_order_is_the_attempts_priority() -> None:
    """The engine's side: a job's priority is its place in plait's ready queue, higher first
    (a task's own priority, then the critical path)."""
    seen: dict[str, int] = {}

    class Recording(plait.executors.Executor):
        """Ships each job as a remote executor would, noting its priority."""

        def submit(self, job: Any) -> None:
            task_call = job.call()
            seen[task_call.task_id] = job.priority
            threading.Thread(target=lambda: job.complete(run_call(task_call))).start()

        def shutdown(self, *, wait: bool = True) -> None:
            pass

    wf = plait.Workflow("order")
    wf.add_task("short", add, params={"a": 1, "b": 1}, estimate=1)
    wf.add_task("long", add, params={"a": 1, "b": 1}, estimate=10)
    wf.add_task("urgent", add, params={"a": 1, "b": 1}, priority=5)
    result = plait.run(wf, executors={"rec": Recording()}, default_executor="rec")
    assert result.status is plait.RunStatus.SUCCEEDED
    assert seen["urgent"] > seen["long"] > seen["short"]
