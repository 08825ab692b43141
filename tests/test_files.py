"""Workflow files and load targets: what loads, what it builds, and every error's exact words."""

from __future__ import annotations

import dataclasses
import json
import re
import sys
import textwrap
from collections.abc import Iterator, Mapping
from pathlib import Path

import jsonschema
import pytest

import plait
from plait import RunStatus, ShellTask, TaskStatus, WorkflowFileError
from plait._file_schema import SCHEMA, config_properties, describe

DATA = Path(__file__).parent / "data" / "workflows"


@pytest.fixture(autouse=True)
def _restore_sys_path(tmp_path: Path) -> Iterator[None]:
    """Loading puts directories on sys.path and imports modules; undo that after each test."""
    path = list(sys.path)
    yield
    sys.path[:] = path
    for name, module in list(sys.modules.items()):
        if str(getattr(module, "__file__", None) or "").startswith(str(tmp_path)):
            del sys.modules[name]


def write(directory: Path, name: str, text: str) -> str:
    path = directory / name
    path.write_text(textwrap.dedent(text).lstrip("\n"))
    return str(path)


def task_file(directory: Path, *lines: str) -> str:
    """A workflow file named 'x' whose task list is ``lines``; its first line is line 3."""
    return write(
        directory, "flow.yaml", "name: x\ntasks:\n" + "".join(f"  {line}\n" for line in lines)
    )


def fails_with(target: str, message: str) -> WorkflowFileError:
    """Load ``target`` and expect a WorkflowFileError whose message is ``message`` exactly."""
    with pytest.raises(WorkflowFileError) as caught:
        plait.load_target(target)
    assert str(caught.value) == message
    return caught.value


# -- valid files ------------------------------------------------------------------------------


def test_a_file_with_every_option_builds_the_workflow_it_describes() -> None:
    loaded = plait.load_target(str(DATA / "full.yaml"))
    assert loaded.source == str(DATA / "full.yaml")
    assert loaded.settings == {
        "max_concurrency": 4,
        "pools": {"db": 1},
        "task_timeout": 30,
        "max_retries": 1,
        "retry_backoff": 0.01,
        "fail_fast": False,
    }
    wf = loaded.workflow
    assert wf.name == "full"
    assert list(wf.tasks) == ["fetch", "approve", "publish", "count"]
    plait_fixture_tasks = sys.modules["plait_fixture_tasks"]  # imported by the loading

    fetch = wf.tasks["fetch"]
    assert fetch.fn is plait_fixture_tasks.fetch
    assert dict(fetch.params) == {"day": "2024-05-01"}
    assert fetch.retry == plait.RetryPolicy(max_retries=2, backoff=0.01, max_backoff=0.1, jitter=0)
    assert (fetch.timeout, fetch.pool, fetch.priority, fetch.estimate) == (5, "db", 5, 0.5)
    approve = wf.tasks["approve"]
    assert approve.fn is None
    assert approve.depends_on == ("fetch",)
    assert approve.pause == plait.Pause(
        "Publish the report?", schema={"type": "boolean"}, timeout=0.05, default=True
    )
    publish = wf.tasks["publish"]
    assert publish.fn == ShellTask("sh publish.sh", cwd=DATA / "scripts", env={"TARGET": "staging"})
    assert publish.depends_on == ("fetch", "approve")
    assert publish.critical
    count = wf.tasks["count"]
    assert count.fn is plait_fixture_tasks.count_words  # a dotted path after the colon
    assert count.is_async


def test_the_full_file_runs() -> None:
    loaded = plait.load_target(str(DATA / "full.yaml"))
    result = plait.run(loaded.workflow, wait_for_input=True, **loaded.settings)
    assert result.status is RunStatus.SUCCEEDED
    outputs = {task_id: task.output for task_id, task in result.tasks.items()}
    assert outputs == {
        "fetch": {"day": "2024-05-01", "rows": 3},
        "approve": True,  # the pause's default, after its timeout
        "publish": "staging true scripts",  # env, the gate's answer as JSON, cwd
        "count": 3,
    }


