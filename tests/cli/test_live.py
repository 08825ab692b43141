"""What a person sees while a run goes and when it ends: the live view, the log lines, the JSON
lines, the summary, the figures, and the questions asked at the terminal."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from typing import Any

import pytest
from rich.console import Console

import plait
from plait import Question, RunResult, RunStatus, TaskError, TaskResult, TaskStatus
from plait.cli._asking import ask, parse_answer
from plait.cli._commands import answer_example, resume_command
from plait.cli._lines import JsonLines, LogLines, event_record
from plait.cli._live import SHOWN_RUNNING, LiveView
from plait.cli._outcome import NOTES_PER_GROUP, last_line, print_summary
from plait.cli._summary import (
    RunFigures,
    dependencies_of,
    format_seconds,
    graph_shape,
    run_figures,
)

APPROVAL = {
    "type": "object",
    "properties": {
        "approved": {"type": "boolean", "description": "ship it?"},
        "channel": {"enum": ["stable", "beta"]},
        "replicas": {"type": "integer", "minimum": 1},
    },
    "required": ["approved"],
}
T0 = 1_700_000_000.0


def terminal(width: int = 100) -> Console:
    """A console that believes it is a terminal and keeps what it printed."""
    return Console(
        file=io.StringIO(), force_terminal=True, width=width, record=True, color_system="standard"
    )


def plain() -> Console:
    return Console(file=io.StringIO(), width=100, soft_wrap=True)


def shown(console: Console) -> str:
    return console.export_text()


def written(console: Console) -> str:
    file = console.file
    assert isinstance(file, io.StringIO)
    return file.getvalue()


def error(message: str = "boom", kind: str = "ValueError") -> TaskError:
    return TaskError(type=kind, message=message)


def started(task_id: str, at: float, attempt: int = 1) -> plait.TaskStarted:
    return plait.TaskStarted(run_id="r1", time=T0 + at, task_id=task_id, attempt=attempt)


def succeeded(task_id: str, at: float, attempt: int = 1) -> plait.TaskSucceeded:
    return plait.TaskSucceeded(run_id="r1", time=T0 + at, task_id=task_id, attempt=attempt)


def run_started(tasks: int) -> plait.RunStarted:
    return plait.RunStarted(run_id="r1", time=T0, workflow="build", tasks=tasks)


# -- the live view -------------------------------------------------------------------------------


def test_the_live_view_shows_progress_counts_and_running_tasks_with_their_elapsed_time() -> None:
    view = LiveView(terminal())
    for event in (
        run_started(5),
        started("fetch", 0.0),
        succeeded("fetch", 0.5),
        started("compile_core", 0.5),
        started("compile_net", 0.6),
    ):
        view(event)
    console = terminal()
    console.print(view.render(now=T0 + 1.7))
    text = shown(console)
    lines = text.splitlines()
    assert "1/5 tasks" in lines[0] and "1.70s" in lines[0]
    assert lines[1] == "1 succeeded · 2 running · 2 pending"
    assert lines[2].split() == ["▶", "compile_core", "1.20s"]
    assert lines[3].split() == ["▶", "compile_net", "1.10s"]
    assert len(lines) == 4
    assert "\x1b[" in written(console), "a terminal gets colours"


def test_the_live_view_lists_the_longest_running_tasks_first_and_counts_the_rest() -> None:
    view = LiveView(terminal())
    view(run_started(20))
    for i in range(SHOWN_RUNNING + 3):
        view(started(f"t{i:02d}", i / 10))
    console = terminal()
    console.print(view.render(now=T0 + 5))
    lines = shown(console).splitlines()
    assert lines[2].split() == ["▶", "t00", "5.00s"]
    assert [line.split()[1] for line in lines[2:-1]] == [f"t{i:02d}" for i in range(SHOWN_RUNNING)]
    assert lines[-1].strip() == "… and 3 more running"


def test_the_live_view_counts_retries_failures_skips_and_waiting_tasks() -> None:
    view = LiveView(terminal())
    view(run_started(4))
    view(started("upload", 0))
    view(
        plait.TaskRetrying(
            run_id="r1",
            time=T0 + 1,
            task_id="upload",
            attempt=1,
            error=error("down", "ConnectionError"),
            delay=0.1,
        )
    )
    view(started("upload", 1.1, attempt=2))
    view(plait.TaskFailed(run_id="r1", time=T0 + 2, task_id="upload", attempt=2, error=error()))
    view(plait.TaskSkipped(run_id="r1", time=T0 + 2, task_id="notify", cause="upload"))
    view(
        plait.InputRequested(
            run_id="r1", time=T0 + 2, task_id="approve", question=Question("approve", "Ship?")
        )
    )
    console = terminal()
    console.print(view.render(now=T0 + 3))
    lines = shown(console).splitlines()
    assert "2/4 tasks" in lines[0]
    assert lines[1] == "1 failed · 1 skipped · 1 waiting_for_input · 1 pending · 1 retry"


def test_a_resumed_run_counts_the_tasks_that_succeeded_before() -> None:
    view = LiveView(terminal())
    view.seed(["fetch", "compile"])
    view(run_started(4))
    console = terminal()
    console.print(view.render(now=T0))
    assert "2/4 tasks" in shown(console).splitlines()[0]


def test_retries_and_failures_are_printed_above_the_live_area_as_they_happen() -> None:
    console = terminal()
    with LiveView(console) as view:
        view(run_started(2))
        view(started("upload", 0))
        view(
            plait.TaskRetrying(
                run_id="r1",
                time=T0 + 1,
                task_id="upload",
                attempt=1,
                error=error("line one\nservice down", "ConnectionError"),
                delay=0.25,
            )
        )
        view(
            plait.TaskFailed(
                run_id="r1", time=T0 + 2, task_id="compile", attempt=2, error=error("bad\nboom")
            )
        )
    text = shown(console)
    assert "↻ upload attempt 1 failed, retrying in 0.25s: ConnectionError: service down" in text
    assert "✗ compile failed (attempt 2): ValueError: boom" in text


def failed(task_id: str, at: float, message: str = "boom") -> plait.TaskFailed:
    return plait.TaskFailed(
        run_id="r1", time=T0 + at, task_id=task_id, attempt=1, error=error(message)
    )


def test_a_large_mapped_task_runs_as_one_line_with_its_counts() -> None:
    view = LiveView(terminal())
    view(run_started(3))
    view(started("list_files", 0.0))
    view(succeeded("list_files", 0.5))
    view(plait.TaskMapped(run_id="r1", time=T0 + 0.5, task_id="convert", count=20))
    for i in range(20):  # 20 instances, 4 at a time: 8 done (1 failed), 4 running, 8 pending
        if i < 12:
            view(started(f"convert[{i}]", 1.0 + i // 4))
        if i < 8:
            view(failed(f"convert[{i}]", 2.0) if i == 3 else succeeded(f"convert[{i}]", 2.0))
    view(started("lint", 2.5))
    console = terminal(width=120)
    console.print(view.render(now=T0 + 4.0))
    lines = shown(console).splitlines()
    assert "9/22 tasks" in lines[0]  # list_files, lint and convert's 20 instances
    assert lines[1] == "8 succeeded · 1 failed · 5 running · 8 pending"
    assert lines[2].split() == ["▶", "convert", "[8/20", "done", "·", "1", "failed", "·", "4",
                                "running]", "3.00s"]  # fmt: skip
    assert lines[3].split() == ["▶", "lint", "1.50s"]
    assert len(lines) == 4

    for i in range(8, 20):  # the rest end; then convert as a whole, counted as its instances
        view(succeeded(f"convert[{i}]", 3.0))
    view(failed("convert", 3.0, "1 of 20 instances of 'convert' failed: 'convert[3]'"))
    console = terminal(width=120)
    console.print(view.render(now=T0 + 4.0))
    lines = shown(console).splitlines()
    assert "21/22 tasks" in lines[0]
    assert lines[1] == "20 succeeded · 1 failed · 1 running"
    notes = [str(note) for note in view._notes]
    assert (
        notes[-1]
        == "✗ convert failed: ValueError: 1 of 20 instances of 'convert' failed: 'convert[3]'"
    )


def test_a_small_mapped_task_lists_its_running_instances() -> None:
    view = LiveView(terminal())
    view(run_started(1))
    for i in range(3):
        view(started(f"convert[{i}]", i / 10))
    console = terminal()
    console.print(view.render(now=T0 + 1.0))
    lines = shown(console).splitlines()
    assert [line.split()[1] for line in lines[2:]] == ["convert[0]", "convert[1]", "convert[2]"]


def test_skips_are_printed_with_why_and_an_instances_failures_only_the_first_few() -> None:
    console = terminal(width=120)
    with LiveView(console) as view:
        view(run_started(3))
        for i in range(NOTES_PER_GROUP + 3):
            view(started(f"convert[{i}]", 0.0))
            view(failed(f"convert[{i}]", 0.1, f"bad file {i}"))
        view(
            plait.TaskSkipped(
                run_id="r1",
                time=T0 + 1,
                task_id="total",
                cause="convert",
                skip_cause=plait.SkipCause.UPSTREAM_FAILED,
            )
        )
        view(
            plait.TaskSkipped(
                run_id="r1",
                time=T0 + 1,
                task_id="alert",
                cause="convert",
                skip_cause=plait.SkipCause.TRIGGER_RULE,
            )
        )
        view(
            plait.TaskSkipped(
                run_id="r1",
                time=T0 + 1,
                task_id="publish",
                cause="convert[7]",  # the instance that ended last: convert decided it
                skip_cause=plait.SkipCause.UPSTREAM_FAILED,
            )
        )
    text = shown(console)
    assert "⤼ total skipped: 'convert' did not succeed" in text
    assert "⤼ publish skipped: 'convert' did not succeed" in text
    assert "⤼ alert skipped: trigger rule not met (after 'convert')" in text
    printed = [i for i in range(NOTES_PER_GROUP + 3) if f"convert[{i}] failed" in text]
    assert printed == list(range(NOTES_PER_GROUP))


def test_the_summary_names_a_few_failed_instances_and_counts_the_rest() -> None:
    console = plain()
    tasks: dict[str, tuple[TaskStatus, float | None, float | None]] = {
        "list_files": (TaskStatus.SUCCEEDED, 0, 1),
        "convert": (TaskStatus.FAILED, 1, 2),
    }
    instances = [i for i in range(NOTES_PER_GROUP + 4) if i % 2 == 0 or i > 3]  # 2 too many
    for i in range(NOTES_PER_GROUP + 4):
        status = TaskStatus.FAILED if i in instances else TaskStatus.SUCCEEDED
        tasks[f"convert[{i}]"] = (status, 1, 2)
    tasks["total"] = (TaskStatus.SKIPPED, None, None)
    errors = {f"convert[{i}]": error() for i in instances}
    result = result_of(tasks, status=RunStatus.FAILED, errors=errors)
    print_summary(console, result, run_figures(result, {}))
    lines = written(console).splitlines()
    failures = [line for line in lines[1:] if "✗" in line or "…" in line]
    assert len(instances) == NOTES_PER_GROUP + 2
    # convert counts as its instances: list_files and 2 instances succeeded, 7 failed
    assert lines[0] == "✗ run r1 (build) failed · 3 succeeded · 7 failed · 1 skipped"
    assert failures == [
        f"  ✗ convert failed: {len(instances)} instances failed",
        *(
            f"    ✗ convert[{i}] failed after 1 attempt: ValueError: boom"
            for i in instances[:NOTES_PER_GROUP]
        ),
        f"    … and {len(instances) - NOTES_PER_GROUP} more (plait report shows them all)",
    ]


# -- plain lines and JSON lines ------------------------------------------------------------------


def feed(watcher: Any, events: list[plait.Event]) -> None:
    with watcher:
        for event in events:
            watcher(event)


EVENTS: list[plait.Event] = [
    run_started(3),
    plait.TaskReady(run_id="r1", time=T0, task_id="fetch"),
    started("fetch", 0.0),
    succeeded("fetch", 0.25),
    started("upload", 0.25),
    plait.TaskRetrying(
        run_id="r1",
        time=T0 + 0.5,
        task_id="upload",
        attempt=1,
        error=error("down", "ConnectionError"),
        delay=0.1,
    ),
    plait.TaskFailed(run_id="r1", time=T0 + 0.75, task_id="upload", attempt=2, error=error()),
    plait.TaskSkipped(run_id="r1", time=T0 + 0.75, task_id="notify", cause="upload"),
    plait.TaskCancelled(run_id="r1", time=T0 + 0.75, task_id="other", attempt=0),
    plait.InputRequested(
        run_id="r1",
        time=T0 + 0.8,
        task_id="approve",
        question=Question("approve", "Ship?", APPROVAL, deadline=T0 + 60),
    ),
    plait.InputReceived(run_id="r1", time=T0 + 0.9, task_id="approve", key=""),
    plait.RunFinished(run_id="r1", time=T0 + 1, status=RunStatus.FAILED, error="'upload' failed"),
]


def test_plain_mode_writes_one_line_per_task_start_end_failure_retry() -> None:
    console = plain()
    feed(LogLines(console), EVENTS)
    assert written(console).splitlines() == [
        "[   0.00s] run r1 (build) started: 3 tasks",
        "[   0.00s] started   fetch (attempt 1)",
        "[   0.25s] succeeded fetch in 0.25s",
        "[   0.25s] started   upload (attempt 1)",
        "[   0.50s] retrying  upload in 0.10s (attempt 1 failed: ConnectionError: down)",
        "[   0.75s] failed    upload (attempt 2): ValueError: boom",
        "[   0.75s] skipped   notify ('upload' did not succeed)",
        "[   0.75s] cancelled other",
        "[   0.80s] waiting   approve: Ship?",
        "[   0.90s] answered  approve",
    ]


def test_quiet_mode_writes_only_the_failures_at_their_time_in_the_run() -> None:
    console = plain()
    feed(LogLines(console, quiet=True), EVENTS)
    assert written(console).splitlines() == [
        "[   0.75s] failed    upload (attempt 2): ValueError: boom"
    ]


def test_plain_mode_says_when_a_mapped_task_expands_and_ends_as_a_whole() -> None:
    error = TaskError("plait.MapError", "1 of 2 instances of 'each' failed: 'each[1]'")
    console = plain()
    feed(
        LogLines(console),
        [
            run_started(2),
            plait.TaskMapped(run_id="r1", time=T0 + 0.1, task_id="each", count=2),
            plait.TaskSucceeded(run_id="r1", time=T0 + 0.4, task_id="each", attempt=0),
            plait.TaskMapped(run_id="r1", time=T0 + 0.5, task_id="more", count=1),
            plait.TaskFailed(run_id="r1", time=T0 + 0.6, task_id="more", attempt=0, error=error),
        ],
    )
    assert written(console).splitlines() == [
        "[   0.00s] run r1 (build) started: 2 tasks",
        "[   0.10s] mapped    each into 2 instances",
        "[   0.40s] succeeded each (2 instances) in 0.30s",  # from its expansion
        "[   0.50s] mapped    more into 1 instance",
        "[   0.60s] failed    more: plait.MapError: 1 of 2 instances of 'each' failed: 'each[1]'",
    ]  # a mapped task as a whole made no attempt: none is named


def test_json_mode_writes_every_event_in_the_documented_schema() -> None:
    console = plain()
    feed(JsonLines(console), EVENTS)
    records = [json.loads(line) for line in written(console).splitlines()]
    assert [r["event"] for r in records] == [
        "run_started",
        "task_ready",
        "task_started",
        "task_succeeded",
        "task_started",
        "task_retrying",
        "task_failed",
        "task_skipped",
        "task_cancelled",
        "input_requested",
        "input_received",
        "run_finished",
    ]
    assert all(r["run_id"] == "r1" and isinstance(r["time"], float) for r in records)
    assert records[0] == {
        "event": "run_started",
        "run_id": "r1",
        "time": T0,
        "workflow": "build",
        "tasks": 3,
    }
    assert records[3] == {
        "event": "task_succeeded",
        "run_id": "r1",
        "time": T0 + 0.25,
        "task_id": "fetch",
        "attempt": 1,
    }
    assert records[5]["error"] == {"type": "ConnectionError", "message": "down"}
    assert records[5]["delay"] == 0.1 and records[5]["attempt"] == 1
    assert records[6]["error"] == {"type": "ValueError", "message": "boom"}
    assert records[7]["cause"] == "upload"
    assert records[8]["attempt"] == 0
    assert records[9] == {
        "event": "input_requested",
        "run_id": "r1",
        "time": T0 + 0.8,
        "task_id": "approve",
        "key": "",
        "prompt": "Ship?",
        "schema": APPROVAL,
        "deadline": T0 + 60,
    }
    assert records[10]["key"] == ""
    assert records[11]["status"] == "failed" and records[11]["error"] == "'upload' failed"


def test_event_names_are_the_snake_case_class_names() -> None:
    assert event_record(plait.TaskReady(run_id="r", time=1.0, task_id="t")) == {
        "event": "task_ready",
        "run_id": "r",
        "time": 1.0,
        "task_id": "t",
    }


# -- the summary ---------------------------------------------------------------------------------


def result_of(
    tasks: dict[str, tuple[TaskStatus, float | None, float | None]],
    *,
    status: RunStatus = RunStatus.SUCCEEDED,
    started_at: float = T0,
    errors: dict[str, TaskError] | None = None,
    waiting: dict[str, Question] | None = None,
) -> RunResult:
    errors = errors or {}
    return RunResult(
        run_id="r1",
        workflow="build",
        status=status,
        tasks={
            task_id: TaskResult(
                task_id,
                s,
                error=errors.get(task_id),
                attempts=0 if begin is None else 1,
                started_at=None if begin is None else T0 + begin,
                finished_at=None if end is None else T0 + end,
            )
            for task_id, (s, begin, end) in tasks.items()
        },
        started_at=started_at,
        finished_at=T0 + 10,
        waiting=waiting or {},
    )


def diamond() -> plait.Workflow:
    wf = plait.Workflow("diamond")
    wf.add_task("a", lambda: 1, estimate=1)
    wf.add_task("b", lambda a: a, depends_on=["a"], estimate=5)
    wf.add_task("c", lambda a: a, depends_on=["a"], estimate=1)
    wf.add_task("d", lambda b, c: b, depends_on=["b", "c"], estimate=1)
    wf.add_task("lonely", lambda: 0, estimate=0.5)
    return wf


OK = TaskStatus.SUCCEEDED


def test_the_figures_use_actual_durations_through_the_dependency_graph() -> None:
    result = result_of(
        {
            "a": (OK, 0, 1),
            "b": (OK, 1, 2),
            "c": (OK, 1, 3.5),
            "d": (OK, 3.5, 4),
            "lonely": (OK, 0, 3),
        }
    )
    figures = run_figures(result, dependencies_of(diamond()))
    assert figures == RunFigures(
        makespan=4.0,
        task_time=1 + 1 + 2.5 + 0.5 + 3,
        parallelism=8.0 / 4.0,
        critical_path=("a", "c", "d"),
        critical_seconds=4.0,
        tasks=5,
        final_tasks=("d", "lonely"),
    )
    assert str(figures) == (
        "makespan 4.00s · task time 8.00s · parallelism 2.0x · critical path 4.00s (3 tasks)"
    )


def test_tasks_that_ran_before_a_resume_do_not_count_in_its_figures() -> None:
    result = result_of(
        {
            "a": (OK, -100, -99),
            "b": (OK, 1, 2),
            "c": (OK, 1, 1.5),
            "d": (OK, 2, 3),
            "lonely": (OK, None, None),
        },
        started_at=T0,
    )
    figures = run_figures(result, dependencies_of(diamond()))
    assert figures.critical_path == ("b", "d")
    assert figures.makespan == 2.0 and figures.tasks == 3


def test_a_run_where_nothing_ran_has_zero_figures() -> None:
    figures = run_figures(result_of({"a": (TaskStatus.PENDING, None, None)}), {"a": ()})
    assert str(figures) == (
        "makespan 0.00s · task time 0.00s · parallelism 0.0x · critical path 0.00s (0 tasks)"
    )


def test_the_graph_shape_has_depth_width_and_the_critical_path_by_estimate() -> None:
    shape = graph_shape(diamond())
    assert (shape.tasks, shape.edges, shape.depth, shape.width) == (5, 4, 3, 2)
    assert shape.critical_path == ("a", "b", "d")


@pytest.mark.parametrize(
    ("seconds", "text"), [(0.004, "0.00s"), (1.234, "1.23s"), (125.4, "2m05s"), (3725, "1h02m")]
)
def test_durations_are_short(seconds: float, text: str) -> None:
    assert format_seconds(seconds) == text


def test_the_summary_of_a_paused_run_ends_with_the_exact_resume_commands() -> None:
    console = plain()
    result = result_of(
        {"build": (OK, 0, 1), "approve": (TaskStatus.WAITING_FOR_INPUT, None, None)},
        status=RunStatus.PAUSED,
        waiting={"approve": Question("approve", "Ship 1.4?", APPROVAL)},
    )
    print_summary(console, result, run_figures(result, {"approve": ("build",)}))
    assert written(console).splitlines() == [
        "⏸ run r1 (build) paused · 1 succeeded · 1 waiting_for_input",
        "  ⏸ approve waits for an answer: Ship 1.4?",
        "      plait resume r1 --input 'approve={\"approved\": true}'",
        "makespan 1.00s · task time 1.00s · parallelism 1.0x · critical path 1.00s (1 task)",
        "continue with: plait resume r1",
    ]


def test_the_summary_of_a_failed_run_shows_each_failure_and_each_skip_with_why() -> None:
    console = plain()
    result = result_of(
        {"a": (TaskStatus.FAILED, 0, 1), "b": (TaskStatus.SKIPPED, None, None)},
        status=RunStatus.FAILED,
        errors={"a": error("cc: error\nlink.c:3: undefined reference", "ShellCommandError")},
    )
    print_summary(console, result, run_figures(result, {"b": ("a",)}), store="sqlite:///x.db")
    assert written(console).splitlines() == [
        "✗ run r1 (build) failed · 1 failed · 1 skipped",
        "  ✗ a failed after 1 attempt: ShellCommandError: cc: error",
        "      link.c:3: undefined reference",
        "  ⤼ b skipped: upstream failed",
        "makespan 1.00s · task time 1.00s · parallelism 1.0x · critical path 1.00s (1 task)",
        "run the failed tasks again with: plait resume r1 --store sqlite:///x.db",
    ]


def test_an_errors_last_line_is_the_last_non_empty_line_of_its_message() -> None:
    assert last_line(error("first\nsecond\n\n")) == "ValueError: second"
    assert last_line(TaskError("KeyError", "")) == "KeyError"
    assert last_line(None) == ""


# -- the commands to copy, and asking at the terminal --------------------------------------------


def test_example_answers_fit_their_schemas() -> None:
    assert answer_example(APPROVAL) == {"approved": True}
    assert answer_example({"type": "integer", "minimum": 3}) == 3
    assert answer_example({"enum": ["b", "c"]}) == "b"
    assert answer_example({"type": "string", "default": "x"}) == "x"
    assert answer_example(None) == "..."
    assert resume_command("r1", task_id="go", schema={"type": "boolean"}) == (
        "plait resume r1 --input go=true"
    )
    assert resume_command("r 1", store="sqlite:///a b.db") == (
        "plait resume 'r 1' --store 'sqlite:///a b.db'"
    )


def test_a_plain_string_answers_a_question_that_wants_a_string() -> None:
    assert parse_answer("ship it", {"type": "string"}) == "ship it"
    assert parse_answer('"quoted"', {"type": "string"}) == "quoted"
    assert parse_answer("42", {"type": "string"}) == "42"
    assert parse_answer("42", {"type": "integer"}) == 42
    with pytest.raises(ValueError, match=r"^'yes' is not a JSON value"):
        parse_answer("yes", {"type": "boolean"})


def replies(*lines: str) -> Iterator[str]:
    yield from lines


def test_asking_shows_the_fields_and_asks_again_until_the_answer_is_valid() -> None:
    console = plain()
    answers = replies("", "yes", '{"approved": "x"}', '{"approved": true, "channel": "beta"}')
    prompts: list[str] = []

    def read(prompt: str) -> str:
        prompts.append(prompt)
        return next(answers)

    value = ask(Question("approve", "Ship release 1.4?", APPROVAL), console, read=read)
    assert value == {"approved": True, "channel": "beta"}
    assert prompts == ["approve> "] * 4
    text = written(console)
    assert "task approve" in text and "Ship release 1.4?" in text
    rows = {line.strip("│ ").split()[0]: line for line in text.splitlines() if "│   " in line}
    assert "boolean" in rows["approved"] and "yes" in rows["approved"] and "ship it?" in text
    assert 'one of "stable", "beta"' in rows["channel"] and "no" in rows["channel"]
    assert "integer ≥ 1" in rows["replicas"]
    assert "'yes' is not a JSON value" in text
    assert (
        "the answer for task 'approve' is invalid at approved: 'x' is not of type 'boolean'" in text
    )


def test_asking_with_a_string_schema_takes_the_line_as_it_is() -> None:
    console = plain()
    value = ask(
        Question("name", "Release name?", {"type": "string", "minLength": 3}, key="title"),
        console,
        read=lambda prompt: "spring release",
    )
    assert value == "spring release"
    assert "task name (question title)" in written(console)
    assert "Answer with: string" in written(console)
