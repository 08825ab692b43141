"""The ``plait`` command, through its real entry point: click's CliRunner for most commands, and
``python -m plait.cli`` in a subprocess for exit codes, Ctrl-C, a terminal and a missing extra.

Every test keeps its runs in an SQLite store under ``tmp_path`` (``PLAIT_HOME``), so nothing
touches ``~/.plait``.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

import plait
from plait.cli._app import cli
from plait.stores import SQLiteStore

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"

FLOWS = '''
"""Workflows for the CLI tests."""

import asyncio
import time

import plait

APPROVAL = {
    "type": "object",
    "properties": {"approved": {"type": "boolean"}, "note": {"type": "string"}},
    "required": ["approved"],
}

ok = plait.Workflow("ok")


@ok.task
def fetch() -> int:
    time.sleep(0.05)
    return 1


@ok.task(depends_on=[fetch])
def left(fetch: int) -> int:
    time.sleep(0.1)
    return fetch + 1


@ok.task(depends_on=[fetch])
def right(fetch: int) -> int:
    time.sleep(0.1)
    return fetch + 2


@ok.task(depends_on=[left, right])
def total(left: int, right: int) -> int:
    return left + right


failing = plait.Workflow("failing")
failing.add_task("prepare", lambda: 1)


def explode(prepare: int) -> None:
    raise RuntimeError("disk full\\nno space left on /dev/sda1")


failing.add_task("explode", explode, depends_on=["prepare"], retry=plait.RetryPolicy(max_retries=0))
failing.add_task("after", lambda explode: None, depends_on=["explode"])

gate = plait.Workflow("gate")
gate.add_task("build", lambda: "1.0")


def ship(build: str, approve: dict) -> str:
    return f"shipped {build}" if approve["approved"] else "held"


gate.add_task(
    "approve", None, depends_on=["build"], pause=plait.Pause("Ship 1.0?", schema=APPROVAL)
)
gate.add_task("ship", ship, depends_on=["build", "approve"])

named = plait.Workflow("named")
named.add_task(
    "name", None, pause=plait.Pause("Release name?", schema={"type": "string", "minLength": 3})
)
named.add_task("use", lambda name: name.upper(), depends_on=["name"])

slow = plait.Workflow("slow")


async def wait_long() -> None:
    await asyncio.sleep(60)


slow.add_task("wait_long", wait_long)
slow.add_task("never", lambda wait_long: None, depends_on=["wait_long"])

params = plait.Workflow("params")


def greet(name: str = "world", times: int = 1) -> str:
    return " ".join([f"hello {name}"] * times)


def shout(greet: str, ctx: plait.Context, loud: bool = False) -> str:
    return greet.upper() if loud else greet


params.add_task("greet", greet)
params.add_task("shout", shout, depends_on=["greet"])
'''

FIGURES = re.compile(
    r"^makespan \d+\.\d\ds · task time \d+\.\d\ds · parallelism \d+\.\dx · "
    r"critical path \d+\.\d\ds \(\d+ tasks?\)$"
)


@pytest.fixture(scope="module")
def flows(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A Python file of test workflows, written once (it is imported once per process)."""
    path = tmp_path_factory.mktemp("flows") / "cli_flows.py"
    path.write_text(FLOWS)
    return path


