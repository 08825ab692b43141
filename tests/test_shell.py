"""Shell tasks (plait._shell): the task object, its environment (dependency outputs, the
answer and the item as JSON), and failures that are the task's (a missing program, retries)."""

from __future__ import annotations

import json
import os
import uuid
from pathlib import Path

import pytest
from _shell_runs import error_of, run_one

import plait
import plait._shell
from plait import ShellTask, TaskStatus

# -- failure ----------------------------------------------------------------------------------


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
