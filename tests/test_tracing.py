"""OpenTelemetry traces of runs: the span tree, read from the SDK's in-memory exporter."""

from __future__ import annotations

import asyncio
import json
import logging
import subprocess
import sys
import textwrap
import threading
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import StatusCode

import plait
from plait import Workflow
from plait._events import RunFinished, RunStarted, TaskStarted, TaskSucceeded
from plait._tracing import RunTracer
from plait.executors import TaskCall, run_call
from plait.stores import MemoryStore, RunRecord, SQLiteStore

_exporter = InMemorySpanExporter()


@pytest.fixture
def spans() -> Iterator[InMemorySpanExporter]:
    """The spans finished during the test (the process's tracer provider is set once)."""
    if not isinstance(trace.get_tracer_provider(), TracerProvider):
        provider = TracerProvider()
        provider.add_span_processor(SimpleSpanProcessor(_exporter))
        trace.set_tracer_provider(provider)
    _exporter.clear()
    yield _exporter
    _exporter.clear()


def diamond(calls: Counter[str]) -> Workflow:
    """a -> (b, c, gate) -> d: b fails once then succeeds, c always fails, gate asks first."""
    wf = Workflow("diamond")

    def a() -> int:
        calls["a"] += 1
        return 1

    def b() -> int:
        calls["b"] += 1
        if calls["b"] == 1:
            raise RuntimeError("b fails once")
        return 2

    def c() -> int:
        calls["c"] += 1
        raise ValueError("c always fails")

    def d() -> None:
        calls["d"] += 1

    wf.add_task("a", a)
    wf.add_task(
        "b", b, depends_on=["a"], retry=plait.RetryPolicy(max_retries=1, backoff=0.05, jitter=0)
    )
    wf.add_task("c", c, depends_on=["a"], retry=plait.RetryPolicy(max_retries=0))
    wf.add_task("gate", None, depends_on=["a"], pause=plait.Pause("go on?"))
    wf.add_task("d", d, depends_on=["b", "c", "gate"])
    return wf


def tree(spans: list[ReadableSpan]) -> list[tuple[Any, ...]]:
    """Each span as (name, parent's name, status, error.type, attempt, events), in start order."""
    by_id = {span.context.span_id: span for span in spans}
    rows = []
    for span in sorted(spans, key=lambda s: (s.start_time or 0, s.name)):
        parent = by_id.get(span.parent.span_id) if span.parent is not None else None
        attributes = span.attributes or {}
        rows.append(
            (
                span.name,
                parent.name if parent is not None else None,
                span.status.status_code.name,
                attributes.get("error.type"),
                attributes.get("plait.task.attempt"),
                [(e.name, dict(e.attributes or {})) for e in span.events],
            )
        )
    return rows


def test_the_span_tree_of_a_run_with_a_retry_a_failure_and_a_pause(
    spans: InMemorySpanExporter,
) -> None:
    store = MemoryStore()
    calls: Counter[str] = Counter()
    first = plait.run(diamond(calls), store=store, tracing=True, max_concurrency=1)
    assert first.status is plait.RunStatus.PAUSED
    run = "plait.run diamond"
    assert tree(list(spans.get_finished_spans())) == [
        (run, None, "UNSET", None, None, []),
        ("plait.task a", run, "UNSET", None, 1, []),
        (
            "plait.task b",
            run,
            "ERROR",
            "RuntimeError",
            1,
            [("plait.retry", {"plait.retry.delay": 0.05})],
        ),
        ("plait.task c", run, "ERROR", "ValueError", 1, []),
        ("plait.task b", run, "UNSET", None, 2, []),
    ]
    by_name = {s.name: s for s in spans.get_finished_spans()}
    run_span = by_name[run]
    assert run_span.attributes == {
        "plait.run.id": first.run_id,
        "plait.workflow": "diamond",
        "plait.run.tasks": 5,
        "plait.run.status": "paused",
    }
    task = by_name["plait.task a"]
    assert task.attributes == {
        "plait.run.id": first.run_id,
        "plait.workflow": "diamond",
        "plait.task.id": "a",
        "plait.task.attempt": 1,
    }
    assert {s.context.trace_id for s in spans.get_finished_spans()} == {run_span.context.trace_id}
    # Times come from the events: the attempt spans agree with the result to the millisecond.
    assert task.start_time is not None and task.end_time is not None
    assert abs(task.start_time / 1e9 - first.tasks["a"].started_at) < 1e-3  # type: ignore[operator]
    assert abs(task.end_time / 1e9 - first.tasks["a"].finished_at) < 1e-3  # type: ignore[operator]

    spans.clear()
    second = plait.resume(first.run_id, diamond(calls), store=store, inputs={"gate": True})
    assert second.status is plait.RunStatus.FAILED
    rows = tree(list(spans.get_finished_spans()))
    assert [row for row in rows if row[0] == run] == [(run, None, "ERROR", None, None, [])]
    assert sorted(row for row in rows if row[0] != run) == sorted(
        [
            ("plait.wait gate", run, "UNSET", None, None, []),
            ("plait.task gate", run, "UNSET", None, 1, []),
            ("plait.task c", run, "ERROR", "ValueError", 2, []),
        ]
    )
    resumed = next(s for s in spans.get_finished_spans() if s.name == run)
    assert resumed.context.trace_id == run_span.context.trace_id
    assert resumed.parent is not None and resumed.parent.span_id == run_span.context.span_id
    assert [link.context.span_id for link in resumed.links] == [run_span.context.span_id]
    assert resumed.status.status_code is StatusCode.ERROR