@pytest.fixture(autouse=True)
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Runs go to an SQLite store under tmp_path, never to ~/.plait."""
    monkeypatch.setenv("PLAIT_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("PLAIT_STORE", raising=False)
    monkeypatch.setenv("COLUMNS", "200")
    return tmp_path / "home"


def store_url(home: Path) -> str:
    return f"sqlite://{home / 'plait.db'}"


def plait_cli(*args: str | Path, input: str | None = None) -> Result:
    return CliRunner().invoke(cli, [str(a) for a in args], input=input, catch_exceptions=False)


def lines(result: Result) -> list[str]:
    return result.stdout.splitlines()


def error_lines(result: Result) -> list[str]:
    return result.stderr.splitlines()


def printed_command(result: Result, start: str) -> list[str]:
    """The words of the (last) command the output prints that starts with ``start``."""
    found = [line.strip() for line in lines(result) if line.strip().startswith(start)]
    assert found, f"no {start!r} command in:\n{result.stdout}"
    return shlex.split(found[-1])


def stored(home: Path, run_id: str) -> plait.RunResult:
    return plait.get_run(run_id, store=store_url(home))


# -- help ----------------------------------------------------------------------------------------

COMMANDS = (
    "run",
    "resume",
    "validate",
    "graph",
    "runs",
    "status",
    "inputs",
    "answer",
    "cancel",
    "report",
    "logs",
    "estimates",
    "serve",
)


def test_help_lists_every_command_and_the_exit_codes() -> None:
    result = plait_cli("--help")
    assert result.exit_code == 0
    commands = result.stdout.split("Commands:\n")[1].split("\n\n")[0]
    listed = re.findall(r"^  (\w+)\s", commands, re.MULTILINE)
    assert sorted(listed) == sorted(COMMANDS)
    for code, meaning in [
        ("0", "succeeded"),
        ("1", "failed"),
        ("2", "usage or validation error"),
        ("3", "paused"),
        ("130", "interrupted"),
    ]:
        assert re.search(rf"^ +{code}\s+.*{meaning}", result.stdout, re.MULTILINE), code


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_shows_an_example(command: str) -> None:
    result = plait_cli(command, "--help")
    assert result.exit_code == 0
    assert re.search(rf"Examples?:\n +plait {command}\b", result.stdout), result.stdout


def test_run_help_documents_the_json_schema() -> None:
    text = plait_cli("run", "--help").stdout
    for name in ("task_succeeded", "task_retrying", "input_requested", "run_summary"):
        assert name in text
    assert '{"event": "task_succeeded", "run_id": ..., "time": ..., "task_id": ...' in text


# -- run -----------------------------------------------------------------------------------------


def test_a_run_that_succeeds_logs_each_task_and_ends_with_the_figures(
    flows: Path, home: Path
) -> None:
    result = plait_cli("run", f"{flows}:ok", "--run-id", "r-ok")
    assert result.exit_code == 0, result.output
    out = lines(result)
    assert re.fullmatch(r"\[ +0\.\d\ds\] run r-ok \(ok\) started: 4 tasks", out[0])
    logged = [line.split("] ", 1)[1] for line in out if line.startswith("[")]
    assert "started   fetch (attempt 1)" in logged
    assert any(re.fullmatch(r"succeeded total in 0\.\d\ds", line) for line in logged)
    assert out[-3:-1] == ["✓ run r-ok (ok) succeeded · 4 succeeded", "  → total: 5"]
    assert FIGURES.match(out[-1]), out[-1]
    assert out[-1].endswith("(3 tasks)")  # fetch -> left or right -> total
    assert stored(home, "r-ok").tasks["total"].output == 5


def test_a_run_that_fails_exits_1_and_shows_the_errors_last_line(flows: Path) -> None:
    result = plait_cli("run", f"{flows}:failing", "--run-id", "r-fail")
    assert result.exit_code == 1
    out = lines(result)
    assert "failed    explode (attempt 1): RuntimeError: no space left on /dev/sda1" in (
        result.stdout
    )
    assert "✗ run r-fail (failing) failed · 1 succeeded · 1 failed · 1 skipped" in out
    assert "  ✗ explode failed after 1 attempt: RuntimeError: no space left on /dev/sda1" in out
    assert FIGURES.match(out[-2])
    assert out[-1] == "run the failed tasks again with: plait resume r-fail"


def test_quiet_shows_only_failures_and_the_end(flows: Path) -> None:
    result = plait_cli("run", f"{flows}:failing", "--quiet", "--run-id", "q")
    assert result.exit_code == 1
    out = lines(result)
    assert re.fullmatch(
        r"\[ +0\.\d\ds\] failed    explode \(attempt 1\): RuntimeError: no space left on "
        r"/dev/sda1",
        out[0],
    )
    assert out[1:3] == [
        "✗ run q (failing) failed",
        "  ✗ explode failed after 1 attempt: RuntimeError: no space left on /dev/sda1",
    ]
    assert FIGURES.match(out[3])
    assert len(out) == 5


EVENT_FIELDS = {
    "run_started": {"workflow", "tasks"},
    "task_ready": {"task_id"},
    "task_mapped": {"task_id", "count"},
    "task_started": {"task_id", "attempt"},
    "task_succeeded": {"task_id", "attempt"},
    "task_failed": {"task_id", "attempt", "error"},
    "task_skipped": {"task_id", "cause", "skip_cause"},
    "input_requested": {"task_id", "key", "prompt", "schema", "deadline"},
    "task_logged": {"task_id", "attempt", "number", "stream", "text"},
    "run_finished": {"status", "error"},
    "run_summary": {
        "status",
        "makespan",
        "task_time",
        "parallelism",
        "critical_path",
        "critical_path_seconds",
        "tasks",
        "waiting",
    },
}


def json_lines(result: Result) -> list[dict[str, Any]]:
    records = [json.loads(line) for line in result.stdout.splitlines()]
    for record in records:
        assert set(record) == {"event", "run_id", "time"} | EVENT_FIELDS[record["event"]], record
    return records


def test_json_prints_one_object_per_line_per_event_in_the_documented_schema(flows: Path) -> None:
    result = plait_cli("run", f"{flows}:failing", "--json", "--run-id", "j1")
    assert result.exit_code == 1
    records = json_lines(result)
    assert {r["run_id"] for r in records} == {"j1"}
    assert records[0] == {
        "event": "run_started",
        "run_id": "j1",
        "time": records[0]["time"],
        "workflow": "failing",
        "tasks": 3,
    }
    failed = next(r for r in records if r["event"] == "task_failed")
    assert failed["task_id"] == "explode" and failed["attempt"] == 1
    assert failed["error"] == {
        "type": "RuntimeError",
        "message": "disk full\nno space left on /dev/sda1",
    }
    assert next(r for r in records if r["event"] == "task_skipped")["cause"] == "explode"
    assert [r["event"] for r in records[-2:]] == ["run_finished", "run_summary"]
    assert records[-2]["status"] == "failed"
    assert records[-1]["tasks"] == {"succeeded": 1, "failed": 1, "skipped": 1}


def test_json_says_when_a_mapped_task_expands_and_each_instance_has_the_events_of_a_task(
    tmp_path: Path,
) -> None:
    flow = tmp_path / "mapped.yaml"
    flow.write_text(
        "name: mapped\ntasks:\n"
        "  - {id: ls, function: json:loads, params: {s: '[1, 2]'}}\n"
        "  - {id: each, shell: 'echo $PLAIT_ITEM', depends_on: [ls], map_over: ls}\n"
    )
    result = plait_cli("run", flow, "--json", "--run-id", "jm")
    assert result.exit_code == 0, result.output
    records = json_lines(result)
    mapped = [r for r in records if r["event"] == "task_mapped"]
    assert [(r["task_id"], r["count"]) for r in mapped] == [("each", 2)]
    started = sorted(r["task_id"] for r in records if r["event"] == "task_started")
    assert started == ["each[0]", "each[1]", "ls"]


def test_json_of_a_paused_run_names_the_question_and_prints_no_resume_command(
    flows: Path,
) -> None:
    result = plait_cli("run", f"{flows}:gate", "--json", "--run-id", "j2")
    assert result.exit_code == 3
    records = json_lines(result)
    asked = next(r for r in records if r["event"] == "input_requested")
    assert (asked["task_id"], asked["prompt"], asked["key"]) == ("approve", "Ship 1.0?", "")
    assert asked["schema"]["required"] == ["approved"]
    assert records[-1]["waiting"] == [
        {"task_id": "approve", "key": "", "prompt": "Ship 1.0?", "schema": asked["schema"]}
    ]
    assert "plait resume" not in result.stdout


def test_params_go_to_every_task_with_a_parameter_of_that_name(flows: Path, home: Path) -> None:
    result = plait_cli(
        "run", f"{flows}:params", "--param", "name=plait", "--param", "times=2", "--run-id", "p"
    )
    assert result.exit_code == 0, result.output
    assert stored(home, "p").tasks["shout"].output == "hello plait hello plait"
    result = plait_cli("run", f"{flows}:params", "--param", "loud=true", "--run-id", "p2")
    assert stored(home, "p2").tasks["shout"].output == "HELLO WORLD"


def test_a_param_that_no_task_takes_is_a_usage_error(flows: Path) -> None:
    result = plait_cli("run", f"{flows}:params", "--param", "greet=x")
    assert result.exit_code == 2
    assert "Invalid value for --param: no task of workflow 'params' has a parameter named " in (
        result.stderr
    )
    assert "'greet'" in result.stderr
    result = plait_cli("run", f"{flows}:params", "--param", "oops")
    assert result.exit_code == 2
    assert "'oops' is not of the form KEY=VALUE" in result.stderr


def test_sequential_runs_one_task_at_a_time(flows: Path, home: Path) -> None:
    assert plait_cli("run", f"{flows}:ok", "--sequential", "--run-id", "s").exit_code == 0
    tasks = stored(home, "s").tasks
    left, right = tasks["left"], tasks["right"]
    assert left.finished_at and right.started_at and right.finished_at and left.started_at
    assert left.finished_at <= right.started_at or right.finished_at <= left.started_at


def test_engine_options_are_checked(flows: Path) -> None:
    result = plait_cli("run", f"{flows}:ok", "--pool", "db=0")
    assert result.exit_code == 2
    assert "pool 'db' needs a whole number of slots >= 1, not '0'" in result.stderr
    result = plait_cli("run", f"{flows}:ok", "--concurrency", "0")
    assert result.exit_code == 2
    result = plait_cli("run", f"{flows}:ok", "--sequential", "--concurrency", "3")
    assert result.exit_code == 2
    assert "--sequential and --max-concurrency contradict each other" in result.stderr


def test_a_run_id_that_is_taken_is_refused(flows: Path) -> None:
    assert plait_cli("run", f"{flows}:ok", "--run-id", "same", "-q").exit_code == 0
    result = plait_cli("run", f"{flows}:ok", "--run-id", "same")
    assert result.exit_code == 2
    assert error_lines(result) == [
        f"error: run 'same' already exists in <SQLiteStore '{Path(os.environ['PLAIT_HOME'])}"
        "/plait.db'>; continue it with `plait resume same`, or choose another --run-id"
    ]


def test_an_explicit_store_is_used_and_repeated_in_the_resume_command(
    flows: Path, tmp_path: Path
) -> None:
    url = f"sqlite://{tmp_path / 'other.db'}"
    result = plait_cli("run", f"{flows}:gate", "--store", url, "--run-id", "st")
    assert result.exit_code == 3
    assert lines(result)[-1] == f"continue with: plait resume st --store {url}"
    assert plait.get_run("st", store=url).status is plait.RunStatus.PAUSED


# -- bad workflow files --------------------------------------------------------------------------

BAD_FILES = {
    "syntax": (
        "name: x\ntasks:\n  - id: a\n    shell: echo: oops\n",
        r"^error: .*bad\.yaml, line 4, column 16: invalid YAML: mapping values are not allowed",
    ),
    "unknown key": (
        "name: x\ntasks:\n  - id: a\n    shel: echo hi\n",
        r"^error: .*bad\.yaml, line 4: .*unknown key 'shel'; did you mean 'shell'\?",
    ),
    "cycle": (
        "name: x\ntasks:\n  - {id: a, shell: 'true', depends_on: [b]}\n"
        "  - {id: b, shell: 'true', depends_on: [a]}\n",
        r"^error: .*bad\.yaml, line \d+: .*form a cycle: (a -> b -> a|b -> a -> b)",
    ),
    "missing function": (
        "name: x\ntasks:\n  - id: a\n    function: no_such_module_here:go\n",
        r"^error: .*bad\.yaml, line 4: .*cannot import 'no_such_module_here'",
    ),
}


@pytest.mark.parametrize("case", BAD_FILES)
@pytest.mark.parametrize("command", ["run", "validate", "graph"])
def test_a_bad_workflow_file_gives_one_clear_line_and_exit_2(
    case: str, command: str, tmp_path: Path
) -> None:
    text, message = BAD_FILES[case]
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    result = plait_cli(command, path)
    assert result.exit_code == 2
    assert result.stdout == ""
    assert len(error_lines(result)) == 1, result.stderr
    assert re.match(message, result.stderr), result.stderr
    assert "Traceback" not in result.output


def test_a_target_that_does_not_exist_is_an_error(tmp_path: Path) -> None:
    result = plait_cli("run", tmp_path / "nowhere.yaml")
    assert result.exit_code == 2
    assert "there is no such file" in result.stderr


# -- validate and graph --------------------------------------------------------------------------


def test_validate_shows_the_shape_of_the_graph() -> None:
    result = plait_cli("validate", EXAMPLES / "build.yaml")
    assert result.exit_code == 0
    assert lines(result) == [
        f"✓ {EXAMPLES / 'build.yaml'}: workflow 'build' is valid",
        "  12 tasks · 15 edges · depth 6 · width 4",
        "  critical path (by estimate): configure -> fetch-core -> compile-core -> link -> "
        "test-integration -> package",
    ]


ODD_IDS = """
name: 'odd "names"'
tasks:
  - {id: 'say "hi"', shell: 'true'}
  - {id: 'a<b>#c', shell: 'true', depends_on: ['say "hi"']}
  - {id: end, shell: 'true', depends_on: ['a<b>#c']}
  - {id: 'back\\slash', pause: {prompt: 'ok?'}, depends_on: [end]}
