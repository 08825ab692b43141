"""The run report: built from real runs in real stores, and looked at in a real browser."""

from __future__ import annotations

import asyncio
import json
import random
import re
import shutil
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import plait
from plait.cli._report import build_report
from plait.cli._report import write_report as write
from plait.cli._report_layout import ticks as axis_ticks
from plait.cli._report_model import seconds
from plait.cli._summary import figures_of
from plait.cli._timeline import _Run, _Segment, _segments_from_events, _Task
from plait.stores import EventRecord, MemoryStore, RunNotFoundError, SQLiteStore

from .conftest import ARTIFACTS, Opened, in_thread

XSS = "<img src=x onerror=alert(1)>"
QUOTED = 'it\'s "quoted" & <b>bold</b>'
PROMPT = "Ship <b>it</b>? </td></tr></table><script>alert(2)</script>"
LOAD_ERROR = "disk full: <script>alert('x')</script>"
CRITICAL = ["extract", "transform", "publish"]


def mixed_workflow() -> plait.Workflow:
    """Every outcome a paused run can hold: succeeded (one after two failed attempts), failed
    after retries, skipped, waiting for input, pending -- and ids that try to inject markup.

    The critical path is extract -> transform -> publish (0.28 s of work); no other path comes
    close (extract -> flaky does 0.14 s).
    """
    wf = plait.Workflow("nightly <etl>")
    tries = [0]

    def work(seconds: float) -> None:
        time.sleep(seconds)

    def flaky() -> None:
        tries[0] += 1
        time.sleep(0.02)
        if tries[0] < 3:
            raise ConnectionError(f"connection reset (try {tries[0]})")

    def load() -> None:
        time.sleep(0.01)
        raise RuntimeError(LOAD_ERROR)

    retry = plait.RetryPolicy(max_retries=3, backoff=0.01, jitter=0)
    wf.add_task("extract", work, params={"seconds": 0.08})
    wf.add_task("transform", work, depends_on=["extract"], params={"seconds": 0.15})
    wf.add_task("publish", work, depends_on=["transform"], params={"seconds": 0.05})
    wf.add_task("flaky", flaky, depends_on=["extract"], retry=retry)
    wf.add_task("load", load, depends_on=["extract"], retry=plait.RetryPolicy(2, 0.01, jitter=0))
    wf.add_task("report", work, depends_on=["load"], params={"seconds": 0})
    wf.add_task(XSS, work, depends_on=["extract"], params={"seconds": 0.01})
    wf.add_task(QUOTED, work, depends_on=[XSS], params={"seconds": 0.01})
    wf.add_task("approve", None, depends_on=["flaky"], pause=plait.Pause(PROMPT))
    wf.add_task("ship", work, depends_on=["approve"], params={"seconds": 0})
    return wf


EXPECTED = {
    "extract": "succeeded",
    "transform": "succeeded",
    "publish": "succeeded",
    "flaky": "succeeded",
    "load": "failed",
    "report": "skipped",
    XSS: "succeeded",
    QUOTED: "succeeded",
    "approve": "waiting",
    "ship": "pending",
}


def halted_workflow() -> plait.Workflow:
    """A critical task fails: a running task is cancelled, pending ones are cancelled unstarted."""
    wf = plait.Workflow("halted")

    def work() -> None:
        time.sleep(0.03)

    async def slow() -> None:
        await asyncio.sleep(30)

    def check() -> None:
        time.sleep(0.05)
        raise PermissionError("the warehouse said no")

    wf.add_task("prepare", work)
    wf.add_task("slow", slow)
    wf.add_task("check", check, depends_on=["prepare"], critical=True, retry=plait.RetryPolicy(0))
    wf.add_task("after_slow", work, depends_on=["slow"])
    wf.add_task("after_check", work, depends_on=["check"])
    wf.add_task("later", work, depends_on=["prepare", "slow"])
    return wf


def big_workflow(n: int = 2000, width: int = 100) -> plait.Workflow:
    """``n`` short async tasks in stages of ``width``, each depending on 1-3 of the stage before;
    one task in stage 17 fails (after a retry), so a few in the last stages are skipped."""
    rng = random.Random(n)
    wf = plait.Workflow("big")

    async def work(ms: float) -> None:
        await asyncio.sleep(ms / 1000)

    async def broken() -> None:
        raise ValueError("t1717 is broken")

    for i in range(n):
        stage = i // width
        deps = sorted(
            {f"t{rng.randrange((stage - 1) * width, stage * width):04d}" for _ in range(3)}
            if stage
            else ()
        )[: rng.randint(1, 3)]
        if i == 1717:
            retry = plait.RetryPolicy(max_retries=1, backoff=0.001)
            wf.add_task(f"t{i:04d}", broken, depends_on=deps, retry=retry)
        else:
            wf.add_task(f"t{i:04d}", work, depends_on=deps, params={"ms": rng.uniform(0.2, 3.0)})
    return wf


