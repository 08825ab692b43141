"""Task logs at the command line: ``plait logs``, ``-v``, ``--json`` lines, and the summary of a
failed shell task."""

from __future__ import annotations

import io
import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from rich.console import Console

import plait
from plait import RunStatus, TaskError, TaskStatus
from plait.cli._app import cli
from plait.cli._lines import JsonLines, LogLines
from plait.cli._live import LiveView
from plait.cli._outcome import last_line, print_summary
from plait.cli._report import build_report
from plait.cli._summary import run_figures

T0 = 1_700_000_000.0

FLOW = """
import logging
import time
from pathlib import Path

import plait

talk = plait.Workflow("talk")


@talk.task
def greet(ctx: plait.Context) -> int:
    ctx.logger.info("hello from %s", ctx.task_id)
    print("printed")
    return 1


talk.add_task(
    "compile",
    plait.ShellTask(
        "echo 'cc -c main.c'; "
        "printf 'main.c: In function main:\\\\n"
        "main.c:3:5: error: expected ; before return\\\\n"
        "    3 |     printf(x)\\\\n"
        "      |              ^\\\\n"
        "      |              ;\\\\n' >&2; exit 1"
    ),
    depends_on=["greet"],
    retry=plait.RetryPolicy(max_retries=0),
)

ticking = plait.Workflow("ticking")


@ticking.task
def tick() -> None:
    print("tick 0", flush=True)
    go = Path(__file__).with_name("go")
    deadline = time.monotonic() + 30
    while not go.exists() and time.monotonic() < deadline:  # the test says when
        time.sleep(0.02)
    for n in (1, 2, 3):
        print(f"tick {n}", flush=True)
"""


