"""Prometheus metrics of runs: the series a run records, read back from the text exposition."""

from __future__ import annotations

import asyncio
import threading
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx2
import pytest
from prometheus_client import CollectorRegistry, Histogram, generate_latest
from prometheus_client.parser import text_string_to_metric_families
from starlette.applications import Starlette

import plait
from plait import Workflow
from plait._events import RunStarted, TaskReady, TaskStarted, TaskSucceeded
from plait._metrics import RunMetrics, _observe
from plait._metrics_exposition import metrics_route
from plait._metrics_series import TASK_BUCKETS
from plait.stores import MemoryStore, SQLiteStore
from plait.web._app import create_app
from plait.web._auth import Keys
from plait.web._server import metrics_routes


def samples(registry: CollectorRegistry) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of the registry's text exposition, by name and labels."""
    text = generate_latest(registry).decode()
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(registry: CollectorRegistry, name: str, **labels: str) -> float:
    return samples(registry).get((name, tuple(sorted(labels.items()))), 0.0)


def diamond(calls: Counter[str]) -> Workflow:
    """a -> (b, c) -> d; b fails once then succeeds, c always fails (so d is skipped)."""
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

    no_wait = plait.RetryPolicy(max_retries=1, backoff=0.0, jitter=0.0)
    wf.add_task("a", a)
    wf.add_task("b", b, depends_on=["a"], retry=no_wait)
    wf.add_task("c", c, depends_on=["a"], retry=plait.RetryPolicy(max_retries=0))
    wf.add_task("d", d, depends_on=["b", "c"])
    return wf


def test_a_run_records_its_attempts_tasks_and_end(tmp_path: Path) -> None:
    registry = CollectorRegistry()
    calls: Counter[str] = Counter()
    result = plait.run(
        diamond(calls),
        store=SQLiteStore(tmp_path / "plait.db"),
        metrics=True,
        metrics_registry=registry,
    )
    assert result.status is plait.RunStatus.FAILED
    attempts = {
        outcome: value(registry, "plait_task_attempts_total", workflow="diamond", result=outcome)
        for outcome in ("succeeded", "retried", "failed", "cancelled")
    }
    # a, b's second attempt succeeded; b's first was retried; c failed; d never ran.
    assert attempts == {"succeeded": 2, "retried": 1, "failed": 1, "cancelled": 0}
    assert sum(attempts.values()) == sum(calls.values()) == 4
    for outcome, count in attempts.items():
        observed = value(
            registry, "plait_task_duration_seconds_count", workflow="diamond", result=outcome
        )
        assert observed == count
    # Every attempt waited for its slot once (b's second from the end of its backoff).
    assert value(registry, "plait_task_queue_wait_seconds_count", workflow="diamond") == 4
    assert value(registry, "plait_tasks_running", workflow="diamond") == 0
    assert value(registry, "plait_runs_active", workflow="diamond") == 0
    assert value(registry, "plait_runs_total", workflow="diamond", status="failed") == 1
    assert value(registry, "plait_store_write_seconds_count", workflow="diamond") >= 1


def test_runs_add_to_the_same_series() -> None:
    registry = CollectorRegistry()
    for _ in range(3):
        plait.run(diamond(Counter()), store=MemoryStore(), metrics=True, metrics_registry=registry)
    assert value(registry, "plait_runs_total", workflow="diamond", status="failed") == 3
    assert value(registry, "plait_task_attempts_total", workflow="diamond", result="succeeded") == 6


def series(registry: CollectorRegistry) -> set[tuple[str, tuple[str, ...]]]:
    """The series' names and label names (values aside): what grows with cardinality."""
    return {(name, tuple(k for k, _ in labels)) for name, labels in samples(registry)}


def noop() -> None:
    pass


def flat(n: int) -> Workflow:
    wf = Workflow("flat")
    for i in range(n):
        wf.add_task(f"t{i}", noop)
    return wf


def test_ten_thousand_tasks_make_as_few_series_as_ten() -> None:
    small, large = CollectorRegistry(), CollectorRegistry()
    plait.run(flat(10), store=MemoryStore(), metrics=True, metrics_registry=small)
    plait.run(flat(10_000), store=MemoryStore(), metrics=True, metrics_registry=large)
    assert len(samples(large)) == len(samples(small)) < 200
    assert series(large) == series(small)
    assert value(large, "plait_task_attempts_total", workflow="flat", result="succeeded") == 10_000
    assert all("task_id" not in labels for _, labels in series(large))


def test_task_labels_are_there_when_asked_for() -> None:
    registry = CollectorRegistry()
    result = plait.run(
        flat(3),
        store=MemoryStore(),
        metrics=True,
        metrics_registry=registry,
        metrics_task_labels=True,
    )
    for task_id in ("t0", "t1", "t2"):
        labels = {
            "workflow": "flat",
            "result": "succeeded",
            "task_id": task_id,
            "run_id": result.run_id,
        }
        assert value(registry, "plait_task_attempts_total", **labels) == 1