"""


def test_graph_prints_mermaid_with_safe_ids_and_quoted_labels(tmp_path: Path) -> None:
    path = tmp_path / "odd.yaml"
    path.write_text(ODD_IDS)
    result = plait_cli("graph", path)
    assert result.exit_code == 0
    assert result.stdout.splitlines() == [
        "flowchart LR",
        '    n0["say #quot;hi#quot;"]',
        '    n1["a#lt;b#gt;#35;c"]',
        '    n2["end"]',
        '    n3{{"back\\slash"}}',
        "    n0 --> n1",
        "    n1 --> n2",
        "    n2 --> n3",
    ]
    assert "\x1b" not in result.stdout


def test_graph_prints_dot_with_escaped_quoted_ids(tmp_path: Path) -> None:
    path = tmp_path / "odd.yaml"
    path.write_text(ODD_IDS)
    result = plait_cli("graph", path, "--format", "dot")
    assert result.exit_code == 0
    assert result.stdout.splitlines() == [
        'digraph "odd \\"names\\"" {',
        "    rankdir=LR;",
        '    "say \\"hi\\"";',
        '    "a<b>#c";',
        '    "end";',
        '    "back\\\\slash" [shape=hexagon];',
        '    "say \\"hi\\"" -> "a<b>#c";',
        '    "a<b>#c" -> "end";',
        '    "end" -> "back\\\\slash";',
        "}",
    ]


# -- pausing and resuming ------------------------------------------------------------------------


def test_a_paused_run_exits_3_and_its_printed_resume_command_works(flows: Path, home: Path) -> None:
    result = plait_cli("run", f"{flows}:gate", "--run-id", "g1")
    assert result.exit_code == 3
    out = lines(result)
    assert out[-1] == "continue with: plait resume g1"
    assert "  ⏸ approve waits for an answer: Ship 1.0?" in out
    command = printed_command(result, "plait resume g1 --input")
    assert command == ["plait", "resume", "g1", "--input", 'approve={"approved": true}']
    result = plait_cli(*command[1:])
    assert result.exit_code == 0, result.output
    assert re.fullmatch(
        r"\[ +0\.\d\ds\] run g1 \(gate\) resumed: 3 tasks, 1 succeeded before", lines(result)[0]
    )
    assert lines(result)[-3:-1] == [
        "✓ run g1 (gate) succeeded · 3 succeeded",
        "  → ship: 'shipped 1.0'",
    ]
    assert stored(home, "g1").tasks["ship"].output == "shipped 1.0"


def test_resume_reads_an_answer_from_a_file_and_keeps_the_params(
    flows: Path, home: Path, tmp_path: Path
) -> None:
    assert plait_cli("run", f"{flows}:gate", "--run-id", "g2", "-q").exit_code == 3
    answer = tmp_path / "answer.json"
    answer.write_text('{"approved": false, "note": "not today"}\n')
    result = plait_cli("resume", "g2", "--input", f"approve=@{answer}", "-q")
    assert result.exit_code == 0, result.output
    assert stored(home, "g2").tasks["ship"].output == "held"


def test_a_string_question_takes_plain_text(flows: Path, home: Path) -> None:
    assert plait_cli("run", f"{flows}:named", "--run-id", "n1", "-q").exit_code == 3
    result = plait_cli("resume", "n1", "--input", "name=spring release", "-q")
    assert result.exit_code == 0, result.output
    assert stored(home, "n1").tasks["use"].output == "SPRING RELEASE"


def test_an_invalid_answer_is_refused_and_the_run_stays_paused(flows: Path, home: Path) -> None:
    assert plait_cli("run", f"{flows}:gate", "--run-id", "g3", "-q").exit_code == 3
    result = plait_cli("resume", "g3", "--input", 'approve={"approved": "yes"}')
    assert result.exit_code == 2
    assert error_lines(result) == [
        "error: the answer for task 'approve' is invalid at approved: 'yes' is not of type "
        "'boolean' (rule 'type'); send a value that matches the question's schema"
    ]
    result = plait_cli("resume", "g3", "--input", "approve=yes")
    assert result.exit_code == 2
    assert "approve: 'yes' is not a JSON value" in result.stderr
    result = plait_cli("resume", "g3", "--input", "build=1")
    assert result.exit_code == 2
    assert "task 'build' of run 'g3' is not waiting for input" in result.stderr
    assert stored(home, "g3").status is plait.RunStatus.PAUSED


def test_resume_without_a_terminal_or_inputs_pauses_again(flows: Path) -> None:
    assert plait_cli("run", f"{flows}:gate", "--run-id", "g4", "-q").exit_code == 3
    result = plait_cli("resume", "g4")
    assert result.exit_code == 3
    assert lines(result)[-1] == "continue with: plait resume g4"


def test_resume_runs_the_failed_tasks_again(flows: Path, home: Path) -> None:
    assert plait_cli("run", f"{flows}:failing", "--run-id", "f1", "-q").exit_code == 1
    result = plait_cli("resume", "f1", "--json")
    assert result.exit_code == 1
    started = [r["task_id"] for r in json_lines(result) if r["event"] == "task_started"]
    assert started == ["explode"]  # prepare succeeded before: it keeps its output
    assert stored(home, "f1").tasks["explode"].attempts == 2


def test_resume_imports_the_target_a_python_run_recorded_only_where_trusted(
    flows: Path, home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    sys.path.insert(0, str(flows.parent))
    try:
        import cli_flows  # type: ignore[import-not-found]  # noqa: PLC0415
    finally:
        sys.path.remove(str(flows.parent))
    result_ = plait.run(cli_flows.gate, run_id="py1", store=store_url(home))
    assert result_.status is plait.RunStatus.PAUSED
    assert SQLiteStore(home / "plait.db").get_run("py1").target == "cli_flows:gate"  # type: ignore[union-attr]
    monkeypatch.setenv("PLAIT_PATH", str(home))  # not where cli_flows is
    result = plait_cli("resume", "py1", "--input", 'approve={"approved": true}')
    assert result.exit_code == 2
    assert error_lines(result) == [
        "error: run 'py1' was started from 'cli_flows:gate', which is not inside the current "
        f"directory ({os.getcwd()}) or a directory on PLAIT_PATH; plait imports a stored "
        "target only from there (a store holds data, not code): run this in the workflow's "
        "project, add its directory to PLAIT_PATH, or pass --target cli_flows:gate if you "
        "trust it"
    ]
    monkeypatch.setenv("PLAIT_PATH", str(flows.parent))
    result = plait_cli("resume", "py1", "--input", 'approve={"approved": true}')
    assert result.exit_code == 0, result.output


def test_resume_needs_the_target_of_a_run_that_recorded_none(flows: Path, home: Path) -> None:
    def gate() -> plait.Workflow:  # a workflow no module variable holds: no target to record
        wf = plait.Workflow("local")
        wf.add_task("approve", None, pause=plait.Pause("ok?"))
        return wf

    plait.run(gate(), run_id="py2", store=store_url(home))
    result = plait_cli("resume", "py2", "--input", "approve=1")
    assert result.exit_code == 2
    assert error_lines(result) == [
        "error: run 'py2' does not record where its workflow comes from (it was started from an "
        "interactive session, or by an older plait); give it with --target TARGET"
    ]


def test_a_target_that_starts_a_run_as_it_is_imported_is_stopped(tmp_path: Path) -> None:
    unguarded = tmp_path / "unguarded.py"
    unguarded.write_text(
        "import plait\nwf = plait.Workflow('u')\nwf.add_task('a', lambda: 1)\n"
        "plait.run(wf, store='memory://')\n"
    )
    result = plait_cli("run", f"{unguarded}:wf")
    assert result.exit_code == 2
    assert error_lines(result) == [
        f"error: {unguarded}:wf: importing it started a run (a plait.run(...) at the top level "
        'of the module); guard it with `if __name__ == "__main__":` so that it runs only as a '
        "script"
    ]


def test_resume_reruns_a_task_and_its_downstream(flows: Path, home: Path) -> None:
    assert plait_cli("run", f"{flows}:ok", "--run-id", "rr1", "-q").exit_code == 0
    result = plait_cli("resume", "rr1", "--rerun", "left", "--json")
    assert result.exit_code == 0, result.output
    started = [r["task_id"] for r in json_lines(result) if r["event"] == "task_started"]
    assert sorted(started) == ["left", "total"]
    assert stored(home, "rr1").tasks["left"].attempts == 2


def test_resume_of_an_unknown_run_is_an_error(home: Path) -> None:
    SQLiteStore(home / "plait.db").close()
    result = plait_cli("resume", "nope")
    assert result.exit_code == 2
    assert re.fullmatch(
        r"error: there is no run 'nope' in <SQLiteStore '.*'>; `plait runs` lists the runs it "
        r"has\n",
        result.stderr,
    )


def test_resume_of_a_run_that_succeeded_does_nothing(flows: Path) -> None:
    assert plait_cli("run", f"{flows}:ok", "--run-id", "done", "-q").exit_code == 0
    result = plait_cli("resume", "done")
    assert result.exit_code == 0
    assert result.stdout == "run done already succeeded; there is nothing to resume\n"


def test_resume_asks_at_a_terminal_and_asks_again_after_a_wrong_answer(
    flows: Path, home: Path
) -> None:
    assert plait_cli("run", f"{flows}:gate", "--run-id", "tty", "-q").exit_code == 3
    out = in_terminal(
        ["resume", "tty"],
        answers=["maybe", '{"approved": 1}', '{"approved": true, "note": "go"}'],
    )
    assert out.returncode == 0, out.stdout
    text = out.stdout
    assert "Ship 1.0?" in text and "task approve" in text
    assert re.search(r"approved\s+boolean\s+yes", text)
    assert re.search(r"note\s+string\s+no", text)
    assert "'maybe' is not a JSON value" in text
    assert "invalid at approved: 1 is not of type 'boolean'" in text
    assert "✓ run tty (gate) succeeded" in text
    assert stored(home, "tty").tasks["ship"].output == "shipped 1.0"


def in_terminal(args: list[str], answers: list[str]) -> subprocess.CompletedProcess[str]:
    """``python -m plait.cli ARGS`` with a pseudo-terminal as stdin, typing ``answers``."""
    import pty  # noqa: PLC0415 - POSIX only

    leader, follower = pty.openpty()
    process = subprocess.Popen(
        [sys.executable, "-m", "plait.cli", *args],
        stdin=follower,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    os.close(follower)
    try:
        for answer in answers:
            os.write(leader, (answer + "\n").encode())
        stdout, _ = process.communicate(timeout=30)
    finally:
        os.close(leader)
    return subprocess.CompletedProcess(process.args, process.returncode, stdout, "")


# -- runs, status, inputs ------------------------------------------------------------------------


def test_runs_lists_the_runs_newest_first_and_filters_them(flows: Path) -> None:
    plait_cli("run", f"{flows}:ok", "--run-id", "first", "-q")
    time.sleep(0.01)
    plait_cli("run", f"{flows}:gate", "--run-id", "second", "-q")
    result = plait_cli("runs")
    assert result.exit_code == 0
    out = lines(result)
    assert out[0].split() == ["run", "workflow", "status", "started", "took", "error"]
    assert [line.split()[:3] for line in out[1:]] == [
        ["second", "gate", "paused"],
        ["first", "ok", "succeeded"],
    ]
    assert [line.split()[0] for line in lines(plait_cli("runs", "--status", "paused"))[1:]] == [
        "second"
    ]
    assert len(lines(plait_cli("runs", "--limit", "1"))) == 2
    assert plait_cli("runs", "--status", "cancelled").stdout.startswith(
        "no runs with status cancelled in <SQLiteStore"
    )
    assert plait_cli("runs", "--status", "bogus").exit_code == 2
    assert [line.split()[0] for line in lines(plait_cli("runs", "--workflow", "ok"))[1:]] == [
        "first"
    ]
    assert plait_cli("runs", "--workflow", "gate", "--status", "failed").stdout.startswith(
        "no runs of workflow 'gate' with status failed in <SQLiteStore"
    )


def test_status_shows_each_task(flows: Path) -> None:
    plait_cli("run", f"{flows}:failing", "--run-id", "st1", "-q")
    result = plait_cli("status", "st1")
    assert result.exit_code == 0
    out = lines(result)
    assert out[0].startswith("run st1 (failing) failed · started ")
    assert out[1].startswith("  1 task(s) failed: 'explode': RuntimeError: disk full")
    rows = {line.split()[0]: line.split() for line in out if line.startswith("  ")}
    assert rows["task"] == ["task", "status", "attempts", "duration", "error"]
    assert rows["prepare"][:3] == ["prepare", "succeeded", "1"]
    assert re.fullmatch(r"\d+\.\d\ds", rows["prepare"][3])
    assert rows["explode"][:3] == ["explode", "failed", "1"]
    assert " ".join(rows["explode"][4:]) == "RuntimeError: no space left on /dev/sda1"
    assert rows["after"] == ["after", "skipped", "0"]
    assert FIGURES.match(out[-1])


def test_status_of_a_paused_run_shows_how_to_answer(flows: Path) -> None:
    plait_cli("run", f"{flows}:gate", "--run-id", "st2", "-q")
    out = lines(plait_cli("status", "st2"))
    assert out[-2:] == [
        "⏸ approve waits: Ship 1.0?",
        "    plait resume st2 --input 'approve={\"approved\": true}'",
    ]


def test_inputs_lists_every_waiting_question_across_runs(flows: Path) -> None:
    plait_cli("run", f"{flows}:ok", "--run-id", "in0", "-q")
    assert lines(plait_cli("inputs")) == ["no questions are waiting for an answer"]
    plait_cli("run", f"{flows}:gate", "--run-id", "in1", "-q")
    plait_cli("run", f"{flows}:named", "--run-id", "in2", "-q")
    plait_cli("run", f"{flows}:ok", "--run-id", "in3", "-q")
    out = lines(plait_cli("inputs"))
    assert sorted(zip(out[::2], out[1::2], strict=True)) == [
        (
            "in1 (gate) · approve: Ship 1.0?",
            "    plait resume in1 --input 'approve={\"approved\": true}'",
        ),
        ("in2 (named) · name: Release name?", "    plait resume in2 --input 'name=\"...\"'"),
    ]


def test_answer_records_who_answered_from_the_command_line(flows: Path, home: Path) -> None:
    plait_cli("run", f"{flows}:gate", "--run-id", "an1", "-q")
    result = plait_cli("answer", "an1", 'approve={"approved": true}', "--by", "ada")
    assert result.exit_code == 0, result.output
    assert lines(result) == [
        "answered approve of run an1 (gate) (by ada)",
        "every question is answered; go on with: plait resume an1",
    ]
    (request,) = plait.stores.open_store(store_url(home)).load_requests("an1")
    assert (request.answered_by, request.answered_via) == ("ada", "cli")
    out = lines(plait_cli("inputs", "an1"))
    assert out[0] == "an1 (gate) · approve: Ship 1.0?"
    assert re.fullmatch(r"    answered by ada via cli at \d{4}-\d\d-\d\d [\d:]{8}", out[1])
    (document,) = [
        json.loads(line) for line in plait_cli("inputs", "an1", "--json").stdout.splitlines()
    ]
    assert (document["answered"], document["answered_by"], document["answered_via"]) == (
        True,
        "ada",
        "cli",
    )
    assert lines(plait_cli("inputs")) == ["no questions are waiting for an answer"]
    assert plait_cli("resume", "an1", "-q").exit_code == 0
    assert stored(home, "an1").status is plait.RunStatus.SUCCEEDED


def test_inputs_offers_plait_answer_for_a_running_run_and_it_answers_it(
    flows: Path, home: Path
) -> None:
    plait_cli("run", f"{flows}:gate", "--run-id", "an5", "-q")
    store = SQLiteStore(home / "plait.db")
    # Recorded running, its owner gone (as after kill -9): stale, answered without a resume.
    store.claim("an5", "gone", lease_seconds=0.001, force=True)
    store.write(
        "an5",
        "gone",
        plait.stores.WriteBatch(run=plait.stores.RunUpdate(status=plait.RunStatus.RUNNING)),
    )
    time.sleep(0.01)
    assert lines(plait_cli("inputs"))[1] == "    plait answer an5 'approve={\"approved\": true}'"
    assert plait_cli("answer", "an5", 'approve={"approved": false}', "--by", "ops").exit_code == 0
    (request,) = store.load_requests("an5")
    assert (request.answered, request.answered_by) == (True, "ops")


def test_answer_refuses_an_invalid_answer_and_records_nothing(flows: Path, home: Path) -> None:
    plait_cli("run", f"{flows}:gate", "--run-id", "an2", "-q")
    result = plait_cli("answer", "an2", 'approve={"approved": "yes"}')
    assert result.exit_code == 2
    assert "approved" in result.stderr
    (request,) = plait.stores.open_store(store_url(home)).load_requests("an2")
    assert not request.answered
    assert plait_cli("answer", "an2", "nope=1").exit_code == 2


def test_resume_records_the_os_user_or_by_as_who_answered(
    flows: Path, home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LOGNAME", "grace")  # what getpass.getuser() reads first
    plait_cli("run", f"{flows}:gate", "--run-id", "an3", "-q")
    plait_cli("resume", "an3", "--input", 'approve={"approved": true}', "-q")
    (request,) = plait.stores.open_store(store_url(home)).load_requests("an3")
    assert (request.answered_by, request.answered_via) == ("grace", "cli")
    plait_cli("run", f"{flows}:gate", "--run-id", "an4", "-q")
    plait_cli("resume", "an4", "--input", 'approve={"approved": true}', "--by", "ops", "-q")
    (request,) = plait.stores.open_store(store_url(home)).load_requests("an4")
    assert request.answered_by == "ops"


# -- cancel --------------------------------------------------------------------------------------


def test_cancel_marks_a_paused_run_cancelled(flows: Path, home: Path) -> None:
    plait_cli("run", f"{flows}:gate", "--run-id", "c1", "-q")
    result = plait_cli("cancel", "c1")
    assert result.exit_code == 0
    assert result.stdout == "run c1 (gate) was paused; now cancelled\n"
    run = stored(home, "c1")
    assert run.status is plait.RunStatus.CANCELLED
    assert run.tasks["approve"].status is plait.TaskStatus.CANCELLED
    assert run.tasks["build"].status is plait.TaskStatus.SUCCEEDED
    assert lines(plait_cli("inputs")) == ["no questions are waiting for an answer"]
    assert plait_cli("cancel", "c1").stdout == "run c1 is already cancelled\n"


def test_cancel_refuses_a_run_that_succeeded_or_does_not_exist(flows: Path) -> None:
    plait_cli("run", f"{flows}:ok", "--run-id", "c2", "-q")
    result = plait_cli("cancel", "c2")
    assert result.exit_code == 2
    assert result.stderr == "error: run 'c2' already succeeded; there is nothing to cancel\n"
    assert plait_cli("cancel", "nope").exit_code == 2


def test_cancel_names_a_live_owner_on_another_host_that_does_not_answer(
    flows: Path, home: Path
) -> None:
    plait_cli("run", f"{flows}:gate", "--run-id", "c3", "-q")
    with SQLiteStore(home / "plait.db") as store:
        store.claim("c3", "elsewhere.example:4242:abcdef", lease_seconds=60)
    result = plait_cli("cancel", "c3", "--timeout", "0.2")
    assert result.exit_code == 1
    assert result.stderr.startswith(
        "error: run 'c3' is owned by elsewhere.example:4242:abcdef, which did not record it "
        "cancelled within 0.2s although its lease is live; the cancel request stays pending"
    )
    result = plait_cli("cancel", "c3", "--no-wait")
    assert result.exit_code == 0
    assert result.stdout == (
        "sent a cancel request to process elsewhere.example:4242:abcdef, which runs c3; "
        "`plait status c3` shows when it has stopped\n"
    )


def a_dead_pid() -> int:
    for pid in range(4_000_000, 3_000_000, -1):
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return pid
        except PermissionError:
            continue
    raise AssertionError("every pid is taken")


def test_cancel_takes_over_a_run_whose_process_on_this_host_died(flows: Path, home: Path) -> None:
    plait_cli("run", f"{flows}:gate", "--run-id", "c4", "-q")
    with SQLiteStore(home / "plait.db") as store:
        store.claim("c4", f"{socket.gethostname()}:{a_dead_pid()}:abcdef", lease_seconds=60)
    result = plait_cli("resume", "c4")
    assert result.exit_code == 2
    assert "error: run 'c4' is live in process " in result.stderr
    assert "or pass --force if that process is dead" in result.stderr
    result = plait_cli("cancel", "c4")
    assert result.exit_code == 0, result.output
    assert result.stdout == "run c4 (gate) was paused; now cancelled\n"
    assert stored(home, "c4").status is plait.RunStatus.CANCELLED


def start_slow(flows: Path, run_id: str) -> subprocess.Popen[str]:
    """``plait run flows:slow`` in a subprocess, once its first task has started."""
    process = subprocess.Popen(
        [sys.executable, "-m", "plait.cli", "run", f"{flows}:slow", "--run-id", run_id],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    for line in process.stdout:
        if "started   wait_long" in line:
            return process
    process.kill()
    raise AssertionError(f"the slow run did not start: {process.communicate()}")


def rest_of(process: subprocess.Popen[str]) -> tuple[str, str]:
    stdout, stderr = process.communicate(timeout=30)
    return stdout, stderr


def test_ctrl_c_cancels_the_run_and_exits_130(flows: Path, home: Path) -> None:
    process = start_slow(flows, "int1")
    process.send_signal(signal.SIGINT)
    stdout, stderr = rest_of(process)
    assert process.returncode == 130, (stdout, stderr)
    assert "cancelled wait_long" in stdout
    assert stdout.splitlines()[-2:] == [
        "interrupted: run int1 was cancelled and its tasks stopped",
        "continue with: plait resume int1",
    ]
    assert "Traceback" not in stderr
    assert stored(home, "int1").status is plait.RunStatus.CANCELLED


def test_cancel_stops_a_run_live_in_another_process(flows: Path, home: Path) -> None:
    process = start_slow(flows, "int2")
    result = plait_cli("cancel", "int2")
    assert result.exit_code == 0
    assert lines(result)[0] == "run int2 (slow) was running; now cancelled"
    assert lines(result)[1].startswith("  the run was cancelled by a request from ")
    stdout, stderr = rest_of(process)
    assert process.returncode == 1, stderr  # it ended cancelled, not interrupted
    assert "cancelled wait_long" in stdout
    assert stored(home, "int2").status is plait.RunStatus.CANCELLED


# -- report --------------------------------------------------------------------------------------


def test_report_writes_the_html_timeline(flows: Path, tmp_path: Path) -> None:
    plait_cli("run", f"{flows}:failing", "--run-id", "rep", "-q")
    page = tmp_path / "run.html"
    result = plait_cli("report", "rep", "-o", page)
    assert result.exit_code == 0
    assert result.stdout == f"wrote {page}\n"
    html = page.read_text()
    assert html.startswith("<!DOCTYPE html>") or html.lower().startswith("<!doctype html>")
    assert "explode" in html and "no space left on /dev/sda1" in html
    assert plait_cli("report", "nope", "-o", page).exit_code == 2


# -- the real entry point ------------------------------------------------------------------------


def test_exit_codes_of_the_real_command(flows: Path, tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\ntasks: [{id: a}]\n")
    cases = {
        0: ["run", f"{flows}:ok"],
        1: ["run", f"{flows}:failing"],
        2: ["run", str(bad)],
        3: ["run", f"{flows}:gate"],
    }
    started = {  # all at once: each pays for starting Python
        code: subprocess.Popen(
            [sys.executable, "-m", "plait.cli", *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for code, args in cases.items()
    }
    errors = {}
    for code, process in started.items():
        stdout, errors[code] = process.communicate(timeout=60)
        assert process.returncode == code, (code, stdout, errors[code])
        assert "Traceback" not in errors[code]
    assert errors[2].startswith("error: ") and len(errors[2].splitlines()) == 1


def test_without_its_extra_the_command_says_what_to_install() -> None:
    code = "import sys; sys.modules['rich'] = None; from plait.cli import main; main()"
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=False
    )
    assert result.returncode == 2
    assert result.stderr == "the plait command line needs its extra: pip install 'plait[cli]'\n"


EVOLVING = """
import plait