@pytest.fixture
def flow(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("PLAIT_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("PLAIT_STORE", raising=False)
    monkeypatch.setenv("COLUMNS", "200")
    path = tmp_path / "log_flows.py"
    path.write_text(FLOW)
    return path


def plait_cli(*args: str | Path) -> Result:
    return CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=False)


def test_plait_logs_prints_every_line_of_a_run_with_its_task_attempt_and_stream(
    flow: Path,
) -> None:
    assert plait_cli("run", f"{flow}:talk", "--run-id", "r1").exit_code == 1
    result = plait_cli("logs", "r1")
    assert result.exit_code == 0
    said = [line.split(" ", 1)[1] for line in result.stdout.splitlines()]
    assert said == [
        "greet#1 log    INFO plait.task: hello from greet",
        "greet#1 stdout printed",
        "compile#1 stdout cc -c main.c",
        "compile#1 stderr main.c: In function main:",
        "compile#1 stderr main.c:3:5: error: expected ; before return",
        "compile#1 stderr     3 |     printf(x)",
        "compile#1 stderr       |              ^",
        "compile#1 stderr       |              ;",
    ]
    only = plait_cli("logs", "r1", "greet", "--attempt", "1").stdout.splitlines()
    assert [line.split(" ", 1)[1] for line in only] == said[:2]


def test_plait_logs_says_when_there_is_nothing_and_names_an_unknown_task(flow: Path) -> None:
    plait_cli("run", f"{flow}:talk", "--run-id", "r1")
    nothing = plait_cli("logs", "r1", "greet", "--attempt", "2")
    assert (nothing.exit_code, nothing.stdout) == (0, "")
    assert nothing.stderr == "attempt 2 of task 'greet' of run r1 said nothing (no logs)\n"
    unknown = plait_cli("logs", "r1", "nope")
    assert unknown.exit_code == 2
    assert unknown.stderr.startswith("error: run 'r1' has no task 'nope'; its tasks are: 'greet'")


def test_the_summary_of_a_failed_shell_task_shows_its_error_lines_not_a_lone_caret(
    flow: Path,
) -> None:
    result = plait_cli("run", f"{flow}:talk", "--run-id", "r1")
    out = result.stdout.splitlines()
    failed = out.index(next(line for line in out if line.startswith("  ✗ compile failed")))
    assert out[failed].endswith("exited with status 1; stderr:")
    assert out[failed + 1 : failed + 6] == [
        "      ...",
        "      main.c:3:5: error: expected ; before return",
        "          3 |     printf(x)",
        "            |              ^",
        "            |              ;",
    ]
    assert "failed    compile (attempt 1): " in result.stdout
    assert (
        result.stdout.split("failed    compile (attempt 1): ")[1]
        .splitlines()[0]
        .endswith("ShellCommandError: main.c:3:5: error: expected ; before return")
    )


def test_verbose_streams_what_the_tasks_say_and_json_carries_it(flow: Path) -> None:
    verbose = plait_cli("run", f"{flow}:talk", "--run-id", "r1", "-v").stdout.splitlines()
    said = [line.split("] ", 1)[1] for line in verbose if line.startswith("[")]
    assert "greet | INFO plait.task: hello from greet" in said
    assert "compile ! main.c:3:5: error: expected ; before return" in said
    assert "greet | printed" not in said  # printed: it reached the terminal already
    assert said.index("started   compile (attempt 1)") < said.index("compile | cc -c main.c")
    plain = plait_cli("run", f"{flow}:talk", "--run-id", "r2").stdout
    assert "hello from greet" not in plain

    lines = plait_cli("run", f"{flow}:talk", "--run-id", "r3", "--json").stdout.splitlines()
    records = [json.loads(line) for line in lines if line.startswith("{")]
    logged = [r for r in records if r["event"] == "task_logged"]
    assert logged[0] == {
        "event": "task_logged",
        "run_id": "r3",
        "time": logged[0]["time"],
        "task_id": "greet",
        "attempt": 1,
        "number": 1,
        "stream": "log",
        "text": "INFO plait.task: hello from greet",
    }
    assert len(logged) == 8


def test_verbose_shows_a_process_tasks_print_once(flow: Path) -> None:
    """The process executor writes a worker's prints out as they come: the lines that come
    back with the outcome are kept in the log, not shown a second time."""
    out = plait_cli("run", f"{flow}:talk", "-v", "--executor", "process").stdout.splitlines()
    said = [line.split("] ", 1)[1] for line in out if line.startswith("[")]
    assert "greet | INFO plait.task: hello from greet" in said
    assert out.count("printed") == 1
    assert "greet | printed" not in said
    assert "compile ! main.c:3:5: error: expected ; before return" in said


def test_follow_prints_lines_while_the_run_goes_and_stops_when_it_ends(flow: Path) -> None:
    env = {"PLAIT_HOME": str(flow.parent / "home"), "PATH": "/usr/bin:/bin"}
    command = [sys.executable, "-m", "plait.cli"]
    running = subprocess.Popen(
        [*command, "run", f"{flow}:ticking", "--run-id", "t1"],
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        assert running.stdout is not None
        while running.stdout.readline() not in ("tick 0\n", ""):  # then the run is stored
            pass
        follower = subprocess.Popen(
            [*command, "logs", "t1", "--follow"], stdout=subprocess.PIPE, text=True, env=env
        )
        assert follower.stdout is not None
        first = follower.stdout.readline()
        still_running = running.poll() is None
        (flow.parent / "go").touch()  # the task goes on, says three more lines and ends
        rest = follower.stdout.read()
        assert follower.wait(timeout=30) == 0
    finally:
        running.communicate(timeout=30)
    assert first.split(" ", 1)[1] == "tick#1 stdout tick 0\n"
    assert still_running, "the first line came while the run was still going"
    assert [line.split(" ", 1)[1] for line in rest.splitlines()] == [
        f"tick#1 stdout tick {n}" for n in (1, 2, 3)
    ]


# -- the watchers, fed events --------------------------------------------------------------------


def plain() -> Console:
    return Console(file=io.StringIO(), width=100, soft_wrap=True)


def written(console: Console) -> str:
    assert isinstance(console.file, io.StringIO)
    return console.file.getvalue()


def logged(text: str, *, stream: str = "log", echoed: bool = False) -> plait.TaskLogged:
    return plait.TaskLogged(
        run_id="r1",
        time=T0 + 0.5,
        task_id="build",
        attempt=1,
        number=1,
        stream=stream,
        text=text,
        echoed=echoed,
    )


def test_log_lines_show_what_tasks_say_only_when_verbose() -> None:
    events = [
        plait.RunStarted(run_id="r1", time=T0, workflow="w", tasks=1),
        logged("INFO app: two\nlines"),
        logged("printed", stream="stdout", echoed=True),
        logged("warning", stream="stderr"),
    ]
    for verbose, expected in [
        (False, ["[   0.00s] run r1 (w) started: 1 tasks"]),
        (
            True,
            [
                "[   0.00s] run r1 (w) started: 1 tasks",
                "[   0.50s] build | INFO app: two",
                "                   lines",
                "[   0.50s] build ! warning",
            ],
        ),
    ]:
        console = plain()
        with LogLines(console, verbose=verbose) as watcher:
            for event in events:
                watcher(event)
        assert written(console).splitlines() == expected


def test_the_live_view_prints_what_tasks_say_above_its_area_when_verbose() -> None:
    console = Console(file=io.StringIO(), force_terminal=True, width=100, record=True)
    with LiveView(console, verbose=True) as view:
        view(plait.RunStarted(run_id="r1", time=T0, workflow="w", tasks=1))
        view(logged("INFO app: compiling"))
        view(logged("printed", stream="stdout", echoed=True))
    text = console.export_text()
    assert "build | INFO app: compiling" in text
    assert "printed" not in text


def test_json_lines_carry_every_log_line() -> None:
    console = plain()
    with JsonLines(console) as watcher:
        watcher(logged("printed", stream="stdout", echoed=True))
    (record,) = [json.loads(line) for line in written(console).splitlines()]
    assert (record["event"], record["stream"], record["text"]) == (
        "task_logged",
        "stdout",
        "printed",
    )


def shell_error(output: str) -> TaskError:
    head = "task 'cc': command 'gcc -c main.c' exited with status 1; stderr:"
    return TaskError("plait.ShellCommandError", head + "\n" + textwrap.indent(output, "  "))


def test_a_shell_errors_line_is_its_first_error_not_its_last_punctuation() -> None:
    error = shell_error("main.c:3:5: error: expected ';'\n    3 | x\n      | ^\n      | ;\n")
    assert last_line(error) == "plait.ShellCommandError: main.c:3:5: error: expected ';'"
    no_error_words = shell_error("step one\nstep two\n  |  ;\n")
    assert last_line(no_error_words) == "plait.ShellCommandError: step two"


def test_the_summary_shows_the_error_lines_and_the_tail_of_a_long_shell_output() -> None:
    output = "\n".join(
        ["make: entering", "a.c:1: error: first", *(f"note {n}" for n in range(20)), "  | ;"]
    )
    result = plait.RunResult(
        run_id="r1",
        workflow="w",
        status=RunStatus.FAILED,
        tasks=plait._results.TaskResults(
            {"cc": 0},
            status=[TaskStatus.FAILED],
            output=[None],
            error=[shell_error(output)],
            attempts=[1],
            started_at=[T0],
            finished_at=[T0 + 1],
        ),
        started_at=T0,
        finished_at=T0 + 1,
    )
    console = plain()
    print_summary(console, result, run_figures(result, {"cc": ()}))
    assert written(console).splitlines()[1:9] == [
        "  ✗ cc failed after 1 attempt: plait.ShellCommandError: command 'gcc -c main.c' exited "
        "with status 1; stderr:",
        "      ...",
        "      a.c:1: error: first",
        "      ...",
        "      note 17",
        "      note 18",
        "      note 19",
        "        | ;",
    ]


# -- the report ------------------------------------------------------------------------------------


def test_the_report_shows_each_attempts_log_under_its_bar_and_links_failures_to_it(
    tmp_path: Path,
) -> None:
    store = plait.stores.SQLiteStore(tmp_path / "plait.db")
    wf = plait.Workflow("w")

    @wf.task(retry=plait.RetryPolicy(max_retries=1, backoff=0.01, jitter=0))
    def flaky(ctx: plait.Context) -> None:
        print(f"<attempt {ctx.attempt}> & more")
        raise RuntimeError("boom")

    result = plait.run(wf, store=store, run_id="r1")
    page = build_report(result.run_id, store=store)
    assert "<a href='#logs'>Logs</a>" in page
    first = page.split("<details class='log' id='log-flaky-1'")[1].split("</details>")[0]
    assert "data-attempt='1'>" in first  # the first attempt's log is closed
    assert "&lt;attempt 1&gt; &amp; more" in first
    last = page.split("<details class='log' id='log-flaky-2'")[1].split("</details>")[0]
    assert "data-attempt='2' open>" in last  # the failed task's last attempt is open
    assert "&lt;attempt 2&gt; &amp; more" in last
    assert "<a class='log-link' href='#log-flaky-2'>Log</a>" in page
    bar = page.split("data-attempt='2' style=")[1].split("'></span>")[0]
    assert "log (1 line):" in bar
    assert "| &lt;attempt 2&gt; &amp; more" in bar