def run_report(
    directory: Path, workflow: Callable[[], plait.Workflow], **settings: Any
) -> tuple[plait.RunResult, Path]:
    """Run ``workflow()`` in a fresh SQLite store and write its report; (result, report path)."""
    store = SQLiteStore(directory / "plait.db")
    result = in_thread(lambda: plait.run(workflow(), store=store, **settings))
    return result, write(result.run_id, directory / "report.html", store=store)


@pytest.fixture(scope="module")
def mixed(tmp_path_factory: pytest.TempPathFactory) -> tuple[plait.RunResult, Path]:
    return run_report(tmp_path_factory.mktemp("mixed"), mixed_workflow, max_concurrency=4)


@pytest.fixture(scope="module")
def halted(tmp_path_factory: pytest.TempPathFactory) -> tuple[plait.RunResult, Path]:
    return run_report(tmp_path_factory.mktemp("halted"), halted_workflow, max_concurrency=4)


def keep(opened: Opened, tmp_path: Path, name: str) -> Path:
    """Screenshot the whole page into ``tmp_path`` and keep a copy in ``test-artifacts/``."""
    shot = tmp_path / name
    opened.page.screenshot(path=str(shot), full_page=True)
    ARTIFACTS.mkdir(exist_ok=True)
    shutil.copyfile(shot, ARTIFACTS / name)
    return shot


# What a person sees in the timeline: each row, its label, and the boxes and colours of its bars.
ROWS_JS = """() => Array.from(document.querySelectorAll('.gantt .row')).map(row => {
  const track = row.querySelector('.track').getBoundingClientRect();
  return {
    id: row.dataset.taskId,
    status: row.dataset.status,
    critical: row.classList.contains('critical'),
    label: row.querySelector('.name').textContent,
    bars: Array.from(row.querySelectorAll('.bar')).map(bar => {
      const box = bar.getBoundingClientRect();
      return {
        classes: Array.from(bar.classList),
        attempt: bar.dataset.attempt ? Number(bar.dataset.attempt) : null,
        left: box.left - track.left, right: box.right - track.left,
        width: box.width, height: box.height, track: track.width,
        color: getComputedStyle(bar).backgroundColor,
        title: bar.getAttribute('title'),
      };
    }),
  };
})"""

SWATCHES_JS = """() => Object.fromEntries(Array.from(document.querySelectorAll('.legend .swatch'))
  .map(s => [s.classList[1], getComputedStyle(s).backgroundColor]))"""


def status_of(bar: dict[str, Any]) -> str:
    classes: list[str] = bar["classes"]
    (status,) = [c.removeprefix("status-") for c in classes if c.startswith("status-")]
    return status


def check_rows(
    rows: list[dict[str, Any]], expected: dict[str, str], swatches: dict[str, str]
) -> None:
    """Every task has its row; every bar is visible, inside its track, and coloured as the
    legend says; the last bar of each task shows the task's status."""
    assert sorted(row["id"] for row in rows) == sorted(expected)
    for row in rows:
        task_id, status = row["id"], expected[row["id"]]
        assert row["status"] == status, task_id
        assert row["label"] == task_id
        bars = row["bars"]
        if status == "pending":
            assert bars == [], task_id
            continue
        assert bars, f"task {task_id!r} ({status}) has no bar"
        assert status_of(bars[-1]) == status, task_id
        for bar in bars:
            assert bar["width"] >= 1 and bar["height"] >= 4, (task_id, bar)
            assert bar["left"] >= -5 and bar["right"] <= bar["track"] + 5, (task_id, bar)
            assert task_id in bar["title"]
            kind = status_of(bar)
            if "attempt" in bar["classes"] and f"status-{kind}" in swatches:
                assert bar["color"] == swatches[f"status-{kind}"], (task_id, bar)
                assert bar["color"] not in ("rgba(0, 0, 0, 0)", "transparent")


# -- the report in a browser ---------------------------------------------------------------------


