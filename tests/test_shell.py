"""Shell tasks: output, errors, environment, and no process left behind after a cancellation."""

from __future__ import annotations

import asyncio
import json
import os
import shlex
import sys
import time
import uuid
from pathlib import Path

import pytest

import plait
import plait._shell
from plait import RunStatus, ShellTask, TaskStatus

GUARD = 10.0  # seconds: a hang shows up as a failed wait, never as a hung suite
PF_EXITING = 0x4  # a flag of /proc/<pid>/stat: the process is exiting


def run_one(task: ShellTask, **options: object) -> plait.TaskResult:
    """Run ``task`` alone, without retries; return its result."""
    wf = plait.Workflow("shell")
    wf.add_task("sh", task, **options)  # type: ignore[arg-type]
    return plait.run(wf, max_retries=0).tasks["sh"]


def error_of(result: plait.TaskResult) -> BaseException:
    assert result.status is TaskStatus.FAILED
    assert result.error is not None and result.error.exception is not None
    return result.error.exception


def gone(pid: int) -> bool:
    """Whether process ``pid`` runs no more: it does not exist, is a zombie that its new parent
    (init) has not reaped yet, or is exiting (killed, its files closed, not yet a zombie)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return True
    fields = stat.rsplit(")", 1)[1].split()  # after "pid (comm)": state, ppid, ..., flags
    return fields[0] in ("Z", "X") or bool(int(fields[6]) & PF_EXITING)


def pids_command(pid_file: Path, *, prefix: str = "") -> str:
    """A command that starts two background sleeps, writes their pids and its own to
    ``pid_file`` (all at once), then waits: three processes in one group."""
    target = shlex.quote(str(pid_file))
    return (
        f"{prefix}sleep 30 & a=$!; sleep 30 & b=$!; "
        f'echo "$a $b $$" > {target}.tmp && mv {target}.tmp {target}; wait'
    )


def read_pids(pid_file: Path) -> list[int]:
    pids = [int(pid) for pid in pid_file.read_text().split()]
    assert len(pids) == 3
    return pids


async def wait_for_file(path: Path) -> None:
    deadline = time.monotonic() + GUARD
    while not path.exists():
        assert time.monotonic() < deadline, f"{path} was never written"
        await asyncio.sleep(0.01)


# -- output -----------------------------------------------------------------------------------


def test_the_output_is_stdout_without_its_trailing_newline() -> None:
    result = run_one(ShellTask("printf 'line 1\\nline 2\\n\\n'"))
    assert result.status is TaskStatus.SUCCEEDED
    assert result.output == "line 1\nline 2\n"


def test_stdout_is_decoded_as_utf8_with_bad_bytes_replaced() -> None:
    result = run_one(ShellTask("printf '\\303\\251t\\303\\251 \\377'"))
    assert result.output == "été \ufffd"


def test_only_the_last_64_kib_of_stdout_are_kept() -> None:
    result = run_one(ShellTask("head -c 100000 /dev/zero | tr '\\0' a; echo; echo end"))
    assert len(result.output) == 64 * 1024 - 1
    assert result.output.endswith("a\nend")


def test_the_argv_form_runs_without_a_shell() -> None:
    result = run_one(ShellTask(["printf", "%s|%s", "$HOME", "a b; echo x"]))
    assert result.output == "$HOME|a b; echo x"


def test_the_command_leads_its_own_session_and_process_group() -> None:
    code = "import os; print(os.getpid(), os.getpgid(0), os.getsid(0))"
    result = run_one(ShellTask([sys.executable, "-c", code]))
    pid, group, session = map(int, result.output.split())
    assert pid == group == session
    assert session != os.getsid(0)


# -- failure ----------------------------------------------------------------------------------


def test_a_non_zero_exit_fails_the_task_with_the_status_and_stderr() -> None:
    result = run_one(ShellTask("echo partial; echo 'no such table' >&2; exit 3"))
    error = error_of(result)
    assert isinstance(error, plait.ShellCommandError)
    assert isinstance(error, RuntimeError)
    assert str(error) == (
        "task 'sh': command \"echo partial; echo 'no such table' >&2; exit 3\" exited with "
        "status 3; stderr:\n  no such table"
    )
    assert (error.returncode, error.stdout, error.stderr) == (3, "partial\n", "no such table\n")
    assert error.command == "echo partial; echo 'no such table' >&2; exit 3"


def test_the_error_shows_the_last_10_lines_of_stderr() -> None:
    result = run_one(ShellTask("for i in $(seq 1 15); do echo line$i >&2; done; exit 1"))
    message = str(error_of(result))
    assert message.endswith(
        "exited with status 1; last 10 lines of stderr:\n"
        + "\n".join(f"  line{i}" for i in range(6, 16))
    )


def test_the_error_shows_the_lines_that_look_like_errors_above_the_last_10() -> None:
    """A compiler's error line comes first, then many lines of context: both are shown."""
    command = (
        "echo 'In file main.c:' >&2; echo 'main.c:3: error: expected ;' >&2; "
        'for i in $(seq 1 15); do echo "  note $i" >&2; done; exit 1'
    )
    message = str(error_of(run_one(ShellTask(command))))
    assert message.split("exited with status 1; ", 1)[1] == (
        "stderr, its first lines that look like errors and its last 10:\n"
        "  ...\n"
        "  main.c:3: error: expected ;\n"
        "  ...\n" + "\n".join(f"    note {i}" for i in range(6, 16))
    )


