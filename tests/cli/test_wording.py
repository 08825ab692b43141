"""The command line speaks its own language: flags in advice, no nonsense frames on a resume."""

from __future__ import annotations

import io
import time
from pathlib import Path

import pytest
from rich.console import Console

import plait
from plait._claims import _lease_held as runs_lease_held
from plait.cli._common import cli_words
from plait.cli._live import LiveView
from plait.stores._sql import _lease_held as store_lease_held

from .test_cli import home, plait_cli  # noqa: F401 - `home` is an autouse fixture


@pytest.mark.parametrize(
    "error",
    [
        runs_lease_held("r1", "host:12:ab", time.time() + 30),
        store_lease_held("r1", "host:12:ab", time.time() + 30),
    ],
    ids=["runs", "store"],
)
def test_a_held_lease_is_taken_over_with_the_force_flag(error: Exception) -> None:
    assert "force=True" in str(error)
    words = cli_words(str(error))
    assert "pass --force" in words
    assert "force=True" not in words


def test_api_advice_becomes_commands_and_flags() -> None:
    assert cli_words(
        "run 'r1' already exists in <SQLiteStore 'x'>; continue it with "
        "plait.resume('r1', workflow), or start a new run with another run_id"
    ) == (
        "run 'r1' already exists in <SQLiteStore 'x'>; continue it with `plait resume r1`, or "
        "start a new run with another --run-id"
    )
    assert cli_words("plait.list_runs(store=...) shows the runs it has") == (
        "`plait runs` shows the runs it has"
    )
    assert cli_words("or resume it with accept_changes=True") == (
        "or resume it with --accept-changes"
    )


def test_a_pool_without_a_limit_is_explained_with_the_pool_flag(tmp_path: Path) -> None:
    flow = tmp_path / "pooled_flow.py"
    flow.write_text(
        "import plait\nwf = plait.Workflow('pooled')\nwf.add_task('load', lambda: 1, pool='db')\n"
    )
    result = plait_cli("run", f"{flow}:wf", "--pool", "dbb=1")
    assert result.exit_code == 2
    assert result.stderr == (
        "error: task 'load' names pool 'db', which has no limit; did you mean 'dbb'? (give it "
        "one with --pool db=N, or fix the task's pool)\n"
    )
    assert plait_cli("run", f"{flow}:wf", "--pool", "db=1", "-q").exit_code == 0


def test_the_live_view_draws_no_progress_before_it_knows_the_total() -> None:
    view = LiveView(Console(file=io.StringIO(), force_terminal=True, width=100))
    view.seed(["fetch", "compile"])  # a resume: these succeeded before
    console = Console(file=io.StringIO(), force_terminal=False, width=100)
    console.print(view.render(now=1.0))
    drawn = console.file.getvalue()  # type: ignore[attr-defined]
    assert "/0 tasks" not in drawn
    assert drawn.strip() == "starting…"
    view(plait.RunStarted(run_id="r1", time=1.0, workflow="w", tasks=4))
    console.print(view.render(now=1.0))
    assert "2/4 tasks" in console.file.getvalue()  # type: ignore[attr-defined]


def test_a_changed_definition_is_accepted_with_the_flag(tmp_path: Path) -> None:
    flow = tmp_path / "changing_flow.py"
    flow.write_text(
        "import plait\nwf = plait.Workflow('changing')\n"
        "def fail():\n    raise RuntimeError('no')\n"
        "wf.add_task('a', fail)\n"
    )
    assert plait_cli("run", f"{flow}:wf", "--run-id", "c1", "--max-retries", "0").exit_code == 1
    changed = tmp_path / "changed_flow.py"  # a new module: this process imported the first
    changed.write_text(flow.read_text() + "wf.add_task('b', lambda: 2)\n")
    result = plait_cli("resume", "c1", "--target", f"{changed}:wf")
    assert result.exit_code == 2
    assert "pass --accept-changes to resume it with this one" in result.stderr
    assert "accept_changes=True" not in result.stderr