def test_mixed_run_as_a_person_sees_it(
    mixed: tuple[plait.RunResult, Path], open_report: Callable[[Path], Opened], tmp_path: Path
) -> None:
    result, path = mixed
    assert result.status is plait.RunStatus.PAUSED
    assert {t: r.status for t, r in result.tasks.items()} == {
        t: ("waiting_for_input" if s == "waiting" else s) for t, s in EXPECTED.items()
    }
    opened = open_report(path)
    keep(opened, tmp_path, "report.png")
    assert opened.errors == []
    assert opened.dialogs == []
    assert set(opened.requests) == {opened.url}  # nothing from the network, not even a font

    rows: list[dict[str, Any]] = opened.evaluate(ROWS_JS)
    check_rows(rows, EXPECTED, opened.evaluate(SWATCHES_JS))
    by_id = {row["id"]: row for row in rows}

    # Ordered by first start; tasks that never ran come last, in definition order.
    assert rows[0]["id"] == "extract"
    assert [row["id"] for row in rows[-2:]] == ["report", "ship"]
    ran = [row["bars"][0]["left"] for row in rows[:-2]]
    assert ran == sorted(ran)

    # The retried task: one bar per attempt, the first two failed and retried.
    flaky = [bar for bar in by_id["flaky"]["bars"] if "attempt" in bar["classes"]]
    assert [bar["attempt"] for bar in flaky] == [1, 2, 3]
    assert [status_of(bar) for bar in flaky] == ["failed", "failed", "succeeded"]
    assert ["retried" in bar["classes"] for bar in flaky] == [True, True, False]
    assert flaky[0]["right"] <= flaky[1]["left"] + 1 and flaky[1]["right"] <= flaky[2]["left"] + 1
    assert "ConnectionError: connection reset (try 1)" in flaky[0]["title"]
    load = by_id["load"]["bars"]
    assert [status_of(bar) for bar in load] == ["failed"] * 3
    assert "attempt 3 of 3, failed" in load[-1]["title"]
    assert f"RuntimeError: {LOAD_ERROR}" in load[-1]["title"]

    # The unanswered question: a hatched bar from the question to the end of the run.
    (waiting,) = by_id["approve"]["bars"]
    assert {"waiting", "status-waiting"} <= set(waiting["classes"])
    assert abs(waiting["right"] - waiting["track"]) < 2
    assert "linear-gradient" in opened.evaluate(
        "() => getComputedStyle(document.querySelector('.bar.waiting')).backgroundImage"
    )
    (skip_marker,) = by_id["report"]["bars"]
    assert "'load' did not succeed" in skip_marker["title"]

    # The critical path, highlighted in the timeline, the graph and the header.
    assert [row["id"] for row in rows if row["critical"]] == CRITICAL
    graph = opened.evaluate(
        """() => ({
        nodes: Array.from(document.querySelectorAll('#graph .node')).map(n => ({
            id: n.getAttribute('data-task-id'), critical: n.classList.contains('critical'),
            status: Array.from(n.classList).find(c => c.startsWith('status-')),
            title: n.querySelector('title').textContent})),
        criticalEdges: document.querySelectorAll('#graph .edge.critical').length,
        edges: document.querySelectorAll('#graph .edge').length,
        caption: document.querySelector('#graph .path').textContent,
        figure: document.querySelector('[data-figure=critical-path]').textContent,
    })"""
    )
    assert {n["id"]: n["status"] for n in graph["nodes"]} == {
        t: f"status-{s}" for t, s in EXPECTED.items()
    }
    assert [n["id"] for n in graph["nodes"] if n["critical"]] == CRITICAL
    assert graph["criticalEdges"] == 2 and graph["edges"] == 9
    assert graph["caption"] == "Critical path: extract \u2192 transform \u2192 publish"
    assert "3 tasks" in graph["figure"]
    assert next(n for n in graph["nodes"] if n["id"] == XSS)["title"].startswith(XSS)

    # Markup in ids, errors, prompts and the workflow's name shows as text.
    page = opened.evaluate(
        """() => ({
        images: document.images.length,
        scripts: document.scripts.length,
        bold: document.querySelectorAll('b').length,
        title: document.title,
        h1: document.querySelector('h1').textContent,
        prompt: document.querySelector('.questions td.prompt').textContent,
        message: document.querySelector('.failures .message').textContent,
        failed: Array.from(document.querySelectorAll('.failures tbody tr'))
            .map(r => r.dataset.taskId),
        status: document.getElementById('run-status').textContent,
    })"""
    )
    assert page["images"] == 0 and page["scripts"] == 1
    assert page["h1"] == "nightly <etl>"
    assert page["title"].startswith("nightly <etl> \u00b7 run ")
    assert page["prompt"] == PROMPT
    assert page["message"] == LOAD_ERROR
    assert page["failed"] == ["load"]
    assert page["status"] == "paused"
    assert by_id[QUOTED]["label"] == QUOTED