wf = plait.Workflow("evolving")
wf.add_task("a", lambda: 1)
"""


def test_resume_accept_changes_shows_the_changes_and_runs_the_added_tasks(
    tmp_path: Path, home: Path
) -> None:
    flow = tmp_path / "evolving_flow.py"
    flow.write_text(EVOLVING)
    assert plait_cli("run", f"{flow}:wf", "--run-id", "ev1", "-q").exit_code == 0
    flow.write_text(EVOLVING + "wf.add_task('b', lambda a: a + 1, depends_on=['a'])\n")
    sys.modules.pop("evolving_flow", None)  # import the file as it is now
    result = plait_cli("resume", "ev1", "-q")
    assert result.exit_code == 0  # a finished run, and changes not accepted: nothing to do
    assert result.stdout == "run ev1 already succeeded; there is nothing to resume\n"
    result = plait_cli("resume", "ev1", "--accept-changes", "--json")
    assert result.exit_code == 0, result.output
    assert error_lines(result) == ["accepting: task 'b' was added"]  # stdout is JSON only
    assert [r["task_id"] for r in json_lines(result) if r["event"] == "task_started"] == ["b"]
    assert stored(home, "ev1").outputs == {"a": 1, "b": 2}


def test_inputs_shows_a_question_whose_deadline_passed_as_expired(home: Path) -> None:
    wf = plait.Workflow("late")
    wf.add_task("gate", None, pause=plait.Pause("Still there?", timeout=0.05, default=False))
    paused = plait.run(wf, run_id="late1", store=store_url(home))
    deadline = paused.waiting["gate"].deadline
    assert deadline is not None
    time.sleep(max(0.0, deadline - time.time()) + 0.05)  # let the deadline pass
    out = lines(plait_cli("inputs"))
    assert re.fullmatch(
        r"late1 \(late\) · gate: Still there\? · expired \d{4}-\d\d-\d\d [\d:]{8}: resuming "
        r"applies its timeout \(its default, or the task fails\)",
        out[0],
    )
    (document,) = [json.loads(line) for line in plait_cli("inputs", "--json").stdout.splitlines()]
    assert (document["task_id"], document["expired"]) == ("gate", True)