def test_one_registry_takes_one_label_setting() -> None:
    registry = CollectorRegistry()
    plait.run(flat(1), store=MemoryStore(), metrics=True, metrics_registry=registry)
    with pytest.raises(plait.ConfigError, match=r"^metrics_task_labels=True, but the registry"):
        plait.run(
            flat(1),
            store=MemoryStore(),
            metrics=True,
            metrics_registry=registry,
            metrics_task_labels=True,
        )


def test_metrics_options_need_metrics() -> None:
    with pytest.raises(plait.ConfigError, match=r"apply only with metrics=True"):
        plait.run(flat(1), store=MemoryStore(), metrics_registry=CollectorRegistry())


def test_the_exposition_adds_gauges_read_from_the_store(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "plait.db")
    plait.run(flat(2), store=store)
    plait.run(diamond(Counter()), store=store)
    wf = Workflow("asks")
    wf.add_task("approve", None, pause=plait.Pause("Ship it?"))
    plait.run(wf, store=store)
    registry = CollectorRegistry()
    body, content_type = plait.metrics_exposition(registry, store=store)
    assert content_type.startswith("text/plain")
    found = {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(body.decode())
        for sample in family.samples
    }
    assert found[("plait_store_runs", (("status", "succeeded"),))] == 1
    assert found[("plait_store_runs", (("status", "failed"),))] == 1
    assert found[("plait_store_runs", (("status", "paused"),))] == 1
    assert found[("plait_store_open_questions", ())] == 1


def test_the_metrics_route_needs_the_token(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "plait.db")
    registry = CollectorRegistry()
    plait.run(flat(2), store=store, metrics=True, metrics_registry=registry)
    app = Starlette(
        routes=[metrics_route(store, is_token=lambda t: t == "s3cret", registry=registry)]
    )

    async def scrape(headers: dict[str, str]) -> httpx2.Response:
        transport = httpx2.ASGITransport(app=app)
        async with httpx2.AsyncClient(transport=transport, base_url="http://plait") as client:
            return await client.get("/metrics", headers=headers)

    assert asyncio.run(scrape({})).status_code == 401
    assert asyncio.run(scrape({"Authorization": "Bearer nope"})).status_code == 401
    scraped = asyncio.run(scrape({"Authorization": "Bearer s3cret"}))
    assert scraped.status_code == 200
    assert scraped.headers["content-type"].startswith("text/plain")
    assert 'plait_runs_total{status="succeeded",workflow="flat"} 1.0' in scraped.text
    assert 'plait_store_runs{status="succeeded"} 1.0' in scraped.text


def test_a_question_answered_live_records_its_wait() -> None:
    registry = CollectorRegistry()
    store = MemoryStore()
    asked = threading.Event()
    wf = Workflow("asks")
    wf.add_task("approve", None, pause=plait.Pause("ship it?"))

    def on_event(event: plait.Event) -> None:
        if isinstance(event, plait.InputRequested):
            asked.set()

    with ThreadPoolExecutor(max_workers=1) as pool:
        running = pool.submit(
            plait.run,
            wf,
            run_id="live-question",
            store=store,
            wait_for_input=True,
            subscribers=[on_event],
            metrics=True,
            metrics_registry=registry,
        )
        assert asked.wait(timeout=30)
        plait.answer("live-question", "approve", "yes", store=store)
        assert running.result(timeout=30).status is plait.RunStatus.SUCCEEDED
    assert value(registry, "plait_input_wait_seconds_count", workflow="asks") == 1
    assert value(registry, "plait_task_attempts_total", workflow="asks", result="succeeded") == 1


def test_plait_serve_mounts_the_metrics_behind_its_token(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'plait.db'}"
    plait.run(flat(2), store=url)
    keys = Keys("a-token-of-the-server")
    routes, store = metrics_routes(url, keys)
    assert store is not None
    app = create_app(url, keys=keys, routes=routes)

    async def scrape(headers: dict[str, str]) -> httpx2.Response:
        transport = httpx2.ASGITransport(app=app)
        async with httpx2.AsyncClient(transport=transport, base_url="http://testserver") as client:
            return await client.get("/metrics", headers=headers)

    try:
        assert asyncio.run(scrape({})).status_code == 401
        scraped = asyncio.run(scrape({"Authorization": f"Bearer {keys.token}"}))
    finally:
        store.close()
    assert scraped.status_code == 200
    assert 'plait_store_runs{status="succeeded"} 1.0' in scraped.text