def test_tooltips_filter_and_graph_clicks_work(
    mixed: tuple[plait.RunResult, Path], open_report: Callable[[Path], Opened]
) -> None:
    opened = open_report(mixed[1])
    page = opened.page
    bar = page.locator(".gantt .row[data-task-id='load'] .bar.attempt").last
    bar.hover()
    tip = page.locator("#tip")
    assert tip.is_visible()
    assert "load \u2014 attempt 3 of 3, failed" in tip.inner_text()
    assert f"RuntimeError: {LOAD_ERROR}" in tip.inner_text()
    page.mouse.move(5, 5)
    assert tip.is_hidden()
    assert bar.get_attribute("title")  # given back when the pointer leaves

    def shown() -> list[str]:
        ids: list[str] = page.evaluate(
            "() => Array.from(document.querySelectorAll('.gantt .row'))"
            ".filter(r => r.offsetHeight > 0).map(r => r.dataset.taskId)"
        )
        return ids

    page.fill("#filter", "FLA")
    assert shown() == ["flaky"]
    assert page.inner_text("#shown") == "1 of 10 tasks"
    page.fill("#filter", "")
    page.select_option("#show", "critical")
    assert shown() == CRITICAL
    page.select_option("#show", "waiting")
    assert shown() == ["approve"]

    page.locator("#graph g.node[data-task-id='report']").click()
    assert page.locator(".gantt .row[data-task-id='report']").get_attribute("class") == (
        "row status-skipped flash"
    )
    assert len(shown()) == 10  # clicking a node clears the filter
    assert opened.errors == []


def test_halted_run_shows_cancelled_and_skipped_tasks(
    halted: tuple[plait.RunResult, Path], open_report: Callable[[Path], Opened], tmp_path: Path
) -> None:
    result, path = halted
    assert result.status is plait.RunStatus.FAILED
    opened = open_report(path)
    keep(opened, tmp_path, "report-halted.png")
    assert opened.errors == [] and opened.dialogs == []
    expected = {
        "prepare": "succeeded",
        "slow": "cancelled",
        "check": "failed",
        "after_slow": "cancelled",
        "after_check": "skipped",
        "later": "cancelled",
    }
    rows: list[dict[str, Any]] = opened.evaluate(ROWS_JS)
    check_rows(rows, expected, opened.evaluate(SWATCHES_JS))
    by_id = {row["id"]: row for row in rows}
    (slow,) = by_id["slow"]["bars"]  # it was running: a bar, cut short when the run stopped
    assert "attempt" in slow["classes"] and slow["width"] > 10
    for task_id in ("after_slow", "later"):  # never started: a marker
        (marker,) = by_id[task_id]["bars"]
        assert "marker" in marker["classes"]
        assert "cancelled (not started)" in marker["title"]
    error = opened.page.inner_text(".run-error")
    assert "task 'check' failed and is critical" in error


def test_a_2000_task_report_is_small_and_opens_fast(
    tmp_path: Path, open_report: Callable[[Path], Opened]
) -> None:
    result, path = run_report(tmp_path, big_workflow, max_concurrency=32)
    counts = {str(s): n for s, n in _status_counts(result).items()}
    assert counts["failed"] == 1 and counts["skipped"] > 0 and counts["succeeded"] > 1900
    size = path.stat().st_size
    assert size < 3_000_000, f"the 2,000-task report is {size:,} bytes"

    opened = open_report(path)
    assert opened.load_seconds < 10  # loose: it takes about a second
    assert opened.errors == []
    seen = opened.evaluate(
        """() => ({
        rows: document.querySelectorAll('.gantt .row').length,
        bars: document.querySelectorAll('.gantt .bar.attempt').length,
        dots: document.querySelectorAll('#graph circle.node').length,
        critical: document.querySelectorAll('#graph circle.node.critical').length,
        criticalRows: document.querySelectorAll('.gantt .row.critical').length,
        labels: document.querySelectorAll('#graph text').length,
        load: performance.getEntriesByType('navigation')[0].loadEventEnd,
    })"""
    )
    assert seen["rows"] == 2000 and seen["dots"] == 2000 and seen["labels"] == 0
    assert seen["bars"] == sum(r.attempts for r in result.tasks.values())
    # The critical path is the longest by actual durations: normally one task per stage (20),
    # but on a loaded machine one stalled task in an early stage can outweigh a whole chain,
    # so only its consistency is certain: the same tasks are highlighted in both views.
    assert seen["critical"] == seen["criticalRows"] >= 1
    ARTIFACTS.mkdir(exist_ok=True)
    (ARTIFACTS / "report-2000.json").write_text(
        json.dumps(
            {
                "bytes": size,
                "open_seconds": round(opened.load_seconds, 3),
                "load_event_ms": round(seen["load"]),
            }
        )
        + "\n"
    )