def test_the_json_equivalent_gives_the_same_workflow() -> None:
    from_yaml = plait.load_target(str(DATA / "full.yaml"))
    from_json = plait.load_target(str(DATA / "full.json"))
    assert from_json.settings == from_yaml.settings
    assert from_json.workflow.name == from_yaml.workflow.name
    assert list(from_json.workflow.tasks.values()) == list(from_yaml.workflow.tasks.values())


def test_an_approval_gate_is_a_task_with_only_a_pause(tmp_path: Path) -> None:
    target = write(
        tmp_path,
        "gate.yml",
        """
        name: release
        tasks:
          - id: approve
            pause: {prompt: "Ship it?", schema: {type: boolean}}
          - id: ship
            shell: echo "shipping $PLAIT_INPUT_APPROVE"
            depends_on: [approve]
        """,
    )
    wf = plait.load_target(target).workflow
    assert wf.tasks["approve"].fn is None
    assert wf.tasks["approve"].pause == plait.Pause("Ship it?", schema={"type": "boolean"})
    result = plait.run(wf)
    assert result.status is RunStatus.PAUSED
    assert result.waiting["approve"].prompt == "Ship it?"
    assert result.tasks["ship"].status is TaskStatus.PENDING


def test_trigger_and_cleanup_are_task_keys(tmp_path: Path) -> None:
    target = task_file(
        tmp_path,
        "- {id: a, shell: 'true'}",
        "- {id: alert, shell: 'true', depends_on: [a], trigger: one_failed}",
        "- {id: release, shell: 'true', depends_on: [a], cleanup: true}",
    )
    tasks = plait.load_target(target).workflow.tasks
    assert tasks["alert"].trigger is plait.TriggerRule.ONE_FAILED
    assert (tasks["release"].cleanup, tasks["release"].trigger) == (True, "all_done")
    assert (tasks["a"].cleanup, tasks["a"].trigger) == (False, "all_success")


def test_an_unknown_trigger_rule_names_the_rules(tmp_path: Path) -> None:
    target = task_file(tmp_path, "- {id: a, shell: 'true', trigger: one_fail}")
    error = fails_with(
        target,
        f"{target}, line 3: tasks[0].trigger: expected a trigger rule: "
        + ", ".join(rule.value for rule in plait.TriggerRule)
        + ", not 'one_fail'",
    )
    assert error.field == "tasks[0].trigger"


def test_a_shell_task_runs_in_the_file_directory_unless_cwd_says_otherwise(
    tmp_path: Path,
) -> None:
    (tmp_path / "sub").mkdir()
    target = write(
        tmp_path,
        "flow.yaml",
        """
        name: dirs
        tasks:
          - {id: here, shell: pwd -P}
          - {id: sub, shell: [pwd, -P], cwd: sub}
          - {id: absolute, shell: pwd -P, cwd: /}
        """,
    )
    wf = plait.load_target(target).workflow
    assert wf.tasks["sub"].fn == ShellTask(["pwd", "-P"], cwd=tmp_path.resolve() / "sub")
    outputs = {task_id: task.output for task_id, task in plait.run(wf).tasks.items()}
    root = tmp_path.resolve()
    assert outputs == {"here": str(root), "sub": str(root / "sub"), "absolute": "/"}


def test_task_timeout_may_be_null(tmp_path: Path) -> None:
    target = write(
        tmp_path,
        "flow.yaml",
        """
        name: nulls
        config: {task_timeout: null}
        tasks:
          - id: a
            shell: "true"
        """,
    )
    assert plait.load_target(target).settings == {"task_timeout": None}


def test_yaml_anchors_and_aliases_are_refused_where_they_are(tmp_path: Path) -> None:
    target = write(
        tmp_path,
        "flow.yaml",
        """
        name: anchors
        tasks:
          - id: a
            shell: "true"
            retry: &quick {max_retries: 1, backoff: 0}
          - id: b
            shell: "true"
            retry: *quick
        """,
    )
    with pytest.raises(
        plait.WorkflowFileError,
        match=rf"^{re.escape(target)}, line 5, column 12: YAML anchors and aliases are not "
        r"supported \(found the anchor &quick\): an alias repeats a value without copying it, "
        r"which lets a small file expand without bound; write the value out where it is used$",
    ) as caught:
        plait.load_target(target)
    assert (caught.value.line, caught.value.column) == (5, 12)