def test_instances_of_a_mapped_task_share_its_task_label() -> None:
    registry = CollectorRegistry()
    wf = plait.Workflow("mapped")
    wf.add_task("ls", lambda: list(range(50)))
    wf.add_task("each", lambda ls: ls, depends_on=["ls"], map_over="ls")
    result = plait.run(
        wf,
        store=MemoryStore(),
        metrics=True,
        metrics_registry=registry,
        metrics_task_labels=True,
    )
    labels = {"workflow": "mapped", "result": "succeeded", "run_id": result.run_id}
    assert value(registry, "plait_task_attempts_total", task_id="each", **labels) == 50
    assert "each[" not in generate_latest(registry).decode()  # one series per task, not item


def test_a_scrape_during_a_run_sees_the_attempts_that_ended() -> None:
    registry = CollectorRegistry()
    seen: dict[str, float] = {}
    wf = Workflow("live")
    wf.add_task("first", lambda: None)

    def second() -> None:  # scrapes while it runs: `first` ended, it runs
        seen["ended"] = value(
            registry, "plait_task_attempts_total", workflow="live", result="succeeded"
        )
        seen["running"] = value(registry, "plait_tasks_running", workflow="live")
        seen["waits"] = value(registry, "plait_task_queue_wait_seconds_count", workflow="live")

    wf.add_task("second", second, depends_on=["first"])
    plait.run(wf, store=MemoryStore(), metrics=True, metrics_registry=registry)
    assert seen == {"ended": 1.0, "running": 1.0, "waits": 2.0}
    assert value(registry, "plait_tasks_running", workflow="live") == 0.0
    assert value(registry, "plait_task_attempts_total", workflow="live", result="succeeded") == 2


def test_a_histogram_told_at_once_reads_as_one_told_value_by_value() -> None:
    values = [0.0, -1.0, 0.005, 0.0051, 0.3, 2.5, 7.0, 3599.0, 5000.0, 0.01, 0.01]
    read = []
    for at_once in (True, False):
        registry = CollectorRegistry()
        histogram = Histogram("h_seconds", "h", ("w",), buckets=TASK_BUCKETS, registry=registry)
        if at_once:
            _observe(histogram.labels("w"), values)
        else:
            for v in values:
                histogram.labels("w").observe(max(0.0, v))
        read.append({k: v for k, v in samples(registry).items() if k[0] != "h_seconds_created"})
    assert read[0] == read[1]
    assert read[0][("h_seconds_count", (("w", "w"),))] == len(values)


def test_attempts_past_one_batch_all_reach_the_registry() -> None:
    registry = CollectorRegistry()
    wf = Workflow("many")
    for n in range(1100):  # more than one batch of gathered attempts (1024)
        wf.add_task(f"t{n}", lambda: None)
    plait.run(wf, store=MemoryStore(), metrics=True, metrics_registry=registry)
    assert value(registry, "plait_task_attempts_total", workflow="many", result="succeeded") == 1100
    assert (
        value(registry, "plait_task_duration_seconds_count", workflow="many", result="succeeded")
        == 1100
    )
    assert value(registry, "plait_task_queue_wait_seconds_count", workflow="many") == 1100
    assert value(registry, "plait_tasks_running", workflow="many") == 0.0


def told(registry: CollectorRegistry) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """The samples of ``registry`` but their series' creation times."""
    return {key: v for key, v in samples(registry).items() if not key[0].endswith("_created")}


def test_the_attempt_journal_records_a_start_and_a_success_as_the_journal_does() -> None:
    through_journal, through_attempts = CollectorRegistry(), CollectorRegistry()
    journal = RunMetrics("wf", registry=through_journal)
    attempts = RunMetrics("wf", registry=through_attempts)
    for metrics in (journal, attempts):
        metrics.run_id = "r"
        metrics.journal(RunStarted, 0.5, None, {"workflow": "wf", "tasks": 2})
        metrics.journal(TaskReady, 1.0, "a", {})
        metrics.journal(TaskReady, 1.0, "b", {})
    for kind, at, task_id in [
        (TaskStarted, 1.25, "a"),
        (TaskStarted, 1.5, "b"),
        (TaskSucceeded, 3.0, "a"),
    ]:
        journal.journal(kind, at, task_id, {"attempt": 1})
        attempts.attempt(kind, at, task_id, 1)
    journal.flush()
    attempts.flush()
    recorded = told(through_attempts)
    assert recorded == told(through_journal)
    assert recorded["plait_tasks_running", (("workflow", "wf"),)] == 1.0  # b
    succeeded = (("result", "succeeded"), ("workflow", "wf"))
    assert recorded["plait_task_duration_seconds_count", succeeded] == 1.0
    assert recorded["plait_task_duration_seconds_sum", succeeded] == 1.75
    assert recorded["plait_task_queue_wait_seconds_sum", (("workflow", "wf"),)] == 0.75
