"""``plait validate`` and ``plait run`` on workflow files: every problem, pools, config names."""

from __future__ import annotations

import textwrap
from pathlib import Path

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
    assert plait_cli("run", flow, "--pool", "cc=1", "-q").exit_code == 0