def mapped_workflow(n: int = 40) -> plait.Workflow:
    """``list_files -> convert`` (mapped over its ``n`` items; ``page07`` and ``page22`` are not
    PNGs) ``-> total`` (all_done), ``alert`` (one_failed), ``publish`` (skipped: upstream
    failed) and a ``cleanup``."""
    wf = plait.Workflow("convert-files")

    @wf.task
    def list_files() -> list[str]:
        return [f"page{i:02d}" for i in range(n)]

    @wf.task(depends_on=[list_files], map_over="list_files", retry=plait.RetryPolicy(0))
    def convert(list_files: str) -> int:
        time.sleep(0.005 + int(list_files[4:]) % 7 / 400)
        if list_files in ("page07", "page22"):
            raise ValueError(f"{list_files} is not a PNG")
        return len(list_files)

    @wf.task(depends_on=[convert], trigger="all_done")
    def total(convert: list[int] | None = None) -> int:
        return sum(convert or [])

    wf.add_task("alert", lambda: None, depends_on=["convert"], trigger="one_failed")
    wf.add_task("publish", lambda: None, depends_on=["convert"])
    wf.add_task("cleanup", lambda: None, depends_on=["total"], cleanup=True)
    return wf


def test_a_mapped_run_is_one_group_that_opens_and_filters(
    tmp_path: Path, open_report: Callable[[Path], Opened]
) -> None:
    result, path = run_report(tmp_path, mapped_workflow, max_concurrency=4)
    assert result.tasks["convert"].status is plait.TaskStatus.FAILED
    opened = open_report(path)
    assert opened.errors == [] and opened.dialogs == []
    page = opened.page
    group = page.locator("details.group[data-task-id='convert']")
    head = group.locator("summary.group-row")
    assert group.get_attribute("open") is None  # 40 instances: collapsed
    assert head.locator(".name").inner_text() == "convert [40]"
    assert head.locator(".counts").inner_text().split() == ["38", "2"]
    assert head.locator(".label").get_attribute("title") == "convert [40]: 38 succeeded, 2 failed"
    assert page.locator(".row.instance").first.is_hidden()
    bar = head.locator(".bar.group").bounding_box()
    track = head.locator(".track").bounding_box()
    assert bar is not None and track is not None
    assert bar["width"] > 0.3 * track["width"]  # first start to last end: most of the run
    assert page.locator(".row[data-task-id='publish'] .why").inner_text() == (
        "'convert' did not succeed"
    )
    failed = page.locator(".failures tbody tr").evaluate_all(
        "rows => rows.map(r => r.dataset.taskId)"
    )
    assert failed == ["convert[7]", "convert[22]"]

    page.fill("#filter", "convert[22]")  # the filter opens the group on what it finds
    assert group.get_attribute("open") is not None
    assert page.locator(".row.instance:visible").count() == 1
    assert page.inner_text("#shown") == "1 of 46 tasks"
    page.fill("#filter", "")
    assert group.get_attribute("open") is None  # and closes it again
    head.click()
    rows: list[dict[str, Any]] = opened.evaluate(ROWS_JS)
    instances = [row for row in rows if "[" in row["id"]]
    assert [row["id"] for row in instances] == [f"convert[{i}]" for i in range(40)]
    for row in instances:
        (attempt,) = row["bars"]
        assert attempt["width"] >= 1 and attempt["right"] <= attempt["track"] + 5
        bad = row["id"] in ("convert[7]", "convert[22]")
        assert status_of(attempt) == ("failed" if bad else "succeeded")
    page.mouse.move(5, 5)  # no tooltip in the picture (docs/report-mapped.png is one)
    keep(opened, tmp_path, "report-mapped.png")