def test_the_error_shows_stdout_when_stderr_is_empty() -> None:
    result = run_one(ShellTask(["sh", "-c", "echo 'build failed'; exit 2"]))
    with pytest.raises(plait.ShellCommandError, match=r"status 2; stdout:\n  build failed$"):
        raise error_of(result)


def test_a_silent_failure_says_so() -> None:
    result = run_one(ShellTask("exit 4"))
    with pytest.raises(
        plait.ShellCommandError,
        match=r"^task 'sh': command 'exit 4' exited with status 4 \(and wrote nothing\)$",
    ):
        raise error_of(result)


def test_death_by_a_signal_names_the_signal() -> None:
    result = run_one(ShellTask("echo dying >&2; kill -TERM $$"))
    error = error_of(result)
    assert isinstance(error, plait.ShellCommandError)
    assert error.returncode == -15
    assert "command 'echo dying >&2; kill -TERM $$' was killed by SIGTERM; stderr:\n  dying" in (
        str(error)
    )


def test_a_missing_program_fails_the_task() -> None:
    result = run_one(ShellTask(["plait-no-such-program"]))
    assert isinstance(error_of(result), FileNotFoundError)


def test_a_failing_command_is_retried() -> None:
    wf = plait.Workflow("shell")
    wf.add_task(
        "flaky",
        ShellTask('test "$PLAIT_ATTEMPT" -ge 3 || exit 1; echo "ok on $PLAIT_ATTEMPT"'),
        retry=plait.RetryPolicy(max_retries=3, backoff=0),
    )
    result = plait.run(wf).tasks["flaky"]
    assert result.status is TaskStatus.SUCCEEDED
    assert (result.output, result.attempts) == ("ok on 3", 3)


# -- environment and directory ----------------------------------------------------------------


def test_the_command_runs_in_cwd_with_env_on_top_of_the_environment(tmp_path: Path) -> None:
    task = ShellTask('echo "$GREETING|$PATH"; pwd -P', cwd=tmp_path, env={"GREETING": "hi"})
    greeting, cwd = run_one(task).output.split("\n")
    assert greeting == f"hi|{os.environ['PATH']}"
    assert cwd == str(tmp_path.resolve())


def test_plait_variables_name_the_run_task_and_attempt_and_win_over_env() -> None:
    wf = plait.Workflow("shell")
    task = ShellTask(
        'echo "$PLAIT_RUN_ID $PLAIT_TASK_ID $PLAIT_ATTEMPT"', env={"PLAIT_TASK_ID": "mine"}
    )
    wf.add_task("who", task)
    run_id = f"shell-{uuid.uuid4().hex}"  # unique: the process's memory store keeps runs
    result = plait.run(wf, run_id=run_id)
    assert result.tasks["who"].output == f"{run_id} who 1"