def test_no_span_when_tracing_is_off(spans: InMemorySpanExporter) -> None:
    plait.run(diamond(Counter()), store=MemoryStore())
    assert spans.get_finished_spans() == ()


def test_no_opentelemetry_import_when_tracing_is_off() -> None:
    code = textwrap.dedent(
        """
        import sys

        import plait

        wf = plait.Workflow("w")
        wf.add_task("a", lambda: 1)
        assert plait.run(wf).status is plait.RunStatus.SUCCEEDED
        print(sorted(name for name in sys.modules if name.startswith("opentelemetry")))
        """
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert out.stdout.strip() == "[]"


FLOW = """
import plait


def first() -> int:
    return 1


wf = plait.Workflow("asks")
wf.add_task("first", first)
wf.add_task("approve", None, depends_on=["first"], pause=plait.Pause("ship it?"))
"""

FIRST_PART = """
import json
import logging
import sys

from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

import plait

exporter = InMemorySpanExporter()
provider = TracerProvider()
provider.add_span_processor(SimpleSpanProcessor(exporter))
trace.set_tracer_provider(provider)

wf = plait.load_target(sys.argv[2]).workflow
result = plait.run(wf, store=sys.argv[1], run_id="traced", tracing=True)
span = next(s for s in exporter.get_finished_spans() if s.name == "plait.run asks")
print(json.dumps({"status": str(result.status), "trace_id": span.context.trace_id,
                  "span_id": span.context.span_id}))
"""


def test_a_run_resumed_in_another_process_continues_the_trace(
    spans: InMemorySpanExporter, tmp_path: Path
) -> None:
    url = f"sqlite:///{tmp_path / 'plait.db'}"
    flow = tmp_path / "asks_flow.py"
    flow.write_text(FLOW)
    target = f"{flow}:wf"
    out = subprocess.run(
        [sys.executable, "-c", FIRST_PART, url, target],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    first = json.loads(out.stdout)
    assert first["status"] == "paused"

    wf = plait.load_target(target).workflow
    store = SQLiteStore(tmp_path / "plait.db")
    result = plait.resume("traced", wf, store=store, inputs={"approve": "yes"}, tracing=True)
    assert result.status is plait.RunStatus.SUCCEEDED
    finished = {s.name: s for s in spans.get_finished_spans()}
    resumed = finished["plait.run asks"]
    assert resumed.context.trace_id == first["trace_id"]
    assert resumed.parent is not None and resumed.parent.span_id == first["span_id"]
    assert [link.context.span_id for link in resumed.links] == [first["span_id"]]
    for name in ("plait.wait approve", "plait.task approve"):
        assert finished[name].context.trace_id == first["trace_id"]
        assert finished[name].parent.span_id == resumed.context.span_id  # type: ignore[union-attr]


def test_the_attempt_span_is_current_while_the_function_runs(
    spans: InMemorySpanExporter,
) -> None:
    inner = trace.get_tracer("a-library")

    def sync_task() -> None:
        with inner.start_as_current_span("inner sync"):
            pass

    async def async_task() -> None:
        with inner.start_as_current_span("inner async"):
            pass

    def flaky(ctx: plait.Context) -> None:
        with inner.start_as_current_span(f"inner flaky {ctx.attempt}"):
            if ctx.attempt == 1:
                raise RuntimeError("again")

    wf = Workflow("nested")
    wf.add_task("sync", sync_task)
    wf.add_task("async", async_task)
    wf.add_task("flaky", flaky, retry=plait.RetryPolicy(max_retries=1, backoff=0, jitter=0))
    result = plait.run(wf, store=MemoryStore(), tracing=True)
    assert result.status is plait.RunStatus.SUCCEEDED, result.error
    finished = list(spans.get_finished_spans())
    by_id = {s.context.span_id: s for s in finished}
    parents = {
        s.name: (
            by_id[s.parent.span_id].name,
            by_id[s.parent.span_id].attributes.get("plait.task.attempt"),
        )  # type: ignore[union-attr]
        for s in finished
        if s.name.startswith("inner")
    }
    assert parents == {
        "inner sync": ("plait.task sync", 1),
        "inner async": ("plait.task async", 1),
        "inner flaky 1": ("plait.task flaky", 1),
        "inner flaky 2": ("plait.task flaky", 2),
    }
    assert len({s.context.trace_id for s in finished}) == 1


def test_attempts_running_at_once_each_nest_their_spans_under_their_own(
    spans: InMemorySpanExporter,
) -> None:
    # The run's attempts share one context, whose span stands for the attempt of the asking
    # thread or asyncio task: while all are inside their functions at once, each still finds
    # its own (and a span made outside any attempt is under none of them).
    inner = trace.get_tracer("a-library")
    together = threading.Barrier(4, timeout=30)

    def sync_task(ctx: plait.Context) -> None:
        together.wait()
        with inner.start_as_current_span(f"inner {ctx.task_id}"):
            together.wait()

    async def async_task(ctx: plait.Context) -> None:
        for _ in range(3):
            await asyncio.sleep(0.01)
            with inner.start_as_current_span(f"inner {ctx.task_id}"):
                await asyncio.sleep(0.01)

    wf = Workflow("at-once")
    for i in range(4):
        wf.add_task(f"sync{i}", sync_task)
        wf.add_task(f"async{i}", async_task)
    result = plait.run(wf, store=MemoryStore(), tracing=True, max_concurrency=8)
    assert result.status is plait.RunStatus.SUCCEEDED, result.error
    with inner.start_as_current_span("outside"):
        pass
    finished = list(spans.get_finished_spans())
    by_id = {s.context.span_id: s for s in finished}
    made = Counter()
    for s in finished:
        if s.name.startswith("inner "):
            assert s.parent is not None
            assert by_id[s.parent.span_id].name == f"plait.task {s.name.removeprefix('inner ')}"
            made[s.name] += 1
    assert made == Counter({f"inner sync{i}": 1 for i in range(4)}) + Counter(
        {f"inner async{i}": 3 for i in range(4)}
    )
    [outside] = [s for s in finished if s.name == "outside"]
    assert outside.parent is None


def create_run(store: MemoryStore, run_id: str, workflow: str) -> None:
    """Create ``run_id``, running, in ``store``: a run to trace without the engine."""
    store.create_run(
        RunRecord(
            run_id=run_id,
            workflow=workflow,
            fingerprint="-",
            definition=[],
            config={},
            status=plait.RunStatus.RUNNING,
            created_at=0.0,
            updated_at=0.0,
        )
    )


def test_a_shipped_attempt_runs_under_its_span_where_it_runs(
    spans: InMemorySpanExporter,
) -> None:
    store = MemoryStore()
    create_run(store, "shipped", "far")
    tracer = RunTracer("far", "shipped", store)
    now = time.time()
    tracer(RunStarted(run_id="shipped", time=now, workflow="far", tasks=1))
    tracer(TaskStarted(run_id="shipped", time=now, task_id="t", attempt=1))
    traceparent = tracer.traceparent("t", 1)

    def far_away() -> None:  # as a process or Dask worker would run it: from the TaskCall only
        with trace.get_tracer("a-library").start_as_current_span("inner far"):
            pass

    outcome = run_call(
        TaskCall(
            run_id="shipped",
            task_id="t",
            attempt=1,
            idempotency_key="shipped/t",
            fn=far_away,
            traceparent=traceparent,
        )
    )
    assert outcome.error is None
    tracer(TaskSucceeded(run_id="shipped", time=now + 0.01, task_id="t", attempt=1))
    tracer(RunFinished(run_id="shipped", time=now + 0.02, status=plait.RunStatus.SUCCEEDED))
    tracer.close()
    by_name = {s.name: s for s in spans.get_finished_spans()}
    task, inner = by_name["plait.task t"], by_name["inner far"]
    assert inner.parent is not None and inner.parent.span_id == task.context.span_id
    assert (
        inner.context.trace_id == task.context.trace_id == by_name["plait.run far"].context.trace_id
    )
    assert traceparent == f"00-{task.context.trace_id:032x}-{task.context.span_id:016x}-01"


def test_runs_traced_at_once_keep_their_spans_apart(spans: InMemorySpanExporter) -> None:
    inner = trace.get_tracer("a-library")

    def work(n: int) -> int:
        with inner.start_as_current_span("inner"):
            time.sleep(0.001)
        return n

    def workflow(name: str) -> Workflow:
        wf = Workflow(name)
        for i in range(30):
            wf.add_task(f"t{i}", work, params={"n": i})
        return wf

    with ThreadPoolExecutor(max_workers=2) as pool:
        results = list(
            pool.map(
                lambda name: plait.run(workflow(name), store=MemoryStore(), tracing=True),
                ["left", "right"],
            )
        )
    assert all(r.status is plait.RunStatus.SUCCEEDED for r in results)
    finished = list(spans.get_finished_spans())
    by_id = {s.context.span_id: s for s in finished}
    runs = {s.name: s for s in finished if s.name.startswith("plait.run")}
    for span in finished:
        if span.name.startswith("plait.task"):
            workflow_name = (span.attributes or {})["plait.workflow"]
            assert span.parent is not None
            assert by_id[span.parent.span_id] is runs[f"plait.run {workflow_name}"]
        elif span.name == "inner":
            assert span.parent is not None and by_id[span.parent.span_id].name.startswith(
                "plait.task"
            )
    assert sum(s.name == "inner" for s in finished) == 60
    generator = trace.get_tracer("plait").id_generator  # type: ignore[attr-defined]
    assert not isinstance(generator._base, type(generator))  # wrapped once, not once per run


def test_an_instance_span_is_named_after_its_mapped_task_and_says_its_own_id(
    spans: InMemorySpanExporter,
) -> None:
    wf = Workflow("mapped")
    wf.add_task("ls", lambda: [1, 2, 3])
    wf.add_task("each", lambda ls: ls, depends_on=["ls"], map_over="ls")
    plait.run(wf, store=MemoryStore(), tracing=True)
    tasks = [s for s in spans.get_finished_spans() if s.name.startswith("plait.task")]
    assert sorted(s.name for s in tasks) == ["plait.task each"] * 3 + ["plait.task ls"]
    ids = sorted(str((s.attributes or {})["plait.task.id"]) for s in tasks)
    assert ids == ["each[0]", "each[1]", "each[2]", "ls"]


def test_a_log_handler_sees_the_attempt_span_current(spans: InMemorySpanExporter) -> None:
    # As OpenTelemetry's logging handler reads it, to put the trace in each record it exports.
    seen: list[int] = []

    class Handler(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            seen.append(trace.get_current_span().get_span_context().span_id)

    logger = logging.getLogger("plait-test-traced-task")
    handler = Handler()
    logger.addHandler(handler)
    try:
        wf = Workflow("logged")
        wf.add_task("t", lambda: logger.warning("from the task"))
        plait.run(wf, store=MemoryStore(), tracing=True)
    finally:
        logger.removeHandler(handler)
    [task] = [s for s in spans.get_finished_spans() if s.name == "plait.task t"]
    assert seen == [task.context.span_id]


def test_a_run_started_by_a_traced_attempt_nests_its_spans_under_it(
    spans: InMemorySpanExporter,
) -> None:
    inner = trace.get_tracer("a-library")

    async def deep() -> None:
        with inner.start_as_current_span("deep"):
            pass

    def starts_a_run() -> None:  # an untraced run of its own, whose async task makes a span
        wf = Workflow("inside")
        wf.add_task("deep", deep)
        plait.run(wf, store=MemoryStore())

    wf = Workflow("outside")
    wf.add_task("outer", starts_a_run)
    plait.run(wf, store=MemoryStore(), tracing=True)
    by_name = {s.name: s for s in spans.get_finished_spans()}
    parent = by_name["deep"].parent
    assert parent is not None and parent.span_id == by_name["plait.task outer"].context.span_id


def test_the_attempt_journal_traces_a_start_and_a_success_as_the_journal_does(
    spans: InMemorySpanExporter,
) -> None:
    store = MemoryStore()
    traced: dict[str, list[tuple[str, int | None, int | None, dict[str, Any]]]] = {}
    for run_id in ("journal", "attempts"):
        create_run(store, run_id, "wf")
        tracer = RunTracer("wf", run_id, store)
        tracer.journal(RunStarted, 1.0, None, {"workflow": "wf", "tasks": 2})
        for kind, at, task_id in [
            (TaskStarted, 1.25, "a"),
            (TaskStarted, 1.5, "b"),
            (TaskSucceeded, 2.0, "a"),
            (TaskSucceeded, 2.5, "b"),
        ]:
            if run_id == "journal":
                tracer.journal(kind, at, task_id, {"attempt": 1})
            else:
                tracer.attempt_journal(kind, at, task_id, 1)
        tracer.journal(RunFinished, 3.0, None, {"status": plait.RunStatus.SUCCEEDED})
        tracer.close()
        traced[run_id] = sorted(
            (
                s.name,
                s.start_time,
                s.end_time,
                {k: v for k, v in (s.attributes or {}).items() if k != "plait.run.id"},
            )
            for s in spans.get_finished_spans()
        )
        spans.clear()
    assert traced["attempts"] == traced["journal"]
    assert len(traced["attempts"]) == 3  # the run's span and each attempt's