def _status_counts(result: plait.RunResult) -> dict[plait.TaskStatus, int]:
    counts: dict[plait.TaskStatus, int] = {}
    for task in result.tasks.values():
        counts[task.status] = counts.get(task.status, 0) + 1
    return counts


# -- the HTML itself -------------------------------------------------------------------------------


def test_the_html_is_self_contained_and_escaped(mixed: tuple[plait.RunResult, Path]) -> None:
    text = mixed[1].read_text(encoding="utf-8")
    assert text.startswith("<!DOCTYPE html>")
    assert text.count("<script") == 1 and "<img" not in text
    assert "&lt;img src=x onerror=alert(1)&gt;" in text
    assert not re.search(r"""(?:src|href)\s*=\s*['"]?(?:https?:)?//""", text)
    assert "@import" not in text and "url(http" not in text


def test_a_memory_store_run_shows_one_bar_per_task() -> None:
    store = MemoryStore()
    result = in_thread(lambda: plait.run(mixed_workflow(), store=store, max_concurrency=4))
    text = build_report(result.run_id, store=store)
    assert "keeps no event log" in text
    rows = re.findall(r"<div class='row [^']*' data-task-id='([^']*)'.*?</div></div>", text, re.S)
    assert len(rows) == 10
    flaky = re.search(r"data-task-id='flaky'.*?</div></div>", text, re.S)
    assert flaky is not None and flaky.group(0).count("class='bar attempt") == 1
    assert "class='bar waiting status-waiting'" in text


def test_write_report_returns_the_path(mixed: tuple[plait.RunResult, Path], tmp_path: Path) -> None:
    result, path = mixed
    store = SQLiteStore(path.parent / "plait.db")
    written = write(result.run_id, str(tmp_path / "again.html"), store=store)
    assert written == tmp_path / "again.html"
    assert written.read_text(encoding="utf-8").startswith("<!DOCTYPE html>")


def test_an_unknown_run_is_refused() -> None:
    with pytest.raises(RunNotFoundError, match=r"^there is no run 'nope' in <"):
        build_report("nope", store=MemoryStore())


# -- waits and resumes ----------------------------------------------------------------------------


def segments(run: _Run, task_id: str) -> list[tuple[str, str]]:
    return [(s.kind, s.status) for s in run.tasks[task_id].segments]


def test_an_answered_question_is_a_wait_between_two_attempts(tmp_path: Path) -> None:
    wf = plait.Workflow("ask")

    def ask(ctx: plait.Context) -> int:
        count: int = ctx.request_input("How many?")
        time.sleep(0.02)
        return count

    wf.add_task("ask", ask)

    def answer_soon(event: plait.Event) -> None:
        if isinstance(event, plait.InputRequested):  # not here: the engine holds its lock
            threading.Timer(0.05, plait.answer, (event.run_id, event.task_id, 3)).start()

    store = SQLiteStore(tmp_path / "plait.db")
    result = in_thread(
        lambda: plait.run(wf, store=store, subscribers=[answer_soon], wait_for_input=True)
    )
    assert result.status is plait.RunStatus.SUCCEEDED
    record = store.get_run(result.run_id)
    assert record is not None
    run = _Run.load(record, store)
    assert segments(run, "ask") == [
        ("attempt", "suspended"),
        ("waiting", "waiting"),
        ("attempt", "succeeded"),
    ]
    asked, wait, answered = run.tasks["ask"].segments
    assert asked.end == wait.start and wait.end <= answered.start
    assert wait.duration >= 0.04
    assert wait.note == "How many? (answered)"
    assert run.tasks["ask"].work == pytest.approx(asked.duration + answered.duration)


def test_a_resumed_pause_waits_until_the_task_starts(tmp_path: Path) -> None:
    def workflow() -> plait.Workflow:
        wf = plait.Workflow("gate")
        wf.add_task("approve", None, pause=plait.Pause("Go?"))
        wf.add_task("go", lambda approve: approve, depends_on=["approve"])
        return wf

    store = SQLiteStore(tmp_path / "plait.db")
    paused = in_thread(lambda: plait.run(workflow(), store=store))
    assert paused.status is plait.RunStatus.PAUSED
    time.sleep(0.05)
    resumed = in_thread(
        lambda: plait.resume(paused.run_id, workflow(), inputs={"approve": 1}, store=store)
    )
    assert resumed.status is plait.RunStatus.SUCCEEDED
    record = store.get_run(paused.run_id)
    assert record is not None
    run = _Run.load(record, store)
    assert segments(run, "approve") == [("waiting", "waiting"), ("attempt", "succeeded")]
    wait, attempt = run.tasks["approve"].segments
    assert wait.duration >= 0.04 and wait.end == attempt.start
    assert run.questions == []
    text = build_report(paused.run_id, store=store)
    assert "No question is waiting." in text