def test_dependency_outputs_arrive_as_json_in_plait_input_variables() -> None:
    wf = plait.Workflow("shell")
    wf.add_task("fetch-data", lambda: {"rows": [1, 2], "name": "é"})
    wf.add_task("word", lambda: "42")
    wf.add_task("number", lambda: 42)
    wf.add_task("nothing", lambda: None)
    wf.add_task(
        "show",
        ShellTask(
            'printf "%s\\n" "$PLAIT_INPUT_FETCH_DATA" "$PLAIT_INPUT_WORD" '
            '"$PLAIT_INPUT_NUMBER" "$PLAIT_INPUT_NOTHING"'
        ),
        depends_on=["fetch-data", "word", "number", "nothing"],
    )
    result = plait.run(wf)
    lines = result.tasks["show"].output.split("\n")
    assert lines == ['{"rows": [1, 2], "name": "é"}', '"42"', "42", "null"]
    assert [json.loads(line) for line in lines] == [{"rows": [1, 2], "name": "é"}, "42", 42, None]


def test_input_variable_names() -> None:
    assert plait._shell.input_variable("fetch-data.v2") == "PLAIT_INPUT_FETCH_DATA_V2"
    assert plait._shell.input_variable("été") == "PLAIT_INPUT__T_"


def test_two_ids_that_give_one_variable_fail_the_task() -> None:
    wf = plait.Workflow("shell")
    wf.add_task("a-b", lambda: 1)
    wf.add_task("a_b", lambda: 2)
    wf.add_task("sh", ShellTask("true"), depends_on=["a-b", "a_b"])
    error = error_of(plait.run(wf, max_retries=0).tasks["sh"])
    with pytest.raises(
        plait.InvalidOptionError,
        match=r"^task 'sh': dependencies 'a-b' and 'a_b' would both be passed as "
        r"\$PLAIT_INPUT_A_B; rename one of them$",
    ):
        raise error


def test_an_output_that_is_not_json_fails_the_task() -> None:
    wf = plait.Workflow("shell")
    wf.add_task("obj", object)
    wf.add_task("sh", ShellTask("true"), depends_on=["obj"])
    error = error_of(plait.run(wf, max_retries=0).tasks["sh"])
    with pytest.raises(TypeError, match=r"^task 'sh': the output of dependency 'obj' cannot be"):
        raise error


def test_a_pydantic_answer_arrives_as_json() -> None:
    pydantic = pytest.importorskip("pydantic")
    target = pydantic.create_model("Target", env=(str, ...))
    wf = plait.Workflow("shell")
    pause = plait.Pause("Deploy where?", schema=target, timeout=0.05, default={"env": "prod"})
    wf.add_task("deploy", ShellTask('echo "$PLAIT_ANSWER"'), pause=pause)
    result = plait.run(wf, wait_for_input=True)
    assert result.tasks["deploy"].output == '{"env": "prod"}'


def test_the_answer_to_a_pause_arrives_as_json() -> None:
    wf = plait.Workflow("shell")
    pause = plait.Pause("Deploy where?", timeout=0.05, default={"env": "staging"})
    wf.add_task("deploy", ShellTask('echo "$PLAIT_ANSWER"'), pause=pause)
    result = plait.run(wf, wait_for_input=True)
    assert result.tasks["deploy"].output == '{"env": "staging"}'


# -- stopping the process group ---------------------------------------------------------------


