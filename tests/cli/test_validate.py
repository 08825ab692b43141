"""``plait validate`` and ``plait run`` on workflow files: every problem, pools, config names."""

from __future__ import annotations

import re
import socket
import textwrap
from pathlib import Path
from typing import Any

import psutil
import pytest

import plait
from plait.executors import DaskExecutor, ProcessExecutor

from .test_cli import home, plait_cli  # noqa: F401 - `home` is an autouse fixture


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "flow.yaml"
    path.write_text(textwrap.dedent(text).lstrip("\n"))
    return path


def test_validate_reports_every_problem_of_a_file_each_with_its_line(tmp_path: Path) -> None:
    flow = write(
        tmp_path,
        """
        name: many
        tasks:
          - id: a
            shell: echo
            timeout: soon
          - id: b
            shell: echo
            priority: high
          - id: c
            shell: echo
            depends_on: [z]
        """,
    )
    result = plait_cli("validate", flow)
    assert result.exit_code == 2
    assert result.stderr.splitlines() == [
        f"error: {flow}, line 5: tasks[0].timeout: expected a number of seconds > 0, not 'soon'",
        f"error: {flow}, line 8: tasks[1].priority: expected an int, not 'high'",
        f"error: {flow}, line 11: tasks[2].depends_on[0]: task 'c' depends on 'z', which is not "
        "a task of workflow 'many'; define it or remove it",
    ]


def test_a_pool_given_on_the_command_line_needs_no_limit_in_the_file(tmp_path: Path) -> None:
    flow = write(tmp_path, "name: p\ntasks:\n  - {id: a, shell: 'echo 1', pool: cc}\n")
    result = plait_cli("validate", flow)
    assert result.exit_code == 2
    assert "task 'a' names pool 'cc', which has no limit" in result.stderr
    assert plait_cli("validate", flow, "--pool", "cc=1").exit_code == 0
    assert plait_cli("run", flow, "--pool", "cc=1", "-q").exit_code == 0


def test_run_takes_every_engine_setting_as_a_flag_named_like_it() -> None:
    help_text = plait_cli("run", "--help").stdout
    for name in plait.EngineConfig.__dataclass_fields__:
        flag = "--pool" if name == "pools" else "--" + name.replace("_", "-")
        assert re.search(rf"(^|[ ,]){flag}\b", help_text, re.MULTILINE), flag


FLAKY = """
name: flaky
config:
  retry_backoff: 0
tasks:
  - id: count
    shell: echo x >> attempts.txt; exit 1
"""


@pytest.mark.parametrize(
    ("flags", "attempts"),
    [((), 4), (("--max-retries", "1"), 2), (("--no-retry-failed-tasks",), 1)],
)
def test_retry_flags_set_the_engine_settings_of_the_same_name(
    tmp_path: Path, flags: tuple[str, ...], attempts: int
) -> None:
    flow = write(tmp_path, FLAKY)
    result = plait_cli("run", flow, "-q", *flags)
    assert result.exit_code == 1
    assert (tmp_path / "attempts.txt").read_text().count("x") == attempts


def test_the_file_sets_a_setting_and_a_flag_overrides_it(tmp_path: Path) -> None:
    flow = write(tmp_path, FLAKY.replace("retry_backoff: 0", "retry_backoff: 0\n  max_retries: 0"))
    assert plait_cli("run", flow, "-q").exit_code == 1
    assert (tmp_path / "attempts.txt").read_text().count("x") == 1
    assert plait_cli("run", flow, "-q", "--max-retries", "2").exit_code == 1
    assert (tmp_path / "attempts.txt").read_text().count("x") == 1 + 3


def test_task_timeout_none_lifts_the_limit_and_a_bad_value_is_refused(tmp_path: Path) -> None:
    flow = write(
        tmp_path, "name: t\nconfig: {task_timeout: 0.05}\ntasks:\n  - {id: a, shell: sleep 0.3}\n"
    )
    assert plait_cli("run", flow, "-q").exit_code == 1
    assert plait_cli("run", flow, "-q", "--task-timeout", "none").exit_code == 0
    result = plait_cli("run", flow, "--task-timeout", "soon")
    assert result.exit_code == 2
    assert "'soon' is not a number of seconds > 0, nor 'none'" in result.stderr


def test_resume_takes_the_settings_flags_too(tmp_path: Path) -> None:
    flow = write(tmp_path, FLAKY.replace("retry_backoff: 0", "retry_backoff: 0\n  max_retries: 0"))
    assert plait_cli("run", flow, "-q", "--run-id", "f1").exit_code == 1
    assert (tmp_path / "attempts.txt").read_text().count("x") == 1
    result = plait_cli("resume", "f1", "-q", "--max-retries", "2")
    assert result.exit_code == 1, result.output
    assert (tmp_path / "attempts.txt").read_text().count("x") == 1 + 3  # a fresh budget of 2


def test_run_takes_the_default_executor_as_executor(tmp_path: Path) -> None:
    flow = write(tmp_path, "name: e\ntasks:\n  - {id: a, shell: 'echo 1'}\n")
    assert plait_cli("run", flow, "--executor", "inline", "-q").exit_code == 0
    result = plait_cli("run", flow, "--executor", "nowhere", "-q")
    assert result.exit_code != 0
    assert "default_executor 'nowhere' is not an executor" in result.stderr


def test_validate_connects_to_no_cluster_and_starts_no_worker(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The file's executors are made (their settings checked) and shut down, never used: no
    connection reaches the Dask scheduler's address, no worker process starts."""
    before = {child.pid for child in psutil.Process().children(recursive=True)}
    shut: list[str] = []
    for kind in (DaskExecutor, ProcessExecutor):
        shutdown = kind.shutdown

        def recording(self: Any, *, wait: bool = True, _shutdown: Any = shutdown) -> None:
            shut.append(type(self).__name__)
            _shutdown(self, wait=wait)

        monkeypatch.setattr(kind, "shutdown", recording)
    with socket.socket() as scheduler:  # stands in for a Dask scheduler: counts who calls
        scheduler.bind(("127.0.0.1", 0))
        scheduler.listen()
        scheduler.setblocking(False)
        port = scheduler.getsockname()[1]
        flow = write(
            tmp_path,
            f"""
            name: elsewhere
            executors:
              cluster: {{dask: "tcp://127.0.0.1:{port}"}}
              pool: {{process: {{max_workers: 2}}}}
            tasks:
              - {{id: a, shell: echo a, executor: cluster}}
              - {{id: b, shell: echo b, executor: pool, depends_on: [a]}}
            """,
        )
        result = plait_cli("validate", flow)
        assert result.exit_code == 0, result.output
        with pytest.raises(BlockingIOError):
            scheduler.accept()  # nobody connected
    assert sorted(shut) == ["DaskExecutor", "ProcessExecutor"]
    assert {child.pid for child in psutil.Process().children(recursive=True)} <= before