def test_an_attempt_lost_in_a_crash_is_interrupted() -> None:
    task = _Task(id="t", index=0, depends_on=(), status=plait.TaskStatus.SUCCEEDED, attempts=2)
    log = [
        EventRecord(kind="RunStarted", time=10.0, data={"workflow": "w", "tasks": 1}),
        EventRecord(kind="TaskStarted", time=11.0, task_id="t", data={"attempt": 1}),
        EventRecord(kind="RunStarted", time=50.0, data={"workflow": "w", "tasks": 1}),
        EventRecord(kind="TaskStarted", time=51.0, task_id="t", data={"attempt": 2}),
        EventRecord(kind="TaskSucceeded", time=53.0, task_id="t", data={"attempt": 2}),
        EventRecord(kind="TaskStarted", time=54.0, task_id="unknown", data={"attempt": 1}),
    ]
    _segments_from_events({"t": task}, log, 60.0, live=False)
    lost, ran = task.segments
    assert (lost.status, lost.start, lost.end) == ("interrupted", 11.0, 11.0)
    assert (ran.status, ran.start, ran.end, ran.attempt) == ("succeeded", 51.0, 53.0, 2)


def test_attempts_logged_as_one_row_get_their_bars() -> None:
    task = _Task(id="t", index=0, depends_on=(), status=plait.TaskStatus.SUCCEEDED, attempts=2)
    error = {"type": "ValueError", "message": "flaky", "traceback": ""}
    log = [
        EventRecord(kind="RunStarted", time=10.0, data={"workflow": "w", "tasks": 1}),
        EventRecord(kind="InputRequested", time=10.5, task_id="t", data={"question": {}}),
        EventRecord(kind="InputReceived", time=10.8, task_id="t", data={"key": ""}),
        EventRecord(
            kind="TaskRetrying",
            time=12.0,
            task_id="t",
            data={"attempt": 1, "error": error, "delay": 1.0, "started": 11.0},
        ),
        EventRecord(
            kind="TaskSucceeded", time=15.0, task_id="t", data={"attempt": 2, "started": 13.0}
        ),
    ]
    _segments_from_events({"t": task}, log, 20.0, live=False)
    wait, first, second = task.segments
    assert (wait.kind, wait.start, wait.end) == ("waiting", 10.5, 10.8)
    assert (first.status, first.start, first.end, first.attempt) == ("failed", 11.0, 12.0, 1)
    assert first.retried and "flaky" in first.note
    assert (second.status, second.start, second.end, second.attempt) == ("succeeded", 13.0, 15.0, 2)


# -- the pieces ------------------------------------------------------------------------------------


def _task(task_id: str, index: int, work: float, *deps: str) -> _Task:
    task = _Task(id=task_id, index=index, depends_on=deps, status=plait.TaskStatus.SUCCEEDED)
    if work:
        task.segments.append(_Segment("attempt", "succeeded", 100.0, 100.0 + work, attempt=1))
    return task


def _critical_path(tasks: dict[str, _Task]) -> tuple[list[str], float]:
    """The critical path as the figures module computes it for the report's tasks."""
    figures = figures_of(
        {t.id: [(s.start, s.end) for s in t.segments] for t in tasks.values()},
        {t.id: t.depends_on for t in tasks.values()},
    )
    return list(figures.critical_path), figures.critical_seconds


def test_the_critical_path_is_the_longest_path_by_work() -> None:
    tasks = {
        t.id: t
        for t in [
            _task("a", 0, 1.0),
            _task("b", 1, 5.0, "a"),
            _task("c", 2, 2.0, "a"),
            _task("d", 3, 1.0, "b", "c"),
            _task("e", 4, 6.5),  # alone: 6.5 < 7
            _task("skipped", 5, 0.0, "d"),  # no work: not on the path
        ]
    }
    assert _critical_path(tasks) == (["a", "b", "d"], 7.0)
    tasks["e"] = _task("e", 4, 7.5)
    assert _critical_path(tasks) == (["e"], 7.5)
    assert _critical_path({"x": _task("x", 0, 0.0)}) == ([], 0.0)