def test_a_timeout_kills_the_whole_process_group(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(plait._shell, "_KILL_GRACE", GUARD)  # SIGKILL only after GUARD s
    pid_file = tmp_path / "pids"
    started = time.monotonic()
    result = run_one(ShellTask(pids_command(pid_file)), timeout=0.3)
    assert time.monotonic() - started < GUARD  # SIGTERM sufficed: no wait for SIGKILL
    assert isinstance(error_of(result), plait.TaskTimeoutError)
    assert [pid for pid in read_pids(pid_file) if not gone(pid)] == []


def test_a_group_that_ignores_sigterm_gets_sigkill_after_the_grace(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(plait._shell, "_KILL_GRACE", 0.3)
    pid_file = tmp_path / "pids"
    started = time.monotonic()
    result = run_one(ShellTask(pids_command(pid_file, prefix="trap '' TERM; ")), timeout=0.2)
    assert 0.5 <= time.monotonic() - started < GUARD
    assert result.status is TaskStatus.FAILED
    assert [pid for pid in read_pids(pid_file) if not gone(pid)] == []


def test_a_critical_failure_elsewhere_kills_the_whole_process_group(tmp_path: Path) -> None:
    pid_file = tmp_path / "pids"
    wf = plait.Workflow("shell")
    wf.add_task("long", ShellTask(pids_command(pid_file)))

    async def boom() -> None:
        await wait_for_file(pid_file)
        raise RuntimeError("boom")

    wf.add_task("boom", boom, critical=True)
    result = plait.run(wf, max_retries=0)
    assert result.status is RunStatus.FAILED
    assert result.tasks["long"].status is TaskStatus.CANCELLED
    assert [pid for pid in read_pids(pid_file) if not gone(pid)] == []


def test_cancelling_the_run_kills_the_whole_process_group(tmp_path: Path) -> None:
    pid_file = tmp_path / "pids"
    wf = plait.Workflow("shell")
    wf.add_task("long", ShellTask(pids_command(pid_file)))

    async def main() -> None:
        run = asyncio.ensure_future(plait.arun(wf))
        await wait_for_file(pid_file)
        run.cancel()
        with pytest.raises(asyncio.CancelledError):
            await asyncio.wait_for(run, GUARD)

    asyncio.run(main())
    assert [pid for pid in read_pids(pid_file) if not gone(pid)] == []


def test_what_a_command_leaves_running_is_stopped_when_it_exits(tmp_path: Path) -> None:
    pid_file = tmp_path / "pid"
    started = time.monotonic()
    result = run_one(ShellTask(f"sleep 30 & echo $! > {shlex.quote(str(pid_file))}; echo done"))
    assert result.output == "done"
    assert time.monotonic() - started < GUARD  # it did not wait for the `sleep 30`
    assert gone(int(pid_file.read_text()))


# -- the object ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("command", "message"),
    [
        ("  ", r"^a ShellTask needs a command, not an empty string$"),
        ([], r"^a ShellTask command must be a string or a non-empty list of strings, not \[\]$"),
        (["ls", 1], r"not \['ls', 1\]$"),
    ],
)
def test_a_command_must_be_a_string_or_a_list_of_strings(command: object, message: str) -> None:
    with pytest.raises(plait.InvalidOptionError, match=message):
        ShellTask(command)  # type: ignore[arg-type]


def test_env_must_map_names_to_strings() -> None:
    with pytest.raises(
        plait.InvalidOptionError, match=r"^a ShellTask env maps names to strings; 'N': 1 is not"
    ):
        ShellTask("true", env={"N": 1})  # type: ignore[dict-item]


def test_shell_tasks_compare_by_value_and_show_their_command() -> None:
    task = ShellTask(["make", "all"], cwd="src", env={"J": "4"})
    assert task == ShellTask(["make", "all"], cwd=Path("src"), env={"J": "4"})
    assert task != ShellTask("make all", cwd="src", env={"J": "4"})
    assert repr(task) == "ShellTask(['make', 'all'], cwd='src', env={'J': '4'})"
    assert task.argv == ["make", "all"]
    assert ShellTask("make all").argv == ["/bin/sh", "-c", "make all"]


def test_a_shell_task_is_an_async_task_whose_dependencies_fill_its_keywords() -> None:
    wf = plait.Workflow("shell")
    wf.add_task("fetch", lambda: 1)
    spec = wf.add_task("sh", ShellTask("true"), depends_on=["fetch"])
    assert spec.is_async
    assert spec.passed == ("fetch",)
    assert spec.binding.context_parameter == "ctx"


def test_a_changed_command_is_a_changed_definition_on_resume() -> None:
    store = plait.stores.MemoryStore()
    first = plait.Workflow("cmd")
    first.add_task("say", plait.ShellTask("false"))
    failed = plait.run(first, store=store, retry_failed_tasks=False)
    changed = plait.Workflow("cmd")
    changed.add_task("say", plait.ShellTask("echo hi"))
    with pytest.raises(
        plait.DefinitionChangedError, match=r"task 'say' ran shell ShellTask\('false'\)"
    ):
        plait.resume(failed.run_id, changed, store=store)