def test_the_schema_is_a_valid_json_schema_with_no_unknown_keys_anywhere() -> None:
    jsonschema.Draft202012Validator.check_schema(SCHEMA)

    def objects(schema: object) -> Iterator[dict[str, object]]:
        if isinstance(schema, dict):
            if "properties" in schema:
                yield schema
            for value in schema.values():
                yield from objects(value)
        elif isinstance(schema, list):
            for value in schema:
                yield from objects(value)

    fixed = list(objects(SCHEMA))
    # the file, config, a task, retry, pause; an executor, and its process and thread settings
    assert len(fixed) == 8
    assert all(schema["additionalProperties"] is False for schema in fixed)


# -- load targets -----------------------------------------------------------------------------


def test_a_python_file_target() -> None:
    loaded = plait.load_target(f"{DATA / 'pyflow.py'}:wf")
    assert loaded.workflow.name == "from-a-python-file"
    assert (loaded.settings, loaded.source) == ({}, str(DATA / "pyflow.py"))
    again = plait.load_target(f"{DATA / 'pyflow.py'}:wf")
    assert again.workflow is loaded.workflow  # imported once


def test_a_module_target(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.syspath_prepend(str(DATA))
    loaded = plait.load_target("plait_fixture_tasks:wf")
    assert loaded.workflow.name == "from-a-module"
    assert (loaded.settings, loaded.source) == ({}, "plait_fixture_tasks")


def test_a_python_file_target_without_the_workflow() -> None:
    fails_with(
        f"{DATA / 'pyflow.py'}:workflow",
        f"{DATA / 'pyflow.py'}: there is no 'workflow' in it; the workflows it defines: 'wf'",
    )


def test_a_python_file_target_that_is_not_a_workflow() -> None:
    fails_with(
        f"{DATA / 'pyflow.py'}:not_a_workflow",
        f"{DATA / 'pyflow.py'}: 'not_a_workflow' is a function, not a plait.Workflow",
    )


def test_a_python_file_without_workflows(tmp_path: Path) -> None:
    target = write(tmp_path, "empty_flow.py", "x = 1\n")
    fails_with(
        f"{target}:wf", f"{target}: there is no 'wf' in it, and it defines no plait.Workflow"
    )


def test_a_python_target_whose_workflow_is_invalid(tmp_path: Path) -> None:
    target = write(
        tmp_path,
        "cyclic_flow.py",
        """
        import plait

        wf = plait.Workflow("loop")
        wf.add_task("a", lambda b: b, depends_on=["b"])
        wf.add_task("b", lambda a: a, depends_on=["a"])
        """,
    )
    error = fails_with(
        f"{target}:wf",
        f"{target}: wf: the dependencies of workflow 'loop' form a cycle: b -> a -> b; "
        "remove one of these dependencies",
    )
    assert isinstance(error.__cause__, plait.CycleError)


def test_a_missing_module_target() -> None:
    fails_with(
        "plait_no_such_package.flows:wf",
        "plait_no_such_package.flows: cannot import 'plait_no_such_package.flows': there is no "
        "module 'plait_no_such_package'",
    )


@pytest.mark.parametrize(
    ("target", "message"),
    [
        ("missing.yaml", "missing.yaml: there is no such file"),
        ("missing.py:wf", "missing.py: there is no such file"),
        ("flow.py", "flow.py: name the workflow to load in it, as in 'flow.py:wf'"),
        (
            "flow.toml",
            "flow.toml: cannot tell what to load: give a workflow file (.yaml, .yml, .json), a "
            "Python file and the workflow in it (flow.py:wf), or a module and the workflow in it "
            "(package.module:wf)",
        ),
    ],
)
def test_targets_that_name_nothing_loadable(target: str, message: str) -> None:
    fails_with(target, message)


# -- bad files: parsing -----------------------------------------------------------------------


def test_a_yaml_syntax_error_names_the_line_and_column(tmp_path: Path) -> None:
    target = write(
        tmp_path,
        "flow.yaml",
        """
        name: broken
        tasks:
          - id: a
            shell: echo
           depends_on: [b]
        """,
    )
    error = fails_with(
        target,
        f"{target}, line 5, column 4: invalid YAML: expected <block end>, but found "
        "'<block mapping start>' (while parsing a block collection)",
    )
    assert (error.line, error.column, error.field) == (5, 4, None)


def test_a_json_syntax_error_names_the_line_and_column(tmp_path: Path) -> None:
    target = write(tmp_path, "flow.json", '{"name": "x",\n "tasks": [,]}\n')
    fails_with(target, f"{target}, line 2, column 12: invalid JSON: Expecting value")


def test_a_key_given_twice(tmp_path: Path) -> None:
    target = write(
        tmp_path,
        "flow.yaml",
        """
        name: twice
        tasks:
          - id: a
            shell: echo one
            shell: echo two
        """,
    )
    fails_with(target, f"{target}, line 5: tasks[0]: key 'shell' appears twice; give each key once")


def test_a_file_that_is_not_a_mapping(tmp_path: Path) -> None:
    target = write(tmp_path, "flow.yaml", "- id: a\n")
    fails_with(target, f"{target}, line 1: expected a mapping with 'name' and 'tasks', not a list")


def test_an_empty_file(tmp_path: Path) -> None:
    target = write(tmp_path, "flow.yaml", "")
    fails_with(
        target, f"{target}: expected a mapping with 'name' and 'tasks', not null (an empty value)"
    )


def test_a_yaml_tag_cannot_run_code(tmp_path: Path) -> None:
    target = write(tmp_path, "flow.yaml", "name: !!python/object/apply:os.getcwd []\ntasks: []\n")
    with pytest.raises(WorkflowFileError, match=r", line 1, column 7: invalid YAML: could not "):
        plait.load_target(target)


# -- bad files: structure ---------------------------------------------------------------------


def test_an_unknown_top_level_key_gets_a_did_you_mean(tmp_path: Path) -> None:
    target = write(
        tmp_path,
        "flow.yaml",
        """
        name: typo
        task:
          - {id: a, shell: echo}
        """,
    )
    error = fails_with(target, f"{target}, line 2: unknown key 'task'; did you mean 'tasks'?")
    assert (error.line, error.field) == (2, None)


def test_an_unknown_task_key_gets_a_did_you_mean(tmp_path: Path) -> None:
    target = write(
        tmp_path,
        "flow.yaml",
        """
        name: typo
        tasks:
          - id: a
            shell: echo
          - id: b
            shell: echo
            depend_on: [a]
        """,
    )
    error = fails_with(
        target, f"{target}, line 7: tasks[1]: unknown key 'depend_on'; did you mean 'depends_on'?"
    )
    assert (error.line, error.field) == (7, "tasks[1]")


def test_an_unknown_key_with_no_close_match_lists_the_known_ones(tmp_path: Path) -> None:
    target = write(
        tmp_path, "flow.yaml", "name: x\ntasks:\n  - {id: a, shell: echo, colour: red}\n"
    )
    fails_with(
        target,
        f"{target}, line 3: tasks[0]: unknown key 'colour'; expected one of: id, function, "
        "shell, cwd, env, params, depends_on, retry, timeout, critical, pool, priority, "
        "estimate, pause, executor, trigger, cleanup, map_over",
    )


def test_a_misspelt_function_key_is_reported_before_the_missing_function(tmp_path: Path) -> None:
    target = task_file(tmp_path, "- id: a", "  functon: os:getcwd")
    fails_with(
        target, f"{target}, line 4: tasks[0]: unknown key 'functon'; did you mean 'function'?"
    )


def test_a_wrong_type_names_the_field_and_line(tmp_path: Path) -> None:
    target = write(
        tmp_path,
        "flow.yaml",
        """
        name: types
        tasks:
          - id: a
            shell: echo
          - id: b
            shell: echo
            timeout: soon
        """,
    )
    error = fails_with(
        target, f"{target}, line 7: tasks[1].timeout: expected a number of seconds > 0, not 'soon'"
    )
    assert (error.line, error.field) == (7, "tasks[1].timeout")
    assert error.problem == "expected a number of seconds > 0, not 'soon'"


def test_a_wrong_type_in_json_names_the_line_of_its_key(tmp_path: Path) -> None:
    document = {"name": "x", "tasks": [{"id": "a", "shell": "echo", "timeout": "soon"}]}
    target = write(tmp_path, "flow.json", json.dumps(document, indent=2))
    fails_with(
        target, f"{target}, line 7: tasks[0].timeout: expected a number of seconds > 0, not 'soon'"
    )


@pytest.mark.parametrize(
    ("task", "field", "problem"),
    [
        (
            "{id: a, shell: echo, retry: {max_retries: many}}",
            "tasks[0].retry.max_retries",
            "expected an int >= 0, not 'many'",
        ),
        (
            "{id: a, shell: echo, retry: {jitter: 2}}",
            "tasks[0].retry.jitter",
            "expected a number between 0 and 1, not 2",
        ),
        ("{id: a, shell: echo, critical: 1}", "tasks[0].critical", "expected true or false, not 1"),
        (
            "{id: a, shell: echo, priority: high}",
            "tasks[0].priority",
            "expected an int, not 'high'",
        ),
        (
            "{id: a, shell: echo, timeout: }",
            "tasks[0].timeout",
            "expected a number of seconds > 0, not null (an empty value)",
        ),
        (
            "{id: a, shell: echo, env: {N: 1}}",
            "tasks[0].env.N",
            "expected a string (quote numbers and booleans), not 1",
        ),
        (
            "{id: a, shell: []}",
            "tasks[0].shell",
            "expected a command string or a non-empty list of arguments, not an empty list",
        ),
        (
            "{id: a, function: os.getcwd}",
            "tasks[0].function",
            "expected a 'package.module:function' reference, not 'os.getcwd'",
        ),
        (
            "{id: a, depends_on: b, shell: echo}",
            "tasks[0].depends_on",
            "expected a list of task ids, not 'b'",
        ),
        ("{id: 7, shell: echo}", "tasks[0].id", "expected a non-empty task id, not 7"),
        ("{id: a, pause: {schema: {}}}", "tasks[0].pause", "missing required key 'prompt'"),
        ("{id: a, function: os:getcwd, cwd: /tmp}", "tasks[0]", "'cwd' is only for 'shell' tasks"),
        (
            "{id: a, shell: echo, params: {x: 1}}",
            "tasks[0]",
            "'params' is only for 'function' tasks",
        ),
    ],
)
def test_wrong_values_name_the_field_and_what_was_expected(
    tmp_path: Path, task: str, field: str, problem: str
) -> None:
    target = write(tmp_path, "flow.yaml", f"name: x\ntasks:\n  - {task}\n")
    fails_with(target, f"{target}, line 3: {field}: {problem}")


def test_a_task_without_an_id(tmp_path: Path) -> None:
    target = write(
        tmp_path,
        "flow.yaml",
        """
        name: ids
        tasks:
          - id: a
            shell: echo
          - shell: echo
            timeout: 5
        """,
    )
    fails_with(target, f"{target}, line 5: tasks[1]: missing required key 'id'")


def test_a_task_with_both_function_and_shell(tmp_path: Path) -> None:
    target = write(
        tmp_path,
        "flow.yaml",
        """
        name: both
        tasks:
          - id: a
            function: os:getcwd
            shell: pwd
        """,
    )
    fails_with(target, f"{target}, line 3: tasks[0]: give either 'function' or 'shell', not both")


def test_a_task_with_nothing_to_do(tmp_path: Path) -> None:
    target = task_file(tmp_path, "- id: a", "  timeout: 5")
    fails_with(
        target,
        f"{target}, line 3: tasks[0]: a task needs a 'function', a 'shell' command, or a 'pause' "
        "(an approval gate)",
    )


def test_missing_top_level_keys(tmp_path: Path) -> None:
    target = write(tmp_path, "flow.yaml", "name: x\n")
    fails_with(target, f"{target}, line 1: missing required key 'tasks'")


def test_a_bad_config_value(tmp_path: Path) -> None:
    target = write(tmp_path, "flow.yaml", "name: x\nconfig:\n  max_retries: -1\ntasks: []\n")
    fails_with(
        target, f"{target}, line 3: config.max_retries: max_retries must be an int >= 0, not -1"
    )


def test_a_config_value_of_the_wrong_type(tmp_path: Path) -> None:
    target = write(tmp_path, "flow.yaml", "name: x\nconfig:\n  max_retries: 1.5\ntasks: []\n")
    fails_with(target, f"{target}, line 3: config.max_retries: expected an int, not 1.5")


def test_config_takes_every_engine_config_setting_under_its_api_name(tmp_path: Path) -> None:
    settings = {
        "max_concurrency": 3,
        "task_timeout": None,
        "retry_failed_tasks": False,
        "max_retries": 0,
        "retry_backoff": 0.5,
        "retry_max_backoff": 2.0,
        "retry_jitter": 0.0,
        "fail_fast": True,
        "pools": {"db": 2},
        "cancel_grace": 1.5,
        "max_log_bytes": 4096,
        "lease_seconds": 10.0,
        "default_executor": "inline",
        "learn_estimates": False,
        "tracing": False,
        "max_map": 10,
    }
    document = {"name": "x", "config": settings, "tasks": [{"id": "a", "shell": "true"}]}
    target = write(tmp_path, "flow.json", json.dumps(document))
    assert plait.load_target(target).settings == settings
    assert set(settings) == set(plait.EngineConfig.__dataclass_fields__)


def test_the_old_retries_key_is_refused_with_its_api_name(tmp_path: Path) -> None:
    target = write(tmp_path, "flow.yaml", "name: x\nconfig:\n  retries: 1\ntasks: []\n")
    fails_with(
        target, f"{target}, line 3: config: unknown key 'retries'; did you mean 'max_retries'?"
    )


def test_a_config_problem_between_settings_names_the_section(tmp_path: Path) -> None:
    target = write(
        tmp_path,
        "flow.yaml",
        "name: x\nconfig:\n  retry_backoff: 5\n  retry_max_backoff: 1\ntasks: []\n",
    )
    error = fails_with_prefix(target, f"{target}, line 2: config: ")
    assert "retry_backoff" in error.problem


def fails_with_prefix(target: str, prefix: str) -> WorkflowFileError:
    with pytest.raises(WorkflowFileError) as caught:
        plait.load_target(target)
    assert str(caught.value).startswith(prefix), str(caught.value)
    return caught.value


# -- bad files: what plait's own validation finds ---------------------------------------------


def test_a_cycle_names_the_file_and_the_line(tmp_path: Path) -> None:
    target = write(
        tmp_path,
        "flow.yaml",
        """
        name: loop
        tasks:
          - id: a
            shell: echo
            depends_on: [b]
          - id: b
            shell: echo
            depends_on: [a]
        """,
    )
    error = fails_with(
        target,
        f"{target}, line 5: tasks[0].depends_on[0]: the dependencies of workflow 'loop' form a "
        "cycle: b -> a -> b; remove one of these dependencies",
    )
    assert isinstance(error.__cause__, plait.CycleError)
    assert error.__cause__.cycle == ["b", "a", "b"]


def test_a_task_that_depends_on_itself(tmp_path: Path) -> None:
    target = task_file(tmp_path, "- {id: a, shell: echo, depends_on: [a]}")
    fails_with(
        target,
        f"{target}, line 3: tasks[0].depends_on[0]: task 'a' depends on itself; remove 'a' from "
        "its depends_on",
    )


def test_an_unknown_dependency(tmp_path: Path) -> None:
    target = write(
        tmp_path,
        "flow.yaml",
        """
        name: deps
        tasks:
          - id: fetch
            shell: echo
          - id: report
            shell: echo
            depends_on:
              - fetch
              - fecth
        """,
    )
    error = fails_with(
        target,
        f"{target}, line 9: tasks[1].depends_on[1]: task 'report' depends on 'fecth', which is "
        "not a task of workflow 'deps'; did you mean 'fetch'?",
    )
    assert isinstance(error.__cause__, plait.UnknownDependencyError)


def test_a_duplicate_task_id(tmp_path: Path) -> None:
    target = task_file(tmp_path, "- {id: a, shell: echo}", "- id: a", "  shell: ls")
    fails_with(
        target,
        f"{target}, line 4: tasks[1].id: task 'a' is already defined in workflow 'x'; give each "
        "task a unique id (for a decorated function: @wf.task(id=...))",
    )


def test_a_parameter_nothing_fills(tmp_path: Path) -> None:
    target = task_file(tmp_path, "- id: a", "  function: os.path:join")
    error = fails_with(
        target,
        f"{target}, line 3: tasks[0]: task 'a': nothing fills parameter 'a' of join; add 'a' to "
        "depends_on (to receive that task's output), to params, or give it a default",
    )
    assert isinstance(error.__cause__, plait.BindingError)


def test_a_pause_schema_that_is_not_a_json_schema(tmp_path: Path) -> None:
    target = task_file(tmp_path, "- id: a", "  pause: {prompt: Go, schema: {type: 12}}")
    with pytest.raises(
        WorkflowFileError,
        match=rf"^{re.escape(target)}, line 4: tasks\[0\]\.pause: the schema is not a valid JSON "
        "Schema: ",
    ):
        plait.load_target(target)


# -- bad files: functions ---------------------------------------------------------------------


def test_a_missing_module(tmp_path: Path) -> None:
    target = task_file(tmp_path, "- id: a", "  function: plait_nope.jobs:run")
    fails_with(
        target,
        f"{target}, line 4: tasks[0].function: cannot import 'plait_nope.jobs': there is no "
        "module 'plait_nope'",
    )


def test_a_missing_function(tmp_path: Path) -> None:
    target = task_file(tmp_path, "- id: a", "  function: os.path:jion")
    fails_with(
        target,
        f"{target}, line 4: tasks[0].function: module 'os.path' has no attribute 'jion'; did you "
        "mean 'join'?",
    )


def test_a_missing_attribute_along_a_dotted_path(tmp_path: Path) -> None:
    target = task_file(tmp_path, "- id: a", "  function: os:path.jion")
    fails_with(
        target,
        f"{target}, line 4: tasks[0].function: os:path (a module) has no attribute 'jion'; did "
        "you mean 'join'?",
    )


def test_a_function_that_is_not_callable(tmp_path: Path) -> None:
    target = task_file(tmp_path, "- id: a", "  function: os:sep")
    fails_with(target, f"{target}, line 4: tasks[0].function: 'os:sep' is a str, not a callable")


def test_a_module_that_fails_to_import(tmp_path: Path) -> None:
    write(tmp_path, "plait_broken_jobs.py", "raise RuntimeError('no database')\n")
    target = task_file(tmp_path, "- id: a", "  function: plait_broken_jobs:run")
    error = fails_with(
        target,
        f"{target}, line 4: tasks[0].function: importing module 'plait_broken_jobs' failed: "
        "RuntimeError: no database",
    )
    assert isinstance(error.__cause__, RuntimeError)


def test_functions_are_found_next_to_the_workflow_file(tmp_path: Path) -> None:
    write(tmp_path, "plait_local_jobs.py", "async def hello(name):\n    return 'hi ' + name\n")
    target = write(
        tmp_path,
        "flow.yaml",
        """
        name: local
        tasks:
          - {id: greet, function: "plait_local_jobs:hello", params: {name: you}}
        """,
    )
    result = plait.run(plait.load_target(target).workflow)
    assert result.tasks["greet"].output == "hi you"


def test_an_alias_bomb_is_refused_at_once(tmp_path: Path) -> None:
    # 9 levels of 9 aliases: 9**9 (387 million) strings once expanded, in under 600 bytes.
    levels = ['l0: &l0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    levels += [f"l{n}: &l{n} [{','.join([f'*l{n - 1}'] * 9)}]" for n in range(1, 9)]
    path = tmp_path / "bomb.yaml"
    path.write_text("\n".join(["name: bomb", *levels, "tasks: [*l8]", ""]))
    assert path.stat().st_size < 600
    with pytest.raises(plait.WorkflowFileError, match=r", line 2, column 5: YAML anchors and "):
        plait.load_target(str(path))


# (PyYAML's scanner takes quadratic time in the nesting: 500 levels are enough to fail it)
@pytest.mark.parametrize(("suffix", "levels"), [(".yaml", 500), (".json", 100_000)])
def test_a_file_nested_too_deep_is_a_clear_error(tmp_path: Path, suffix: str, levels: int) -> None:
    path = tmp_path / f"deep{suffix}"
    path.write_text('{"name": "deep", "tasks": ' + "[" * levels + "]" * levels + "}")
    with pytest.raises(
        plait.WorkflowFileError,
        match=rf"^{re.escape(str(path))}: its values are nested deeper than plait can read ",
    ):
        plait.load_target(str(path))


# -- every problem at once, and pools ---------------------------------------------------------


def test_every_problem_of_a_file_is_reported_each_with_its_line(tmp_path: Path) -> None:
    target = write(
        tmp_path,
        "flow.yaml",
        """
        name: many
        config:
          max_concurency: 2
          pools: {db: 1}
        tasks:
          - id: fetch
            function: os.path:jion
          - id: parse
            shell: echo
            timeout: soon
          - id: load
            shell: echo
            pool: dbb
            depends_on: [fetch, parse, fecth]
          - id: publish
            fucntion: os:getcwd
        """,
    )
    with pytest.raises(WorkflowFileError) as caught:
        plait.load_target(target)
    assert [(e.line, e.field, e.problem) for e in caught.value.errors] == [
        (3, "config", "unknown key 'max_concurency'; did you mean 'max_concurrency'?"),
        (7, "tasks[0].function", "module 'os.path' has no attribute 'jion'; did you mean 'join'?"),
        (10, "tasks[1].timeout", "expected a number of seconds > 0, not 'soon'"),
        (
            13,
            "tasks[2].pool",
            "task 'load' names pool 'dbb', which has no limit; did you mean 'db'? (add it under "
            "config.pools, or give it one with --pool dbb=N)",
        ),
        (
            14,
            "tasks[2].depends_on[2]",
            "task 'load' depends on 'fecth', which is not a task of workflow 'many'; did you "
            "mean 'fetch'?",
        ),
        (16, "tasks[3]", "unknown key 'fucntion'; did you mean 'function'?"),
    ]
    assert str(caught.value) == "\n".join(str(e) for e in caught.value.errors)
    assert str(caught.value.errors[0]).startswith(f"{target}, line 3: config: unknown key")


def test_a_task_whose_pool_has_no_limit_is_refused(tmp_path: Path) -> None:
    target = task_file(tmp_path, "- {id: a, shell: echo, pool: db}")
    fails_with(
        target,
        f"{target}, line 3: tasks[0].pool: task 'a' names pool 'db', which has no limit; no pool "
        "has one (add it under config.pools, or give it one with --pool db=N)",
    )
    assert plait.load_target(target, pools=["db"]).workflow.tasks["a"].pool == "db"


def test_run_refuses_a_task_whose_pool_has_no_limit() -> None:
    wf = plait.Workflow("pools")
    wf.add_task("load", lambda: 1, pool="db")
    with pytest.raises(
        plait.InvalidOptionError,
        match=r"^task 'load' names pool 'db', which has no limit; did you mean 'dbb'\? \(give it "
        r"one with pools=\{'db': N\}, or fix the task's pool\)$",
    ):
        plait.run(wf, pools={"dbb": 1})
    assert plait.run(wf, pools={"db": 1}).tasks["load"].output == 1


class _Executor:
    """Stands in for an object a setting could hold (an executor)."""


@dataclasses.dataclass
class _ConfigWithObjects:
    max_retries: int = 3
    executors: Mapping[str, _Executor] = dataclasses.field(default_factory=dict)


def test_a_config_field_that_holds_objects_is_named_as_such_in_the_schema(
    tmp_path: Path,
) -> None:
    properties = config_properties(_ConfigWithObjects)
    assert properties["max_retries"] == {"type": "integer", "description": "an int"}
    schema = {"type": "object", "properties": properties}
    (error,) = jsonschema.Draft202012Validator(schema).iter_errors({"executors": {"a": 1}})
    assert describe(error)[-1] == (
        "'executors' holds objects rather than a setting; it cannot be given under config "
        "(pass it to plait.run)"
    )


def test_pools_that_cannot_be_read_are_reported_once_not_at_every_task(tmp_path: Path) -> None:
    target = write(
        tmp_path,
        "flow.yaml",
        """
        name: p
        config:
          pools: {db: many}
        tasks:
          - {id: a, shell: echo, pool: db}
          - {id: b, shell: echo, pool: db}
        """,
    )
    fails_with(target, f"{target}, line 3: config.pools.db: expected an int, not 'many'")