def test_ties_go_to_the_task_defined_first_and_idle_sources_are_left_out() -> None:
    tasks = {
        t.id: t
        for t in [
            _task("gate", 0, 0.0),
            _task("left", 1, 2.0, "gate"),
            _task("right", 2, 2.0, "gate"),
            _task("join", 3, 1.0, "right", "left"),
        ]
    }
    assert _critical_path(tasks) == (["left", "join"], 3.0)


def test_durations_and_ticks_read_well() -> None:
    assert [seconds(s) for s in (0.0004, 0.25, 1.234, 42.0, 185.0, 7300.0)] == [
        "0.4 ms",
        "250 ms",
        "1.23 s",
        "42.0 s",
        "3 m 05 s",
        "2 h 01 m",
    ]
    step, ticks = axis_ticks(0.17)
    assert step == 0.02 and ticks == pytest.approx([0.02 * i for i in range(9)])
    step, ticks = axis_ticks(3600)
    assert step == 600 and len(ticks) == 7


def test_skips_show_their_cause_and_an_attempt_that_skipped_itself_ends_skipped() -> None:
    itself = _Task(id="check", index=0, depends_on=(), status=plait.TaskStatus.SKIPPED, attempts=1)
    after = _Task(id="after", index=1, depends_on=("check",), status=plait.TaskStatus.SKIPPED)
    log = [
        EventRecord(kind="RunStarted", time=10.0, data={"workflow": "w", "tasks": 2}),
        EventRecord(kind="TaskStarted", time=11.0, task_id="check", data={"attempt": 1}),
        EventRecord(
            kind="TaskSkipped",
            time=12.0,
            task_id="check",
            data={"cause": "check", "skip_cause": "skipped_by_task"},
        ),
        EventRecord(
            kind="TaskSkipped",
            time=12.0,
            task_id="after",
            data={"cause": "check", "skip_cause": "upstream_skipped"},
        ),
    ]
    _segments_from_events({"check": itself, "after": after}, log, 20.0, live=False)
    (ran,) = itself.segments
    assert (ran.kind, ran.status, ran.start, ran.end) == ("attempt", "skipped", 11.0, 12.0)
    assert ran.note == "skipped: skipped itself (plait.Skip)"
    (marker,) = after.segments
    assert (marker.status, marker.note) == ("skipped", "skipped: upstream skipped ('check')")


# -- answers and the templates ---------------------------------------------------------------------


def test_answered_questions_show_who_answered_when_and_how(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "plait.db")
    wf = plait.Workflow("ask")
    wf.add_task("approve", lambda ctx: ctx.input, pause=plait.Pause("Ship it?"))
    wf.add_task(
        "other", lambda ctx: ctx.input, pause=plait.Pause("And this?", timeout=600, default="<no>")
    )
    paused = in_thread(lambda: plait.run(wf, store=store))
    plait.answer(paused.run_id, "approve", True, by="<b>ada</b>", via="web", store=store)
    text = build_report(paused.run_id, store=store)
    answers = text.split("<table class='answers'>")[1].split("</table>")[0]
    assert "data-task-id='approve'" in answers and "data-task-id='other'" not in answers
    assert "<span class='by'>&lt;b&gt;ada&lt;/b&gt;</span>" in answers
    assert "via <span class='via'>web</span>" in answers
    assert re.search(r"<div class='muted'>\d{4}-\d\d-\d\d [\d:]{8} UTC</div>", answers)
    assert "<b>ada</b>" not in text
    waiting = text.split("<table class='questions'>")[1].split("</table>")[0]
    assert "then <code class='then'>&#34;&lt;no&gt;&#34;</code>" in waiting  # its default


def test_the_partials_render_alone_and_a_served_page_links_its_static_files(
    mixed: tuple[plait.RunResult, Path],
) -> None:
    from plait.cli._report import render_page  # noqa: PLC0415
    from plait.cli._report_model import run_view  # noqa: PLC0415

    result, path = mixed
    store = SQLiteStore(path.parent / "plait.db")
    record = store.get_run(result.run_id)
    assert record is not None
    view = run_view(_Run.load(record, store))
    gantt = render_page("run/gantt.html", timeline=view.timeline)
    assert gantt.count("<div class='row ") == 10 and "<style" not in gantt
    page = render_page("report.html", view=view, static_url="/static")
    assert "<link rel='stylesheet' href='/static/report.css'>" in page
    assert "<script src='/static/report.js'></script>" in page
    assert "<style" not in page and page.count("<script") == 1
